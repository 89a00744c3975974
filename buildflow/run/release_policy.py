"""The release policy: which targets' release tags move at the end of a run, and why the others are held back.

`all` (the default): every selected target was built or reused, else no tag moves. `per-target`: a target's tags
move when it and every ancestor in the run were built or reused (tests passed), even if an unrelated branch failed.
Either way the tags that move, move together through run/release.py: all or nothing, put back on a failure or a
signal; a signal before the release moves nothing.
"""

from __future__ import annotations

from buildflow.engine.base import Engine
from buildflow.run.outcome import Events, Outcome, RunResult, Status
from buildflow.run.release import release

POLICIES = ("all", "per-target")


def release_by_policy(
    outcomes: dict[str, Outcome],
    policy: str,
    engines: tuple[Engine, Engine],
    events: Events,
    result: RunResult,
    *,
    interrupted: str = "",
) -> None:
    """Move the release tags the policy allows (none after a signal); the result says which were held back and why."""
    result.policy = policy
    chosen, held = releasable(outcomes, policy)
    if interrupted:
        held |= dict.fromkeys(chosen, f"interrupted ({interrupted}) before the release")
    result.held = held
    if chosen and not interrupted:
        release(chosen, *engines, events, result)


def releasable(outcomes: dict[str, Outcome], policy: str) -> tuple[dict[str, Outcome], dict[str, str]]:
    """The targets whose tags may move, and why each other target with release tags is held back."""
    failed = [outcome for outcome in outcomes.values() if not outcome.succeeded]
    if not failed:
        return dict(outcomes), {}
    held = {o.target.id: _own_reason(o) for o in failed if o.target.tags}
    if policy != "per-target":
        first = next((o for o in failed if o.status == Status.FAILED), failed[0]).target.id
        reason = f"release: all, and {len(failed)} of {len(outcomes)} targets were not built (first: {first})"
        held |= {o.target.id: reason for o in outcomes.values() if o.succeeded and o.target.tags}
        return {}, held
    chosen: dict[str, Outcome] = {}
    for target_id, outcome in outcomes.items():
        if not outcome.succeeded:
            continue
        blocker = _failed_ancestor(target_id, outcomes)
        if blocker and outcome.target.tags:
            held[target_id] = f"its ancestor {blocker} was not built ({outcomes[blocker].status.lower()})"
        elif not blocker:
            chosen[target_id] = outcome
    return chosen, held


def _own_reason(outcome: Outcome) -> str:
    """Why a target that was not built is held back: its status and its problem."""
    return f"{outcome.status.lower()}: {outcome.error}" if outcome.error else outcome.status.lower()


def _failed_ancestor(target_id: str, outcomes: dict[str, Outcome]) -> str:
    """The first ancestor in the run that was not built or reused ('' when every one was)."""
    seen: set[str] = set()
    stack = [edge.parent for edge in outcomes[target_id].target.parents]
    while stack:
        parent = stack.pop()
        if parent in seen or parent not in outcomes:
            continue  # an image not in the run (--only): its parents come from the registry
        seen.add(parent)
        if not outcomes[parent].succeeded:
            return parent
        stack.extend(edge.parent for edge in outcomes[parent].target.parents)
    return ""
