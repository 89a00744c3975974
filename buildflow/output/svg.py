"""The pictures of the HTML report, as inline SVG: the DAG laid out by generation (left to right), coloured by
status, and the timeline of the run (one bar per target, a segment per phase), the critical path marked in both."""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Sequence

from buildflow import log
from buildflow.output.report import printable
from buildflow.output.runview import Row, RunView
from buildflow.run.outcome import Phase

CHAR = 7.3  # the width of one character of the 12px monospace font the SVGs use
NAME_CHARACTERS = 34  # a longer target id is cut (with …) in a picture; its tooltip has it whole
NODE_HEIGHT, NODE_GAP, COLUMN_GAP, MARGIN = 50, 16, 64, 16
ROW_HEIGHT, AXIS_HEIGHT, PLOT_WIDTH = 28, 34, 860
FIT_WIDTH = 2400  # a wider picture is not shrunk to the page (its text would be too small to read): it scrolls
PHASES = ("waiting", "checking", "building", "testing", "pushing")


def text(value: str) -> str:
    """Text (from a pipeline, a builder's output) safe in HTML and SVG: control characters dropped, secrets
    masked, <, >, & and quotes escaped."""
    return html.escape(log.masked(printable(value)), quote=True)


def short(name: str, most: int = NAME_CHARACTERS) -> str:
    """A target id cut to `most` characters, with … when cut."""
    return name if len(name) <= most else name[: most - 1] + "…"


def seconds(value: float) -> str:
    """'40ms', '0.4s', '12.3s', '2m05s'."""
    if value < 0.1:
        return f"{value * 1000:.0f}ms"
    if value < 120:
        return f"{value:.1f}s"
    minutes, rest = divmod(round(value), 60)
    return f"{minutes}m{rest:02d}s"


def _number(value: float) -> str:
    """A coordinate, short."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


# ---- the DAG ------------------------------------------------------------------------------------------------


def dag_svg(view: RunView) -> str:
    """The DAG: one column per generation, a node per target coloured by status, edges from parent to child
    (dotted: depends_on, dashed: inferred; one that skips a generation drawn over the nodes it passes, faintly),
    the critical path in heavy outline; each node links to its row."""
    rows = {row.id: row for row in view.rows}
    width = _node_width(view.rows)
    places = _places(view, width)
    critical = set(itertools.pairwise(view.critical))
    on_path = set(view.critical)
    index = {row.id: number for number, row in enumerate(view.rows)}
    pairs = [(parent, row.id, kind) for row in view.rows for parent, kind in row.parents]
    column = width + COLUMN_GAP
    edges = {
        long: [
            _edge(places[parent], places[child], width, kind, (parent, child) in critical)
            for parent, child, kind in pairs
            if (places[child][0] - places[parent][0] > column + 1) == long
        ]
        for long in (False, True)
    }
    nodes = [_node(rows[tid], places[tid], width, tid in on_path, index[tid]) for tid in places]
    total_width = max((x for x, _ in places.values()), default=0) + width + 2 * MARGIN
    total_height = max((y for _, y in places.values()), default=0) + NODE_HEIGHT + 2 * MARGIN
    fit = " fit" if total_width <= FIT_WIDTH else ""  # shrunk to the page; a wider one scrolls
    return (
        f'<svg class="dag{fit}" xmlns="http://www.w3.org/2000/svg" width="{_number(total_width)}" '
        f'height="{_number(total_height)}" viewBox="0 0 {_number(total_width)} {_number(total_height)}" '
        f'role="img" aria-label="the DAG of the run, coloured by status">'
        f"<defs>{_arrow('arrow', 'arrowhead')}{_arrow('arrow-critical', 'arrowhead critical')}</defs>"
        f'<g class="edges">{"".join(edges[False])}</g><g class="nodes">{"".join(nodes)}</g>'
        f'<g class="edges long">{"".join(edges[True])}</g></svg>'
    )


def _arrow(name: str, classes: str) -> str:
    """An arrowhead of the same size whatever the width of the edge it ends."""
    return (
        f'<marker id="{name}" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="10" '
        f'markerHeight="10" orient="auto"><path d="M0,0 L10,5 L0,10 z" class="{classes}"/></marker>'
    )


def _node_width(rows: Sequence[Row]) -> float:
    """One width for every node: its longest (cut) id, or its status line, and some room."""
    longest = max((len(short(row.id)) for row in rows), default=0)
    return max(150.0, (longest + 4) * CHAR)


def _places(view: RunView, width: float) -> dict[str, tuple[float, float]]:
    """Each target's top left corner: its generation's column, and its place in it, ordered by where its parents
    are (barycentre) to keep edges short; columns centred on the tallest."""
    columns = view.generations
    tallest = max((len(column) for column in columns), default=0)
    parents = {row.id: [parent for parent, _ in row.parents] for row in view.rows}
    rank: dict[str, float] = {}
    places = {}
    for number, generation in enumerate(columns):
        column = sorted(generation, key=lambda tid: _barycentre(parents[tid], rank))
        top = MARGIN + (tallest - len(column)) * (NODE_HEIGHT + NODE_GAP) / 2
        for position, target_id in enumerate(column):
            rank[target_id] = position + (tallest - len(column)) / 2
            places[target_id] = (MARGIN + number * (width + COLUMN_GAP), top + position * (NODE_HEIGHT + NODE_GAP))
    return places


def _barycentre(parents: Sequence[str], rank: dict[str, float]) -> float:
    """The mean place of a target's parents in their columns (0 for none)."""
    placed = [rank[parent] for parent in parents if parent in rank]
    return sum(placed) / len(placed) if placed else 0.0


def _edge(parent: tuple[float, float], child: tuple[float, float], width: float, kind: str, critical: bool) -> str:
    """A curve from the right side of the parent to the left side of the child."""
    x1, y1 = parent[0] + width, parent[1] + NODE_HEIGHT / 2
    x2, y2 = child[0] - 2, child[1] + NODE_HEIGHT / 2
    bend = max(24.0, (x2 - x1) / 2)
    classes = f"edge kind-{text(kind)}" + (" critical" if critical else "")
    marker = "arrow-critical" if critical else "arrow"
    path = f"M{_number(x1)},{_number(y1)} C{_number(x1 + bend)},{_number(y1)} {_number(x2 - bend)},{_number(y2)} "
    return f'<path class="{classes}" d="{path}{_number(x2)},{_number(y2)}" marker-end="url(#{marker})"/>'


def _node(row: Row, place: tuple[float, float], width: float, critical: bool, number: int) -> str:
    """A target: a box tinted by status with a stripe of its colour, its id, its status and time."""
    x, y = place
    classes = f"node status-{row.css}" + (" critical" if critical else "")
    busy = f" · {seconds(row.busy)}" if row.spans else ""
    tip = f"{row.id}\n{row.status}{busy}{' · on the critical path' if critical else ''}\n{row.detail}"
    return (
        f'<a href="#target-{number}"><g class="{classes}" data-target="{text(row.id)}" '
        f'transform="translate({_number(x)},{_number(y)})"><title>{text(tip)}</title>'
        f'<rect class="box" width="{_number(width)}" height="{NODE_HEIGHT}" rx="7"/>'
        f'<rect class="stripe" width="7" height="{NODE_HEIGHT}" rx="3"/>'
        f'<text class="name" x="16" y="21">{text(short(row.id))}</text>'
        f'<text class="meta" x="16" y="39">{text(row.status)}{text(busy)}</text></g></a>'
    )


# ---- the timeline -------------------------------------------------------------------------------------------


def timeline_svg(view: RunView) -> str:
    """The run over time: a row per target (those that ran in order of start, then the others), a bar of its
    phases on an axis in seconds; the critical path's bars outlined and joined, a failure's end marked ✕."""
    rows = _in_start_order(view.rows)
    label_width = max(160.0, (max((len(short(row.id)) for row in rows), default=0) + 4) * CHAR)
    span = max((row.end for row in rows), default=0.0) or 1.0
    scale = PLOT_WIDTH / span
    height = AXIS_HEIGHT + len(rows) * ROW_HEIGHT + MARGIN + 14  # the axis' name under the rows
    width = label_width + PLOT_WIDTH + 90
    fit = " fit" if width <= FIT_WIDTH else ""
    body = [_axis(span, scale, label_width, height)]
    body += [_timeline_row(row, number, scale, label_width, row.id in view.critical) for number, row in enumerate(rows)]
    body.append(_critical_links(rows, view.critical, scale, label_width))
    return (
        f'<svg class="timeline{fit}" xmlns="http://www.w3.org/2000/svg" width="{_number(width)}" '
        f'height="{_number(height)}" '
        f'viewBox="0 0 {_number(width)} {_number(height)}" role="img" aria-label="the timeline of the run">'
        '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        '<rect width="6" height="6" class="hatch-ground"/><line x1="0" y1="0" x2="0" y2="6" class="hatch-line"/>'
        f"</pattern></defs>{''.join(body)}</svg>"
    )


def _in_start_order(rows: Sequence[Row]) -> list[Row]:
    """Rows that ran, by when their work began (waiting left out), then the others in plan order."""
    ran = [row for row in rows if row.spans]
    ran.sort(key=lambda row: min(span.start for span in row.spans if span.phase != "waiting") if row.busy else row.end)
    return ran + [row for row in rows if not row.spans]


def tick_step(span: float, most: int = 10) -> float:
    """A round step (1, 2 or 5 times a power of ten seconds) giving at most `most` ticks over `span` seconds."""
    rough = span / most
    power = 10 ** math.floor(math.log10(rough)) if rough > 0 else 1
    return next(step * power for step in (1, 2, 5, 10) if step * power >= rough)


def _axis(span: float, scale: float, left: float, height: float) -> str:
    """Grid lines and labels every tick_step seconds, and the axis' name."""
    step = tick_step(span)
    parts = []
    for number in range(int(span / step + 1e-9) + 1):
        x = _number(left + number * step * scale)
        parts.append(
            f'<line class="grid" x1="{x}" y1="{AXIS_HEIGHT - 6}" x2="{x}" y2="{_number(height - 22)}"/>'
            f'<text class="tick" x="{x}" y="{AXIS_HEIGHT - 12}">{number * step:g}s</text>'
        )
    middle = _number(left + span * scale / 2)
    parts.append(f'<text class="axis-name" x="{middle}" y="{_number(height - 4)}">seconds since the run began</text>')
    return f'<g class="axis">{"".join(parts)}</g>'


def _timeline_row(row: Row, number: int, scale: float, left: float, critical: bool) -> str:
    """One target's row: its id (with a dot of its status colour), then its bar."""
    y = AXIS_HEIGHT + number * ROW_HEIGHT
    stripe = f'<rect class="row-ground" x="0" y="{y}" width="100%" height="{ROW_HEIGHT}"/>' if number % 2 else ""
    label_class = "label critical" if critical else "label"
    return (
        f'<g class="row" data-target="{text(row.id)}">{stripe}<title>{text(row.id)}: {text(row.status)}</title>'
        f'<circle class="dot status-{row.css}" cx="12" cy="{y + ROW_HEIGHT / 2}" r="5"/>'
        f'<text class="{label_class}" x="24" y="{y + ROW_HEIGHT / 2 + 4}">{text(short(row.id))}</text>'
        f"{_bar(row, y, scale, left, critical)}</g>"
    )


def _bar(row: Row, y: float, scale: float, left: float, critical: bool) -> str:
    """A target's bar: a segment per phase (with its own tooltip), its busy time after it; a target that never ran
    says why instead."""
    classes = f"bar status-{row.css}" + (" critical" if critical else "")
    top, height = y + 5, ROW_HEIGHT - 10
    if not row.spans:
        why = row.detail if len(row.detail) < 110 else row.detail[:107] + "..."
        note = f'<text class="why" x="{_number(left + 4)}" y="{y + ROW_HEIGHT / 2 + 4}">{text(why)}</text>'
        return f'<g class="{classes} empty" data-target="{text(row.id)}">{note}</g>'
    segments = [_segment(span, (left, scale), (top, height)) for span in row.spans]
    work = [span for span in row.spans if span.phase != "waiting"]
    if critical and work:
        x1, x2 = left + work[0].start * scale, left + row.end * scale
        segments.append(
            f'<rect class="critical-outline" x="{_number(x1 - 2)}" y="{top - 2}" '
            f'width="{_number(max(x2 - x1, 2) + 4)}" height="{height + 4}" rx="3"/>'
        )
    end = left + row.end * scale
    cross = f'<text class="cross" x="{_number(end + 4)}" y="{y + ROW_HEIGHT / 2 + 5}">✕</text>' if row.failed else ""
    shift = 18 if row.failed else 6
    took = f'<text class="took" x="{_number(end + shift)}" y="{y + ROW_HEIGHT / 2 + 4}">{seconds(row.busy)}</text>'
    return f'<g class="{classes}" data-target="{text(row.id)}">{"".join(segments)}{cross}{took}</g>'


def _segment(span: Phase, horizontal: tuple[float, float], vertical: tuple[float, float]) -> str:
    """One phase of a bar, at least 2 pixels wide, with a tooltip: the phase, how long, from when to when."""
    left, scale = horizontal
    top, height = vertical
    x, width = left + span.start * scale, max((span.end - span.start) * scale, 2.0)
    tip = f"{span.phase} {seconds(span.end - span.start)} ({span.start:.1f}s to {span.end:.1f}s)"
    return (
        f'<rect class="span phase-{text(span.phase)}" x="{_number(x)}" y="{_number(top)}" width="{_number(width)}" '
        f'height="{_number(height)}" rx="2"><title>{text(tip)}</title></rect>'
    )


def _critical_links(rows: Sequence[Row], path: Sequence[str], scale: float, left: float) -> str:
    """Dashed lines joining each bar of the critical path to the next: where a parent ended, its child began."""
    line = {row.id: number for number, row in enumerate(rows)}
    by_id = {row.id: row for row in rows}
    links = []
    for parent, child in itertools.pairwise(path):
        starts = [span.start for span in by_id[child].spans if span.phase != "waiting"]
        if not starts:
            continue
        x1, x2 = left + by_id[parent].end * scale, left + min(starts) * scale
        y1 = AXIS_HEIGHT + line[parent] * ROW_HEIGHT + ROW_HEIGHT - 5
        y2 = AXIS_HEIGHT + line[child] * ROW_HEIGHT + 5
        links.append(
            f'<path class="critical-link" d="M{_number(x1)},{_number(y1)} L{_number(x1)},{_number(y2 - 4)} '
            f'L{_number(max(x2, x1))},{_number(y2 - 4)} L{_number(max(x2, x1))},{_number(y2)}"/>'
        )
    return f'<g class="critical-links">{"".join(links)}</g>'
