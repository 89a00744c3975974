"""The release: every human tag applied once every selected target was built or reused."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from buildflow.engine.base import EngineError
from buildflow.engine.retrying import RetryingEngine
from buildflow.run.freshness import REGISTRY_CALLS
from buildflow.run.outcome import Events, Outcome, RunResult


def release(outcomes: dict[str, Outcome], publisher: RetryingEngine, events: Events, result: RunResult) -> None:
    """Apply every human tag, now that every selected target was built; registry side for pushed images."""
    to_release = [o for o in outcomes.values() if any(tag != o.reference for tag in o.target.tags)]
    with ThreadPoolExecutor(max_workers=REGISTRY_CALLS, thread_name_prefix="release") as pool:
        errors = [error for error in pool.map(lambda o: _release_one(o, publisher), to_release) if error]
    for outcome in to_release:
        if outcome.released:
            events("released", outcome)
    result.release_error = errors[0] if errors else ""
    result.released = not errors


def _release_one(outcome: Outcome, publisher: RetryingEngine) -> str:
    """Tag one built image; the error, if any, as text."""
    tags = [tag for tag in outcome.target.tags if tag != outcome.reference]
    try:
        if outcome.pushed:
            moving = [tag for tag in tags if publisher.manifest_digest(tag) != outcome.digest]
            publisher.tag(outcome.built_as, moving)
        else:
            publisher.tag_local(outcome.reference, tags)
    except EngineError as error:
        return f"{outcome.target.id}: {error}"
    outcome.released = tuple(tags)
    return ""
