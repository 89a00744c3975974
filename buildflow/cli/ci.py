"""The ci command: a GitHub Actions workflow, a GitLab CI pipeline or a Makefile with one job per image."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from buildflow.cli.loading import load_plan
from buildflow.cli.options import PipelineOptions, pipeline_options, selection_options
from buildflow.errors import EXIT_TARGET_FAILED, BuildflowError, UsageError

if TYPE_CHECKING:
    from buildflow.output.ci import CiSettings
    from buildflow.plan.planner import Plan

KINDS = ("github", "gitlab", "make")
SHARDS = ("target", "generation")
TRIGGERS = ("workflow_call", "push", "schedule")


class OutOfDate(BuildflowError):
    """--check: the file differs from what would be written (exit 1)."""

    exit_code = EXIT_TARGET_FAILED


@click.command(short_help="Write a GitHub Actions workflow, a GitLab CI pipeline or a Makefile: a job per image.")
@click.argument("kind", type=click.Choice(KINDS), metavar="KIND")
@selection_options
@click.option(
    "-o",
    "--output",
    "output_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write to FILE (default: standard output).",
)
@click.option(
    "--check",
    "check_path",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    help="Write nothing; exit 1 if FILE differs from what would be written (for pre-commit and CI).",
)
@click.option(
    "--shard",
    type=click.Choice(SHARDS),
    default="target",
    show_default=True,
    help="target: a job per image, needing its parents' jobs; generation: a job per DAG generation.",
)
@click.option(
    "--trigger",
    "triggers",
    type=click.Choice(TRIGGERS),
    multiple=True,
    help="github: when the workflow runs (repeatable): called by another workflow (the default), on pushes to "
    "--branch, or nightly; the last two also by hand.",
)
@click.option(
    "--branch", default="main", show_default=True, metavar="NAME", help="github --trigger push: the branch pushed to."
)
@click.option(
    "--install",
    default=".",
    show_default=True,
    metavar="PIP_SPEC",
    help="github, gitlab: what the jobs pip-install to have buildflow: '.' (this checkout, as examples/scheduled "
    "does) or a pinned release such as 'buildflow==0.6.0'.",
)
@pipeline_options
def ci(
    *,
    kind: str,
    targets: Sequence[str],
    downstream: Sequence[str],
    since: str | None,
    output_path: Path | None,
    check_path: Path | None,
    shard: str,
    triggers: Sequence[str],
    branch: str,
    install: str,
    options: PipelineOptions,
) -> None:
    """Write a CI pipeline that builds the selection with one job per image: a GitHub Actions workflow, a GitLab
    CI child pipeline, or a Makefile (make -j4 -f buildflow.mk app). Each job runs `buildflow build --only ID
    --no-release` once its parents' jobs are done; a last job runs `buildflow release`.

    The output is the same for the same pipeline, byte for byte; its first line names the command that wrote it.
    --check FILE says whether FILE is up to date. See docs/ci.md.
    """
    request = _Request(kind, tuple(targets), tuple(downstream), since, shard, tuple(triggers), branch, install)
    _check_choices(request, output_path, check_path)
    from buildflow.output.ci import CiSettings

    command = _command(request, options)
    settings = CiSettings(
        file=str(options.file),
        command=command,
        shard=shard,
        triggers=tuple(dict.fromkeys(triggers or ["workflow_call"])),
        branch=branch,
        install=install,
        passed=_passed(options),
    )
    the_plan = load_plan(options, targets, downstream, since)
    if not the_plan.steps:
        raise UsageError(f"{options.file}: no image is selected: nothing to write")
    text = _generate(kind, the_plan, settings)
    if check_path is not None:
        _compare(check_path, text, f"{command} -o {shlex.quote(str(check_path))}")
    elif output_path is not None:
        _write(output_path, text)
    else:
        click.echo(text, nl=False)


@dataclass(frozen=True)
class _Request:
    """What the command line asks for, beyond the pipeline options and where the output goes."""

    kind: str
    targets: tuple[str, ...]
    downstream: tuple[str, ...]
    since: str | None
    shard: str
    triggers: tuple[str, ...]
    branch: str
    install: str


def _check_choices(request: _Request, output_path: Path | None, check_path: Path | None) -> None:
    """Options that do not go together: exit 2."""
    if output_path is not None and check_path is not None:
        raise UsageError("ci: -o writes and --check compares: choose one")
    if request.kind != "github" and (request.triggers or request.branch != "main"):
        raise UsageError(f"ci {request.kind}: --trigger and --branch are for ci github")
    if request.kind == "make" and request.install != ".":
        raise UsageError("ci make: --install is for ci github and ci gitlab; make runs the buildflow it finds")


def _passed(options: PipelineOptions) -> tuple[str, ...]:
    """The --var and --registry arguments the jobs' buildflow commands need to see the same pipeline."""
    words: list[str] = []
    for pair in options.variables:
        words += ["--var", pair]
    if options.registry:
        words += ["--registry", options.registry]
    return tuple(words)


def _command(request: _Request, options: PipelineOptions) -> str:
    """The command line that writes this output (without -o), for the header and for --check's message."""
    words = ["buildflow", "ci", request.kind, "-f", str(options.file), *_passed(options), *request.targets]
    for name in request.downstream:
        words += ["--downstream", name]
    words += ["--since", request.since] if request.since else []
    words += ["--shard", request.shard] if request.shard != "target" else []
    for trigger in dict.fromkeys(request.triggers):
        words += ["--trigger", trigger]
    words += ["--branch", request.branch] if request.branch != "main" else []
    words += ["--install", request.install] if request.install != "." else []
    return " ".join(shlex.quote(word) for word in words)


def _generate(kind: str, plan: Plan, settings: CiSettings) -> str:
    """The text of one kind of output."""
    from buildflow.output.ci.github import workflow
    from buildflow.output.ci.gitlab import pipeline
    from buildflow.output.ci.make import makefile

    generator = {"github": workflow, "gitlab": pipeline, "make": makefile}[kind]
    return generator(plan, settings)


def _write(path: Path, text: str) -> None:
    """-o: the file written (its directory made), or exit 2 saying why it cannot be."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode())
    except OSError as error:
        raise UsageError(f"-o {path}: cannot be written ({error.strerror or error})") from None


def _compare(path: Path, text: str, regenerate: str) -> None:
    """--check: exit 0 when the file holds what would be written, else one line and exit 1."""
    try:
        current: bytes | None = path.read_bytes()
    except FileNotFoundError:
        current = None
    except OSError as error:
        raise UsageError(f"--check {path}: cannot be read ({error.strerror or error})") from None
    if current == text.encode():
        return
    state = "missing" if current is None else "out of date"
    raise OutOfDate(f"{path}: {state}; regenerate it with: {regenerate}")
