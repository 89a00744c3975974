"""Seeing a run: one structlog event per state change, and a live table on a terminal (rich)."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from buildflow import log
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
_COLOURS = {
    Status.QUEUED: "dim",
    Status.RUNNING: "cyan",
    Status.BUILT: "green",
    Status.REUSED: "green",
    Status.FAILED: "bold red",
    Status.BLOCKED: "yellow",
    Status.CANCELLED: "yellow",
    Status.INTERRUPTED: "yellow",
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
    """The events sink of a run: structlog events, plus a live table when `live` is set."""

    def __init__(self, *, live: bool = False) -> None:
        self.lock = threading.Lock()
        self.outcomes: dict[str, Outcome] = {}
        self.testing: set[str] = set()  # targets whose image tests are running
        self.view: Any = None
        if live:
            from rich.console import Console
            from rich.live import Live

            self.view = Live(
                console=Console(file=sys.stderr), refresh_per_second=4, transient=True, get_renderable=self._table
            )

    def __enter__(self) -> Progress:
        if self.view is not None:
            self.view.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.view is not None:
            self.view.stop()

    def __call__(self, name: str, outcome: Outcome, **extra: Any) -> None:
        """Record one state change of a target."""
        self.outcomes.setdefault(outcome.target.id, outcome)
        if name == "testing":
            self.testing.add(outcome.target.id)
        else:
            self.testing.discard(outcome.target.id)
        level = _LEVELS.get(name, "info")
        with self.lock:
            if self.view is None:
                log.event(level, f"target.{name}", **event_fields(name, outcome, extra))
            elif level != "info":
                detail = extra.get("error") or outcome.error
                colour, target = _COLOURS[outcome.status], escape(outcome.target.id)
                self.view.console.print(f"[{colour}]{name}[/] {target}: {escape(str(detail))}")
                if name == "failed" and outcome.failure:
                    for line in outcome.failure.details():
                        self.view.console.print(f"    {escape(line)}", highlight=False)

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
        for column in ("TARGET", "STATUS", "BUILDER", "TIME", "DETAIL"):
            table.add_column(column)
        now = time.time()
        for outcome in list(self.outcomes.values()):
            elapsed = (outcome.finished or now) - outcome.started if outcome.started else 0
            detail = short_digest(outcome.digest) if outcome.digest else outcome.error
            if outcome.target.id in self.testing:
                detail = f"testing {detail}"
            table.add_row(
                escape(outcome.target.id),
                f"[{_COLOURS[outcome.status]}]{outcome.status}[/]",
                escape(outcome.builder),
                f"{elapsed:.1f}s" if outcome.started else "",
                escape(detail),
            )
        return table
