"""The HTML report of a run (build, release, test --html FILE): one self-contained page that loads nothing, with the
DAG coloured by status, the timeline with its critical path, sizes and wasted bytes, and each failure's last lines."""

from __future__ import annotations

from collections import Counter
from importlib import resources
from pathlib import Path

from buildflow import __version__, log
from buildflow.output.report import one_line, short_digest
from buildflow.output.runview import Row, RunView, status_class
from buildflow.output.svg import PHASES, dag_svg, seconds, text, timeline_svg
from buildflow.quality.summary import SizeSummary
from buildflow.sizes import human

_STATUS_ORDER = ("BUILT", "PASSED", "REUSED", "FAILED", "NOT RUN", "BLOCKED", "CANCELLED", "INTERRUPTED", "NO TESTS")
_STATUS_MEANING = {
    "BUILT": "built in this run",
    "PASSED": "its tests passed",
    "REUSED": "up to date: not built again",
    "FAILED": "its build, tests or push failed",
    "NOT RUN": "could not be tested",
    "BLOCKED": "a parent failed",
    "CANCELLED": "not started after a failure",
    "INTERRUPTED": "stopped by a signal",
    "NO TESTS": "has no tests",
}
_PHASE_MEANING = {
    "waiting": "ready, waiting for a free builder",
    "checking": "registry lookup (all of a reused image)",
    "building": "buildx build",
    "testing": "image tests",
    "pushing": "push, size check, build record",
}
_EDGE_MEANING = {
    "from": "built on (from:)",
    "depends_on": "after (depends_on)",
    "inferred": "inferred from a Dockerfile",
}
_WASTE_SHOWN = 5  # waste entries listed per image (the JSON report has up to 20)


def html_report(view: RunView) -> str:
    """The whole page."""
    sections = [_dag_section(view), _timeline_section(view), _failures_section(view), _sizes_section(view)]
    body = "".join(section for section in sections if section) + _targets_section(view)
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>buildflow {text(view.command)}: {text(view.verdict)} ({text(view.totals)})</title>"
        f"<style>{_asset('report.css')}</style></head><body>{_header(view)}<main>{body}"
        f"<footer>buildflow {__version__} · written {text(view.finished)} · this page loads nothing from the network"
        f"</footer></main><script>{_asset('report.js')}</script></body></html>\n"
    )
    return log.masked(page)


def write_html(path: Path, view: RunView) -> None:
    """Write the HTML report (parents created as needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html_report(view), encoding="utf-8")


def _asset(name: str) -> str:
    """A style sheet or script shipped beside this module, to be inlined."""
    return resources.files("buildflow.output").joinpath(name).read_text(encoding="utf-8")


# ---- the headline -------------------------------------------------------------------------------------------


def _header(view: RunView) -> str:
    """The command and its verdict, the totals, counts by status, the facts of the run and the release."""
    facts = [("pipeline", view.pipeline), ("registry", view.registry or "none (local image store)")]
    facts += [("run", view.run_id)] if view.run_id else []
    facts.append(("written", view.finished))
    notes = "".join(f"<li>{text(note)}</li>" for note in view.notes)
    links = [("graph", "DAG"), ("timeline", "Timeline")]
    links += [("failures", "Failures")] if any(row.failed for row in view.rows) else []
    links += [("sizes", "Sizes")] if any(row.size for row in view.rows) else []
    links.append(("targets", "All targets"))
    return (
        f'<header class="run verdict-{text(view.verdict)}"><div class="inner">'
        f'<h1>buildflow {text(view.command)}<span class="verdict">{text(view.verdict)}</span></h1>'
        f'<p class="totals">{text(view.totals)}</p>{_counts(view.rows)}'
        f'<dl class="facts">{"".join(f"<div><dt>{k}</dt><dd>{text(v)}</dd></div>" for k, v in facts)}</dl>'
        f"{f'<ul class=notes>{notes}</ul>' if notes else ''}"
        f'<nav class="sections">{"".join(f"<a href=#{anchor}>{name}</a>" for anchor, name in links)}</nav>'
        "</div></header>"
    )


def _counts(rows: tuple[Row, ...]) -> str:
    """A pill per status with how many targets have it."""
    counts = Counter(row.status for row in rows)
    pills = [
        f'<span class="pill status-{status_class(status)}">{counts[status]} {text(status.lower())}</span>'
        for status in _ordered(counts)
    ]
    return f'<div class="counts">{"".join(pills)}</div>'


def _ordered(statuses: Counter[str] | set[str]) -> list[str]:
    """Statuses in the report's order (unknown ones last)."""
    return sorted(statuses, key=lambda status: (*_STATUS_ORDER, status).index(status))


# ---- the DAG and the timeline -------------------------------------------------------------------------------


def _dag_section(view: RunView) -> str:
    """The DAG with a legend of the statuses, edges and marks it shows."""
    statuses = {row.status for row in view.rows}
    items = [
        f'<li><span class="swatch status-{status_class(status)}"></span>{text(status.lower())}: '
        f"{_STATUS_MEANING.get(status, '')}</li>"
        for status in _ordered(statuses)
    ]
    kinds = {kind for row in view.rows for _, kind in row.parents}
    styles = {"from": "", "depends_on": " dotted", "inferred": " dashed"}
    items += [
        f'<li><span class="swatch edge{styles.get(kind, "")}"></span>{text(_EDGE_MEANING.get(kind, kind))}</li>'
        for kind in ("from", "depends_on", "inferred")
        if kind in kinds
    ]
    if view.critical:
        items.append('<li><span class="swatch critical"></span>critical path</li>')
    count = len(view.rows)
    return (
        f'<section class="panel" id="graph"><h2>DAG<small>{count} target{"" if count == 1 else "s"} by generation, '
        f"left to right; point at one to find it everywhere</small></h2>"
        f'<ul class="legend">{"".join(items)}</ul><div class="scroll centred">{dag_svg(view)}</div></section>'
    )


def _timeline_section(view: RunView) -> str:
    """The timeline, a legend of its phases and the critical path in words; a note instead when nothing ran."""
    if not any(row.spans for row in view.rows):
        why = "nothing was built or tested in this run" if view.command != "release" else "a release builds nothing"
        return (
            '<section class="panel" id="timeline"><h2>Timeline</h2>'
            f'<p class="empty-note">No timeline: {why}.</p></section>'
        )
    phases = {span.phase for row in view.rows for span in row.spans}
    items = [
        f'<li><span class="swatch phase phase-{phase}"></span>{phase}: {_PHASE_MEANING[phase]}</li>'
        for phase in PHASES
        if phase in phases
    ]
    busy = {row.id: row.busy for row in view.rows}
    path = " → ".join(text(target_id) for target_id in view.critical)
    total = sum(busy[target_id] for target_id in view.critical)
    items.append(f'<li><span class="swatch critical"></span>critical path: {path} ({seconds(total)} of work)</li>')
    return (
        f'<section class="panel" id="timeline"><h2>Timeline<small>{seconds(view.seconds)} in all; ✕ marks a failure'
        f'</small></h2><ul class="legend">{"".join(items)}</ul><div class="scroll">{timeline_svg(view)}</div></section>'
    )


# ---- failures, sizes, targets -------------------------------------------------------------------------------


def _failures_section(view: RunView) -> str:
    """Each failure: what failed and why, the failing step, its last lines and the file with all of them."""
    failed = [row for row in view.rows if row.failed]
    if not failed:
        return ""
    articles = "".join(_failure(row) for row in failed)
    return f'<section class="panel" id="failures"><h2>Failures<small>{len(failed)}</small></h2>{articles}</section>'


def _failure(row: Row) -> str:
    """One failed target's card."""
    failure = row.failure
    assert failure is not None
    step = f'<p class="step">failed at {text(failure.step)}</p>' if failure.step else ""
    lines = [text(line) for line in failure.tail]
    if lines:
        lines[-1] = f'<span class="last">{lines[-1]}</span>'
    tail = f'<pre class="tail">{chr(10).join(lines)}</pre>' if lines else ""
    whole = f'<p class="whole">whole output: <code>{text(failure.log)}</code></p>' if failure.log else ""
    return (
        f'<article class="failure" data-target="{text(row.id)}"><h3>{text(row.id)}'
        f'<span class="pill status-failed">{text(str(failure.kind))}</span></h3>'
        f"<p>{text(failure.message)}</p>{step}{tail}{whole}</article>"
    )


def _sizes_section(view: RunView) -> str:
    """Every measured image: its size as a bar (inherited, own, wasted), and the files its layers waste."""
    measured = [(row, row.size) for row in view.rows if row.size]
    if not measured:
        return ""
    largest = max(size.size for _, size in measured) or 1
    rows = "".join(_size_row(row, size, largest) for row, size in measured)
    legend = (
        '<ul class="legend"><li><span class="swatch inherited"></span>inherited from its parent</li>'
        '<li><span class="swatch own"></span>added by its own layers</li>'
        '<li><span class="swatch waste"></span>wasted by its own layers: files a later layer deletes or overwrites'
        "</li></ul>"
    )
    wasted = sum(size.wasted_here for _, size in measured)
    return (
        f'<section class="panel" id="sizes"><h2>Sizes<small>{len(measured)} image{"" if len(measured) == 1 else "s"} '
        "measured, "
        f"{human(wasted)} wasted by their own layers</small></h2>{legend}<table><thead><tr><th>Image</th>"
        '<th style="width:34%"></th><th class="num">Size</th><th class="num">Compressed</th>'
        '<th class="num">Added</th><th class="num">Wasted here</th><th class="num">Wasted in all</th>'
        f"</tr></thead><tbody>{rows}</tbody></table></section>"
    )


def _size_row(row: Row, size: SizeSummary, largest: int) -> str:
    """One image's size: a bar scaled to the largest image, the numbers, its largest waste entries."""
    own = max(size.added - size.wasted_here, 0)
    parts = (("inherited", max(size.size - size.added, 0)), ("own", own), ("waste", size.wasted_here))
    bar = "".join(
        f'<span class="{name}" style="width:{100 * part / largest:.2f}%" title="{name}: {human(part)}"></span>'
        for name, part in parts
        if part
    )
    wasted_class = "num wasted" if size.wasted_here else "num"
    return (
        f'<tr data-target="{text(row.id)}"><td class="id">{text(row.id)}{_waste_list(size)}</td>'
        f'<td><div class="sizebar">{bar}</div></td><td class="num">{human(size.size)}</td>'
        f'<td class="num">{human(size.compressed)}</td><td class="num">+{human(size.added)}</td>'
        f'<td class="{wasted_class}">{human(size.wasted_here)}</td><td class="num">{human(size.wasted)}</td></tr>'
    )


def _waste_list(size: SizeSummary) -> str:
    """The largest files the image's own layers waste, each with the instructions that wrote and removed it."""
    entries = [entry for entry in size.waste if entry.here]
    if not entries:
        return ""
    items = "".join(
        f"<li><code>{text(entry.path)}</code> {human(entry.bytes)}: written by layer {entry.written_in} "
        f"<code>{text(one_line(entry.written_by, 80))}</code>, {text(entry.how)} by layer {entry.removed_in} "
        f"<code>{text(one_line(entry.removed_by, 80))}</code></li>"
        for entry in entries[:_WASTE_SHOWN]
    )
    hidden = len(entries) - _WASTE_SHOWN
    more = f"<li>and {hidden} more (see the JSON report)</li>" if hidden > 0 else ""
    files = f"{len(entries)} wasted file{'' if len(entries) == 1 else 's'}"
    return f'<details class="waste"><summary>{files}</summary><ul>{items}{more}</ul></details>'


def _targets_section(view: RunView) -> str:
    """Every target in plan order: status, time, digest, size, and its tags and why, or its error."""
    rows = "".join(
        f'<tr id="target-{number}" data-target="{text(row.id)}"><td class="id">{text(row.id)}</td>'
        f'<td><span class="pill status-{row.css}">{text(row.status.lower())}</span></td>'
        f'<td class="num">{seconds(row.busy) if row.spans else "-"}</td>'
        f'<td class="mono">{text(short_digest(row.digest)) if row.digest else "-"}</td>'
        f'<td class="num">{human(row.size.size) if row.size else "-"}</td>'
        f'<td class="detail">{text(row.detail)}</td></tr>'
        for number, row in enumerate(view.rows)
    )
    return (
        '<section class="panel" id="targets"><h2>All targets<small>in plan order</small></h2><div class="scroll">'
        '<table><thead><tr><th>Target</th><th>Status</th><th class="num">Time</th><th>Digest</th>'
        f'<th class="num">Size</th><th>Detail</th></tr></thead><tbody>{rows}</tbody></table></div></section>'
    )
