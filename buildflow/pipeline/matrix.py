"""Matrix expansion: axes, combinations, exclude/include, and the ids of expanded targets."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence, Set
from typing import Any

from buildflow.pipeline.variables import as_text

MAX_IMAGES_PER_TARGET = 256
MAX_IMAGES_PER_PIPELINE = 20_000
MAX_EDGES_PER_PIPELINE = 200_000  # parents of every image together: a matrix target that depends on everything
MAX_PARENT_CHOICES = MAX_IMAGES_PER_TARGET**2  # partial choices of parents while a target is expanded
RESERVED_KEYS = ("exclude", "include")

Values = dict[str, str]


def own_axes(matrix: Mapping[str, Any]) -> dict[str, list[str]]:
    """The axes a target declares, values as text."""
    if not matrix:
        return {}
    return {axis: [as_text(v) for v in values] for axis, values in matrix.items() if axis not in RESERVED_KEYS}


def combination_count(axes: Mapping[str, Sequence[str]]) -> int:
    """How many combinations the axes give, without building them."""
    return math.prod(len(values) for values in axes.values())


def combinations(axes: Mapping[str, Sequence[str]]) -> list[Values]:
    """Every combination of the axes, in declaration order."""
    if not axes:
        return [{}]
    names = list(axes)
    return [dict(zip(names, chosen, strict=True)) for chosen in itertools.product(*axes.values())]


def agrees(values: Mapping[str, str], other: Mapping[str, str]) -> bool:
    """True when two sets of axis values agree on every axis they share."""
    if len(other) < len(values):
        values, other = other, values
    return all(other.get(axis, value) == value for axis, value in values.items())


def entry_matches(entry: Mapping[str, Any], values: Mapping[str, str], axes: Set[str]) -> bool:
    """True when every axis an exclude/include entry names has that value in this combination.

    Keys that are not axes of the target are variables (include) and do not take part in matching.
    """
    return all(as_text(value) == values.get(key) for key, value in entry.items() if key in axes)


def when_matches(when: Mapping[str, Any], values: Mapping[str, str]) -> bool:
    """True when a conditional parent applies: each axis has the value, or one of the listed values."""
    for axis, wanted in when.items():
        options = wanted if isinstance(wanted, list) else [wanted]
        if values.get(axis) not in {as_text(option) for option in options}:
            return False
    return True


def image_id(name: str, values: Mapping[str, str]) -> str:
    """`app` or `app[tf=1.8.0,device=gpu]`."""
    if not values:
        return name
    return f"{name}[{','.join(f'{axis}={value}' for axis, value in values.items())}]"
