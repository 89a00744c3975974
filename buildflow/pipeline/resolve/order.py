"""The order of targets and images: declared parents, unknown parents and cycles."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from buildflow.errors import FieldPath, did_you_mean
from buildflow.graph import cycle_paths, layers
from buildflow.model import EdgeKind
from buildflow.pipeline import matrix
from buildflow.pipeline.resolve.state import Image, Parent, State
from buildflow.pipeline.spec import TargetSpec

_PARENT_KEYS = (("from", EdgeKind.FROM), ("depends_on", EdgeKind.DEPENDS_ON))


def template_order(state: State, broken_fields: Mapping[str, set[str]]) -> list[str]:
    """Targets parents first; unknown parents and cycles become problems and block their descendants."""
    for name, spec in state.specs.items():
        state.parents[name] = _declared_parents(state, name, spec)
    for name, fields in broken_fields.items():
        if name in state.raw and not fields & {"", "from", "depends_on"}:
            _check_parent_names(state, name, state.raw[name])
    parent_names = {name: [p.name for p in parents] for name, parents in state.parents.items()}
    found, unplaced = layers(parent_names)
    for cycle in cycle_paths(parent_names, unplaced) if unplaced else []:
        key = "from" if "from" in state.raw[cycle[0]] else "depends_on"
        state.problems.add(
            ("targets", cycle[0], key), f"cycle: {' -> '.join([*cycle, cycle[0]])}; remove one of these edges"
        )
    return [name for layer in found for name in layer if name in state.specs]


def image_order(state: State, images: list[Image]) -> list[list[str]]:
    """Generations of images over every edge, inferred ones included; cycles are problems."""
    parents = {image.id: [edge.parent for edge in image.edges] for image in images}
    found, unplaced = layers(parents)
    for cycle in cycle_paths(parents, unplaced) if unplaced else []:
        name = state.by_id[cycle[0]].name
        state.problems.add(
            ("targets", name),
            f"cycle through Dockerfile FROM lines: {' -> '.join([*cycle, cycle[0]])}; remove one of these edges",
        )
    return found


def axis_hint(axis: str, axes: Collection[str]) -> str:
    """' — did you mean 'x'?', else the axes there are."""
    if not axes:
        return "; it has no matrix axes"
    return did_you_mean(axis, axes) or f"; its axes are {', '.join(sorted(axes))}"


def _declared_parents(state: State, name: str, spec: TargetSpec) -> list[Parent]:
    """The `from:` and `depends_on:` parents that exist; unknown names are problems."""
    found: list[Parent] = []
    if "from" not in spec and "depends_on" not in spec:
        return found
    for key, kind in _PARENT_KEYS:
        entries = spec.get(key)
        if entries is None:
            continue
        for index, entry in enumerate(entries if isinstance(entries, list) else [entries]):
            parent, when = (entry, {}) if isinstance(entry, str) else (entry["target"], entry.get("when", {}))
            where = (key, index if isinstance(entries, list) else None)
            if _parent_is_valid(state, name, parent, when, where):
                found.append(Parent(parent, kind, when))
    return found


def _check_parent_names(state: State, name: str, spec: TargetSpec) -> None:
    """Report unknown parents of a target that has other problems (so one run shows them all)."""
    for key in ("from", "depends_on"):
        entries = spec.get(key, [])
        for index, entry in enumerate(entries if isinstance(entries, list) else [entries]):
            parent = entry if isinstance(entry, str) else entry["target"]
            _known_parent(
                state,
                name,
                parent,
                ("targets", name, key) if not isinstance(entries, list) else ("targets", name, key, index),
            )


def _parent_is_valid(
    state: State, name: str, parent: str, when: Mapping[str, Any], where: tuple[str, int | None]
) -> bool:
    """Check a parent entry: the target exists, is not the child itself, `when:` names own axes."""
    if parent in state.raw and parent != name and not when:
        return True
    key, index = where
    path: FieldPath = ("targets", name, key) if index is None else ("targets", name, key, index)
    if not _known_parent(state, name, parent, path):
        return False
    _check_when(state, name, when, path)
    return True


def _known_parent(state: State, name: str, parent: str, path: FieldPath) -> bool:
    """True when a named parent is a valid target; unknown names and self-references are problems."""
    if parent == name:
        state.problems.add(path, f"cycle: {name} -> {name}; a target cannot be its own parent")
    elif parent not in state.raw:
        state.problems.add(path, f"unknown target '{parent}'{did_you_mean(parent, state.raw)}")
    else:
        return True
    state.skip.add(name)
    return False


def _check_when(state: State, name: str, when: Mapping[str, Any], path: FieldPath) -> None:
    """`when:` may only name the target's own matrix axes."""
    axes = matrix.own_axes(state.specs[name].get("matrix", {})) if when else {}
    for axis in when:
        if axis not in axes:
            state.problems.add((*path, "when", axis), f"'{axis}' is not a matrix axis of {name}{axis_hint(axis, axes)}")
