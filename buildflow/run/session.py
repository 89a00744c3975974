"""A build session: the Dockerfiles linted first, one run at a time per pipeline and registry (the run lock), and
the scheduler run with SIGINT and SIGTERM interrupting it cleanly."""

from __future__ import annotations

import signal
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from types import FrameType

from buildflow import log
from buildflow.caches import user_cache
from buildflow.engine.base import Engine
from buildflow.errors import RunFailed
from buildflow.plan.planner import Plan
from buildflow.quality.lint import Finding, LintUnavailable, lint, requests_for
from buildflow.run.dispatch import Scheduler
from buildflow.run.lock import RunLock, lock_path
from buildflow.run.naming import repository
from buildflow.run.outcome import Events, RunOptions, RunResult

EventsView = Callable[[], AbstractContextManager[Events | None]]
"""Opens the sink of a run's events (the command line's progress view) for the time the scheduler runs."""


def run_build(
    plan: Plan, engine: Engine, options: RunOptions, *, lint_mode: str, wait: bool, view: EventsView | None = None
) -> tuple[RunResult, int]:
    """Lint, take the run lock, run the plan: the result (lint findings included) and the interrupting signal (or 0)."""
    findings = lint_before_build(plan, lint_mode)
    with run_lock(plan, wait):
        result, interrupted = _run(plan, engine, options, view or _no_view)
    result.lint = tuple(findings)
    return result, interrupted


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


def _run(plan: Plan, engine: Engine, options: RunOptions, view: EventsView) -> tuple[RunResult, int]:
    """Run the scheduler, its events sent to the view, SIGINT and SIGTERM interrupting it: the result and the signal."""
    received: list[int] = []
    with view() as events:
        scheduler = Scheduler(plan, engine, options, events=events)

        def interrupt(number: int, frame: FrameType | None) -> None:
            """Note the signal and stop the run cleanly."""
            received.append(number)
            scheduler.interrupt(signal.Signals(number).name)

        previous = {number: signal.signal(number, interrupt) for number in (signal.SIGINT, signal.SIGTERM)}
        try:
            result = scheduler.run()
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
    return result, received[0] if received else 0


def run_lock(plan: Plan, wait: bool) -> RunLock:
    """The lock of this pipeline and registry on this host."""
    pipeline = plan.pipeline
    path = lock_path(pipeline.registry, (repository(target, pipeline.registry) for target in pipeline.targets.values()))
    describe = f"{pipeline.file} on {pipeline.registry or 'the local image store'}"
    return RunLock(path, wait=wait, describe=describe, on_wait=lambda holder: _waiting(describe, holder))


def _waiting(describe: str, holder: str) -> None:
    """Say that this run waits for another."""
    log.event("warning", "lock.waiting", pipeline=describe, holder=holder, hint="--no-wait exits instead (code 4)")
