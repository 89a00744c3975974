"""Is a target up to date? The registry's image and build record of each target, and why a target is stale."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

from buildflow.engine.base import EngineError, Registry
from buildflow.model import Pipeline, Target
from buildflow.plan.planner import Plan
from buildflow.run.cutoff import candidate, changed_parents, predicted
from buildflow.run.naming import content_reference, image_parents, last_record_reference, record_reference
from buildflow.run.records import BuildRecord, Inputs, decode, inputs

_SHOWN_FILES = 3
REGISTRY_CALLS = 16  # registry lookups (and tag copies) at once


class Assessment(NamedTuple):
    """A target's state in the registry: the digest to reuse (None: build it), why, and its record if any."""

    digest: str | None
    why: str
    record: BuildRecord | None = None
    error: EngineError | None = None  # the registry could not be asked
    cutoff: BuildRecord | None = None  # the latest build, reusable if its parents keep their digests (early cutoff)
    previous: BuildRecord | None = None  # the latest build's record, when this fingerprint has none


def assess(target: Target, pipeline: Pipeline, engine: Registry, *, max_age: float | None, now: float) -> Assessment:
    """Whether the registry holds this target's image, recorded and young enough to reuse, and why not.

    A lookup that fails (after its retries) means building: a rebuild from cache costs less than a guess.
    """
    try:
        return _assess(target, pipeline, engine, max_age=max_age, now=now)
    except EngineError as error:
        return Assessment(None, f"the registry could not be asked ({error})", error=error)


def _assess(target: Target, pipeline: Pipeline, engine: Registry, *, max_age: float | None, now: float) -> Assessment:
    """assess() without the error handling. The latest build's record is read first: none means never built (one
    request), and when it has today's fingerprint it is the record of this fingerprint's build too."""
    latest = decode(engine.get_record(last_record_reference(target, pipeline.registry)))
    if latest is None:
        return Assessment(None, "not built before (no build record in the registry)")
    record = latest if latest.inputs.get("fingerprint") == target.fingerprint else None
    if record is None:
        record = decode(engine.get_record(record_reference(target, pipeline.registry)))
    if record is None:
        previous = latest
        if not previous.inputs:
            return Assessment(None, "not built before (no build record in the registry)", previous=previous)
        current = inputs(target, pipeline)  # hashes the context: once for both
        why = "; ".join(changes(previous.inputs, current)) or "buildflow's fingerprint changed"
        return Assessment(None, why, cutoff=candidate(target, pipeline, previous, current, engine), previous=previous)
    digest = engine.manifest_digest(content_reference(target, pipeline.registry))
    if digest != record.digest:
        return Assessment(None, "its image is no longer in the registry", record)
    age = now - record.built_at
    if max_age is not None and age > max_age:
        return Assessment(None, f"older than max-age {_duration(max_age)} (built {_duration(age)} ago)", record)
    note = record.extra.get("cutoff")
    cut = f"{note['why']}; " if isinstance(note, dict) and isinstance(note.get("why"), str) else ""
    return Assessment(digest, f"up to date ({cut}built {_duration(age)} ago)", record)


def changes(before: Inputs, after: Inputs) -> list[str]:
    """What differs between two builds' inputs, in words, most telling first."""
    reasons = []
    if before.get("dockerfile") != after["dockerfile"]:
        reasons.append(f"Dockerfile is now {after['dockerfile']} (was {before.get('dockerfile')})")
    elif before.get("dockerfile_digest") != after["dockerfile_digest"]:
        reasons.append("Dockerfile changed")
    reasons += _file_changes(
        before.get("files", {}), after["files"], _in_context(after["dockerfile"], after["context"])
    )
    reasons += _mapping_changes("build arg", before.get("args", {}), after["args"])
    reasons += _base_changes(before.get("bases", {}), after["bases"])
    for key, words in (("stage", "stage"), ("platforms", "platforms"), ("secrets", "secret ids")):
        if before.get(key) != after[key]:
            reasons.append(f"{words} changed")
    reasons += _mapping_changes("label", before.get("labels", {}), after["labels"])
    if before.get("attest") != after.get("attest"):
        reasons.append("attestations changed")
    reasons += _mapping_changes("annotation", before.get("annotations", {}), after.get("annotations", {}))
    for parent in after["parents"]:
        if before.get("parents", {}).get(parent) != after["parents"][parent]:
            reasons.append(f"parent {parent} changed")
    return reasons


def _in_context(dockerfile: str, context: str) -> str:
    """The Dockerfile's path inside the context ('' when it lies elsewhere), not to report it twice."""
    prefix = "" if context == "." else context.rstrip("/") + "/"
    return dockerfile.removeprefix(prefix) if dockerfile.startswith(prefix) else ""


def _file_changes(before: Mapping[str, str], after: Mapping[str, str], dockerfile: str) -> list[str]:
    """Context files (the Dockerfile aside) changed, added or removed: the first few, then how many more."""
    before, after = {**before, dockerfile: ""}, {**after, dockerfile: ""}
    found = [f"context file {path} changed" for path in after if path in before and before[path] != after[path]]
    found += [f"context file {path} added" for path in after if path not in before]
    found += [f"context file {path} removed" for path in before if path not in after]
    if len(found) > _SHOWN_FILES:
        return [*found[:_SHOWN_FILES], f"{len(found) - _SHOWN_FILES} more context files changed"]
    return found


def _mapping_changes(words: str, before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """Names whose values changed, appeared or disappeared (values are not shown: they may be private)."""
    found = [f"{words} {name} changed" for name in after if name in before and before[name] != after[name]]
    found += [f"{words} {name} added" for name in after if name not in before]
    return found + [f"{words} {name} removed" for name in before if name not in after]


def _base_changes(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """External bases that moved, with their old and new digests."""
    found = []
    for name, digest in after.items():
        if name not in before:
            found.append(f"base {name} added")
        elif before[name] != digest:
            found.append(f"base {name} moved {_short(before[name])} → {_short(digest)}")
    return found + [f"base {name} no longer used" for name in before if name not in after]


def _short(digest: str) -> str:
    """sha256:0123456789ab…, or 'unresolved'."""
    return f"{digest[:19]}…" if digest else "unresolved"


def _duration(seconds: float) -> str:
    """A duration in its largest whole unit: 45s, 12m, 5h, 9d."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(max(0, seconds))}s"


def plan_states(
    plan: Plan, engine: Registry, *, max_age: float | None, force: frozenset[str] | None = frozenset()
) -> dict[str, Assessment]:
    """What a build of the plan would do with each target, looked up in parallel: reuse it or build it, and why."""
    pipeline, now = plan.pipeline, time.time()

    def own(target: Target) -> Assessment:
        if not (pipeline.registry and target.push):
            return Assessment(None, "not pushed to a registry, so nothing records it")
        return assess(target, pipeline, engine, max_age=max_age, now=now)

    with ThreadPoolExecutor(max_workers=REGISTRY_CALLS, thread_name_prefix="status") as pool:
        found = dict(zip([s.target.id for s in plan.steps], pool.map(own, [s.target for s in plan.steps]), strict=True))
    states: dict[str, Assessment] = {}
    for step in plan.steps:
        state = found[step.target.id]
        if force is None or step.target.id in force:
            state = Assessment(None, "forced (--force)", state.record)
        parents = [(parent, states[parent]) for parent in image_parents(step.target) if parent in states]
        if state.digest is not None:
            state = _with_parents(state, parents)
        elif state.cutoff is not None and force is not None and step.target.id not in force:
            state = _cut_off(step.target, pipeline, state, parents)
        states[step.target.id] = state
    return states


def _with_parents(state: Assessment, parents: Sequence[tuple[str, Assessment]]) -> Assessment:
    """An up-to-date target stays so only if no parent will be rebuilt and none has a new digest."""
    for parent, parent_state in parents:
        if parent_state.digest is None:
            return Assessment(None, f"parent {parent} will be rebuilt", state.record)
        if moved_parents(state.record, {parent: parent_state.digest}):
            return Assessment(None, f"parent {parent} has a new digest", state.record)
    return state


def _cut_off(
    target: Target, pipeline: Pipeline, state: Assessment, parents: Sequence[tuple[str, Assessment]]
) -> Assessment:
    """A cutoff candidate: reused when its parents keep the digests it was built on, which `status` can know only
    of parents that are not built by this run."""
    assert state.cutoff is not None
    changed = changed_parents(target, pipeline, state.cutoff)
    digest, why = predicted(state.cutoff, [(parent, found.digest) for parent, found in parents], state.why)
    if digest is not None and changed:
        why = f"parent {changed[0]} rebuilt, same digest"
    return state._replace(digest=digest, why=why)


def moved_parents(record: BuildRecord | None, digests: Mapping[str, str]) -> list[str]:
    """The parents whose digest now differs from the one the record was built on (rebuilt since, here or
    elsewhere, with the same fingerprint: a max-age or forced rebuild that changed the image)."""
    recorded = record.parent_digests if record else {}
    return [parent for parent, digest in digests.items() if recorded.get(parent) != digest]


def base_resolver(engine: Registry, warn: Callable[[str, str], None]) -> Callable[[Sequence[str]], dict[str, str]]:
    """Looks external bases up in parallel; one that cannot be found is warned about and left unresolved."""

    def digest(name: str) -> str | None:
        try:
            found = engine.manifest_digest(name)
        except EngineError as error:
            warn(name, str(error))
            return None
        if found is None:
            warn(name, "not in its registry")
        return found

    def resolve(names: Sequence[str]) -> dict[str, str]:
        with ThreadPoolExecutor(max_workers=REGISTRY_CALLS, thread_name_prefix="bases") as pool:
            return {name: found for name, found in zip(names, pool.map(digest, names), strict=True) if found}

    return resolve
