"""The live view of a run on a terminal: what runs now, with its current step, first; then what failed, with its
error; then the rest as rows while the terminal has room for them, else as counts (12 built · 3 reused · 20 queued).

A Board is a snapshot taken at one refresh (no engine call, no lock held while it is drawn); it lays itself out to
the console's height and width when rich draws it, and draws a line of its own rather than raise.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from buildflow import log
from buildflow.run.outcome import Status

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult

COLOURS = {
    Status.QUEUED: "dim",
    Status.RUNNING: "cyan",
    Status.BUILT: "green",
    Status.REUSED: "green",
    Status.FAILED: "bold red",
    Status.BLOCKED: "yellow",
    Status.CANCELLED: "yellow",
    Status.INTERRUPTED: "yellow",
}
_COUNTED = (
    Status.RUNNING,
    Status.FAILED,
    Status.BUILT,
    Status.REUSED,
    Status.QUEUED,
    Status.BLOCKED,
    Status.CANCELLED,
    Status.INTERRUPTED,
)
_HEADER = ("TARGET", "STATUS", "BUILDER", "TIME", "DETAIL")


@dataclass(frozen=True)
class Entry:
    """One target as the view shows it at one refresh: texts already masked, its time in seconds (None before it
    started), and when it started (running targets are shown oldest first)."""

    target: str
    status: Status
    builder: str = ""
    seconds: float | None = None
    detail: str = ""
    started: float = 0.0

    @classmethod
    def of(
        cls, target: str, status: Status, *, builder: str, seconds: float | None, detail: str, started: float
    ) -> Entry:
        """An entry with its texts masked and its detail cut to one line."""
        line = detail.splitlines()[0] if detail else ""
        return cls(log.masked(target), status, log.masked(builder), seconds, log.masked(line), started)


def layout(entries: Sequence[Entry], height: int) -> tuple[list[Entry], str]:
    """The rows shown in `height` lines, a header line included: running targets first, then failures, then the
    rest; when they do not all fit, running and failed ones while there is room, and the counts of the others
    ('' when everything fits). The last line is left to the cursor."""
    running = sorted((entry for entry in entries if entry.status == Status.RUNNING), key=lambda entry: entry.started)
    failed = [entry for entry in entries if entry.status == Status.FAILED]
    rest = [entry for entry in entries if entry.status not in (Status.RUNNING, Status.FAILED)]
    room = height - 1
    if len(entries) + 1 <= room:
        return running + failed + rest, ""
    shown = (running + failed)[: max(room - 2, 0)]
    return shown, counts(entries, shown)


def counts(entries: Sequence[Entry], shown: Sequence[Entry]) -> str:
    """How many targets of each status are not shown as rows: '2 more running · 12 built · 20 queued'."""
    shown_targets = {entry.target for entry in shown}
    hidden = Counter(entry.status for entry in entries if entry.target not in shown_targets)
    partly = {entry.status for entry in shown}
    return " · ".join(
        f"{hidden[status]} {'more ' if status in partly else ''}{status.lower()}"
        for status in _COUNTED
        if hidden[status]
    )


class Board:
    """The live view at one refresh, laid out to the console it is drawn on."""

    def __init__(self, entries: Sequence[Entry]) -> None:
        self.entries = entries

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """The table of the rows that fit, then the counts of the others; a line saying why, if it cannot be drawn."""
        from rich.text import Text

        try:
            rows, summary = layout(self.entries, options.max_height)
            drawn: list[Any] = [_table(rows)] if rows else []
            drawn += [Text(summary)] if summary else []
        except Exception as error:  # the view must never stop the run
            drawn = [Text(f"(the live view cannot be drawn: {error})")]
        yield from drawn


def duration(seconds: float) -> str:
    """12.3s, 4m05s, 2h03m."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes = int(seconds) // 60
    return f"{minutes}m{int(seconds) % 60:02}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02}m"


def _table(rows: Sequence[Entry]) -> Any:
    """The rows as a table as wide as the console: each cell on one line, the detail cut to what is left."""
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, expand=True, show_header=True, header_style="bold")
    for column in _HEADER[:-1]:
        table.add_column(column, no_wrap=True)
    table.add_column(_HEADER[-1], no_wrap=True, overflow="ellipsis", ratio=1)
    for row in rows:
        table.add_row(
            Text(row.target),
            Text(str(row.status), style=COLOURS[row.status]),
            Text(row.builder),
            Text("" if row.seconds is None else duration(row.seconds)),
            Text(row.detail),
        )
    return table
