"""`buildflow init` as a use case: survey a directory, draft the pipeline, check it with buildflow's own loader
(which infers the edges), leave out what it refuses, and describe the result."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from buildflow import __version__
from buildflow.adopt.tree import DOCKERFILE, Found, Survey, survey
from buildflow.adopt.writing import Draft, DraftTarget, check, render
from buildflow.errors import PipelineError, Problem, UsageError
from buildflow.model import EdgeKind, Pipeline

MAX_ROUNDS = 5  # each round leaves out the targets the loader refused; a sixth would find nothing new


@dataclass
class Proposal:
    """The pipeline init writes, and what to tell the user about it."""

    text: str
    pipeline: Pipeline
    survey: Survey
    left_out: list[str] = field(default_factory=list)  # targets the loader refused, with why


def propose(root: Path, shown: str, output: Path, registry: str | None) -> Proposal:
    """The pipeline for the Dockerfiles under `root`, checked as `output`; UsageError when there are none."""
    found = survey(root, shown, registry)
    if not found.found:
        why = f" ({len(found.skipped)} do not parse)" if found.skipped else ""
        raise UsageError(
            f"{shown}: no Dockerfile here{why}; init looks for Dockerfile, *.Dockerfile and Dockerfile.* in "
            "every directory below it"
        )
    left_out: list[str] = []
    for _ in range(MAX_ROUNDS):
        draft = _draft(found, root, output, registry, shown)
        try:
            pipeline = check(draft, output)
        except PipelineError as error:
            left_out += _leave_out(found, error, shown)
            if not found.found:
                raise
            continue
        draft.header += _left_out_lines(left_out)
        _describe_edges(draft, pipeline, found)
        return Proposal(render(draft), pipeline, found, left_out)
    raise PipelineError([Problem(line) for line in left_out])


def _draft(found: Survey, root: Path, output: Path, registry: str | None, shown: str) -> Draft:
    """The pipeline as found: a target per Dockerfile, context its directory."""
    count, place = len(found.found), "this directory" if shown == "." else shown
    draft = Draft(
        header=[
            f"Made by `buildflow init` ({__version__}) from the {count} Dockerfile{'s' * (count != 1)} under {place}.",
            "One target per Dockerfile; its context is the Dockerfile's directory. buildflow infers the edges from",
            "FROM, COPY --from and RUN --mount=from lines that name another target, by its name or by one of its",
            "tags (a tag below beyond NAME:latest is there because a Dockerfile names the image so).",
            "See it: buildflow plan --offline; buildflow graph. The format: buildflow docs pipeline-format.",
        ],
        registry=registry,
    )
    draft.header += [f"Skipped: {line.removesuffix('; skipped')}" for line in found.skipped]
    draft.header += [f"Needs a registry: {line}" for line in found.needs_registry]
    for one in found.found:
        draft.targets[one.name] = _target(one, root, output)
    return draft


def _target(one: Found, root: Path, output: Path) -> DraftTarget:
    """One Dockerfile as a target."""
    context = Path(os.path.relpath(root / str(one.path.parent), output.parent)).as_posix()
    fields: dict[str, object] = {"context": _literal(context)}
    if one.path.name != DOCKERFILE:
        fields["dockerfile"] = _literal(one.path.name)
    fields["tags"] = [_literal(tag) for tag in one.tags]
    hints = [f"from: PARENT   # {line}: the ARG has no default: name the parent target" for line in one.needs_from]
    return DraftTarget(fields, [str(one.path)], hints)


def _literal(text: str) -> str:
    """A value as a template that renders to itself: braces doubled."""
    return text.replace("{", "{{").replace("}", "}}")


def _leave_out(found: Survey, error: PipelineError, shown: str) -> list[str]:
    """Take out of the survey the targets the problems are about; raise the error when one is about none."""
    by_file = {os.path.normpath(os.path.join(shown, str(one.path))): one for one in found.found}
    names = {one.name: one for one in found.found}
    refused: dict[str, list[str]] = {}
    for problem in error.problems:
        one = by_file.get(os.path.normpath(problem.file)) if problem.file else None
        if one is None and len(problem.path) > 1 and problem.path[0] == "targets":
            one = names.get(str(problem.path[1]))
        if one is None:
            raise error
        refused.setdefault(one.name, []).append(problem.render())
    found.found = [one for one in found.found if one.name not in refused]
    return [f"{name} ({found_path(names[name])}): {'; '.join(lines)}" for name, lines in refused.items()]


def found_path(one: Found) -> str:
    """The Dockerfile of a proposed target, relative to the directory scanned."""
    return str(one.path)


def _left_out_lines(left_out: list[str]) -> list[str]:
    """Header lines for the targets the loader refused."""
    return [f"Left out: {line}" for line in left_out]


def _describe_edges(draft: Draft, pipeline: Pipeline, found: Survey) -> None:
    """A comment above each target naming the parents buildflow inferred for it, and the line that implies each."""
    for one in found.found:
        target = pipeline.targets.get(one.name)
        if target is None:
            continue
        parents = [
            f"{edge.parent} ({edge.instruction} {edge.reference}, line {edge.line})"
            for edge in target.parents
            if edge.kind == EdgeKind.INFERRED
        ]
        if parents:
            draft.targets[one.name].comments = [f"{one.path}: parents {', '.join(parents)}"]
