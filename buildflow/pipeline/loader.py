"""Loading a pipeline file: read, validate against the schema, resolve; every problem reported at once."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from buildflow import references
from buildflow.errors import PipelineError, Problem
from buildflow.model import Pipeline
from buildflow.pipeline import documents, matrix
from buildflow.pipeline.overrides import apply_overrides, name_overrides
from buildflow.pipeline.resolve import BaseResolver, resolve
from buildflow.pipeline.resolve import image_names as resolved_names
from buildflow.pipeline.source import line_finder, parse_document, read_document, read_text
from buildflow.pipeline.spec import schema_problems


def load_pipeline(
    path: Path,
    *,
    overrides: Mapping[str, str] | None = None,
    registry: str | None = None,
    display: str | None = None,
    resolve_bases: BaseResolver | None = None,
    sets: Sequence[str] = (),
) -> Pipeline:
    """Load and resolve a pipeline file, or raise PipelineError listing every problem in it.

    With `resolve_bases`, external base images are looked up and their digests enter the fingerprints;
    without it (validate, graph, --offline) they enter by name only. `sets` are --set ID.FIELD=VALUE overrides.
    """
    display = display or str(path)
    text = read_text(path, display)
    stamp, data = documents.checked(path, text)
    schema_passed = data is not None
    if data is None:
        data = parse_document(text, path, display)
    _check_target_count(data, display)
    data, set_problems, applied = apply_overrides(data, sets)
    if set_problems:
        raise PipelineError(set_problems)
    schema_passed = schema_passed and not sets  # what passed before is the file alone, not the file with --set
    problems = name_overrides(_schema_problems(data, display, registry, schema_passed=schema_passed), applied)
    if stamp and not sets and not schema_passed and not problems:
        documents.remember(path, stamp, data)
    if problems and not all(map(_is_target_problem, problems)):
        raise PipelineError(_with_lines(problems, text, display))
    pipeline, found = resolve(
        data,
        file=path,
        display=display,
        overrides=overrides or {},
        registry=registry,
        skip=_broken_fields(problems),
        uses_git="{git_" in text,
        resolve_bases=resolve_bases,
    )
    problems += name_overrides(found, applied)
    if problems or pipeline is None:
        raise PipelineError(_with_lines(problems, text, display))
    return pipeline


def image_names(path: Path, *, overrides: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """(target name, image id) of every image of a pipeline file as far as it can be read, without reading a
    Dockerfile or a context (for shell completion); PipelineError if the file cannot be read at all."""
    display = str(path)
    _, data = read_document(path, display)
    _check_target_count(data, display)
    problems = _schema_problems(data, display, None)
    if problems and not all(map(_is_target_problem, problems)):
        return []
    return resolved_names(data, file=path, overrides=overrides or {}, skip=_broken_fields(problems))


def _check_target_count(data: Mapping[str, Any], display: str) -> None:
    """Refuse more targets than a pipeline may have images, before spending time on each of them."""
    targets = data.get("targets")
    if isinstance(targets, dict) and len(targets) > matrix.MAX_IMAGES_PER_PIPELINE:
        message = (
            f"{len(targets):,} targets; the limit is {matrix.MAX_IMAGES_PER_PIPELINE:,} images per pipeline: "
            "split the pipeline"
        )
        raise PipelineError([Problem(message, ("targets",), display)])


def _schema_problems(data: Any, display: str, registry: str | None, *, schema_passed: bool = False) -> list[Problem]:
    """Schema problems (none when this document passed before), plus a registry (from --registry or the file)
    that is not a reference prefix."""
    problems = [] if schema_passed else [dataclasses.replace(p, file=display) for p in schema_problems(data)]
    if registry is not None:
        problems += _registry_problems(registry, "--registry", ())
    elif isinstance(data.get("registry"), str) and not any(p.path == ("registry",) for p in problems):
        problems += _registry_problems(data["registry"], display, ("registry",))
    return problems


def _broken_fields(problems: list[Problem]) -> dict[str, set[str]]:
    """For each target with schema problems, the settings they are in ('' for the target as a whole)."""
    broken: dict[str, set[str]] = {}
    for problem in filter(_is_target_problem, problems):
        setting = str(problem.path[2]) if len(problem.path) > 2 else ""
        broken.setdefault(str(problem.path[1]), set()).add(setting)
    return broken


def _is_target_problem(problem: Problem) -> bool:
    """True for a problem inside one target, which leaves the other targets checkable."""
    return len(problem.path) >= 2 and problem.path[0] == "targets"


def _registry_problems(registry: str, where: str, path: tuple[str, ...]) -> list[Problem]:
    """A registry must be a valid reference prefix such as localhost:5000/t2t."""
    try:
        references.parse(f"{registry.rstrip('/')}/probe")
    except ValueError:
        return [Problem(f"'{registry}' is not a registry like localhost:5000/team", path, where)]
    return []


def _with_lines(problems: list[Problem], text: str, display: str) -> list[Problem]:
    """Add line numbers to the problems that point into the pipeline file."""
    find = line_finder(text)
    return [dataclasses.replace(p, line=find(p.path)) if p.file == display and p.line is None else p for p in problems]
