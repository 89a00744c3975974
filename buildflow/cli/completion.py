"""Shell completion of target names and image ids (`app`, `'app[tf=1.8.0]'`), read from the pipeline file the
command line names (-f before or after the command, BUILDFLOW_FILE, ./buildflow.yaml). Fast, and silent: only the
pipeline file is read (no Dockerfile, no context, no engine, no registry), and a problem completes nothing."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import click
from click.core import ParameterSource

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

COMPLETE_VARIABLE = "_BUILDFLOW_COMPLETE"  # click's: bash_source, zsh_source, fish_source print the script


def complete_targets(context: click.Context, parameter: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """The target names, then the ids of their matrix images, that start with what is typed; none on a problem."""
    from click.shell_completion import CompletionItem

    try:
        names = _image_names(_pipeline_file(context), _variables(context))
    except Exception:  # a broken or missing file, a bad --var: completion must never fail or print
        return []
    candidates = dict.fromkeys([name for name, _ in names] + [image_id for _, image_id in names])
    return [CompletionItem(_quoted(value)) for value in candidates if value.startswith(incomplete)]


def _image_names(file: Path, variables: dict[str, str]) -> list[tuple[str, str]]:
    """(target name, image id) of every image the file describes."""
    from buildflow.pipeline.loader import image_names

    return image_names(file, overrides=variables)


def _pipeline_file(context: click.Context) -> Path:
    """-f as given after the command, else before it, else BUILDFLOW_FILE or the default."""
    for given in (context, context.parent):
        if given is not None and given.get_parameter_source("file") == ParameterSource.COMMANDLINE:
            return Path(given.params["file"])
    return Path(context.params.get("file") or "buildflow.yaml")


def _variables(context: click.Context) -> dict[str, str]:
    """The --var pairs given before and after the command (or in BUILDFLOW_VAR); malformed ones left out."""
    pairs = [
        *(context.parent.params.get("variables", ()) if context.parent else ()),
        *context.params.get("variables", ()),
    ]
    parsed = {}
    for pair in pairs:
        name, equals, value = str(pair).partition("=")
        if equals and name:
            parsed[name] = value
    return parsed


def _quoted(value: str) -> str:
    """A completion as bash must insert it: quoted when it holds [brackets] (a glob) and the word being completed
    has no opening quote yet. zsh and fish quote what they insert themselves."""
    if not os.environ.get(COMPLETE_VARIABLE, "").startswith("bash"):
        return value
    word = os.environ.get("COMP_WORDS", "").rsplit(" ", 1)[-1]
    return value if word[:1] in ("'", '"') else shlex.quote(value)
