"""One target's life in a run: reuse it, or build, test, push, measure and record it; failures become its outcome."""

from __future__ import annotations

import dataclasses
import functools
import shlex
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from buildflow import log
from buildflow.engine.base import EngineError
from buildflow.engine.retrying import RetryingEngine
from buildflow.model import Target
from buildflow.pipeline.variables import slug
from buildflow.quality.summary import SizeSummary, over_budget
from buildflow.references import pinned
from buildflow.run import cutoff
from buildflow.run.failures import Failure, FailureKind, TargetFailed
from buildflow.run.freshness import moved_parents
from buildflow.run.imagetests import failure, image_tests, image_tests_key, run_tests
from buildflow.run.logs import build_failure
from buildflow.run.naming import (
    build_request,
    content_reference,
    image_parents,
    last_record_reference,
    record_reference,
    repository,
)
from buildflow.run.outcome import Status
from buildflow.run.pool import PoolBuilder
from buildflow.run.records import BuildRecord, build_record, decode, encode
from buildflow.run.secrets import missing_secret
from buildflow.run.state import RunState


@contextmanager
def failing_as(kind: FailureKind) -> Iterator[None]:
    """Turn an engine error inside the block into the target's failure of this kind."""
    try:
        yield
    except EngineError as error:
        raise TargetFailed(Failure(kind, str(error), error.log_tail, error.transient)) from None


def failed(kind: FailureKind, message: str) -> TargetFailed:
    """The exception that ends a target's life with a failure of this kind."""
    return TargetFailed(Failure(kind, message))


class TargetLife:
    """Reuse or build one target on one builder, in a worker thread; what happens is written to its outcome."""

    def __init__(self, state: RunState, target_id: str, builder: PoolBuilder) -> None:
        self.state = state
        self.pipeline = state.pipeline
        self.builder = builder
        self.engine = builder.engine
        self.outcome = state.outcomes[target_id]
        self.target = self.outcome.target

    def run(self) -> bool:
        """Reuse or build the target; its outcome says which, or why neither. False when it failed because its
        builder stopped answering (the dispatcher may try it on another)."""
        try:
            reused = self._live()
        except TargetFailed as error:
            return self._failed(error.failure)
        except EngineError as error:
            return self._failed(Failure(FailureKind.ENGINE, str(error), error.log_tail, error.transient))
        else:
            if not reused:
                self.outcome.status = Status.BUILT
            return True
        finally:
            self.outcome.log = str(self.state.logs.path(self.target.id) or "")
            self.outcome.finished = time.time()
            self.state.done[self.target.id].set()

    def _failed(self, failure: Failure) -> bool:
        """Record a failure; False when it is the builder's (a failure that could pass, and it no longer answers)."""
        self._fail(failure)
        lost = failure.transient and not self.state.interrupted and not self.engine.answers()
        return not lost

    def _live(self) -> bool:
        """Reuse, or build, test, push, measure and record; True when the image was reused."""
        outcome = self.outcome
        parents = parent_references(self.state, self.target, self.engine)
        record = self._reuse_or_explain(parents)
        if outcome.status == Status.REUSED:
            self._hand_on()
            self._test_reused(record)
            self._measure(parents, record)
            return True
        if missing := missing_secret(self.target, self.pipeline.root):
            raise failed(FailureKind.SECRET, missing)
        epoch = build_epoch(self.state, self.target.id, record)
        self._build(parents, epoch)
        self._test(outcome.built_as)  # in the builder's image store, or pulled from the registry BuildKit pushed to
        budget = bool(self.target.size_budget)  # checked on the pushed image: children wait for it
        if not budget:
            self._hand_on()
        if self.state.pushes(self.target):
            outcome.enter("pushing")  # the push (unless the build pushed), the size check and the build record
            if not outcome.pushed:
                self._await_parents()
                self._push()
            if not budget:
                self._hand_on()
            self._measure(parents)
            self._hand_on()
            self._store_record(parents, epoch)
        return False

    def _hand_on(self) -> None:
        """Let children start on this image before its own life ends: once it is pushed (or reused), from the
        registry on any builder; before its push, from this builder's image store, to children placed on it
        (the docker driver with the containerd store, where the pushed digest is the built one)."""
        outcome, builder = self.outcome, self.builder
        if outcome.pushed:
            where: str | None = None
        elif builder.info.local_images and (builder.info.same_digest or not self.state.pushes(self.target)):
            where = builder.name
        else:
            return
        outcome.handed_on = outcome.handed_on or time.time()
        self.state.hand_on(self.target.id, where)

    def _await_parents(self) -> None:
        """Before this image is pushed, every parent it was built on has finished, and succeeded (a parent handed
        on before its push can still fail it, or its size budget)."""
        for parent_id in image_parents(self.target):
            if parent_id in self.state.done:
                self.state.done[parent_id].wait()
                parent = self.state.outcomes[parent_id]
                if not parent.succeeded:
                    raise failed(FailureKind.PARENT, f"parent {parent_id} failed after this image was built on it")

    def _fail(self, failure: Failure) -> None:
        """End the target as FAILED, or as INTERRUPTED when the run is being interrupted."""
        interrupted = self.state.interrupted
        if interrupted:
            self.outcome.end(Status.INTERRUPTED, FailureKind.INTERRUPTED, f"interrupted ({interrupted}): {failure}")
        else:
            self.outcome.status, self.outcome.failure = Status.FAILED, failure

    # ---- building -----------------------------------------------------------------------------------------

    def _build(self, parents: Mapping[str, str], epoch: str) -> None:
        """Build the image under its content tag."""
        request = build_request(
            self.target,
            parents,
            registry=self.pipeline.registry,
            root=self.pipeline.root,
            options=self.state.options.build,
            source_date_epoch=epoch,
            registry_cache=self.builder.info.registry_cache,
        )
        self._note_inline_cache()
        check_local_parents(self.state, self.engine, parents)
        outcome = self.outcome
        outcome.reference = request.tags[0]
        self.state.by_reference[outcome.reference] = outcome
        outcome.enter("building")
        try:
            result = self.engine.build(request)
        except EngineError as error:
            raise TargetFailed(build_failure(self.state.logs, self.target.id, error)) from None
        outcome.digest, outcome.total_steps, outcome.cached_steps = (
            result.digest,
            result.total_steps,
            result.cached_steps,
        )
        outcome.pushed = result.pushed
        if self.target.oci_dir is not None:
            self._write_layout(self.target.oci_dir / slug(self.target.id))

    def _write_layout(self, directory: Path) -> None:
        """output: oci: the image just built, as an OCI layout in its own directory."""
        with failing_as(FailureKind.BUILD):
            self.engine.save_layout(self.outcome.reference, directory)
        log.event("info", "target.oci_layout", target=self.target.id, directory=str(directory))

    def _note_inline_cache(self) -> None:
        """Say once per builder that registry cache becomes inline cache there (the classic image store)."""
        builder = self.builder
        if self.target.cache.type == "registry" and not builder.info.registry_cache and not builder.cache_noted:
            builder.cache_noted = True
            why = "the docker driver on the classic image store cannot export build cache"
            log.event("info", "builder.cache", builder=builder.shown, cache="inline", why=why)

    def _push(self) -> None:
        """Push a built image under its content tag; the registry must then hold exactly the built digest.

        Identical images (matrix values the Dockerfile does not use) are pushed one after the other: the
        engine refuses two pushes of one manifest at the same time ("failed commit on ref").
        """
        outcome = self.outcome
        with failing_as(FailureKind.PUSH), self.state.push_locks.setdefault(outcome.digest, threading.Lock()):
            digest = self.engine.push(outcome.reference)
        if digest != outcome.digest and not self.builder.info.same_digest:
            outcome.digest = digest  # the classic store: its push compresses the layers again; children pin this
        elif digest != outcome.digest:
            raise failed(
                FailureKind.PUSH, f"the registry holds {digest} for {outcome.reference}, not the built {outcome.digest}"
            )
        outcome.pushed = True

    # ---- tests and sizes ----------------------------------------------------------------------------------

    def _test(self, image: str) -> None:
        """Run the target's tests (its own and inherited) in `image`; the first failure fails the target."""
        tests = image_tests(self.pipeline, self.target.id, self.state.tests)
        if not tests:
            return
        outcome, events = self.outcome, self.state.events
        outcome.enter("testing")
        events("testing", outcome, tests=len(tests))
        outcome.tests = run_tests(self.engine, image, tests)
        found = failure(self.target.id, outcome.tests)
        if found is not None:
            raise TargetFailed(found)
        events("tested", outcome, tests=len(tests), passed=sum(r.status == "passed" for r in outcome.tests))

    def _test_reused(self, record: BuildRecord | None) -> None:
        """Test a reused image unless its record says these very tests passed; then record that they did."""
        tests = image_tests(self.pipeline, self.target.id, self.state.tests)
        key = image_tests_key(tests) if tests else ""
        if not tests or (record is not None and record.tests == key):
            return
        self.outcome.why += "; its tests changed since it was built" if record is not None else ""
        self._test(self.outcome.built_as)
        if record is not None:
            self.put_record(record.with_tests(key))

    def _measure(self, parents: Mapping[str, str], record: BuildRecord | None = None) -> None:
        """Size and waste summary of a pushed image (a reused one's from its record), checked against the target's
        size budget. Without a budget, a summary that cannot be made is only noted."""
        outcome, budget = self.outcome, self.target.size_budget
        if not outcome.pushed:
            return
        try:
            outcome.size = (record.size if record else None) or self._summary(parents)
        except EngineError as error:
            if budget:
                message = f"its size budget could not be checked: {error}"
                raise TargetFailed(Failure(FailureKind.BUDGET, message, transient=error.transient)) from None
            outcome.why += f"; its size was not measured ({error})"
            return
        over = over_budget(budget, outcome.size)
        if over:
            raise failed(FailureKind.BUDGET, over)

    def _summary(self, parents: Mapping[str, str]) -> SizeSummary:
        """Measure a pushed image against the layers of the image it is built on (retried as a whole)."""
        from buildflow.quality.layers import from_registry  # tarfile, gzip: only for runs that push an image

        reference, layers = self.outcome.built_as, self._parent_layers(parents)
        cache = self.state.layer_cache()
        measure = functools.partial(from_registry, self.engine.engine, reference, parent_layers=layers, cache=cache)
        return SizeSummary.of(self.engine.attempt(reference, measure))

    def _parent_layers(self, parents: Mapping[str, str]) -> Sequence[str]:
        """The layers of the image this one is built on: from its summary in this run, or from its manifest."""
        lineage = [edge.parent for edge in self.target.parents if edge.lineage and edge.parent in parents]
        if not lineage:
            return ()
        parent = self.state.outcomes.get(lineage[0])
        if parent is not None and parent.size is not None:
            return [layer.digest for layer in parent.size.layers]
        if "@" in parents[lineage[0]]:
            return self.engine.layer_digests(parents[lineage[0]])
        return ()

    # ---- reuse and records --------------------------------------------------------------------------------

    def _reuse_or_explain(self, parents: Mapping[str, str]) -> BuildRecord | None:
        """Mark the target REUSED when its image is up to date, else say why it is built; its record, if any."""
        outcome, target, state = self.outcome, self.target, self.state
        forced = state.forced(target.id)
        if not state.pushes(target):
            if not forced:
                self._reuse_local(parents)
            return None
        if forced:
            outcome.why = "forced (--force)"
            return self._earlier_record()
        assessment = state.assessments[target.id].result()
        if assessment.error is not None and not assessment.error.transient:
            raise assessment.error  # not logged in, forbidden: building could not be pushed either
        outcome.why = assessment.why
        if assessment.digest is None:
            if assessment.cutoff is not None and state.options.early_cutoff:
                return cut_off(self, assessment.cutoff, parents) or assessment.record
            return assessment.record
        moved = moved_parents(assessment.record, parent_digests(self.state, parents))
        if moved:
            outcome.why = f"parent {moved[0]} has a new digest"
            return assessment.record
        outcome.reference, outcome.digest = content_reference(target, self.pipeline.registry), assessment.digest
        outcome.pushed, outcome.status = True, Status.REUSED
        return assessment.record

    def _earlier_record(self) -> BuildRecord | None:
        """The record of an earlier build of this fingerprint (for its SOURCE_DATE_EPOCH), if the registry has one."""
        try:
            return decode(self.state.lookups.get_record(record_reference(self.target, self.pipeline.registry)))
        except EngineError:
            return None

    def _reuse_local(self, parents: Mapping[str, str]) -> None:
        """Without a registry: reuse the local image of this fingerprint unless a parent was just rebuilt."""
        outcomes, outcome = self.state.outcomes, self.outcome
        rebuilt = [parent for parent in parents if parent in outcomes and outcomes[parent].status != Status.REUSED]
        reference = content_reference(self.target, self.pipeline.registry)
        if rebuilt:
            outcome.why = f"parent {rebuilt[0]} was rebuilt"
        elif digest := self.engine.local_digest(reference):
            outcome.reference, outcome.digest, outcome.status = reference, digest, Status.REUSED
            outcome.why = "up to date (in the local image store)"
            if self.target.oci_dir is not None:
                self._write_layout(self.target.oci_dir / slug(self.target.id))
        else:
            outcome.why = "not in the local image store"

    def _store_record(self, parents: Mapping[str, str], epoch: str) -> None:
        """Keep the build's inputs beside the image, even when the run is being interrupted (a pushed image
        is then reused by the next run); a failure only costs the next run a rebuild."""
        outcome, pipeline = self.outcome, self.pipeline
        record = build_record(
            self.target,
            pipeline,
            digest=outcome.digest,
            parent_digests=parent_digests(self.state, parents),
            epoch=epoch,
        )
        tests = image_tests_key(image_tests(pipeline, self.target.id, self.state.tests))
        self.put_record(dataclasses.replace(record, tests=tests, size=outcome.size))

    def put_record(self, record: BuildRecord) -> None:
        """Store a record under its fingerprint and as the target's latest; a failure only costs a rebuild."""
        data, registry, publisher = encode(record), self.pipeline.registry, self.state.publisher
        try:
            publisher.put_record(record_reference(self.target, registry), data)
            publisher.put_record(last_record_reference(self.target, registry), data)
        except EngineError as error:
            self.outcome.why += f"; its build record was not stored ({error}), so the next run builds it again"


def cut_off(life: TargetLife, previous: BuildRecord, parents: Mapping[str, str]) -> BuildRecord | None:
    """Reuse the latest build when every parent kept the digest it was built on (early cutoff): its content
    tag for today's fingerprint is pointed at that image and recorded; the new record, or None to build."""
    outcome, target, pipeline, state = life.outcome, life.target, life.pipeline, life.state
    digests = parent_digests(state, parents)
    if cutoff.moved(previous, digests):
        return None
    changed = [parent for parent in cutoff.changed_parents(target, pipeline, previous) if parent in digests]
    changed = changed or list(digests)
    parent = state.outcomes.get(changed[0]) if changed else None
    verb = "rebuilt" if parent is None or parent.status != Status.REUSED else "reused"
    why = f"parent {changed[0]} {verb}, same digest" if changed else "same inputs, same parents"
    reference = content_reference(target, pipeline.registry)
    try:
        state.publisher.tag(f"{repository(target, pipeline.registry)}@{previous.digest}", [reference])
    except EngineError as error:
        outcome.why += f"; its earlier image could not be tagged again ({error})"
        return None
    record = cutoff.cut_record(target, pipeline, previous, digests, why)
    life.put_record(record)
    outcome.reference, outcome.digest, outcome.why = reference, previous.digest, why
    outcome.pushed, outcome.status = True, Status.REUSED
    return record


def build_epoch(state: RunState, target_id: str, record: BuildRecord | None) -> str:
    """SOURCE_DATE_EPOCH of a build: its fingerprint's earlier build's, else $SOURCE_DATE_EPOCH, else the target's
    latest build's (so an input change that leaves the image alone, a comment, gives the same digest), else the
    run's (the commit time, or 0)."""
    if record is not None and record.source_date_epoch:
        return record.source_date_epoch
    lookup = None if state.options.epoch_given or state.forced(target_id) else state.assessments.get(target_id)
    previous = lookup.result().previous if lookup is not None else None
    return previous.source_date_epoch if previous and previous.source_date_epoch else state.options.source_date_epoch


def _digest(reference: str) -> str:
    """The digest a reference pins (a tag reference, for a parent kept locally, as it is)."""
    return reference.rpartition("@")[2] if "@" in reference else reference


def parent_references(state: RunState, target: Target, engine: RetryingEngine) -> dict[str, str]:
    """How the build refers to each parent: as built (or handed on) in this run, or already in the registry."""
    references = {}
    for parent_id in image_parents(target):
        parent = state.outcomes.get(parent_id)
        references[parent_id] = parent.built_as if parent else _existing(state, parent_id, engine)
    return references


def parent_digests(state: RunState, parents: Mapping[str, str]) -> dict[str, str]:
    """The digest of each parent: of this run's image (even when the build named it by its local tag), or the
    one its reference pins (a tag, for a parent kept locally)."""
    outcomes = state.outcomes
    return {
        parent: outcomes[parent].digest if parent in outcomes and outcomes[parent].digest else _digest(reference)
        for parent, reference in parents.items()
    }


def _existing(state: RunState, parent_id: str, engine: RetryingEngine) -> str:
    """A parent outside the selection: its image from an earlier run, found by its content tag."""
    pipeline = state.pipeline
    parent = pipeline.targets[parent_id]
    reference = content_reference(parent, pipeline.registry)
    if not state.pushes(parent):
        return reference
    digest = engine.manifest_digest(reference)
    if digest is None:
        missing = f"parent {parent_id} is not built ({reference} is not in the registry)"
        if state.options.only:
            raise failed(
                FailureKind.PARENT, f"{missing}: build it first: buildflow build --only {shlex.quote(parent_id)}"
            )
        raise failed(FailureKind.PARENT, f"{missing}; select it too: buildflow build {parent_id.split('[', 1)[0]}")
    return pinned(reference, digest)


def check_local_parents(state: RunState, engine: RetryingEngine, parents: Mapping[str, str]) -> None:
    """A parent handed on from this builder's store (not pushed yet) is named by its content tag: that tag must
    still hold exactly the image built, or the child would build on something else."""
    for parent_id, reference in parents.items():
        parent = state.outcomes.get(parent_id)
        if parent is None or parent.pushed or "@" in reference or not state.pushes(parent.target):
            continue
        found = engine.local_digest(reference)
        if found != parent.digest:
            raise failed(FailureKind.PARENT, f"{reference} holds {found}, not {parent_id}'s {parent.digest}")
