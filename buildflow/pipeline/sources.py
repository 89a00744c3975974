"""`COPY`/`ADD` sources missing from the build context: each is a build that fails for certain, found before it runs.

Sources that cannot be checked without building are left alone: a variable with no known value, `--from=` copies,
URLs and git sources of ADD, heredocs. A wildcard counts as missing only when nothing in the context matches it.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable, Iterator, Mapping
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from buildflow.errors import Problem
from buildflow.model import Pipeline, Target
from buildflow.pipeline import dockerignore

_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|git@)", re.IGNORECASE)
_WILDCARD = re.compile(r"[*?\[]")


def missing_sources(pipeline: Pipeline, display: str) -> list[Problem]:
    """A problem (Dockerfile, line) for every COPY/ADD source not in its target's context, once per Dockerfile line;
    each context is listed, and each Dockerfile parsed, once."""
    listings: dict[tuple[Path, Path], frozenset[str]] = {}
    parsed: dict[Path, tuple[Any, ...]] = {}
    checked: dict[tuple[Path, Path, str], bool] = {}
    found: dict[tuple[Path, int, str], Problem] = {}
    for target in pipeline.targets.values():
        key = (target.context, target.dockerfile)
        if key not in listings:
            listings[key] = _listing(target.context, target.dockerfile)
        if target.dockerfile not in parsed:
            parsed[target.dockerfile] = _instructions(target.dockerfile)
        for line, source in _sources(parsed[target.dockerfile], target.args):
            if (*key, source) not in checked:
                checked[(*key, source)] = _present(source, listings[key])
            if not checked[(*key, source)]:
                found.setdefault((target.dockerfile, line, source), _problem(pipeline, display, target, line, source))
    return list(found.values())


def _problem(pipeline: Pipeline, display: str, target: Target, line: int, source: str) -> Problem:
    """The problem of one missing source, against the Dockerfile and its line."""
    shown = os.path.normpath(Path(display).parent / target.dockerfile.relative_to(pipeline.root))
    context = os.path.normpath(Path(display).parent / target.context.relative_to(pipeline.root))
    message = (
        f"COPY/ADD source '{source}' is not in the build context {context} (target {target.name}; "
        "missing, or left out by .dockerignore); add it to the context or fix the path"
    )
    return Problem(message, (), shown, line)


def _instructions(path: Path) -> tuple[Any, ...]:
    """A Dockerfile's instructions as BuildKit's parser reads them (none when it cannot: the Dockerfile's own
    problems are reported where it is read). Python reads the file, so that the answer cache sees it read."""
    import dockerfile as parser

    try:
        return tuple(parser.parse_string(path.read_bytes().decode("utf-8", errors="replace")))
    except (parser.GoParseError, OSError):
        return ()


def _sources(commands: tuple[Any, ...], args: Mapping[str, str]) -> Iterator[tuple[int, str]]:
    """(line, source relative to the context) of every checkable COPY/ADD source, with a target's build args."""
    global_args: dict[str, str] = {}  # the ARGs before the first FROM, which a stage takes by declaring them
    scope: dict[str, str] = {}  # the ARG values in force
    in_stage = False
    for command in commands:
        if command.cmd.upper() == "FROM":
            global_args = global_args if in_stage else scope
            in_stage, scope = True, {}
        elif command.cmd.upper() == "ARG":
            scope.update(_arg_values(command.value, args, global_args if in_stage else {}))
        elif command.cmd.upper() in ("COPY", "ADD") and _checkable(command):
            for source in command.value[:-1]:
                expanded = None if _REMOTE.match(source) or source.startswith("<<") else _expand(source, scope)
                if expanded is not None and not _REMOTE.match(expanded):
                    yield command.start_line, _in_context(expanded)


def _checkable(command: Any) -> bool:
    """False for copies from another stage or image, and for heredocs."""
    return not command.heredocs and not any(flag.startswith("--from") for flag in command.flags)


def _arg_values(words: Iterable[str], args: Mapping[str, str], global_args: Mapping[str, str]) -> dict[str, str]:
    """The values ARG declares: the build arg given, else the default written, else the global ARG's value."""
    values = {}
    for word in words:
        name, has_default, default = word.partition("=")
        if name in args:
            values[name] = args[name]
        elif has_default and "$" not in default:
            values[name] = default.strip("\"'")
        elif not has_default and name in global_args:
            values[name] = global_args[name]
    return values


def _expand(source: str, known: Mapping[str, str]) -> str | None:
    """The source with its variables filled; None when one has no known value."""
    unknown = False

    def fill(match: re.Match[str]) -> str:
        nonlocal unknown
        name = match[1] or match[2]
        unknown = unknown or name not in known
        return known.get(name, "")

    expanded = _VARIABLE.sub(fill, source) if "$" in source else source
    return None if unknown or "$" in expanded or "\\" in expanded else expanded


def _in_context(source: str) -> str:
    """A source as a path relative to the context ('.' for the context itself; '..' cannot leave it)."""
    return posixpath.normpath("/" + source).lstrip("/") or "."


def _present(source: str, listing: frozenset[str]) -> bool:
    """True when the context holds the source (for a wildcard: something that matches it)."""
    if source == "." or source in listing:
        return True
    if not _WILDCARD.search(source):
        return False
    parts = source.split("/")
    return any(_matches(parts, path.split("/")) for path in listing)


def _matches(pattern: list[str], path: list[str]) -> bool:
    """Go's filepath.Match: each part of the path matches the pattern's part (a `*` stays within one part)."""
    return len(pattern) == len(path) and all(fnmatchcase(p, w) for w, p in zip(pattern, path, strict=True))


def _listing(context: Path, dockerfile: Path) -> frozenset[str]:
    """Every path .dockerignore lets into the build (directories too), relative to the context."""
    try:
        rules = dockerignore.parse(dockerignore.read_rules_text(context, dockerfile))
    except dockerignore.IgnoreFileError:
        return frozenset()
    return frozenset(relative for relative, _, _ in dockerignore.sent_entries(context, rules, _pass_over))


def _pass_over(directory: str, error: OSError) -> None:
    """A directory that cannot be listed counts as empty here (the fingerprint reports it)."""
