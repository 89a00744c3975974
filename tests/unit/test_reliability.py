"""Interrupted runs and patient retries, on fake engines: INTERRUPTED outcomes, no release, Retry-After."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from buildflow.engine.base import BuildRequest, BuildResult, EngineError
from buildflow.engine.blobs import retry_after as _retry_after
from buildflow.engine.retrying import RetryingEngine
from buildflow.model import RetryPolicy
from buildflow.output.report import report_document
from buildflow.plan.planner import make_plan
from buildflow.run.dispatch import Scheduler
from buildflow.run.outcome import RunOptions, Status
from tests.conftest import dockerfiles, load
from tests.fakes import FAST, FakeEngine
from tests.unit.test_scheduler import TREE


class Cancellable(FakeEngine):
    """Builds take a while; cancel() makes the running ones fail, as killing their docker commands does."""

    def __init__(self) -> None:
        super().__init__(seconds=0.0)
        self.stop = threading.Event()
        self.started = threading.Event()

    def build(self, request: BuildRequest) -> BuildResult:
        if request.target_id in ("cuda", "cpu", "app"):  # children of base: they start once it is done
            self.started.set()
            if self.stop.wait(timeout=10):
                raise EngineError("signal: terminated", transient=True)
        return super().build(request)

    def cancel(self) -> None:
        self.stop.set()


def interrupt_when_started(engine: Cancellable, scheduler: Scheduler, reason: str) -> None:
    """Interrupt the run once a child of base is building and base is done (children start on base while it is
    still being pushed, so wait for its end too), as a signal would."""
    if engine.started.wait(10):
        deadline = time.monotonic() + 10
        while scheduler.outcomes["base"].status != Status.BUILT and time.monotonic() < deadline:
            time.sleep(0.01)
        scheduler.interrupt(reason)


def test_an_interrupted_run_marks_what_did_not_finish_and_releases_nothing(tmp_path: Path) -> None:
    engine = Cancellable()
    pipeline = load(tmp_path, TREE, dockerfiles("."))
    scheduler = Scheduler(make_plan(pipeline), engine, RunOptions(retry=FAST, jobs=2))
    threading.Thread(target=interrupt_when_started, args=(engine, scheduler, "SIGTERM")).start()
    result = scheduler.run()
    statuses = {tid: o.status for tid, o in result.outcomes.items()}
    assert statuses["base"] == Status.BUILT
    assert {statuses["cuda"], statuses["app"]} == {Status.INTERRUPTED}
    assert result.outcomes["app"].error == "not started: interrupted (SIGTERM)"
    assert not result.ok and not result.released and engine.tags == []
    assert report_document(make_plan(pipeline), result)["status"] == "interrupted"


def test_a_second_run_after_an_interruption_reuses_what_finished(tmp_path: Path) -> None:
    engine = Cancellable()
    pipeline = load(tmp_path, TREE, dockerfiles("."))
    scheduler = Scheduler(make_plan(pipeline), engine, RunOptions(retry=FAST, jobs=2))
    threading.Thread(target=interrupt_when_started, args=(engine, scheduler, "SIGINT")).start()
    scheduler.run()
    again = FakeEngine()
    again.records, again.registry = engine.records, engine.registry
    result = Scheduler(make_plan(pipeline), again, RunOptions(retry=FAST)).run()
    assert result.ok and result.outcomes["base"].status == Status.REUSED
    assert result.outcomes["app"].status == Status.BUILT


class Busy:
    """An engine whose pushes answer 429 with Retry-After once, then succeed; or fail transiently for ever."""

    def __init__(self, retry_after: float | None, forever: bool = False) -> None:
        self.retry_after, self.forever, self.calls = retry_after, forever, 0

    def push(self, reference: str) -> str:
        self.calls += 1
        if self.forever or self.calls == 1:
            raise EngineError("429 Too Many Requests", transient=True, retry_after=self.retry_after)
        return "sha256:" + "0" * 64

    def cancel(self) -> None:
        """Nothing runs in a fake."""


def test_retry_after_is_waited_out() -> None:
    waits: list[float] = []
    busy: Any = Busy(retry_after=0.3)
    policy = RetryPolicy(attempts=3, initial_delay=0.01, max_delay=0.01)
    engine = RetryingEngine(busy, policy, lambda subject, attempt, error, wait: waits.append(wait))
    assert engine.push("r/x:1").startswith("sha256:")
    assert waits and waits[0] >= 0.3  # the registry's Retry-After, not the 0.01 s back-off


def test_cancel_ends_the_wait_between_tries_and_tries_no_more() -> None:
    busy: Any = Busy(retry_after=None, forever=True)
    engine = RetryingEngine(busy, RetryPolicy(attempts=10, initial_delay=30, max_delay=30))
    threading.Timer(0.3, engine.cancel).start()
    with pytest.raises(EngineError, match="interrupted"):
        engine.push("r/x:1")
    assert busy.calls == 1
    with pytest.raises(EngineError, match="interrupted"):
        engine.push("r/x:1")


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("7", 7.0), ("", None), ("soon", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
)
def test_retry_after_headers(header: str, seconds: float | None) -> None:
    assert _retry_after(header) == seconds
