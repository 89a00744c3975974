"""Runs a plan on a pool of builders: each target starts as soon as its parents are built and a builder has a free
slot, failures block their descendants, and the release comes last, only when everything succeeded."""

from __future__ import annotations

import dataclasses
import heapq
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from buildflow.engine.base import Engine, EngineError
from buildflow.engine.retrying import RetryingEngine
from buildflow.model import RetryPolicy
from buildflow.plan.planner import Plan
from buildflow.run.failures import FailureKind
from buildflow.run.freshness import REGISTRY_CALLS, Assessment, assess
from buildflow.run.logs import RunLogs
from buildflow.run.naming import content_reference, image_parents, last_record_reference, record_reference
from buildflow.run.outcome import Events, Outcome, RunOptions, RunResult, Status
from buildflow.run.pool import BuilderUse, Pool, PoolBuilder
from buildflow.run.release_policy import release_by_policy
from buildflow.run.state import RunState
from buildflow.run.target import TargetLife

Ready = list[tuple[int, str]]  # a heap of (plan order, target id)
_HAND_ON_POLL = 0.02  # seconds between looks at images handed on while builds run


class Scheduler:
    """Builds a plan: each target starts as soon as its own parents are built and a builder has a free slot."""

    def __init__(
        self,
        plan: Plan,
        engine: Engine,
        options: RunOptions,
        events: Events | None = None,
        *,
        builders: Sequence[BuilderUse] = (),
        logs: RunLogs | None = None,
    ) -> None:
        policy = options.retry or plan.pipeline.retry
        lookups = dataclasses.replace(policy, attempts=min(policy.attempts, 3))
        uses = builders or [BuilderUse("", engine, None, options.jobs)]
        self.state = RunState(
            plan=plan,
            options=options,
            pool=Pool([self._pool_builder(use, policy) for use in uses]),
            lookups=RetryingEngine(engine, lookups, self._retrying),
            publisher=RetryingEngine(engine, policy),
            restorer=RetryingEngine(engine, policy),
            events=events or (lambda name, outcome, **fields: None),
            outcomes={step.target.id: Outcome(step.target) for step in plan.steps},
            logs=logs or RunLogs(None),
        )
        self.order = {step.target.id: step.order for step in plan.steps}
        self.built_on: dict[str, str] = {}  # target id -> the builder that built it
        self.avoid: dict[str, frozenset[str]] = {}  # target id -> builders it failed on because they stopped answering
        self.handed: dict[str, str | None] = {}  # target id -> where its image is handed on: a builder, None: registry
        self.queued: set[str] = set()  # targets made ready by their parents (not to queue them twice)
        self.children: dict[str, list[str]] = {}
        self.warming = threading.Event()  # the builders are being described

    def _pool_builder(self, use: BuilderUse, policy: RetryPolicy) -> PoolBuilder:
        """A builder of the pool, its engine retried with the run's policy."""
        engine = RetryingEngine(use.engine, policy, self._retrying)
        return PoolBuilder(use.name, engine, use.info, max(1, use.jobs), use.platforms)

    @property
    def outcomes(self) -> dict[str, Outcome]:
        """Every selected target's outcome, by id."""
        return self.state.outcomes

    def run(self) -> RunResult:
        """Build everything that can be built, then apply the release tags if nothing failed."""
        started, state = time.monotonic(), self.state
        for outcome in self.outcomes.values():
            state.events("queued", outcome)
        with ThreadPoolExecutor(max_workers=REGISTRY_CALLS, thread_name_prefix="lookup") as lookups:
            self._look_up_all(lookups)
            self._build_all()
        self._mark_not_started()
        result = RunResult(self.outcomes, 0.0)
        if not state.options.release:
            result.release_skipped = "release skipped (--no-release)"
        else:
            engines = (state.publisher, state.restorer)
            policy = state.pipeline.release
            release_by_policy(self.outcomes, policy, engines, state.events, result, interrupted=state.interrupted)
        result.seconds = time.monotonic() - started
        return result

    def interrupt(self, reason: str) -> None:
        """Stop the run (from a signal handler): start nothing more, cancel what runs, write no more records; a
        release under way stops, and every tag it moved is put back."""
        self.state.interrupted, self.state.stopping = reason, True
        for builder in self.state.pool.builders:
            builder.engine.cancel()
        for engine in (self.state.lookups, self.state.publisher):
            engine.cancel()

    def _mark_not_started(self) -> None:
        """Targets still queued: INTERRUPTED by a signal, or CANCELLED by an earlier failure."""
        interrupted, events = self.state.interrupted, self.state.events
        for outcome in self.outcomes.values():
            if outcome.status == Status.QUEUED and interrupted:
                outcome.end(Status.INTERRUPTED, FailureKind.INTERRUPTED, f"not started: interrupted ({interrupted})")
                events("interrupted", outcome)
            elif outcome.status == Status.QUEUED:
                outcome.end(Status.CANCELLED, FailureKind.CANCELLED, "not started: an earlier target failed")
                events("cancelled", outcome)

    # ---- dispatching --------------------------------------------------------------------------------------

    def _build_all(self) -> None:
        """Start every target whose parents are handed on, on a builder with a free slot, until nothing can."""
        for target_id in self.outcomes:
            self.state.done[target_id] = threading.Event()
        self.children = {target_id: [] for target_id in self.outcomes}
        for target_id in self.outcomes:
            for parent in self._parents_in_plan(target_id):
                self.children[parent].append(target_id)
        ready: Ready = []
        for target_id in self.outcomes:
            if not self._parents_in_plan(target_id):
                self._make_ready(target_id, ready)
        running: dict[Future[bool], tuple[str, PoolBuilder]] = {}
        slots = sum(builder.jobs for builder in self.state.pool.builders)
        with ThreadPoolExecutor(max_workers=slots, thread_name_prefix="build") as workers:
            while ready or running:
                if not self.state.stopping:
                    self._start_placeable(ready, running, workers)
                if not running:
                    self._no_builder_left(ready)
                    break
                done, _ = wait(running, timeout=_HAND_ON_POLL, return_when=FIRST_COMPLETED)
                self._handed_on(ready)
                for future in done:
                    target_id, builder = running.pop(future)
                    builder.running -= 1
                    if future.result() or not self._lost(builder, target_id, ready):
                        self._finished(target_id, builder, ready)

    def _handed_on(self, ready: Ready) -> None:
        """Children of images handed on (pushed, or in one builder's store) become ready when all parents are."""
        while True:
            try:
                target_id, where = self.state.handed.get_nowait()
            except queue.Empty:
                return
            self.handed[target_id] = where if self.handed.get(target_id, "") is not None else None
            for child_id in self.children[target_id]:
                self._ready_if_parents_are(child_id, ready)

    def _ready_if_parents_are(self, child_id: str, ready: Ready) -> None:
        """Queue a child whose every parent in the run is finished or handed on (image parents), and note the
        builder it must go to when a parent is only in one builder's store."""
        if self.outcomes[child_id].status != Status.QUEUED or child_id in self.queued:
            return
        images = set(image_parents(self.outcomes[child_id].target))
        for parent in self._parents_in_plan(child_id):
            outcome = self.outcomes[parent]
            if outcome.status in (Status.BUILT, Status.REUSED) and self.state.done[parent].is_set():
                continue
            if parent not in images or parent not in self.handed:
                return  # an order-only parent must finish; an image parent must be handed on
        if len(self._homes(child_id)) > 1:
            return  # parents in two builders' stores: wait for their pushes
        self.queued.add(child_id)
        self._make_ready(child_id, ready)

    def _make_ready(self, target_id: str, ready: Ready) -> None:
        """Queue a target whose parents are handed on: from now on it waits only for a builder's free slot."""
        self.outcomes[target_id].ready = time.time()
        heapq.heappush(ready, (self.order[target_id], target_id))

    def _homes(self, target_id: str) -> set[str]:
        """The builders whose stores hold parents of a target that are not pushed yet (it must go there)."""
        found = set()
        for parent in self._parents_in_plan(target_id):
            where = self.handed.get(parent)
            if where is not None and not self.state.done[parent].is_set():
                found.add(where)
        return found

    def _start_placeable(
        self, ready: Ready, running: dict[Future[bool], tuple[str, PoolBuilder]], workers: ThreadPoolExecutor
    ) -> None:
        """Start the ready targets a builder can take now, in plan order; the others stay ready."""
        waiting_for_a_slot: Ready = []
        while ready:
            entry = heapq.heappop(ready)
            target_id = entry[1]
            target = self.outcomes[target_id].target
            homes = self._homes(target_id)
            if len(homes) > 1:
                waiting_for_a_slot.append(entry)
                continue
            must = next(iter(homes), None)
            builder = self.state.pool.place(target, self.built_on, self.avoid.get(target_id, frozenset()), must)
            if builder is None:
                waiting_for_a_slot.append(entry)
                continue
            builder.running += 1
            self._start(target_id, builder)
            running[workers.submit(TargetLife(self.state, target_id, builder).run)] = (target_id, builder)
        for entry in waiting_for_a_slot:
            heapq.heappush(ready, entry)

    def _lost(self, builder: PoolBuilder, target_id: str, ready: Ready) -> bool:
        """A builder stopped answering: it leaves the pool, and its target is tried once more on another. True
        when the target is queued again (its failure is not final)."""
        outcome = self.outcomes[target_id]
        if builder.alive:
            builder.alive = False
            self.state.events("builder_lost", outcome, builder=builder.shown, error=outcome.error)
        if target_id in self.avoid or not self.state.pool.alive:
            return False
        self.avoid[target_id] = frozenset({builder.name})
        self.state.done[target_id].clear()
        error = outcome.error
        outcome.again()
        self.state.events("requeued", outcome, builder=builder.shown, error=error)
        self._make_ready(target_id, ready)
        return True

    def _no_builder_left(self, ready: Ready) -> None:
        """Targets ready when no builder answers any more fail, naming the builders."""
        if not ready or self.state.pool.alive or self.state.stopping:
            return
        names = ", ".join(builder.shown for builder in self.state.pool.builders)
        for _, target_id in sorted(ready):
            outcome = self.outcomes[target_id]
            outcome.end(Status.FAILED, FailureKind.ENGINE, f"no builder answers any more ({names})")
            self.state.events("failed", outcome)
            self._block_descendants(target_id)

    def _look_up_all(self, pool: ThreadPoolExecutor) -> None:
        """Start looking every pushed, unforced target up in the registry at once, not generation by generation.

        Lookups are retried at most three times: when the registry cannot say, the target is built.
        """
        now, state = time.time(), self.state
        for target_id, outcome in self.outcomes.items():
            if not state.pushes(outcome.target) or state.forced(target_id):
                self._warm_builders()  # it is built, or looked for in an image store: the builders are asked
                continue
            for reference in (record_reference, last_record_reference, content_reference):
                state.by_reference[reference(outcome.target, state.pipeline.registry)] = outcome
            lookup = pool.submit(
                assess, outcome.target, state.pipeline, state.lookups, max_age=state.options.max_age, now=now
            )
            lookup.add_done_callback(self._warm_if_built)
            state.assessments[target_id] = lookup

    def _warm_if_built(self, lookup: Future[Assessment]) -> None:
        """A target that will be built: describe the builders meanwhile (a run that reuses all never asks)."""
        if lookup.result().digest is None:
            self._warm_builders()

    def _warm_builders(self) -> None:
        """Ask each builder what it can do, once, in the background, before its first build needs to know."""
        if not self.warming.is_set():
            self.warming.set()
            for builder in self.state.pool.builders:
                threading.Thread(target=lambda b=builder: b.info, name="describe", daemon=True).start()

    def _parents_in_plan(self, target_id: str) -> set[str]:
        """The parents of a target that this run builds too."""
        return {edge.parent for edge in self.outcomes[target_id].target.parents if edge.parent in self.outcomes}

    def _start(self, target_id: str, builder: PoolBuilder) -> None:
        """Mark a target as running on a builder."""
        outcome = self.outcomes[target_id]
        outcome.status, outcome.started, outcome.builder = Status.RUNNING, time.time(), builder.shown
        self.state.events("started", outcome)

    def _finished(self, target_id: str, builder: PoolBuilder, ready: Ready) -> None:
        """Record a finished target; its children become ready once all their parents are, or are blocked."""
        outcome, events = self.outcomes[target_id], self.state.events
        if outcome.succeeded:
            self.built_on[target_id] = builder.name
            events("built" if outcome.status == Status.BUILT else "reused", outcome)
            for child_id in self.children[target_id]:
                self._ready_if_parents_are(child_id, ready)
            return
        if outcome.status == Status.INTERRUPTED:
            events("interrupted", outcome)
            return
        events("failed", outcome)
        self.state.stopping = self.state.stopping or not self.state.options.keep_going
        self._block_descendants(target_id)

    def _block_descendants(self, failed_id: str) -> None:
        """Every queued target built on a failed one is BLOCKED."""
        import networkx as nx

        graph = self.state.pipeline.graph
        selected = [target_id for target_id in nx.descendants(graph, failed_id) if target_id in self.order]
        for target_id in sorted(selected, key=self.order.__getitem__):
            outcome = self.outcomes[target_id]
            if outcome.status == Status.QUEUED:
                outcome.end(Status.BLOCKED, FailureKind.BLOCKED, f"{failed_id} failed")
                self.state.events("blocked", outcome)

    def _retrying(self, subject: str, attempt: int, error: EngineError, seconds: float) -> None:
        """A transient failure that will be tried again (called from a worker thread)."""
        outcome = self.outcomes.get(subject) or self.state.by_reference.get(subject)
        if outcome is not None:
            outcome.retries += 1
            self.state.events("retrying", outcome, attempt=attempt, error=str(error), wait=round(seconds, 1))
