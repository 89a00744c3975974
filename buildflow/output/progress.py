"""Seeing a run: one structlog event per state change (plain), only the warnings and errors among them (quiet), or
on a terminal the live view (tty: output/live.py) with the warnings and errors printed above it."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from buildflow import log
from buildflow.output.live import COLOURS, Board, Entry
from buildflow.output.report import short_digest
from buildflow.run.outcome import Outcome, Status

_LEVELS = {
    "failed": "error",
    "blocked": "warning",
    "cancelled": "warning",
    "interrupted": "warning",
    "retrying": "warning",
    "builder_lost": "error",
    "requeued": "warning",
}


def escape(text: str) -> str:
    """Text that rich shows as it is (target ids contain [brackets], which rich reads as markup), secrets masked."""
    from rich.markup import escape as rich_escape

    return rich_escape(log.masked(text))


def event_fields(name: str, outcome: Outcome, extra: dict[str, Any]) -> dict[str, Any]:
    """The fields of a target's event."""
    fields: dict[str, Any] = {"target": outcome.target.id, "status": str(outcome.status)}
    if outcome.builder:
        fields["builder"] = outcome.builder
    if name in ("built", "reused"):
        fields.update(digest=outcome.digest, reference=outcome.reference, pushed=outcome.pushed, why=outcome.why)
    if name == "built":
        fields.update(seconds=round(outcome.seconds, 2), cached_steps=outcome.cached_steps, steps=outcome.total_steps)
    elif name in ("failed", "blocked", "cancelled", "interrupted"):
        fields["error"] = outcome.error
        if name == "failed":
            fields.update(seconds=round(outcome.seconds, 2), attempts=outcome.attempts)
            fields.update(_failure_fields(outcome))
    elif name == "released":
        fields["tags"] = list(outcome.released)
    return {**fields, **extra}


def _failure_fields(outcome: Outcome) -> dict[str, Any]:
    """A failed target's failing step, the last lines of its output (one string) and the file with all of it."""
    failure = outcome.failure
    if failure is None:
        return {}
    fields = {"step": failure.step, "log_tail": "\n".join(failure.tail), "log": failure.log}
    return {key: value for key, value in fields.items() if value}


class Progress:
    """The events sink of a run, by mode: one log line per event (plain), the warnings and errors alone
    (quiet), or the live view (tty) with the warnings and errors printed above it. Thread-safe; the view draws
    what the run already knows (no engine call), and an error drawing it never stops the run."""

    def __init__(
        self, mode: str = "plain", *, step: Callable[[str], str] | None = None, pushes: bool = True, console: Any = None
    ) -> None:
        self.mode = mode
        self.step = step or (lambda target_id: "")  # a target's current build step: RunLogs.step
        self.pushes = pushes  # False with --no-push: a built image is never shown as pushing
        self.lock = threading.Lock()  # guards what follows; never held while something is drawn or printed
        self.outcomes: dict[str, Outcome] = {}
        self.testing: dict[str, int] = {}  # targets whose image tests run, and how many tests
        self.printing = threading.Lock()  # one event's lines at a time
        self.view: Any = _live(self.board, console) if mode == "tty" else None

    def __enter__(self) -> Progress:
        if self.view is not None:
            try:
                self.view.start()
            except Exception as error:  # no live view on this terminal: log lines instead
                self.view, self.mode = None, "plain"
                log.event("warning", "progress.plain", error=str(error), effect="one log line per change instead")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.view is not None:
            with contextlib.suppress(Exception):
                self.view.stop()

    def __call__(self, name: str, outcome: Outcome, **extra: Any) -> None:
        """Record one state change of a target, and say it as the mode says."""
        target_id = outcome.target.id
        with self.lock:
            self.outcomes.setdefault(target_id, outcome)
            if name == "testing":
                self.testing[target_id] = int(extra.get("tests", 0))
            else:
                self.testing.pop(target_id, None)
        level = _LEVELS.get(name, "info")
        if level == "info" and self.mode != "plain":
            return
        with self.printing:
            if self.view is None or not self._printed_above(name, outcome, extra):
                log.event(level, f"target.{name}", **event_fields(name, outcome, extra))

    def _printed_above(self, name: str, outcome: Outcome, extra: dict[str, Any]) -> bool:
        """Print a warning or an error above the live view, with a failure's step and last lines; False when the
        console cannot print it (the event is logged instead)."""
        detail = extra.get("error") or outcome.error
        try:
            console = self.view.console
            console.print(f"[{COLOURS[outcome.status]}]{name}[/] {escape(outcome.target.id)}: {escape(str(detail))}")
            if name == "failed" and outcome.failure:
                for line in outcome.failure.details():
                    console.print(f"    {escape(line)}", highlight=False)
        except Exception:
            return False
        return True

    def board(self) -> Any:
        """The live view now, from a snapshot of every target (a line saying why, if it cannot be taken)."""
        try:
            now = time.time()
            with self.lock:
                outcomes, testing = list(self.outcomes.values()), dict(self.testing)
            return Board([self._entry(outcome, testing, now) for outcome in outcomes])
        except Exception as error:  # the view must never stop the run
            from rich.text import Text

            return Text(f"(the live view cannot be drawn: {error})")

    def _entry(self, outcome: Outcome, testing: dict[str, int], now: float) -> Entry:
        """A target as the view shows it now."""
        started = outcome.started
        seconds = (outcome.finished or now) - started if started else None
        running = outcome.status == Status.RUNNING
        detail = self._doing(outcome, testing) if running else outcome.error or _digest(outcome)
        return Entry.of(
            outcome.target.id, outcome.status, builder=outcome.builder, seconds=seconds, detail=detail, started=started
        )

    def _doing(self, outcome: Outcome, testing: dict[str, int]) -> str:
        """What a running target does now: its image tests, its push, or its build's current step."""
        target_id = outcome.target.id
        if target_id in testing:
            count = testing[target_id]
            return f"testing {_digest(outcome)} ({count} test{'' if count == 1 else 's'})"
        if not outcome.digest:
            return self.step(target_id) or "starting"
        if not outcome.pushed and self.pushes and outcome.target.push:
            return "pushing"
        return f"{'pushed' if outcome.pushed else 'built'} {_digest(outcome)}"


def _digest(outcome: Outcome) -> str:
    """A target's digest, short ('' before it has one)."""
    return short_digest(outcome.digest) if outcome.digest else ""


def _live(board: Callable[[], Any], console: Any) -> Any:
    """A rich Live that draws the board 4 times a second on stderr, and takes it away at the end (the summary
    follows); the console counts as a terminal, since tty was chosen."""
    from rich.console import Console
    from rich.live import Live

    console = console or Console(file=sys.stderr, force_terminal=True)
    return Live(console=console, refresh_per_second=4, transient=True, get_renderable=board)
