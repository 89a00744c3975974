"""The pool of builders on fake engines: placement, slots, the registry as the exchange, and a builder lost."""

from __future__ import annotations

import json
import time
from pathlib import Path

from buildflow.engine.base import BuildRequest, BuildResult, EngineError
from buildflow.engine.builders import BuilderInfo
from buildflow.plan.planner import make_plan
from buildflow.run.dispatch import Scheduler
from buildflow.run.outcome import RunOptions, RunResult, Status
from buildflow.run.pool import BuilderUse
from tests.conftest import dockerfiles, load
from tests.fakes import FAST, FakeEngine

WIDE = """\
    version: 1
    registry: localhost:5000/t
    targets:
      root: {tags: ["root:1"]}
      leaf: {from: root, matrix: {n: ["1", "2", "3", "4", "5", "6"]}, tags: ["leaf:{n}"]}
    """


def engines(count: int, seconds: float = 0.0) -> list[FakeEngine]:
    """Fake engines that share one registry (and its records), as builders pushing to one registry do."""
    first = FakeEngine(seconds=seconds)
    others = [FakeEngine(seconds=seconds) for _ in range(count - 1)]
    for engine in others:
        engine.registry, engine.records = first.registry, first.records
    return [first, *others]


def run_on(tmp_path: Path, fakes: list[FakeEngine], jobs: int = 2, text: str = WIDE) -> RunResult:
    """Build the pipeline with one builder per fake engine, `jobs` slots each."""
    uses = [BuilderUse(f"b{index}", engine, BuilderInfo(f"b{index}"), jobs) for index, engine in enumerate(fakes)]
    plan = make_plan(load(tmp_path, text, dockerfiles(".")), (), ())
    return Scheduler(plan, fakes[0], RunOptions(retry=FAST), builders=uses).run()


def test_a_wide_tree_is_spread_over_every_builder_and_children_pin_the_parents_digest(tmp_path: Path) -> None:
    fakes = engines(2, seconds=0.05)
    result = run_on(tmp_path, fakes)
    assert result.ok and result.released
    assert {outcome.builder for outcome in result.outcomes.values()} == {"b0", "b1"}
    root = result.outcomes["root"]
    for engine in fakes:
        for target_id, request in engine.requests.items():
            if target_id != "root":
                assert request.args["BASE_IMAGE"] == f"localhost:5000/t/root@{root.digest}"  # from the registry


def test_each_builder_runs_at_most_its_slots(tmp_path: Path) -> None:
    fakes = engines(2, seconds=0.05)
    run_on(tmp_path, fakes, jobs=1)
    assert [engine.most_running for engine in fakes] == [1, 1]


def test_a_child_goes_to_the_builder_that_built_its_parent_when_it_is_free(tmp_path: Path) -> None:
    chain = """\
        version: 1
        registry: localhost:5000/t
        targets:
          a: {tags: ["a:1"]}
          b: {from: a, tags: ["b:1"]}
          c: {from: b, tags: ["c:1"]}
        """
    result = run_on(tmp_path, engines(3), jobs=1, text=chain)
    assert len({outcome.builder for outcome in result.outcomes.values()}) == 1


def test_a_target_goes_to_the_builder_that_builds_its_platform_natively(tmp_path: Path) -> None:
    arm = """\
        version: 1
        registry: localhost:5000/t
        targets:
          x86: {tags: ["x86:1"]}
          arm: {platforms: [linux/arm64], tags: ["arm:1"]}
        """
    fakes = engines(2)
    uses = [
        BuilderUse("amd", fakes[0], BuilderInfo("amd"), 4, ("linux/amd64",)),
        BuilderUse("arm", fakes[1], BuilderInfo("arm"), 4, ("linux/arm64",)),
    ]
    plan = make_plan(load(tmp_path, arm, dockerfiles(".")), (), ())
    result = Scheduler(plan, fakes[0], RunOptions(retry=FAST), builders=uses).run()
    assert result.outcomes["arm"].builder == "arm"


class Dying(FakeEngine):
    """A builder that stops answering during its first build of a leaf."""

    def build(self, request: BuildRequest) -> BuildResult:
        if request.target_id.startswith("leaf"):
            time.sleep(0.05)
            self.down = True
            raise EngineError("Cannot connect to the Docker daemon at unix:///run/b1.sock", transient=True)
        return super().build(request)


def test_a_builder_that_stops_answering_leaves_the_pool_and_its_targets_finish_elsewhere(tmp_path: Path) -> None:
    first = FakeEngine(seconds=0.05)
    dying = Dying()
    dying.registry, dying.records = first.registry, first.records
    events: list[tuple[str, str]] = []
    uses = [BuilderUse("b0", first, BuilderInfo("b0"), 2), BuilderUse("b1", dying, BuilderInfo("b1"), 2)]
    plan = make_plan(load(tmp_path, WIDE, dockerfiles(".")), (), ())
    scheduler = Scheduler(
        plan,
        first,
        RunOptions(retry=FAST),
        events=lambda name, outcome, **fields: events.append((name, fields.get("builder", ""))),
        builders=uses,
    )
    result = scheduler.run()
    assert result.ok and result.released, {t: o.error for t, o in result.outcomes.items()}
    assert {outcome.status for outcome in result.outcomes.values()} == {Status.BUILT}
    assert {outcome.builder for outcome in result.outcomes.values()} == {"b0"}
    assert ("builder_lost", "b1") in events and ("requeued", "b1") in events
    assert all(outcome.attempts >= 1 for outcome in result.outcomes.values())


def test_when_every_builder_is_lost_the_rest_fails_naming_them(tmp_path: Path) -> None:
    dying = Dying()
    plan = make_plan(load(tmp_path, WIDE, dockerfiles(".")), (), ())
    uses = [BuilderUse("b1", dying, BuilderInfo("b1"), 2)]
    result = Scheduler(plan, dying, RunOptions(retry=FAST, keep_going=True), builders=uses).run()
    leaves = [o for t, o in result.outcomes.items() if t != "root"]
    assert result.outcomes["root"].status == Status.BUILT and not result.released
    assert all(o.status == Status.FAILED for o in leaves)
    assert any(o.error == "no builder answers any more (b1)" for o in leaves)


class SlowPush(FakeEngine):
    """Pushes take a while (and the root's can fail), so children start before their parent is pushed."""

    def __init__(self, failing: str = "") -> None:
        super().__init__()
        self.failing = failing

    def push(self, reference: str) -> str:
        time.sleep(0.3)
        if self.failing and f"/{self.failing}:" in reference:
            raise EngineError("PUT: 400 from localhost:5000", transient=False)
        return super().push(reference)


CHAIN = """\
    version: 1
    registry: localhost:5000/t
    targets:
      root: {tags: ["root:1"]}
      leaf: {from: root, tags: ["leaf:1"]}
    """


def test_a_child_starts_on_its_parent_in_the_same_store_while_the_parent_is_pushed(tmp_path: Path) -> None:
    engine = SlowPush()
    plan = make_plan(load(tmp_path, CHAIN, dockerfiles(".")), (), ())
    result = Scheduler(plan, engine, RunOptions(retry=FAST)).run()
    assert result.ok and result.released
    root, leaf = result.outcomes["root"], result.outcomes["leaf"]
    assert leaf.started < root.finished  # started before its parent's push was over
    assert engine.requests["leaf"].args["BASE_IMAGE"] == root.reference  # its content tag, in the same store
    record = json.loads(engine.records[f"{leaf.reference}.record"])
    assert record["parent_digests"] == {"root": root.digest}  # the exact image, by digest


def test_a_parent_whose_push_fails_fails_the_child_built_on_it_and_nothing_is_released(tmp_path: Path) -> None:
    engine = SlowPush(failing="root")
    plan = make_plan(load(tmp_path, CHAIN, dockerfiles(".")), (), ())
    result = Scheduler(plan, engine, RunOptions(retry=FAST, keep_going=True)).run()
    assert result.outcomes["root"].status == Status.FAILED and not result.released
    assert result.outcomes["leaf"].status == Status.FAILED
    assert result.outcomes["leaf"].error == "parent root failed after this image was built on it"
    assert not any("/leaf:" in reference for reference in engine.pushed)


def test_on_another_builder_a_child_waits_for_its_parent_to_be_pushed(tmp_path: Path) -> None:
    fakes = [SlowPush(), SlowPush()]
    fakes[1].registry, fakes[1].records = fakes[0].registry, fakes[0].records
    uses = [BuilderUse("b0", fakes[0], BuilderInfo("b0"), 1), BuilderUse("b1", fakes[1], BuilderInfo("b1"), 1)]
    plan = make_plan(load(tmp_path, WIDE, dockerfiles(".")), (), ())
    result = Scheduler(plan, fakes[0], RunOptions(retry=FAST), builders=uses).run()
    assert result.ok
    root = result.outcomes["root"]
    for request in fakes[1].requests.values():  # b1 never had the root in its store: it took it from the registry
        assert request.args["BASE_IMAGE"] == f"localhost:5000/t/root@{root.digest}"
