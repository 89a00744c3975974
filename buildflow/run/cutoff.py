"""Early cutoff: a target whose fingerprint changed only through its parents' fingerprints is reused when every
parent it is built on still has the digest its latest build was made on (a parent rebuilt to the same image).

The content tag stays keyed by the fingerprint. When the cutoff holds, the content tag of the new fingerprint is
pointed at the digest of the latest build and a record under the new fingerprint says so (`cutoff`), so that
`status` and every later run read it as an ordinary up-to-date build: the image is what a build of the new
fingerprint makes, since a build depends on its own inputs and its parents' images, not on their fingerprints.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from buildflow.engine.base import Registry
from buildflow.model import Pipeline, Target
from buildflow.run.naming import image_parents, repository
from buildflow.run.records import BuildRecord, Inputs, inputs

_NOT_OWN = ("fingerprint", "parents")


def own_inputs(found: Inputs) -> Inputs:
    """A target's own inputs: everything its fingerprint covers but its parents' fingerprints."""
    return {key: value for key, value in found.items() if key not in _NOT_OWN}


def candidate(
    target: Target, pipeline: Pipeline, previous: BuildRecord, current: Inputs, engine: Registry
) -> BuildRecord | None:
    """The latest build's record, when the target's own inputs (`current`) and parents are the same as then and its
    image is still in the registry: reusable if every parent keeps the digest it names."""
    if own_inputs(previous.inputs) != own_inputs(current):
        return None
    if set(previous.inputs.get("parents", {})) != set(current["parents"]):
        return None
    if not set(image_parents(target)) <= set(previous.parent_digests):
        return None
    if engine.manifest_digest(f"{repository(target, pipeline.registry)}@{previous.digest}") != previous.digest:
        return None
    return previous


def changed_parents(target: Target, pipeline: Pipeline, previous: BuildRecord) -> list[str]:
    """The parents whose fingerprint changed since the latest build (why this target's fingerprint changed)."""
    before = previous.inputs.get("parents", {})
    return [
        edge.parent for edge in target.parents if before.get(edge.parent) != pipeline.targets[edge.parent].fingerprint
    ]


def moved(previous: BuildRecord, digests: Mapping[str, str]) -> list[str]:
    """The parents whose digest differs from the one the latest build was made on."""
    return [parent for parent, digest in digests.items() if previous.parent_digests.get(parent) != digest]


def cut_record(
    target: Target, pipeline: Pipeline, previous: BuildRecord, digests: Mapping[str, str], why: str
) -> BuildRecord:
    """The record of the new fingerprint for the reused image: the latest build's (when it was built, its
    SOURCE_DATE_EPOCH, its tests and size), with today's inputs and a note of the cutoff."""
    note = {"from": previous.inputs.get("fingerprint", ""), "why": why}
    return dataclasses.replace(
        previous,
        inputs=inputs(target, pipeline),
        parent_digests=dict(digests),
        extra={**previous.extra, "cutoff": note},
    )


def predicted(previous: BuildRecord, parents: Sequence[tuple[str, str | None]], why: str) -> tuple[str | None, str]:
    """What `status` says of a cutoff candidate, given each parent's predicted digest (None: to be built):
    reused when all keep their digest, built when one has a new one, else built unless the parents keep it."""
    for parent, digest in parents:
        if digest is not None and previous.parent_digests.get(parent) != digest:
            return None, f"{why}; parent {parent} has a new digest"
    pending = [parent for parent, digest in parents if digest is None]
    if pending:
        return None, f"{why}; reused if parent {pending[0]} keeps its digest"
    return previous.digest, "parents rebuilt elsewhere, same digest"
