"""What a run is asked to do and what came of it: options, each target's outcome, typed failures, the result."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from buildflow.model import RetryPolicy, Target
from buildflow.references import pinned
from buildflow.run.failures import Failure, FailureKind
from buildflow.run.naming import BuildOptions

if TYPE_CHECKING:
    from buildflow.quality.lint import Finding
    from buildflow.quality.summary import SizeSummary
    from buildflow.run.imagetests import TestResult


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
    epoch_given: bool = False  # source_date_epoch is $SOURCE_DATE_EPOCH: it wins over the latest build's
    layer_cache: Path | None = None  # where layer listings are kept between runs; None: in memory only
    builders: tuple[str, ...] = ()  # the builders chosen (--builder, the file's builders:); empty: the current one
    only: bool = False  # --only: the plan is exactly the named images; their other parents come from the registry
    release: bool = True  # False (--no-release): build, push and record, but move no release tag
    early_cutoff: bool = True  # False (--no-early-cutoff): a parent's new fingerprint rebuilds its children


@dataclass(frozen=True)
class Phase:
    """A stretch of a target's time in a run: the phase, when it began and ended (seconds since the epoch)."""

    phase: str
    start: float
    end: float

    def to_json(self) -> dict[str, object]:
        """The phase in the JSON report."""
        return {"phase": self.phase, "start": round(self.start, 3), "end": round(self.end, 3)}


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
    failure: Failure | None = None
    released: tuple[str, ...] = ()
    why: str = ""  # why it was built, or why it was reused
    tests: list[TestResult] = field(default_factory=list)
    size: SizeSummary | None = None  # the size and waste summary of a pushed image
    builder: str = ""  # the builder it was built (or reused) on; "" before it started
    handed_on: float = 0.0  # when children could first start on its image (0: never)
    log: str = ""  # the file holding its whole builder output, when it was built
    ready: float = 0.0  # when its parents were handed on and it waited only for a builder (0: never)
    phases: list[tuple[str, float]] = field(default_factory=list)  # (building, testing, pushing; when it began)

    def again(self) -> None:
        """Queue the target again, as if it had not started (its retries are kept): its builder was lost."""
        retries = self.retries
        fresh = Outcome(self.target)
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(fresh, name))
        self.retries = retries + 1

    def enter(self, phase: str) -> None:
        """Note that the target's life enters a phase now: building, testing or pushing."""
        self.phases.append((phase, time.time()))

    def timeline(self) -> list[Phase]:
        """Its time in the run, phase by phase: waiting for a builder (from ready to started), checking (from
        started to its first phase: the registry lookup, all of a reused image's life), then each phase until the
        next began or the target finished. Phases that took no time are left out; none for a target never started."""
        if not self.started:
            return []
        marks = [("checking", self.started), *self.phases, ("", self.finished or self.started)]
        spans = [Phase("waiting", self.ready, self.started)] if self.ready else []
        spans += [Phase(name, start, end) for (name, start), (_, end) in itertools.pairwise(marks)]
        return [span for span in spans if span.end > span.start]

    @property
    def error(self) -> str:
        """Why the target did not succeed, in one line ('' when it did)."""
        return self.failure.message if self.failure else ""

    def end(self, status: Status, kind: FailureKind, message: str) -> None:
        """Mark the target as not succeeded, and why."""
        self.status, self.failure = status, Failure(kind, message)

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


class TagState(StrEnum):
    """Where a release tag ended."""

    MOVED = "moved"  # now points at the image built or reused in this run
    UNCHANGED = "unchanged"  # already pointed at it
    NOT_MOVED = "not moved"  # never touched: the release stopped first
    FAILED = "failed"  # could not be moved; it keeps its old digest (or stays absent)
    RESTORED = "restored"  # moved, then put back to its old digest
    REMOVED = "removed"  # created, then deleted again
    LEFT = "left"  # moved or created, and could not be put back: it points at the new image


@dataclass
class TagMove:
    """One release tag: the target it belongs to, the digest it moves to, the one it had, and where it ended."""

    target: str
    tag: str
    digest: str
    source: str  # the image as pushed, repository@digest: what the tag is copied from
    before: str | None = None  # None: the tag did not exist
    state: TagState = TagState.NOT_MOVED
    error: str = ""

    @property
    def new(self) -> bool:
        """True for a tag that did not exist before this release."""
        return self.before is None

    def to_json(self) -> dict[str, object]:
        """The tag in the JSON report."""
        return {
            "target": self.target,
            "tag": self.tag,
            "digest": self.digest,
            "before": self.before,
            "state": str(self.state),
            "error": self.error or None,
        }


@dataclass
class RunResult:
    """Every target's outcome, and whether the release tags were applied."""

    outcomes: dict[str, Outcome]
    seconds: float
    released: bool = False
    release_error: str = ""
    release_skipped: str = ""  # why no release was tried although it could have been (--no-release)
    lint: tuple[Finding, ...] = ()  # the Dockerfile lint findings of the run
    tags: list[TagMove] = field(default_factory=list)  # every release tag, and where it ended
    run_id: str = ""  # names the run in reports and logs (its builder output is under logs/RUN_ID)
    policy: str = "all"  # the release policy of the run: all or per-target
    held: dict[str, str] = field(default_factory=dict)  # target id -> why its release tags did not move

    @property
    def ok(self) -> bool:
        """True when every target was built and the release went through."""
        return all(o.succeeded for o in self.outcomes.values()) and not self.release_error


Events = Callable[..., None]  # (event name, outcome, **fields)
