"""The release: every human tag moved once every selected target was built or reused, all or nothing.

A registry has no transaction over several tags, so all or nothing is done by hand:

1. Every release tag's current digest is read before anything moves. If one cannot be read, nothing moves.
2. Tags that already exist move first, then the tags that are new, each with the transient retry policy.
3. If any tag cannot be moved, every tag that moved is put back to its old digest. A new tag is deleted where
   the registry allows it. Both are retried too.

Each tag ends in a state the report names. Readers of the tags see each tag move on its own, in the meantime.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from buildflow.engine.base import Engine, EngineError
from buildflow.references import untagged
from buildflow.run.outcome import Events, Outcome, RunResult, TagMove, TagState

REGISTRY_CALLS = 16  # tag copies at once
Item = TypeVar("Item")
Result = TypeVar("Result")


def release(
    outcomes: dict[str, Outcome], publisher: Engine, restorer: Engine, events: Events, result: RunResult
) -> None:
    """Move every release tag of the selected targets, all or nothing; the result says what happened to each."""
    local = [o for o in outcomes.values() if not o.pushed and _tags(o)]
    pushed = [o for o in outcomes.values() if o.pushed and _tags(o)]
    moves = [TagMove(o.target.id, tag, o.digest, o.built_as) for o in pushed for tag in _tags(o)]
    result.tags = moves
    error = _read_before(moves, publisher) or _move_all(moves, publisher, restorer) or _tag_locally(local, publisher)
    if not error:
        for outcome in [*pushed, *local]:
            outcome.released = _tags(outcome)
            events("released", outcome)
    result.release_error, result.released = error, not error


def _tags(outcome: Outcome) -> tuple[str, ...]:
    """The release tags of a target: its tags other than the content tag it was pushed under."""
    return tuple(tag for tag in outcome.target.tags if tag != outcome.reference)


def _read_before(moves: list[TagMove], registry: Engine) -> str:
    """Read every tag's current digest; the error that stops the release before anything moved, if any."""

    def read(move: TagMove) -> str:
        try:
            move.before = registry.manifest_digest(move.tag)
        except EngineError as error:
            move.state, move.error = TagState.FAILED, str(error)
            return f"{move.target}: {move.tag} could not be read before moving it: {error}"
        if move.before == move.digest:
            move.state = TagState.UNCHANGED
        return ""

    errors = [error for error in _each(read, moves) if error]
    return f"{errors[0]}; no tag was moved" if errors else ""


def _move_all(moves: list[TagMove], publisher: Engine, restorer: Engine) -> str:
    """Move tags that exist, then new ones; on a failure put back what moved. The error, if any."""
    to_move = [move for move in moves if move.state == TagState.NOT_MOVED]
    for group in ([m for m in to_move if not m.new], [m for m in to_move if m.new]):
        failed = [move for batch in _each(lambda batch: _move(batch, publisher), _batches(group)) for move in batch]
        if failed:
            _put_back([m for m in moves if m.state == TagState.MOVED], restorer)
            return _failure_message(next((m for m in failed if m.state == TagState.FAILED), failed[0]), moves)
    return ""


def _batches(moves: list[TagMove]) -> list[list[TagMove]]:
    """The moves of each image together: one copy call carries all the tags of one image."""
    by_source: dict[str, list[TagMove]] = {}
    for move in moves:
        by_source.setdefault(move.source, []).append(move)
    return list(by_source.values())


def _move(batch: list[TagMove], registry: Engine) -> list[TagMove]:
    """Point the tags of one image at it; the moves that failed (the others are MOVED)."""
    try:
        registry.tag(batch[0].source, [move.tag for move in batch])
    except EngineError as error:
        for move in batch:
            move.state, move.error = _where_it_is(move, error, registry), str(error)
        return batch
    for move in batch:
        move.state = TagState.MOVED
    return []


def _where_it_is(move: TagMove, error: EngineError, registry: Engine) -> TagState:
    """After a failed copy call, which may have moved some of its tags: MOVED (to be put back) unless this tag
    still has its old digest and the registry answered the call with a refusal. A request that was cut short or
    lost may still land later, so a tag that existed is put back anyway (putting back an unmoved tag changes
    nothing)."""
    try:
        unchanged = registry.manifest_digest(move.tag) == move.before
    except EngineError:
        return TagState.MOVED
    if unchanged and (error.status is not None or move.before is None):
        return TagState.FAILED
    return TagState.MOVED


def _put_back(moved: list[TagMove], registry: Engine) -> None:
    """Return every moved tag to its old digest, or delete it when it did not exist (where the registry can)."""

    def undo(move: TagMove) -> None:
        error = move.error
        try:
            if move.before is not None:
                registry.tag(_pinned(move.tag, move.before), [move.tag])
                move.state = TagState.RESTORED
            elif registry.delete_tag(move.tag):
                move.state = TagState.REMOVED
            else:
                move.state, move.error = TagState.LEFT, _joined(error, "the registry refuses to delete tags")
        except EngineError as failure:
            move.state, move.error = TagState.LEFT, _joined(error, f"could not be put back: {failure}")

    _each(undo, moved)


def _joined(*parts: str) -> str:
    """Reasons in one line."""
    return "; ".join(part for part in parts if part)


def _failure_message(first: TagMove, moves: list[TagMove]) -> str:
    """What went wrong, and what is true of the tags now."""
    message = f"{first.target}: {first.tag} could not be moved: {first.error}"
    left = [move.tag for move in moves if move.state == TagState.LEFT]
    put_back = sum(1 for move in moves if move.state in (TagState.RESTORED, TagState.REMOVED))
    if not left:
        return f"{message}; every tag is as it was before the release" + (f" ({put_back} put back)" if put_back else "")
    return f"{message}; {len(left)} tags still point at the new images and could not be put back: {', '.join(left)}"


def _tag_locally(outcomes: list[Outcome], registry: Engine) -> str:
    """Tag images kept in the local image store (no registry: nothing to undo); the first error, if any."""
    for outcome in outcomes:
        try:
            registry.tag_local(outcome.reference, list(_tags(outcome)))
        except EngineError as error:
            return f"{outcome.target.id}: {error}"
    return ""


def _pinned(tag: str, digest: str) -> str:
    """The image a tag's repository holds under a digest."""
    return f"{untagged(tag)}@{digest}"


def _each(function: Callable[[Item], Result], items: Sequence[Item]) -> list[Result]:
    """Call `function` on every item, several registry calls at once."""
    if len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=REGISTRY_CALLS, thread_name_prefix="release") as pool:
        return list(pool.map(function, items))
