"""What the stages of resolution share: the spec and its targets, the images so far, the problems, the budget."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from buildflow.errors import FieldPath
from buildflow.model import Edge, EdgeKind, TestPolicy
from buildflow.pipeline.inference import TagIndex
from buildflow.pipeline.resolve.budget import Budget
from buildflow.pipeline.resolve.problems import Problems
from buildflow.pipeline.spec import PipelineSpec, TargetSpec
from buildflow.pipeline.templates import Ambiguous

Scope = dict[str, "str | Ambiguous"]
EMPTY: Any = ()  # placeholder until rendering fills an image's settings
_MERGED_MAPPINGS = ("args", "labels", "secrets", "annotations")


class Parent(NamedTuple):
    """A declared parent of a target: `from:` (with its `when:`) or `depends_on:`."""

    name: str
    kind: EdgeKind
    when: Mapping[str, Any]


@dataclass(slots=True)
class Source:
    """A context directory and its Dockerfile: checked once, hashed once, shared by every image using them."""

    context: Path
    dockerfile: Path
    digests: tuple[str, str] | None = None  # (Dockerfile, context), computed when first needed


@dataclass(slots=True)
class Image:
    """A target or matrix combination while it is being resolved (settings filled in by rendering)."""

    id: str
    name: str
    values: dict[str, str]
    scope: Scope
    edges: list[Edge]
    args: dict[str, str] = EMPTY
    labels: dict[str, str] = EMPTY
    tags: list[str] = EMPTY
    platforms: list[str] = EMPTY
    source: Source | None = None
    stage: str = ""
    bases: list[str] = EMPTY  # external images the Dockerfile names
    tests: TestPolicy | None = None  # its own tests when they vary by image (templated, or with `when:`)


@dataclass(slots=True)
class State:
    """The spec being resolved and what the stages found so far."""

    spec: PipelineSpec
    file: Path
    display: str  # the pipeline file as the user named it
    root: Path
    registry: str
    raw: dict[str, TargetSpec]  # targets as written
    specs: dict[str, TargetSpec]  # targets over the defaults, those without schema problems
    skip: set[str]  # targets not expanded (schema problems, unknown parents)
    problems: Problems
    budget: Budget
    warnings: Problems  # what does not stop resolution but is worth saying once (FROM lines not known offline)
    parents: dict[str, list[Parent]] = field(default_factory=dict)
    images: dict[str, list[Image]] = field(default_factory=dict)  # by target name
    by_id: dict[str, Image] = field(default_factory=dict)
    tag_index: TagIndex = field(default_factory=TagIndex)

    def setting_path(self, name: str, key: str) -> FieldPath:
        """Where a target's setting is written: on the target, or under defaults."""
        written_on_target = key in self.raw[name] or key not in self.spec.get("defaults", {})
        return ("targets", name, key) if written_on_target else ("defaults", key)


def start(spec: PipelineSpec, *, file: Path, display: str, registry: str | None, skip: Collection[str]) -> State:
    """The state before any stage: targets over the defaults, the registry from --registry or the file."""
    problems = Problems(display)
    raw = spec["targets"]
    return State(
        spec=spec,
        file=file,
        display=display,
        root=file.parent.resolve(),
        registry=(registry if registry is not None else spec.get("registry", "")).rstrip("/"),
        raw=raw,
        specs={name: with_defaults(spec, target) for name, target in raw.items() if name not in skip},
        skip=set(skip),
        problems=problems,
        budget=Budget(problems),
        warnings=Problems(display),
    )


def with_defaults(spec: PipelineSpec, raw: TargetSpec) -> TargetSpec:
    """A target's settings over the pipeline defaults; mappings merge key by key."""
    defaults = spec.get("defaults", {})
    merged: dict[str, Any] = {**defaults, **raw}
    for key in _MERGED_MAPPINGS:
        if key in defaults and key in raw:
            merged[key] = {**defaults[key], **raw[key]}  # type: ignore[literal-required]
    return merged  # type: ignore[return-value]
