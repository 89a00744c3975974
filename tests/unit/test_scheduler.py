"""The scheduler on a fake engine: order, parallelism, failures as outcomes, releases, retries."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from buildflow.engine.base import BuildRequest, BuildResult, EngineError
from buildflow.plan.planner import make_plan
from buildflow.run.dispatch import Scheduler
from buildflow.run.naming import BuildOptions
from buildflow.run.outcome import RunOptions, Status
from tests.conftest import dockerfiles, load
from tests.fakes import FAST, FakeEngine

TREE = """\
    version: 1
    registry: localhost:5000/t
    targets:
      base: {tags: ["base:1"]}
      cuda: {from: base, tags: ["cuda:1"]}
      cpu: {from: base, tags: ["cpu:1"]}
      app: {from: cuda, tags: ["app:1", "app:latest"]}
      other: {tags: ["other:1"]}
    """


def run(tmp_path: Path, engine: FakeEngine, *names: str, downstream: Sequence[str] = (), **options: object):  # type: ignore[no-untyped-def]
    pipeline = load(tmp_path, TREE, dockerfiles("."))
    events: list[tuple[str, str]] = []
    scheduler = Scheduler(
        make_plan(pipeline, names, downstream),
        engine,
        RunOptions(retry=FAST, **options),  # type: ignore[arg-type]
        events=lambda name, outcome, **fields: events.append((name, outcome.target.id)),
    )
    return scheduler.run(), events


def test_children_start_only_after_their_parents(tmp_path: Path) -> None:
    engine = FakeEngine(seconds=0.05)
    result, _ = run(tmp_path, engine, jobs=4)
    assert result.ok and result.released
    position = {event: index for index, event in enumerate(engine.log)}
    for child, parent in [("cuda", "base"), ("cpu", "base"), ("app", "cuda")]:
        assert position[("start", child)] > position[("end", parent)]
    assert engine.most_running >= 2  # base and other, then cuda and cpu, build side by side


def test_a_child_starts_as_soon_as_its_own_parents_are_done(tmp_path: Path) -> None:
    class SlowCpu(FakeEngine):
        def build(self, request: BuildRequest) -> BuildResult:
            if request.target_id == "cpu":
                time.sleep(0.3)
            return super().build(request)

    engine = SlowCpu()
    run(tmp_path, engine, jobs=4)
    position = {event: index for index, event in enumerate(engine.log)}
    assert position[("start", "app")] < position[("end", "cpu")]  # app does not wait for its uncle


def test_jobs_bound_parallelism(tmp_path: Path) -> None:
    engine = FakeEngine(seconds=0.05)
    run(tmp_path, engine, jobs=1)
    assert engine.most_running == 1


def test_children_get_the_exact_digest_of_their_parent(tmp_path: Path) -> None:
    engine = FakeEngine()
    result, _ = run(tmp_path, engine)
    base = result.outcomes["base"]
    request = engine.requests["cuda"]
    assert request.args["BASE_IMAGE"] == f"localhost:5000/t/base@{base.digest}"
    assert request.build_contexts == {"base": f"docker-image://localhost:5000/t/base@{base.digest}"}
    assert request.tags == (
        base.target.fingerprint and f"localhost:5000/t/cuda:bf-{result.outcomes['cuda'].target.fingerprint[:24]}",
    )


def test_release_tags_move_only_after_every_target_is_built(tmp_path: Path) -> None:
    engine = FakeEngine()
    result, events = run(tmp_path, engine)
    assert [references for _, references in engine.tags] == [
        ("localhost:5000/t/base:1",),
        ("localhost:5000/t/other:1",),
        ("localhost:5000/t/cuda:1",),
        ("localhost:5000/t/cpu:1",),
        ("localhost:5000/t/app:1", "localhost:5000/t/app:latest"),
    ]
    first_release = next(index for index, (name, _) in enumerate(events) if name == "released")
    assert all(name != "built" for name, _ in events[first_release:])
    assert result.outcomes["app"].released == ("localhost:5000/t/app:1", "localhost:5000/t/app:latest")


def test_a_failure_stops_new_builds_and_blocks_descendants(tmp_path: Path) -> None:
    engine = FakeEngine(fail=["cuda"])
    result, _ = run(tmp_path, engine, jobs=1)
    statuses = {target_id: outcome.status for target_id, outcome in result.outcomes.items()}
    assert statuses == {
        "base": Status.BUILT,
        "other": Status.BUILT,
        "cuda": Status.FAILED,
        "cpu": Status.CANCELLED,
        "app": Status.BLOCKED,
    }
    assert result.outcomes["cuda"].error.endswith("did not complete successfully: exit code: 1")
    assert result.outcomes["app"].error == "cuda failed"
    assert engine.tags == [] and not result.released and not result.ok


def test_keep_going_builds_every_branch_that_does_not_depend_on_the_failure(tmp_path: Path) -> None:
    engine = FakeEngine(fail=["cuda"])
    result, _ = run(tmp_path, engine, jobs=1, keep_going=True)
    statuses = {target_id: outcome.status for target_id, outcome in result.outcomes.items()}
    assert statuses == {
        "base": Status.BUILT,
        "other": Status.BUILT,
        "cuda": Status.FAILED,
        "cpu": Status.BUILT,
        "app": Status.BLOCKED,
    }
    assert engine.tags == []


def test_transient_errors_are_retried_and_permanent_ones_are_not(tmp_path: Path) -> None:
    engine = FakeEngine(fail=["cpu"], transient={"cuda": 2})
    result, events = run(tmp_path, engine, keep_going=True)
    assert result.outcomes["cuda"].status == Status.BUILT and result.outcomes["cuda"].attempts == 3
    assert result.outcomes["cpu"].status == Status.FAILED and result.outcomes["cpu"].attempts == 1
    assert events.count(("retrying", "cuda")) == 2


def test_pushes_are_retried_on_their_own(tmp_path: Path) -> None:
    engine = FakeEngine(push_faults=2)
    result, events = run(tmp_path, engine, "base")
    base = result.outcomes["base"]
    assert base.status == Status.BUILT and base.pushed and base.attempts == 3
    assert engine.log.count(("start", "base")) == 1  # built once, pushed three times
    assert events.count(("retrying", "base")) == 2


def test_a_registry_digest_other_than_the_built_one_fails_the_target(tmp_path: Path) -> None:
    class WrongDigest(FakeEngine):
        def push(self, reference: str) -> str:
            return "sha256:" + "0" * 64

    result, _ = run(tmp_path, WrongDigest(), "base")
    assert result.outcomes["base"].status == Status.FAILED
    assert "the registry holds sha256:000" in result.outcomes["base"].error


def test_retries_give_up_after_the_configured_attempts(tmp_path: Path) -> None:
    engine = FakeEngine(transient={"other": 5})
    result, _ = run(tmp_path, engine, "other")
    assert result.outcomes["other"].status == Status.FAILED and result.outcomes["other"].attempts == 3
    assert result.outcomes["other"].error == "connection reset by peer"


def test_parents_outside_the_selection_come_from_the_registry(tmp_path: Path) -> None:
    engine = FakeEngine()
    result, _ = run(tmp_path, engine, downstream=["cuda"])
    assert list(result.outcomes) == ["cuda", "app"]
    assert engine.requests["cuda"].args["BASE_IMAGE"].endswith("@sha256:" + "e" * 64)


def test_a_parent_missing_from_the_registry_fails_its_child_clearly(tmp_path: Path) -> None:
    engine = FakeEngine()
    result, _ = run(tmp_path, engine, downstream=["app"])
    assert result.outcomes["app"].status == Status.FAILED
    assert "parent cuda is not built" in result.outcomes["app"].error
    assert "select it too: buildflow build cuda" in result.outcomes["app"].error


def test_without_push_children_build_on_local_parents(tmp_path: Path) -> None:
    engine = FakeEngine()
    result, _ = run(tmp_path, engine, build=BuildOptions(push=False))
    reference = result.outcomes["base"].reference
    assert engine.requests["cuda"].args["BASE_IMAGE"] == reference and "@" not in reference
    assert engine.requests["cuda"].push is False


def test_missing_secret_values_fail_the_target_before_building(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BUILDFLOW_TEST_TOKEN", raising=False)
    text = TREE.replace(
        'other: {tags: ["other:1"]}', 'other: {tags: ["other:1"], secrets: {t: {env: BUILDFLOW_TEST_TOKEN}}}'
    )
    pipeline = load(tmp_path, text, dockerfiles("."))
    engine = FakeEngine()
    result = Scheduler(make_plan(pipeline, ["other"]), engine, RunOptions(retry=FAST)).run()
    assert result.outcomes["other"].error == "secret t: environment variable BUILDFLOW_TEST_TOKEN is not set"
    assert "other" not in engine.requests


# ---- reuse ------------------------------------------------------------------------------------------------


def test_a_second_run_reuses_everything_and_builds_nothing(tmp_path: Path) -> None:
    engine = FakeEngine()
    first, _ = run(tmp_path, engine)
    builds = len(engine.requests)
    engine.log.clear()
    second, events = run(tmp_path, engine)
    assert second.ok and second.released
    assert engine.log == []
    assert {o.status for o in second.outcomes.values()} == {Status.REUSED}
    assert {tid: o.digest for tid, o in second.outcomes.items()} == {tid: o.digest for tid, o in first.outcomes.items()}
    assert all(o.why.startswith("up to date (built ") for o in second.outcomes.values())
    assert ("reused", "app") in events and builds == 5
    assert engine.tags[-1][1] == ("localhost:5000/t/app:1", "localhost:5000/t/app:latest")


def test_force_rebuilds_named_targets_and_children_whose_parent_digest_changed(tmp_path: Path) -> None:
    engine = FakeEngine()
    run(tmp_path, engine)

    class NewDigest(FakeEngine):
        def build(self, request: BuildRequest) -> BuildResult:
            super().build(request)
            digest = "sha256:" + "f" * 64
            self.built[request.tags[0]] = digest
            return BuildResult(digest, 0, 1, 0)

    changed = NewDigest()
    changed.records, changed.registry = engine.records, engine.registry
    result, _ = run(tmp_path, changed, force=frozenset({"cuda"}))
    statuses = {tid: o.status for tid, o in result.outcomes.items()}
    assert statuses == {
        "base": Status.REUSED,
        "cuda": Status.BUILT,
        "cpu": Status.REUSED,
        "app": Status.BUILT,
        "other": Status.REUSED,
    }
    assert result.outcomes["cuda"].why == "forced (--force)"
    assert result.outcomes["app"].why == "parent cuda has a new digest"


def test_a_forced_parent_that_comes_out_identical_leaves_its_children_reused(tmp_path: Path) -> None:
    engine = FakeEngine()
    run(tmp_path, engine)
    engine.log.clear()
    result, _ = run(tmp_path, engine, force=frozenset({"base"}))
    assert [entry for entry in engine.log if entry[0] == "start"] == [("start", "base")]
    assert result.outcomes["cuda"].status == Status.REUSED


def test_force_all_keeps_the_source_date_epoch_of_the_first_build(tmp_path: Path) -> None:
    engine = FakeEngine()
    run(tmp_path, engine, source_date_epoch="1700000000")
    result, _ = run(tmp_path, engine, force=None, source_date_epoch="1800000000")
    assert {o.status for o in result.outcomes.values()} == {Status.BUILT}
    assert engine.requests["app"].args["SOURCE_DATE_EPOCH"] == "1700000000"


def test_images_older_than_max_age_are_rebuilt(tmp_path: Path) -> None:
    engine = FakeEngine()
    run(tmp_path, engine)
    time.sleep(1.1)
    result, _ = run(tmp_path, engine, max_age=1.0)
    assert {o.status for o in result.outcomes.values()} == {Status.BUILT}
    assert result.outcomes["base"].why.startswith("older than max-age 1s (built 1s ago)")


def test_an_image_missing_from_the_registry_is_rebuilt(tmp_path: Path) -> None:
    engine = FakeEngine()
    run(tmp_path, engine)
    del engine.registry[next(reference for reference in engine.registry if "/other:" in reference)]
    result, _ = run(tmp_path, engine)
    assert result.outcomes["other"].status == Status.BUILT
    assert result.outcomes["other"].why == "its image is no longer in the registry"


def test_without_push_local_images_are_reused_unless_a_parent_was_rebuilt(tmp_path: Path) -> None:
    engine = FakeEngine()
    run(tmp_path, engine, build=BuildOptions(push=False))
    engine.log.clear()
    result, _ = run(tmp_path, engine, build=BuildOptions(push=False), force=frozenset({"cuda"}))
    assert result.outcomes["base"].status == Status.REUSED
    assert result.outcomes["app"].status == Status.BUILT
    assert result.outcomes["app"].why == "parent cuda was rebuilt"


def test_a_registry_that_cannot_be_asked_means_building(tmp_path: Path) -> None:
    class Flaky(FakeEngine):
        def get_record(self, reference: str) -> bytes | None:
            raise EngineError("connection reset by peer", transient=True)

    engine = Flaky()
    result, _ = run(tmp_path, engine)
    assert result.ok and {o.status for o in result.outcomes.values()} == {Status.BUILT}
    assert result.outcomes["app"].why == "the registry could not be asked (connection reset by peer)"
