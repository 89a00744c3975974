"""Matrix expansion: the images of a target, one per combination of its axes and consistent choice of parents."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from buildflow.model import Edge, EdgeKind
from buildflow.pipeline import matrix
from buildflow.pipeline.resolve.budget import TooManyImages
from buildflow.pipeline.resolve.order import axis_hint
from buildflow.pipeline.resolve.render import render_text
from buildflow.pipeline.resolve.state import Image, Scope, State
from buildflow.pipeline.variables import BUILTIN_NAMES, as_text, merge_scopes

_FROM, _AFTER = EdgeKind.FROM, EdgeKind.DEPENDS_ON
_Choice = tuple[list[Image], matrix.Values]  # one image per `from:` parent, and the axis values they add up to


def expand_target(state: State, name: str, base_scope: Scope) -> list[Image]:
    """All images of one target: its own matrix combined with every consistent choice of parents."""
    if name in state.skip:
        return []
    spec_matrix = state.specs[name].get("matrix", {})
    axes = matrix.own_axes(spec_matrix)
    if axes and not _axes_are_valid(state, name, axes):
        return []
    included: set[int] = set()
    all_axes = {*axes, *_inherited_axes(state, name)} if spec_matrix else set()
    try:
        chosen = _choices(state, name, axes, spec_matrix.get("exclude", ()), all_axes)
    except TooManyImages:
        _too_many_images(state, name)
        return []
    if len(chosen) > 1 and state.parents[name]:
        position = {image_id: index for index, image_id in enumerate(state.by_id)}
        chosen.sort(key=lambda choice: [position[parent.id] for parent in choice[0]])
    includes = (included, all_axes)
    images = [_new_image(state, name, *choice, base_scope=base_scope, includes=includes) for choice in chosen]
    state.budget.spend(name, images=len(images))
    if spec_matrix:
        _check_matrix(state, name, spec_matrix, images, included=included, axes=all_axes)
    return images


def _choices(
    state: State, name: str, axes: Mapping[str, list[str]], excluded: Sequence[Mapping[str, Any]], all_axes: set[str]
) -> list[_Choice]:
    """Every combination of own axes with every choice of parents, less the excluded ones."""
    chosen: list[_Choice] = []
    for combo in matrix.combinations(axes):
        chosen.extend(
            choice
            for choice in _parent_choices(state, name, combo)
            if not excluded or not any(_excludes(entry, choice[1], all_axes) for entry in excluded)
        )
        if len(chosen) > matrix.MAX_IMAGES_PER_TARGET:
            raise TooManyImages
    return chosen


def _axes_are_valid(state: State, name: str, axes: Mapping[str, list[str]]) -> bool:
    """Own axes must not repeat inherited axes or built-ins, and their product must stay under the limit."""
    inherited = _inherited_axes(state, name)
    valid = True
    for axis in axes:
        if axis in inherited or axis in BUILTIN_NAMES:
            source = f"inherited from {inherited[axis]}" if axis in inherited else "a built-in variable"
            state.problems.add(("targets", name, "matrix", axis), f"'{axis}' is already {source}; rename the axis")
            valid = False
    count = matrix.combination_count(axes)
    if count > matrix.MAX_IMAGES_PER_TARGET:
        state.problems.add(
            ("targets", name, "matrix"),
            f"{count} combinations; the limit is "
            f"{matrix.MAX_IMAGES_PER_TARGET} per target: exclude combinations or split the target",
        )
        valid = False
    return valid


def _inherited_axes(state: State, name: str) -> dict[str, str]:
    """Axes a target gets from its `from:` parents, with the parent each comes from."""
    inherited: dict[str, str] = {}
    for parent in state.parents[name]:
        if parent.kind == EdgeKind.FROM:
            for image in state.images.get(parent.name, []):
                for axis in image.values:
                    inherited.setdefault(axis, parent.name)
    return inherited


def _too_many_images(state: State, name: str) -> None:
    """Record that a target expands past the per-target limit."""
    state.problems.add(
        ("targets", name, "matrix"),
        f"expands to more than {matrix.MAX_IMAGES_PER_TARGET} images; exclude combinations or split the target",
    )


def _parent_choices(state: State, name: str, combo: matrix.Values) -> list[_Choice]:
    """Each consistent choice of one image per applicable `from:` parent, with the merged axis values."""
    # Parents with unrelated axes multiply: past MAX_PARENT_CHOICES partial choices (which later parents could
    # only narrow in contrived pipelines) the target counts as over its limit, before the memory runs out.
    choices: list[_Choice] = [([], {})]
    for parent in state.parents[name]:
        if parent.kind != EdgeKind.FROM or (parent.when and not matrix.when_matches(parent.when, combo)):
            continue
        narrowed: list[_Choice] = []
        for chosen, values in choices:
            narrowed.extend(
                ([*chosen, image], {**values, **image.values} if image.values else values)
                for image in state.images.get(parent.name, [])
                if not values or matrix.agrees(image.values, values)
            )
            if len(narrowed) > matrix.MAX_PARENT_CHOICES:
                raise TooManyImages
        choices = narrowed
    return [(chosen, {**values, **combo} if combo else values) for chosen, values in choices]


def _new_image(
    state: State,
    name: str,
    parents: list[Image],
    values: matrix.Values,
    *,
    base_scope: Scope,
    includes: tuple[set[int], set[str]],
) -> Image:
    """One image with its edges and the variables it sees."""
    depends = [
        image
        for parent in state.parents[name]
        if parent.kind is _AFTER
        for image in state.images.get(parent.name, [])
        if not values or matrix.agrees(image.values, values)
    ]
    ancestors = [*parents, *depends] if depends else parents
    state.budget.spend(name, edges=len(ancestors))
    scope = _scope(state, name, ancestors, values, base_scope=base_scope, includes=includes)
    state.budget.spend(name, variables=len(scope))
    edges = [Edge(p.id, _FROM) for p in parents] + [Edge(p.id, _AFTER) for p in depends]
    image = Image(matrix.image_id(name, values), name, values, scope, edges)
    if image.id in state.by_id:
        state.problems.add(
            ("targets", name, "matrix"),
            f"duplicate target {image.id} after matrix expansion; remove the repeated value",
        )
    state.by_id[image.id] = image
    return image


def _scope(
    state: State,
    name: str,
    ancestors: list[Image],
    values: matrix.Values,
    *,
    base_scope: Scope,
    includes: tuple[set[int], set[str]],
) -> Scope:
    """The variables an image sees: its parents', its own vars, its axis values and include entries, `target`."""
    spec = state.specs[name]
    if len(ancestors) == 1:
        scope = dict(ancestors[0].scope)
    else:
        scope = merge_scopes((p.id, p.scope) for p in ancestors) if ancestors else dict(base_scope)
    if "vars" in spec:
        _apply_own_vars(state, name, scope)
    scope.update(values)
    if "include" in spec.get("matrix", {}):
        scope.update(_include_vars(state, name, values, *includes))
    scope["target"] = name
    return scope


def _apply_own_vars(state: State, name: str, scope: Scope) -> None:
    """A target's own `vars:`, rendered against what it inherits."""
    rendered = {}
    for var, value in state.specs[name].get("vars", {}).items():
        path = ("targets", name, "vars", var)
        if var in BUILTIN_NAMES:
            state.problems.add(path, f"'{var}' is a built-in variable; choose another name")
        else:
            rendered[var] = render_text(state, as_text(value), scope, path, name)
    scope.update(rendered)


def _include_vars(state: State, name: str, values: matrix.Values, matched: set[int], axes: set[str]) -> dict[str, str]:
    """Variables that `matrix.include` entries add to this combination."""
    extra: dict[str, str] = {}
    for index, entry in enumerate(state.specs[name].get("matrix", {}).get("include", [])):
        if matrix.entry_matches(entry, values, axes):
            matched.add(index)
            extra.update({key: as_text(value) for key, value in entry.items() if key not in axes})
    return extra


def _check_matrix(
    state: State, name: str, spec_matrix: Mapping[str, Any], images: list[Image], *, included: set[int], axes: set[str]
) -> None:
    """Exclude entries must name axes, include entries must match, and something must be left to build."""
    for index, entry in enumerate(spec_matrix.get("exclude", [])):
        for axis in set(entry) - axes:
            path = ("targets", name, "matrix", "exclude", index, axis)
            state.problems.add(path, f"'{axis}' is not a matrix axis of {name}{axis_hint(axis, axes)}")
    for index, _entry in enumerate(spec_matrix.get("include", [])):
        if images and index not in included:
            state.problems.add(
                ("targets", name, "matrix", "include", index), "matches no combination; check its values"
            )
    if not images and spec_matrix.get("exclude"):
        state.problems.add(
            ("targets", name, "matrix", "exclude"), "excludes every combination; nothing is left to build"
        )


def _excludes(entry: Mapping[str, Any], values: matrix.Values, axes: set[str]) -> bool:
    """True when an exclude entry names only axes and they all have its values."""
    return all(key in axes for key in entry) and matrix.entry_matches(entry, values, axes)
