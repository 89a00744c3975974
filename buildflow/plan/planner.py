"""Plans: which targets a command works on, in which order and generation."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from buildflow.errors import UsageError, did_you_mean
from buildflow.graph import closure
from buildflow.model import Pipeline, Target


class Step(NamedTuple):
    """One target in a plan: its place in the order and its generation (depth in the DAG)."""

    order: int
    generation: int
    target: Target


@dataclass(frozen=True)
class Plan:
    """The selected targets in dependency order."""

    pipeline: Pipeline
    steps: tuple[Step, ...]


def select(pipeline: Pipeline, names: Sequence[str], downstream: Sequence[str] = ()) -> set[str]:
    """Ids selected by names (with their ancestors) and --downstream names (with their descendants)."""
    if not names and not downstream:
        return set(pipeline.targets)
    selected = closure(pipeline.graph, ids(pipeline, names), downstream=False) if names else set()
    if downstream:
        selected |= closure(pipeline.graph, ids(pipeline, downstream), downstream=True)
    return selected


def ids(pipeline: Pipeline, names: Sequence[str]) -> list[str]:
    """Target ids for names: a target name means all its matrix images; an image id means itself."""
    by_name: dict[str, list[str]] = {}
    for target in pipeline.targets.values():
        by_name.setdefault(target.name, []).append(target.id)
    ids = []
    for name in names:
        if name in pipeline.targets:
            ids.append(name)
        elif name in by_name:
            ids.extend(by_name[name])
        else:
            hint = did_you_mean(name, by_name) or f"; targets are: {', '.join(list(by_name)[:20])}"
            raise UsageError(f"unknown target '{name}'{hint}")
    return ids


def make_plan(
    pipeline: Pipeline,
    names: Sequence[str] = (),
    downstream: Sequence[str] = (),
    changed: Collection[str] | None = None,
) -> Plan:
    """The plan for a selection: dependency order, generations counted over the whole pipeline.

    With `changed`, only the selected targets that changed or are built on one that did (--since).
    """
    selected = select(pipeline, names, downstream)
    if changed is not None:
        selected &= closure(pipeline.graph, list(changed), downstream=True) if changed else set()
    return _ordered(pipeline, selected)


def only_plan(pipeline: Pipeline, names: Sequence[str]) -> Plan:
    """The plan of exactly the named images (--only), no ancestors: parents outside it come from the registry."""
    return _ordered(pipeline, set(ids(pipeline, names)))


def _ordered(pipeline: Pipeline, selected: Collection[str]) -> Plan:
    """The selected ids in dependency order, generations counted over the whole pipeline."""
    steps: list[Step] = []
    for generation, layer in enumerate(pipeline.generations):
        for target_id in layer:
            if target_id in selected:
                steps.append(Step(len(steps) + 1, generation, pipeline.targets[target_id]))
    return Plan(pipeline, tuple(steps))
