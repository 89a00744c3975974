"""A run as the HTML report draws it: one row per target (status, parents, phases, size, failure), its place in
the DAG, and the critical path; made from a build's or release's result, or from the results of image tests."""

from __future__ import annotations

import dataclasses
import functools
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import networkx as nx

from buildflow.model import Target
from buildflow.output.report import detail, held_heading, held_lines, run_status, totals, unreleased
from buildflow.plan.planner import Plan
from buildflow.quality.summary import SizeSummary
from buildflow.run.failures import Failure, FailureKind
from buildflow.run.imagetests import TestResult, failure, summary
from buildflow.run.outcome import Outcome, Phase, RunResult, Status, TagState


def status_class(status: str) -> str:
    """A status as a class name: BUILT built, NOT RUN not-run."""
    return status.lower().replace(" ", "-")


@dataclass(frozen=True)
class Row:
    """One target as the report shows it; times in seconds since the run's first moment (RunView.origin)."""

    id: str
    status: str  # the status as shown: BUILT, FAILED, ... (image tests: PASSED, FAILED, NOT RUN, NO TESTS)
    parents: tuple[tuple[str, str], ...] = ()  # (parent id, edge kind) of the parents in the selection
    spans: tuple[Phase, ...] = ()
    detail: str = ""  # one line: the tags and why, or the error
    digest: str = ""
    size: SizeSummary | None = None
    failure: Failure | None = None

    @property
    def css(self) -> str:
        """The status as a class name: built, failed, not-run."""
        return status_class(self.status)

    @property
    def busy(self) -> float:
        """Seconds it was worked on: every phase but waiting for a builder."""
        return sum(span.end - span.start for span in self.spans if span.phase != "waiting")

    @property
    def end(self) -> float:
        """When its last phase ended (0 when it never ran)."""
        return max((span.end for span in self.spans), default=0.0)

    @property
    def failed(self) -> bool:
        """True for a row whose failure the report shows with its step and last lines."""
        return self.failure is not None and self.status in ("FAILED", "NOT RUN")


@dataclass(frozen=True)
class RunView:
    """What the report shows of a run: its headline, every target's row, and the critical path."""

    command: str  # build, release, test
    verdict: str  # succeeded, failed, interrupted
    pipeline: str
    registry: str
    run_id: str
    seconds: float
    totals: str  # '2 built, 1 failed in 12.3s.'
    rows: tuple[Row, ...]
    origin: float = 0.0  # the run's first moment, seconds since the epoch (0: nothing ran)
    notes: tuple[str, ...] = ()  # the release, in a sentence or two
    finished: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))

    @functools.cached_property
    def critical(self) -> tuple[str, ...]:
        """The critical path: the chain of targets, each a parent of the next, with the most seconds of work
        (waiting left out) among those ending at the target that finished last."""
        return critical_path(self.rows)

    @functools.cached_property
    def generations(self) -> list[list[str]]:
        """The targets by generation in the selection (parents outside it left out), each in plan order."""
        graph = nx.DiGraph()
        graph.add_nodes_from(row.id for row in self.rows)
        graph.add_edges_from((parent, row.id) for row in self.rows for parent, _ in row.parents)
        order = {row.id: index for index, row in enumerate(self.rows)}
        return [sorted(generation, key=order.__getitem__) for generation in nx.topological_generations(graph)]


def critical_path(rows: Sequence[Row]) -> tuple[str, ...]:
    """The heaviest chain of parents (by busy seconds) ending at the row that finished last; rows in plan order
    (parents first). Empty when nothing ran."""
    best: dict[str, tuple[float, str]] = {}  # row id -> (seconds of its heaviest chain, the parent on it or '')
    for row in rows:
        if row.spans:
            heaviest = max(((best[p][0], p) for p, _ in row.parents if p in best), default=(0.0, ""))
            best[row.id] = (heaviest[0] + row.busy, heaviest[1])
    if not best:
        return ()
    last = max((row for row in rows if row.id in best), key=lambda row: row.end).id
    path = [last]
    while best[path[-1]][1]:
        path.append(best[path[-1]][1])
    return tuple(reversed(path))


# ---- a build or a release -----------------------------------------------------------------------------------


def run_view(plan: Plan, result: RunResult, command: str = "build") -> RunView:
    """The view of a build's or a release's result."""
    outcomes = list(result.outcomes.values())
    moments = [moment for outcome in outcomes for moment in _moments(outcome)]
    origin = min(moments, default=0.0)
    selected = set(result.outcomes)
    return RunView(
        command=command,
        verdict=run_status(result),
        pipeline=str(plan.pipeline.file),
        registry=plan.pipeline.registry,
        run_id=result.run_id,
        seconds=result.seconds,
        totals=totals(result),
        rows=tuple(_row(outcome, selected, origin) for outcome in outcomes),
        origin=origin,
        notes=_release_notes(result),
    )


def _moments(outcome: Outcome) -> list[float]:
    """When the target's time in the run began: when it was ready, or started."""
    return [moment for moment in (outcome.ready, outcome.started) if moment]


def _row(outcome: Outcome, selected: set[str], origin: float) -> Row:
    """One target of a build or release."""
    spans = tuple(Phase(span.phase, span.start - origin, span.end - origin) for span in outcome.timeline())
    return Row(
        id=outcome.target.id,
        status=str(outcome.status),
        parents=_parents(outcome.target, selected),
        spans=spans,
        detail=detail(outcome),
        digest=outcome.digest,
        size=outcome.size,
        failure=outcome.failure if outcome.status == Status.FAILED else None,
    )


def _parents(target: Target, selected: set[str]) -> tuple[tuple[str, str], ...]:
    """The target's parents in the selection, each with its edge kind."""
    return tuple((edge.parent, str(edge.kind)) for edge in target.parents if edge.parent in selected)


def _release_notes(result: RunResult) -> tuple[str, ...]:
    """What became of the release tags."""
    held = (held_heading(result), *held_lines(result)) if result.held else ()
    if result.released:
        moved = sum(1 for move in result.tags if move.state == TagState.MOVED)
        return (f"Release tags applied: {moved} moved, {len(result.tags) - moved} already in place.", *held)
    return (*(line for line in [unreleased(result)] if line), *held)


# ---- image tests --------------------------------------------------------------------------------------------


def image_tests_view(
    plan: Plan,
    found: tuple[Mapping[str, Sequence[TestResult]], Mapping[str, str]],
    chosen: Sequence[str],
    run_id: str = "",
) -> RunView:
    """The view of `buildflow test`: a row per image chosen (in plan order), its tests as its one phase; `found` is
    the results of each image's tests, and why some could not run."""
    results, problems = found
    ran = [result for tests in results.values() for result in tests if result.started]
    origin = min((result.started for result in ran), default=0.0)
    end = max((result.started + result.seconds for result in ran), default=origin)
    selected = set(chosen)
    rows = tuple(
        _test_row(step.target.id, results.get(step.target.id, ()), problems.get(step.target.id, ""), origin)
        for step in plan.steps
        if step.target.id in selected
    )
    rows = tuple(dataclasses.replace(row, parents=_parents(plan.pipeline.targets[row.id], selected)) for row in rows)
    counts = Counter(row.status.lower() for row in rows)
    return RunView(
        command="test",
        verdict="failed" if any(row.failed for row in rows) else "succeeded",
        pipeline=str(plan.pipeline.file),
        registry=plan.pipeline.registry,
        run_id=run_id,
        seconds=end - origin,
        totals=f"{', '.join(f'{n} {status}' for status, n in counts.items()) or 'no targets'} in {end - origin:.1f}s.",
        rows=rows,
        origin=origin,
    )


def _test_row(target_id: str, results: Sequence[TestResult], problem: str, origin: float) -> Row:
    """One target of a test run: its tests' time as one testing phase, the first failed test as its failure."""
    if problem:
        return Row(target_id, "NOT RUN", detail=problem, failure=Failure(FailureKind.NOT_READY, problem))
    if not results:
        return Row(target_id, "NO TESTS", detail="no tests")
    ran = [result for result in results if result.started]
    begin, end = min((r.started for r in ran), default=0.0), max((r.started + r.seconds for r in ran), default=0.0)
    spans = (Phase("testing", begin - origin, end - origin),) if ran else ()
    found = failure(target_id, list(results))
    detail = found.message if found else summary(list(results))
    return Row(target_id, "FAILED" if found else "PASSED", spans=spans, detail=detail, failure=found)
