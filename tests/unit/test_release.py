"""The release, all or nothing: tags read first, existing ones moved before new ones, and put back on a failure."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from buildflow.engine.base import EngineError
from buildflow.plan.planner import make_plan
from buildflow.run.dispatch import Scheduler
from buildflow.run.outcome import RunOptions, RunResult, TagState
from tests.conftest import dockerfiles, load
from tests.fakes import FAST, FakeEngine
from tests.unit.test_scheduler import TREE

OLD = "sha256:" + "0" * 64


class Tags(FakeEngine):
    """A registry whose tags move for real; copies to the tags in `refuse` fail, deletes work if `deletes`."""

    def __init__(self, refuse: Sequence[str] = (), *, deletes: bool = False, unreadable: str = "") -> None:
        super().__init__()
        self.refuse, self.deletes, self.unreadable = set(refuse), deletes, unreadable
        self.moves: list[tuple[str, str]] = []

    def manifest_digest(self, reference: str) -> str | None:
        if reference == self.unreadable:
            raise EngineError("GET: 503 from localhost:5000", transient=True)
        return super().manifest_digest(reference)

    def tag(self, source: str, references: Sequence[str]) -> None:
        for reference in references:
            if reference in self.refuse:
                raise EngineError(f"PUT {reference}: 503 from localhost:5000", transient=True, status=503)
            self.registry[reference] = source.rpartition("@")[2]
            self.moves.append((reference, source.rpartition("@")[2]))

    def delete_tag(self, reference: str) -> bool:
        if self.deletes:
            self.registry.pop(reference, None)
        return self.deletes


def release_run(tmp_path: Path, engine: Tags) -> RunResult:
    """Build the tree (every target new) and release it."""
    pipeline = load(tmp_path, TREE, dockerfiles("."))
    return Scheduler(make_plan(pipeline), engine, RunOptions(retry=FAST)).run()


def states(result: RunResult) -> dict[str, TagState]:
    """Each release tag's end state, by tag without the registry."""
    return {move.tag.removeprefix("localhost:5000/t/"): move.state for move in result.tags}


def test_a_tag_that_cannot_move_puts_every_moved_tag_back_to_its_old_digest(tmp_path: Path) -> None:
    engine = Tags(refuse=["localhost:5000/t/cuda:1"])
    old = {f"localhost:5000/t/{name}:1": OLD for name in ("base", "cuda", "cpu", "app", "other")}
    engine.registry.update(old)
    result = release_run(tmp_path, engine)
    assert not result.released and not result.ok
    assert {tag: engine.registry[tag] for tag in old} == old  # every existing tag as before
    assert states(result)["cuda:1"] == TagState.FAILED
    assert states(result)["base:1"] == TagState.RESTORED
    assert states(result)["app:latest"] == TagState.NOT_MOVED  # a new tag: moved only after the existing ones
    assert "localhost:5000/t/app:latest" not in engine.registry
    assert result.release_error.startswith("cuda: localhost:5000/t/cuda:1 could not be moved: PUT ")
    assert result.release_error.endswith("; every tag is as it was before the release (4 put back)")
    assert all(outcome.released == () for outcome in result.outcomes.values())


def test_new_tags_are_deleted_where_the_registry_can_and_reported_where_it_cannot(tmp_path: Path) -> None:
    refusing = Tags(refuse=["localhost:5000/t/app:latest"])
    result = release_run(tmp_path, refusing)
    assert states(result)["app:latest"] == TagState.FAILED
    assert states(result)["other:1"] == TagState.LEFT
    assert "the registry refuses to delete tags" in next(m.error for m in result.tags if m.tag.endswith("other:1"))
    assert "tags still point at the new images and could not be put back: " in result.release_error
    deleting = Tags(refuse=["localhost:5000/t/app:latest"], deletes=True)
    result = release_run(tmp_path / "again", deleting)
    assert states(result)["other:1"] == TagState.REMOVED
    assert "localhost:5000/t/other:1" not in deleting.registry
    assert result.release_error.startswith("app: localhost:5000/t/app:latest could not be moved: PUT ")
    assert result.release_error.endswith("; every tag is as it was before the release (5 put back)")


def test_a_tag_that_cannot_be_read_first_stops_the_release_before_anything_moves(tmp_path: Path) -> None:
    engine = Tags(unreadable="localhost:5000/t/cpu:1")
    result = release_run(tmp_path, engine)
    assert not result.released and engine.moves == []
    assert result.release_error.startswith("cpu: localhost:5000/t/cpu:1 could not be read before moving it: ")
    assert result.release_error.endswith("; no tag was moved")


def test_tags_already_at_the_image_are_left_alone_and_the_release_succeeds(tmp_path: Path) -> None:
    engine = Tags()
    first = release_run(tmp_path, engine)
    moved = len(engine.moves)
    second = release_run(tmp_path, engine)
    assert first.released and second.released and len(engine.moves) == moved
    assert set(states(second).values()) == {TagState.UNCHANGED}
    assert second.outcomes["app"].released == ("localhost:5000/t/app:1", "localhost:5000/t/app:latest")
