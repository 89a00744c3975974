"""Errors users see: one line each, no traceback, a documented exit code."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

EXIT_OK = 0
EXIT_TARGET_FAILED = 1
EXIT_INVALID = 2
EXIT_INTERNAL = 3
EXIT_LOCKED = 4
EXIT_INTERRUPTED = 130  # SIGINT: 128 + its number, as shells report it

FieldPath = tuple[str | int, ...]


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.-]+")


def format_path(path: FieldPath) -> str:
    """Render ('targets', 'cuda', 'from', 0) as targets.cuda.from[0]; unusual keys are quoted."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not _PLAIN_KEY.fullmatch(part):
            text += f"[{json.dumps(part)}]"
        else:
            text += f".{part}" if text else part
    return text


def printable(text: str) -> str:
    """Text with control characters escaped, so that one problem stays on one line."""
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def quoted(text: str, limit: int = 80) -> str:
    """Text in quotes for a message, cut short (with its length) when it is long."""
    if len(text) <= limit:
        return f"'{text}'"
    return f"'{text[: limit - 20]}...' ({len(text):,} characters)"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ' — did you mean 'x'?' when a close choice exists, else ''."""
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" — did you mean '{close[0]}'?" if close else ""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: where it is and what to do about it."""

    message: str
    path: FieldPath = ()
    file: str = ""
    line: int | None = None

    def render(self) -> str:
        """One line: file:line: field: message."""
        where = self.file + (f":{self.line}" if self.line else "")
        field_text = format_path(self.path)
        return printable(": ".join(part for part in (where, field_text, self.message) if part))


class BuildflowError(Exception):
    """An error the user can fix; the CLI prints it without a traceback."""

    exit_code = EXIT_INVALID

    def lines(self) -> list[str]:
        """The lines to print, one per problem."""
        return [str(self)]


@dataclass
class PipelineError(BuildflowError):
    """One or more problems in a pipeline file, all reported together."""

    problems: Sequence[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__("\n".join(self.lines()))

    def ordered(self) -> list[Problem]:
        """The problems in file order."""
        return sorted(self.problems, key=lambda p: (p.line or 0, format_path(p.path)))

    def lines(self) -> list[str]:
        """One rendered line per problem, in file order."""
        return [problem.render() for problem in self.ordered()]


class UsageError(BuildflowError):
    """A command line that cannot be carried out (unknown target, bad --var)."""


class EngineUnavailable(BuildflowError):
    """No engine to build with: nothing can be built (exit 1)."""

    exit_code = EXIT_TARGET_FAILED


class RunFailed(BuildflowError):
    """A run in which some target was not built, or the release was not applied (exit 1)."""

    exit_code = EXIT_TARGET_FAILED


class LockBusy(BuildflowError):
    """Another run of the same pipeline and registry holds the lock, and --no-wait was given (exit 4)."""

    exit_code = EXIT_LOCKED


class Interrupted(BuildflowError):
    """A run stopped by SIGINT or SIGTERM: exit 128 + the signal's number (130, 143), as shells report it."""

    def __init__(self, message: str, signal_number: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signal_number
