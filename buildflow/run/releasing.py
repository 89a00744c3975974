"""`buildflow release`: the release tags of images built earlier, job by job (`build --only … --no-release`), moved
all or nothing once every selected image is checked, without building, to be in the registry for its current inputs.

An image is ready when the registry holds its content tag, its build record for that fingerprint names the same
digest, the record says that its image tests (its own and inherited) passed, and it was built on the very images
its parents now have. If one is not, nothing moves; else the tags move as at the end of `build` (run/release.py).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

from buildflow.engine.base import Engine, EngineError
from buildflow.engine.retrying import RetryingEngine
from buildflow.model import Pipeline, RetryPolicy, Target
from buildflow.plan.planner import Plan
from buildflow.run.failures import FailureKind
from buildflow.run.freshness import REGISTRY_CALLS, moved_parents
from buildflow.run.imagetests import ImageTest, image_tests, image_tests_key
from buildflow.run.naming import content_reference, image_parents, record_reference
from buildflow.run.outcome import Events, Outcome, RunResult, Status
from buildflow.run.records import BuildRecord, decode
from buildflow.run.release_policy import release_by_policy
from buildflow.run.session import Interruption, RunInterrupted, not_started, run_lock


class Found(NamedTuple):
    """One image as the registry holds it: its digest and build record, or why it cannot be released."""

    digest: str = ""
    record: BuildRecord | None = None
    problem: str = ""  # one line: what is missing, and the command that makes it
    kind: FailureKind = FailureKind.NOT_READY


def release_built(
    plan: Plan,
    engine: Engine,
    *,
    retry: RetryPolicy | None,
    wait: bool,
    interruption: Interruption,
    events: Events | None = None,
) -> RunResult:
    """Check every image of the plan and move its release tags, all or nothing, holding the run lock."""
    try:
        with run_lock(plan, wait):
            releaser = Releaser(plan, engine, retry or plan.pipeline.retry, events)
            interruption.scheduler = releaser  # from now on a signal stops the checks, or puts moved tags back
            if interruption.number:
                releaser.interrupt(interruption.reason)
            return releaser.run()
    except RunInterrupted as stopped:
        return not_started(plan, stopped.reason)


class Releaser:
    """Checks that every image of a plan is built, recorded and tested for its current inputs, then releases it."""

    def __init__(self, plan: Plan, engine: Engine, policy: RetryPolicy, events: Events | None = None) -> None:
        self.pipeline = plan.pipeline
        self.lookups = RetryingEngine(engine, policy)  # cancelled on a signal
        self.publisher = RetryingEngine(engine, policy)  # moves the tags: cancelled on a signal
        self.restorer = RetryingEngine(engine, policy)  # puts moved tags back: never cancelled
        self.events = events or (lambda name, outcome, **fields: None)
        self.outcomes = {step.target.id: Outcome(step.target) for step in plan.steps}
        self.interrupted = ""  # the signal that stopped the release, if one did

    def interrupt(self, reason: str) -> None:
        """Stop (from a signal handler): the checks under way end, and a release under way is put back."""
        self.interrupted = reason
        self.lookups.cancel()
        self.publisher.cancel()

    def run(self) -> RunResult:
        """Check every image; move every release tag only when all are ready and no signal came."""
        started = time.monotonic()
        found = self._look_up_all()
        for target_id, outcome in self.outcomes.items():
            self._mark(outcome, found[target_id])
        result = RunResult(self.outcomes, 0.0)
        engines = (self.publisher, self.restorer)
        policy = self.pipeline.release
        release_by_policy(self.outcomes, policy, engines, self.events, result, interrupted=self.interrupted)
        result.seconds = time.monotonic() - started
        return result

    def _look_up_all(self) -> dict[str, Found]:
        """Every image looked up at once, then checked against the images its parents now have."""
        memo: dict[str, tuple[ImageTest, ...]] = {}
        tests = {target_id: image_tests(self.pipeline, target_id, memo) for target_id in self.outcomes}
        targets = [outcome.target for outcome in self.outcomes.values()]

        def look_up(target: Target) -> Found:
            try:
                return check_image(target, self.pipeline, self.lookups, tests[target.id])
            except EngineError as error:
                return Found(problem=f"the registry could not be asked ({error})", kind=FailureKind.ENGINE)

        with ThreadPoolExecutor(max_workers=REGISTRY_CALLS, thread_name_prefix="release-check") as pool:
            found = dict(zip(self.outcomes, pool.map(look_up, targets), strict=True))
        return {target.id: on_its_parents(target, found) for target in targets}

    def _mark(self, outcome: Outcome, found: Found) -> None:
        """A ready image is REUSED (with its digest), any other FAILED with its problem (INTERRUPTED when a signal
        cut its lookup short)."""
        if found.problem and self.interrupted and found.kind == FailureKind.ENGINE:
            outcome.end(Status.INTERRUPTED, FailureKind.INTERRUPTED, f"not released: interrupted ({self.interrupted})")
            self.events("interrupted", outcome)
        elif found.problem:
            outcome.end(Status.FAILED, found.kind, found.problem)
            self.events("failed", outcome)
        else:
            outcome.reference = content_reference(outcome.target, self.pipeline.registry)
            outcome.digest, outcome.pushed, outcome.status = found.digest, outcome.target.push, Status.REUSED
            outcome.why = f"built {found.record.built}" if found.record else "in the local image store"
            self.events("reused", outcome)


def job(target_id: str) -> str:
    """The command that builds one image, as a CI job runs it."""
    return f"buildflow build --only {shlex.quote(target_id)}"


def check_image(target: Target, pipeline: Pipeline, registry: Engine, tests: tuple[ImageTest, ...]) -> Found:
    """The image of a target's current inputs and its record, or why it cannot be released (one line)."""
    reference = content_reference(target, pipeline.registry)
    if not target.push:
        return _check_local(target, reference, registry, tests)
    digest = registry.manifest_digest(reference)
    if digest is None:
        return Found(problem=f"not built for its current inputs (no {reference} in the registry): run {job(target.id)}")
    record = decode(registry.get_record(record_reference(target, pipeline.registry)))
    if record is None:
        return Found(problem=f"not recorded (no build record beside {reference}): run {job(target.id)}")
    if record.digest != digest:
        held = f"its build record is of {_short(record.digest)}, the registry holds {_short(digest)}"
        return Found(problem=f"not recorded for the image in the registry ({held}): run {job(target.id)}")
    if tests and record.tests != image_tests_key(tests):
        why = "its build record has no pass of its current tests"
        return Found(problem=f"its tests have not passed on this image ({why}): run {job(target.id)} to test it")
    return Found(digest, record)


def _check_local(target: Target, reference: str, engine: Engine, tests: tuple[ImageTest, ...]) -> Found:
    """A target that is not pushed: its image must be in the local image store, and it can have no tests to check
    (no build record says they passed)."""
    digest = engine.local_digest(reference)
    if digest is None:
        where = f"no {reference} in the local image store"
        return Found(problem=f"not built for its current inputs ({where}): run {job(target.id)}")
    if tests:
        name = target.id.split("[", 1)[0]
        why = "it is not pushed, so no build record says its tests passed"
        return Found(problem=f"{why}: release it with buildflow build {name}")
    return Found(digest)


def on_its_parents(target: Target, found: Mapping[str, Found]) -> Found:
    """A ready image stays ready only if it was built on the image each pushed parent has now (build would build
    it again on a parent rebuilt since)."""
    own = found[target.id]
    if own.problem or own.record is None:
        return own
    for parent in image_parents(target):
        theirs = found.get(parent)
        if theirs is None or theirs.record is None or not moved_parents(own.record, {parent: theirs.digest}):
            continue
        was = own.record.parent_digests.get(parent, "")
        why = f"built on {parent}@{_short(was)}, which now is {_short(theirs.digest)}"
        return Found(problem=f"built on an older image of its parent ({why}): run {job(target.id)}")
    return own


def _short(digest: str) -> str:
    """sha256:0123456789ab (or 'none')."""
    return digest[:19] if digest else "none"
