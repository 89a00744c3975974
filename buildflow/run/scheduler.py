"""Runs a plan on an engine: parallel builds in dependency order, failures as outcomes, releases all or nothing."""

from __future__ import annotations

import dataclasses
import heapq
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from buildflow.engine.base import (
    BuildOptions,
    Engine,
    EngineError,
    build_request,
    content_reference,
    image_parents,
    last_record_reference,
    pinned,
    record_reference,
)
from buildflow.engine.retrying import RetryingEngine
from buildflow.model import RetryPolicy, Target
from buildflow.plan.planner import Plan
from buildflow.run.freshness import (
    REGISTRY_CALLS,
    Assessment,
    Record,
    assess,
    build_record,
    decode,
    encode,
    moved_parents,
)
from buildflow.run.imagetests import ImageTest, TestResult, failure, image_tests, image_tests_key, run_tests
from buildflow.sizes import over_budget


class Status(StrEnum):
    """Where a target stands in a run."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    BUILT = "BUILT"
    REUSED = "REUSED"  # already in the registry under its fingerprint: not rebuilt
    FAILED = "FAILED"
    BLOCKED = "BLOCKED"  # a parent failed
    CANCELLED = "CANCELLED"  # not started: an earlier failure stopped the run (no --keep-going)
    INTERRUPTED = "INTERRUPTED"  # not finished: the run was interrupted (SIGINT, SIGTERM)


@dataclass
class Outcome:
    """What happened to one target in a run."""

    target: Target
    status: Status = Status.QUEUED
    reference: str = ""
    pushed: bool = False
    digest: str = ""
    started: float = 0.0
    finished: float = 0.0
    retries: int = 0
    total_steps: int = 0
    cached_steps: int = 0
    error: str = ""
    released: tuple[str, ...] = ()
    why: str = ""  # why it was built, or why it was reused
    tests: list[TestResult] = field(default_factory=list)
    size: dict[str, Any] | None = None  # the size and waste report (layers.SizeReport.to_json) of a pushed image

    @property
    def succeeded(self) -> bool:
        """True when the image exists: built in this run or reused from an earlier one."""
        return self.status in (Status.BUILT, Status.REUSED)

    @property
    def seconds(self) -> float:
        """How long the build took (0 if it never ran)."""
        return max(0.0, self.finished - self.started) if self.started else 0.0

    @property
    def attempts(self) -> int:
        """Tries of this target's builds: one, plus every retry of a build or a push (0 when reused)."""
        return 1 + self.retries if self.started and self.status != Status.REUSED else 0

    @property
    def built_as(self) -> str:
        """How children refer to this image: by digest when pushed, by its content tag when local."""
        return pinned(self.reference, self.digest) if self.pushed else self.reference


@dataclass(frozen=True)
class RunOptions:
    """How a run behaves."""

    jobs: int = 4
    keep_going: bool = False
    build: BuildOptions = field(default_factory=BuildOptions)
    retry: RetryPolicy | None = None  # None: the pipeline's
    force: frozenset[str] | None = frozenset()  # target ids built even when up to date; None: all of them
    max_age: float | None = None  # seconds; older images are built again
    source_date_epoch: str = ""  # for targets never built before; a rebuild keeps its record's


@dataclass
class RunResult:
    """Every target's outcome, and whether the release tags were applied."""

    outcomes: dict[str, Outcome]
    seconds: float
    released: bool = False
    release_error: str = ""
    lint: list[Any] = field(default_factory=list)  # the Dockerfile lint findings of the run (lint.Finding)

    @property
    def ok(self) -> bool:
        """True when every target was built and the release went through."""
        return all(o.succeeded for o in self.outcomes.values()) and not self.release_error


Events = Callable[..., None]  # (event name, outcome, **fields)


class Scheduler:
    """Builds a plan: each target starts as soon as its own parents are built, at most `jobs` at a time."""

    def __init__(self, plan: Plan, engine: Engine, options: RunOptions, events: Events | None = None) -> None:
        self.plan = plan
        self.pipeline = plan.pipeline
        policy = options.retry or plan.pipeline.retry
        self.engine = RetryingEngine(engine, policy, self._retrying)
        self.lookups = RetryingEngine(
            engine, dataclasses.replace(policy, attempts=min(policy.attempts, 3)), self._retrying
        )
        self.publisher = RetryingEngine(engine, policy)  # records and release tags: never cancelled half way
        self.options = options
        self.events = events or (lambda name, outcome, **fields: None)
        self.outcomes = {step.target.id: Outcome(step.target) for step in plan.steps}
        self.order = {step.target.id: step.order for step in plan.steps}
        self.by_reference: dict[str, Outcome] = {}
        self._push_locks: dict[str, threading.Lock] = {}
        self._assessments: dict[str, Future[Assessment]] = {}
        self._tests: dict[str, tuple[ImageTest, ...]] = {}  # each target's tests, with inherited ones
        self.stopping = False
        self.interrupted = ""  # the signal that interrupted the run, if one did

    def run(self) -> RunResult:
        """Build everything that can be built, then apply the release tags if nothing failed."""
        started = time.monotonic()
        for outcome in self.outcomes.values():
            self.events("queued", outcome)
        with ThreadPoolExecutor(max_workers=REGISTRY_CALLS, thread_name_prefix="lookup") as lookups:
            self._look_up_all(lookups)
            self._build_all()
        for outcome in self.outcomes.values():
            if outcome.status == Status.QUEUED and self.interrupted:
                outcome.status, outcome.error = Status.INTERRUPTED, f"not started: interrupted ({self.interrupted})"
                self.events("interrupted", outcome)
            elif outcome.status == Status.QUEUED:
                outcome.status, outcome.error = Status.CANCELLED, "not started: an earlier target failed"
                self.events("cancelled", outcome)
        result = RunResult(self.outcomes, 0.0)
        if all(o.succeeded for o in self.outcomes.values()) and not self.interrupted:
            self._release(result)
        result.seconds = time.monotonic() - started
        return result

    def interrupt(self, reason: str) -> None:
        """Stop the run (from a signal handler): start nothing more, cancel what runs; a release under way
        is finished, so that it is never left half done."""
        self.interrupted, self.stopping = reason, True
        self.engine.cancel()
        self.lookups.cancel()

    # ---- building -------------------------------------------------------------------------------------------

    def _build_all(self) -> None:
        """Start every target whose parents are built, at most `jobs` at a time, until nothing can start."""
        waiting = {target_id: self._parents_in_plan(target_id) for target_id in self.outcomes}
        children: dict[str, list[str]] = {target_id: [] for target_id in self.outcomes}
        for target_id, parents in waiting.items():
            for parent in parents:
                children[parent].append(target_id)
        ready = [(self.order[tid], tid) for tid, parents in waiting.items() if not parents]
        heapq.heapify(ready)
        running: dict[Future[None], str] = {}
        with ThreadPoolExecutor(max_workers=max(1, self.options.jobs), thread_name_prefix="build") as pool:
            while ready or running:
                while ready and len(running) < self.options.jobs and not self.stopping:
                    target_id = heapq.heappop(ready)[1]
                    self._start(target_id)
                    running[pool.submit(self._build, target_id)] = target_id
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    target_id = running.pop(future)
                    future.result()
                    self._finished(target_id, children[target_id], waiting, ready)

    def _look_up_all(self, pool: ThreadPoolExecutor) -> None:
        """Start looking every pushed, unforced target up in the registry at once, not generation by generation.

        Lookups are retried at most three times: when the registry cannot say, the target is built.
        """
        now = time.time()
        for target_id, outcome in self.outcomes.items():
            if self._pushes(outcome.target) and not self._forced(target_id):
                for reference in (record_reference, last_record_reference, content_reference):
                    self.by_reference[reference(outcome.target, self.pipeline.registry)] = outcome
                self._assessments[target_id] = pool.submit(
                    assess, outcome.target, self.pipeline, self.lookups, max_age=self.options.max_age, now=now
                )

    def _forced(self, target_id: str) -> bool:
        """True for a target built even when up to date (--force, --force-target)."""
        return self.options.force is None or target_id in self.options.force

    def _pushes(self, target: Target) -> bool:
        """True for a target pushed to the registry in this run (so its build record is there to check)."""
        return self.options.build.push and target.push

    def _parents_in_plan(self, target_id: str) -> set[str]:
        """The parents of a target that this run builds too."""
        return {edge.parent for edge in self.outcomes[target_id].target.parents if edge.parent in self.outcomes}

    def _start(self, target_id: str) -> None:
        """Mark a target as running."""
        outcome = self.outcomes[target_id]
        outcome.status, outcome.started = Status.RUNNING, time.time()
        self.events("started", outcome)

    def _finished(
        self, target_id: str, children: list[str], waiting: dict[str, set[str]], ready: list[tuple[int, str]]
    ) -> None:
        """Record a finished build; make its children ready once all their parents are built, or block them."""
        outcome = self.outcomes[target_id]
        if outcome.succeeded:
            self.events("built" if outcome.status == Status.BUILT else "reused", outcome)
            for child_id in children:
                waiting[child_id].discard(target_id)
                if not waiting[child_id] and self.outcomes[child_id].status == Status.QUEUED:
                    heapq.heappush(ready, (self.order[child_id], child_id))
            return
        if outcome.status == Status.INTERRUPTED:
            self.events("interrupted", outcome)
            return
        self.events("failed", outcome)
        self.stopping = self.stopping or not self.options.keep_going
        self._block_descendants(target_id)

    def _block_descendants(self, failed_id: str) -> None:
        import networkx as nx

        selected = [
            target_id for target_id in nx.descendants(self.pipeline.graph, failed_id) if target_id in self.order
        ]
        for target_id in sorted(selected, key=self.order.__getitem__):
            outcome = self.outcomes[target_id]
            if outcome.status == Status.QUEUED:
                outcome.status, outcome.error = Status.BLOCKED, f"{failed_id} failed"
                self.events("blocked", outcome)

    def _build(self, target_id: str) -> None:
        """Reuse or build one target in a worker thread; failures become its outcome, never an exception."""
        outcome = self.outcomes[target_id]
        try:
            parents = self._parent_references(outcome.target)
            record = self._reuse_or_explain(outcome, parents)
            if outcome.status == Status.REUSED:
                self._test_reused(outcome, record)
                self._measure(outcome, parents, record)
                return
            self._check_secrets(outcome.target)
            epoch = str(record.get("source_date_epoch", "")) if record else self.options.source_date_epoch
            request = build_request(
                outcome.target,
                parents,
                registry=self.pipeline.registry,
                root=self.pipeline.root,
                options=self.options.build,
                source_date_epoch=epoch,
            )
            outcome.reference = request.tags[0]
            self.by_reference[outcome.reference] = outcome
            result = self.engine.build(request)
            outcome.digest, outcome.total_steps, outcome.cached_steps = (
                result.digest,
                result.total_steps,
                result.cached_steps,
            )
            self._test(outcome, outcome.reference)
            if request.push:
                self._push(outcome)
                self._measure(outcome, parents)
                self._store_record(outcome, parents, epoch)
        except EngineError as error:
            if self.interrupted:
                outcome.status, outcome.error = Status.INTERRUPTED, f"interrupted ({self.interrupted}): {error}"
            else:
                outcome.status, outcome.error = Status.FAILED, str(error)
        else:
            outcome.status = Status.BUILT
        finally:
            outcome.finished = time.time()

    def _test(self, outcome: Outcome, image: str) -> None:
        """Run the target's tests (its own and inherited) in `image`; raise the first failure as an EngineError."""
        tests = image_tests(self.pipeline, outcome.target.id, self._tests)
        if not tests:
            return
        self.events("testing", outcome, tests=len(tests))
        outcome.tests = run_tests(self.engine, image, tests)
        error = failure(outcome.target.id, outcome.tests)
        if error is not None:
            raise error
        self.events("tested", outcome, tests=len(tests), passed=sum(r.status == "passed" for r in outcome.tests))

    def _test_reused(self, outcome: Outcome, record: Record | None) -> None:
        """Test a reused image unless its record says these very tests passed; then record that they did."""
        tests = image_tests(self.pipeline, outcome.target.id, self._tests)
        if not tests or (record is not None and record.get("tests") == image_tests_key(tests)):
            return
        outcome.why += "; its tests changed since it was built" if record is not None else ""
        self._test(outcome, outcome.built_as)
        if record is not None:
            self._put_record(outcome, {**record, "tests": image_tests_key(tests)})

    def _measure(self, outcome: Outcome, parents: Mapping[str, str], record: Record | None = None) -> None:
        """Size and waste report of a pushed image (a reused one's from its record), checked against the target's
        size budget. Without a budget, a report that cannot be made is only noted."""
        if not outcome.pushed:
            return
        try:
            outcome.size = (record or {}).get("size") or self._size_document(outcome, parents)
        except EngineError as error:
            if outcome.target.size_budget:
                raise EngineError(f"its size budget could not be checked: {error}", transient=error.transient) from None
            outcome.why += f"; its size was not measured ({error})"
            return
        over = over_budget(outcome.target.size_budget, outcome.size)
        if over:
            raise EngineError(over, transient=False)

    def _size_document(self, outcome: Outcome, parents: Mapping[str, str]) -> dict[str, Any]:
        """Measure a pushed image against the layers of the image it is built on."""
        from buildflow.quality.layers import size_document  # tarfile, gzip: only for runs that push an image

        lineage = [edge.parent for edge in outcome.target.parents if edge.lineage and edge.parent in parents]
        parent_layers: Sequence[str] = ()
        if lineage:
            parent = self.outcomes.get(lineage[0])
            if parent is not None and parent.size is not None:
                parent_layers = [layer["digest"] for layer in parent.size["layers"]]
            elif "@" in parents[lineage[0]]:
                parent_layers = self.engine.layer_digests(parents[lineage[0]])
        return size_document(self.engine.image_size(outcome.built_as, parent_layers))

    def _reuse_or_explain(self, outcome: Outcome, parents: Mapping[str, str]) -> Record | None:
        """Mark a target REUSED when its image is up to date, else say why it is built; its record, if any."""
        target, registry = outcome.target, self.pipeline.registry
        forced = self._forced(target.id)
        if not self._pushes(target):
            if not forced:
                self._reuse_local(outcome, parents)
            return None
        if forced:
            outcome.why = "forced (--force)"
            return self._earlier_record(target)
        assessment = self._assessments[target.id].result()
        if assessment.error is not None and not assessment.error.transient:
            raise assessment.error  # not logged in, forbidden: building could not be pushed either
        outcome.why = assessment.why
        if assessment.digest is None:
            return assessment.record
        moved = moved_parents(assessment.record, _digests(parents))
        if moved:
            outcome.why = f"parent {moved[0]} has a new digest"
            return assessment.record
        outcome.reference, outcome.digest, outcome.pushed = content_reference(target, registry), assessment.digest, True
        outcome.status = Status.REUSED
        return assessment.record

    def _earlier_record(self, target: Target) -> Record | None:
        """The record of an earlier build of this fingerprint (for its SOURCE_DATE_EPOCH), if the registry has one."""
        try:
            return decode(self.lookups.get_record(record_reference(target, self.pipeline.registry)))
        except EngineError:
            return None

    def _reuse_local(self, outcome: Outcome, parents: Mapping[str, str]) -> None:
        """Without a registry: reuse the local image of this fingerprint unless a parent was just rebuilt."""
        rebuilt = [
            parent for parent in parents if parent in self.outcomes and self.outcomes[parent].status == Status.BUILT
        ]
        reference = content_reference(outcome.target, self.pipeline.registry)
        if rebuilt:
            outcome.why = f"parent {rebuilt[0]} was rebuilt"
        elif digest := self.engine.local_digest(reference):
            outcome.reference, outcome.digest, outcome.status = reference, digest, Status.REUSED
            outcome.why = "up to date (in the local image store)"
        else:
            outcome.why = "not in the local image store"

    def _built_here(self, target_id: str) -> bool:
        """True for a target built (not reused) in this run."""
        return target_id in self.outcomes and self.outcomes[target_id].status == Status.BUILT

    def _store_record(self, outcome: Outcome, parents: Mapping[str, str], epoch: str) -> None:
        """Keep the build's inputs beside the image, even when the run is being interrupted (a pushed image
        is then reused by the next run); a failure only costs the next run a rebuild."""
        record = build_record(
            outcome.target, self.pipeline, digest=outcome.digest, parent_digests=_digests(parents), epoch=epoch
        )
        record["tests"] = image_tests_key(image_tests(self.pipeline, outcome.target.id, self._tests))
        if outcome.size is not None:
            record["size"] = outcome.size
        self._put_record(outcome, record)

    def _put_record(self, outcome: Outcome, record: Record) -> None:
        """Store a record under its fingerprint and as the target's latest; a failure only costs a rebuild."""
        data = encode(record)
        try:
            self.publisher.put_record(record_reference(outcome.target, self.pipeline.registry), data)
            self.publisher.put_record(last_record_reference(outcome.target, self.pipeline.registry), data)
        except EngineError as error:
            outcome.why += f"; its build record was not stored ({error}), so the next run builds it again"

    def _push(self, outcome: Outcome) -> None:
        """Push a built image under its content tag; the registry must then hold exactly the built digest.

        Identical images (matrix values the Dockerfile does not use) are pushed one after the other: the
        engine refuses two pushes of one manifest at the same time ("failed commit on ref").
        """
        with self._push_locks.setdefault(outcome.digest, threading.Lock()):
            digest = self.engine.push(outcome.reference)
        if digest != outcome.digest:
            raise EngineError(
                f"the registry holds {digest} for {outcome.reference}, not the built {outcome.digest}", transient=False
            )
        outcome.pushed = True

    def _parent_references(self, target: Target) -> dict[str, str]:
        """How the build refers to each parent: built in this run, or already in the registry."""
        references = {}
        for parent_id in image_parents(target):
            parent = self.outcomes.get(parent_id)
            references[parent_id] = parent.built_as if parent else self._existing(parent_id)
        return references

    def _existing(self, parent_id: str) -> str:
        """A parent outside the selection: its image from an earlier run, found by its content tag."""
        parent = self.pipeline.targets[parent_id]
        reference = content_reference(parent, self.pipeline.registry)
        if not (self.options.build.push and parent.push):
            return reference
        digest = self.engine.manifest_digest(reference)
        if digest is None:
            raise EngineError(
                f"parent {parent_id} is not built ({reference} is not in the registry); "
                f"select it too: buildflow build {parent_id.split('[', 1)[0]}",
                transient=False,
            )
        return pinned(reference, digest)

    def _check_secrets(self, target: Target) -> None:
        """Every declared secret must have a value to hand to the build (the value itself is never read)."""
        for secret in target.secrets:
            if secret.source == "env" and secret.location not in os.environ:
                raise EngineError(
                    f"secret {secret.id}: environment variable {secret.location} is not set", transient=False
                )
            if secret.source == "file" and not (self.pipeline.root / secret.location).is_file():
                raise EngineError(
                    f"secret {secret.id}: file {secret.location} not found (relative to {self.pipeline.root})",
                    transient=False,
                )

    def _retrying(self, subject: str, attempt: int, error: EngineError, seconds: float) -> None:
        """A transient failure that will be tried again (called from a worker thread)."""
        outcome = self.outcomes.get(subject) or self.by_reference.get(subject)
        if outcome is not None:
            outcome.retries += 1
            self.events("retrying", outcome, attempt=attempt, error=str(error), wait=round(seconds, 1))

    # ---- releasing ------------------------------------------------------------------------------------------

    def _release(self, result: RunResult) -> None:
        """Apply every human tag, now that every selected target was built; registry side for pushed images."""
        to_release = [o for o in self.outcomes.values() if any(tag != o.reference for tag in o.target.tags)]
        with ThreadPoolExecutor(max_workers=REGISTRY_CALLS, thread_name_prefix="release") as pool:
            errors = [error for error in pool.map(self._release_one, to_release) if error]
        for outcome in to_release:
            if outcome.released:
                self.events("released", outcome)
        result.release_error = errors[0] if errors else ""
        result.released = not errors

    def _release_one(self, outcome: Outcome) -> str:
        """Tag one built image; the error, if any, as text."""
        tags = [tag for tag in outcome.target.tags if tag != outcome.reference]
        try:
            if outcome.pushed:
                moving = [tag for tag in tags if self.publisher.manifest_digest(tag) != outcome.digest]
                self.publisher.tag(outcome.built_as, moving)
            else:
                self.publisher.tag_local(outcome.reference, tags)
        except EngineError as error:
            return f"{outcome.target.id}: {error}"
        outcome.released = tuple(tags)
        return ""


def _digests(parents: Mapping[str, str]) -> dict[str, str]:
    """The digest each parent reference pins (a tag reference, for a parent kept locally, as it is)."""
    return {
        parent: reference.rpartition("@")[2] if "@" in reference else reference for parent, reference in parents.items()
    }
