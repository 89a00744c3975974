"""The beginning and end of a build, release or test as events, for machines that read --log-format json:
`run.started` (run id, command, pipeline file, selection, targets, builders) and `run.finished` (counts per
status, released or not, exit code, seconds), whatever the end: success, failure, signal or bug."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from buildflow import log
from buildflow.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, BuildflowError

if TYPE_CHECKING:
    from buildflow.cli.options import PipelineOptions
    from buildflow.plan.planner import Plan
    from buildflow.run.imagetests import TestResult
    from buildflow.run.outcome import RunResult


@dataclass
class RunEnd:
    """What run.finished says besides the exit code and the time: filled in by the command as it learns it."""

    fields: dict[str, Any] = field(default_factory=dict)


@contextmanager
def run_events(command: str, run_id: str, plan: Plan, options: PipelineOptions, **started: Any) -> Iterator[RunEnd]:
    """run.started now; run.finished when the block ends, with the exit code it ends with (0, or its error's)."""
    begun = time.monotonic()
    targets = [step.target.id for step in plan.steps]
    log.event("info", "run.started", run_id=run_id, command=command, file=str(options.file), targets=targets, **started)
    end = RunEnd()
    code = EXIT_INTERNAL
    try:
        yield end
        code = 0
    except BuildflowError as error:
        code = error.exit_code
        raise
    except (KeyboardInterrupt, click.exceptions.Abort):
        code = EXIT_INTERRUPTED
        raise
    finally:
        seconds = round(time.monotonic() - begun, 3)
        log.event("info", "run.finished", run_id=run_id, command=command, exit_code=code, seconds=seconds, **end.fields)


def selection(**given: Sequence[str] | str | None) -> dict[str, Any]:
    """The selection as given on the command line (TARGET arguments, --downstream, --since, --only), those given."""
    return {name: list(value) if isinstance(value, tuple | list) else value for name, value in given.items() if value}


def run_counts(result: RunResult) -> dict[str, Any]:
    """A build's or release's end: how many targets, how many in each status, and whether the release was tagged."""
    counts = Counter(str(outcome.status) for outcome in result.outcomes.values())
    return {"targets": len(result.outcomes), "counts": dict(sorted(counts.items())), "released": result.released}


def image_test_counts(results: Mapping[str, Sequence[TestResult]], problems: Mapping[str, str]) -> dict[str, Any]:
    """A test run's end: how many tests passed, failed or were skipped, and how many targets could not be tested."""
    counts = Counter(result.status for found in results.values() for result in found)
    return {"counts": dict(sorted(counts.items())), "not_tested": len(problems)}
