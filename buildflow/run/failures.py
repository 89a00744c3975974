"""Why a target did not succeed, typed: which part of its life failed, in one line, with its last output."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

TAIL_LINES = 30  # lines of a failing step's (or test's) output shown in every report
LINE_CHARACTERS = 1000  # a longer line is shown cut (the log file keeps it whole)


class FailureKind(StrEnum):
    """Which part of a target's life did not succeed."""

    BUILD = "build"  # the build itself (a RUN failed, the Dockerfile does not parse)
    PUSH = "push"  # the push, or the registry holding another digest than the one built
    TEST = "test"  # an image test failed or timed out
    BUDGET = "budget"  # the image is over its size budget, or its size could not be checked
    SECRET = "secret"  # a declared secret has no value to hand to the build
    PARENT = "parent"  # a parent outside the selection is not built
    NOT_READY = "not ready"  # buildflow release: not built, recorded or tested for its current inputs
    ENGINE = "engine"  # the engine or registry could not be asked (not logged in, not answering)
    BLOCKED = "blocked"  # a parent failed
    CANCELLED = "cancelled"  # an earlier failure stopped the run
    INTERRUPTED = "interrupted"  # SIGINT or SIGTERM


@dataclass(frozen=True)
class Failure:
    """Why a target did not succeed: what failed, in one line, and the last lines of its output when there are any."""

    kind: FailureKind
    message: str
    log_tail: tuple[str, ...] = ()
    transient: bool = False  # a re-run may succeed (an engine or registry that did not answer)
    step: str = ""  # what failed: 'Dockerfile:3: [2/3] RUN make', 'test `pytest -q`'
    log: str = ""  # the file that holds the whole output, when there is one

    @property
    def tail(self) -> tuple[str, ...]:
        """The last lines of the failing step's output, as every report shows them (very long lines cut)."""
        return tuple(_cut(line) for line in self.log_tail[-TAIL_LINES:])

    def details(self) -> list[str]:
        """What failed and its last lines, for people: the step, its output, then the file with all of it."""
        lines = [f"failed at {self.step}"] if self.step else []
        lines += [f"| {line}" for line in self.tail]
        return lines + ([f"whole output: {self.log}"] if self.log else [])

    def to_json(self) -> dict[str, object]:
        """The failure in the JSON report."""
        return {
            "kind": str(self.kind),
            "message": self.message,
            "step": self.step or None,
            "log_tail": list(self.tail),
            "log": self.log or None,
        }

    def __str__(self) -> str:
        return self.message


class TargetFailed(Exception):
    """Raised inside one target's life to end it with a Failure (never out of the scheduler)."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def _cut(line: str) -> str:
    """A line of output, cut to LINE_CHARACTERS with a note saying so."""
    if len(line) <= LINE_CHARACTERS:
        return line
    return line[:LINE_CHARACTERS] + f" ... ({len(line) - LINE_CHARACTERS} more characters)"
