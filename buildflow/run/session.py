"""A build session: the Dockerfiles linted first, one run at a time per pipeline and registry (the run lock), and
the scheduler run; SIGINT and SIGTERM end it cleanly in every phase, the wait for the lock included."""

from __future__ import annotations

import signal
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Protocol

from buildflow import log
from buildflow.caches import user_cache
from buildflow.engine.base import Engine
from buildflow.errors import RunFailed
from buildflow.model import parse_age
from buildflow.plan.planner import Plan
from buildflow.quality.lint import Finding, LintUnavailable, lint, requests_for
from buildflow.run.dispatch import Scheduler
from buildflow.run.failures import FailureKind
from buildflow.run.lock import RunLock, lock_path
from buildflow.run.logs import RunLogs
from buildflow.run.naming import repository
from buildflow.run.outcome import Events, Outcome, RunOptions, RunResult, Status
from buildflow.run.pool import BuilderUse

EventsView = Callable[[], AbstractContextManager[Events | None]]
"""Opens the sink of a run's events (the command line's progress view) for the time the scheduler runs."""


class RunInterrupted(Exception):
    """A signal came before the scheduler ran (loading, linting, waiting for the lock): nothing was started."""

    def __init__(self, number: int, reason: str) -> None:
        super().__init__(reason)
        self.number, self.reason = number, reason


class Interruptible(Protocol):
    """What a signal stops once it runs: the scheduler of a build, the checks and tag moves of a release."""

    def interrupt(self, reason: str) -> None:
        """Start nothing more, cancel what runs, put back a release under way."""
        ...


class Interruption:
    """SIGINT and SIGTERM for the whole of a build command. Engine calls and registry requests under way end at
    once; while the scheduler runs, it is interrupted (nothing new starts, the release is put back); before it,
    the phase under way (loading, linting, waiting for the lock) stops with RunInterrupted."""

    def __init__(self, engine: Engine, *, run_timeout: str = "") -> None:
        self.engine = engine
        self.run_timeout = run_timeout  # --run-timeout as written (7d, 90m): SIGALRM then ends the run likewise
        self.number = 0  # the first signal received, 0 if none
        self.scheduler: Interruptible | None = None  # what runs: a scheduler, or a release (run/releasing.py)
        self._previous: dict[int, Any] = {}

    @property
    def timed_out(self) -> bool:
        """True when the run was ended by --run-timeout rather than by a signal from outside."""
        return self.number == signal.SIGALRM

    @property
    def reason(self) -> str:
        """What ended the run: SIGINT, SIGTERM or --run-timeout AGE ('' while nothing did)."""
        if not self.number:
            return ""
        return f"--run-timeout {self.run_timeout}" if self.timed_out else signal.Signals(self.number).name

    def __enter__(self) -> Interruption:
        numbers = (signal.SIGINT, signal.SIGTERM, signal.SIGALRM)
        self._previous = {number: signal.signal(number, self._handle) for number in numbers}
        if self.run_timeout:
            signal.setitimer(signal.ITIMER_REAL, parse_age(self.run_timeout))
        return self

    def __exit__(self, *exc: object) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def _handle(self, number: int, frame: FrameType | None) -> None:
        """Note the first signal, end what runs, and stop the run (raising RunInterrupted before the scheduler)."""
        first = not self.number
        self.number = self.number or number
        self.engine.cancel()
        if self.scheduler is not None:
            self.scheduler.interrupt(self.reason)
        elif first:
            raise RunInterrupted(number, self.reason)


@dataclass(frozen=True)
class Session:
    """How a build runs around its scheduler: the lint mode, whether to wait for the lock, where its events go,
    and the builders (none: the current one)."""

    lint_mode: str = "warn"
    wait: bool = True
    view: EventsView | None = None
    builders: Sequence[BuilderUse] = ()
    logs: RunLogs = field(default_factory=lambda: RunLogs(None))  # each target's builder output, in files
    run_id: str = ""


def run_build(
    plan: Plan, engine: Engine, options: RunOptions, *, interruption: Interruption, session: Session = Session()
) -> RunResult:
    """Lint, take the run lock, run the plan: the result, lint findings included (interruption.number says whether
    a signal stopped it)."""
    try:
        findings = lint_before_build(plan, session.lint_mode)
        with run_lock(plan, session.wait):
            view = session.view or _no_view
            result = _run(plan, engine, options, view, interruption, session=session)
    except RunInterrupted as stopped:
        result = not_started(plan, stopped.reason)
        result.run_id = session.run_id
        return result
    result.lint = tuple(findings)
    return result


def not_started(plan: Plan, why: str) -> RunResult:
    """The result of a run that a signal stopped before anything started: every target INTERRUPTED."""
    reason = f"not started: interrupted ({why})"
    outcomes = {step.target.id: Outcome(step.target) for step in plan.steps}
    for outcome in outcomes.values():
        outcome.end(Status.INTERRUPTED, FailureKind.INTERRUPTED, reason)
    return RunResult(outcomes, 0.0)


def lint_before_build(plan: Plan, mode: str) -> list[Finding]:
    """Lint the plan's Dockerfiles: findings are logged as warnings; with --lint=error any finding, or a hadolint
    that cannot run, stops the run before anything is built (with --lint=warn, the latter is only a warning)."""
    if mode == "off":
        return []
    try:
        findings = lint(requests_for(step.target for step in plan.steps), cache=user_cache("lint"))
    except LintUnavailable as error:
        if mode == "error":
            raise
        log.event("warning", "lint.unavailable", error=str(error), effect="the Dockerfiles were not linted")
        return []
    root = plan.pipeline.root
    for finding in findings:
        log.event("warning", "lint.finding", finding=finding.text(root))
    if findings and mode == "error":
        raise RunFailed(
            f"buildflow: {len(findings)} Dockerfile lint findings (--lint=error); nothing was built. "
            "Fix them, or ignore a rule with lint: {ignore: [CODE]} in the pipeline"
        )
    return list(findings)


def _no_view() -> AbstractContextManager[Events | None]:
    """No sink: the scheduler's events go nowhere."""
    return nullcontext()


def _run(
    plan: Plan,
    engine: Engine,
    options: RunOptions,
    view: EventsView,
    interruption: Interruption,
    *,
    session: Session,
) -> RunResult:
    """Run the scheduler on the builders, its events sent to the view; a signal meanwhile interrupts it."""
    with view() as events:
        builders = _usable(session.builders, options)
        scheduler = Scheduler(plan, engine, options, events=events, builders=builders, logs=session.logs)
        interruption.scheduler = scheduler  # from now on a signal interrupts the scheduler, even once it is done
        if interruption.number:  # a signal came just before: the run starts interrupted and does nothing
            scheduler.interrupt(interruption.reason)
        try:
            result = scheduler.run()
        finally:
            session.logs.close()
        result.run_id = session.run_id
        return result


def _usable(builders: Sequence[BuilderUse], options: RunOptions) -> Sequence[BuilderUse]:
    """The builders a run can use: without a registry to exchange images through (--no-push), only the first."""
    if options.build.push or len(builders) <= 1:
        return builders
    log.event(
        "warning",
        "builders.local_run",
        builder=builders[0].name,
        unused=[use.name for use in builders[1:]],
        why="--no-push keeps images in one engine's store, where children build on them",
    )
    return builders[:1]


def run_lock(plan: Plan, wait: bool) -> RunLock:
    """The lock of this pipeline and registry on this host."""
    pipeline = plan.pipeline
    path = lock_path(pipeline.registry, (repository(target, pipeline.registry) for target in pipeline.targets.values()))
    describe = f"{pipeline.file} on {pipeline.registry or 'the local image store'}"
    return RunLock(path, wait=wait, describe=describe, on_wait=lambda holder: _waiting(describe, holder))


def _waiting(describe: str, holder: str) -> None:
    """Say that this run waits for another."""
    log.event("warning", "lock.waiting", pipeline=describe, holder=holder, hint="--no-wait exits instead (code 4)")
