"""What a run did: the summary table people read, and the JSON reports machines read (of builds and of tests)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from buildflow import log
from buildflow.output.render import aligned
from buildflow.plan.planner import Plan
from buildflow.quality.summary import SizeSummary
from buildflow.run.imagetests import TestResult, summary
from buildflow.run.outcome import Outcome, RunResult, Status
from buildflow.sizes import human

# Terminal colour codes, then every character XML 1.0 (and so HTML) cannot hold: build output carries both.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def printable(text: str) -> str:
    """Text that XML and HTML can hold: colour codes and control characters dropped."""
    return _NOT_XML.sub("", _ANSI.sub("", text))


def short_digest(digest: str) -> str:
    """sha256:0123456789ab."""
    return digest[:19] if digest else "-"


def on_builder(outcome: Outcome) -> str:
    """' on NAME' for a target built on a builder other than the current one ('' otherwise)."""
    return f" on {outcome.builder}" if outcome.builder not in ("", "default") else ""


def detail(outcome: Outcome) -> str:
    """Tags for a success, the reason for anything else; the builder when it is not the current one."""
    if outcome.succeeded:
        tags = outcome.released or (outcome.reference,)
        cache = f" [{outcome.cached_steps}/{outcome.total_steps} steps cached]" if outcome.total_steps else ""
        tests = f" [{summary(outcome.tests)}]" if outcome.tests else ""
        why = f"; {outcome.why}" if outcome.why else ""
        return ", ".join(tags) + cache + tests + on_builder(outcome) + why
    return (outcome.error or "-") + on_builder(outcome)


def totals(result: RunResult) -> str:
    """'2 built, 1 reused, 1 failed in 12.3s.'."""
    counts = {status: sum(1 for o in result.outcomes.values() if o.status == status) for status in Status}
    text = ", ".join(f"{count} {status.lower()}" for status, count in counts.items() if count)
    return f"{text or 'no targets'} in {result.seconds:.1f}s."


def size_cell(size: SizeSummary | None) -> str:
    """'7.0 MB (+5.0 MB, 5.0 MB wasted)': the image, what it adds over its parent, what its own layers waste."""
    if not size:
        return "-"
    wasted = f", {human(size.wasted_here)} wasted" if size.wasted_here else ""
    return f"{human(size.size)} (+{human(size.added)}{wasted})"


WASTE_HEADING = "Wasted space (files a later layer deletes or overwrites; their bytes stay in the image):"


def waste_lines(result: RunResult, most: int = 3) -> list[str]:
    """The largest files each image's own layers write and then delete or overwrite, with both instructions."""
    lines = []
    for outcome in result.outcomes.values():
        entries = [entry for entry in (outcome.size.waste if outcome.size else ()) if entry.here]
        for entry in entries[:most]:
            lines.append(
                f"{outcome.target.id}: {entry.path} {human(entry.bytes)}, written by layer "
                f"{entry.written_in} `{one_line(entry.written_by)}`, {entry.how} by layer {entry.removed_in} "
                f"`{one_line(entry.removed_by)}`"
            )
        if len(entries) > most:
            lines.append(f"{outcome.target.id}: and {len(entries) - most} more (see the JSON report)")
    return lines


def one_line(instruction: str, most: int = 72) -> str:
    """An instruction on one line, spaces collapsed, cut to `most` characters (the JSON report has it whole)."""
    text = " ".join(instruction.split())
    return text if len(text) <= most else text[: most - 3].rstrip() + "..."


def summary_table(result: RunResult) -> str:
    """One line per target: status, duration, digest, size, tags or error; the wasted space; then the totals."""
    header = ("TARGET", "STATUS", "TIME", "DIGEST", "SIZE", "DETAIL")
    rows = [
        (
            o.target.id,
            str(o.status),
            f"{o.seconds:.1f}s" if o.started else "-",
            short_digest(o.digest),
            size_cell(o.size),
            detail(o),
        )
        for o in result.outcomes.values()
    ]
    lines = _with_failures(aligned(header, rows), list(result.outcomes.values()))
    waste = waste_lines(result)
    if waste:
        lines += ["", WASTE_HEADING, *(f"  {line}" for line in waste)]
    lines.append("\n" + totals(result))
    lines += [line for line in [unreleased(result)] if line]
    if result.held:
        lines += [held_heading(result), *(f"  {line}" for line in held_lines(result))]
    return log.masked("\n".join(lines))


def unreleased(result: RunResult) -> str:
    """Why the release tags were not applied, in a sentence ('' when they were, or nothing stopped them)."""
    if result.release_error:
        return f"Release tags not applied: {result.release_error}"
    if result.release_skipped:
        return f"Release tags not applied: {result.release_skipped}; buildflow release moves them."
    if result.released and result.held:
        moved = len({move.target for move in result.tags})
        return f"Release tags applied to {moved} targets (release: {result.policy}); {len(result.held)} held back."
    if not result.released and not result.ok:
        return "Release tags not applied: nothing is released unless every selected target is built."
    return ""


def held_heading(result: RunResult) -> str:
    """The heading over the targets whose release tags did not move."""
    return f"Held back (release: {result.policy}): the release tags of these targets did not move:"


def held_lines(result: RunResult) -> list[str]:
    """'ID: why' for every target whose release tags were held back."""
    return [f"{target_id}: {why}" for target_id, why in result.held.items()]


def _with_failures(lines: list[str], outcomes: list[Outcome]) -> list[str]:
    """The table's lines with, under each failed target's row, its failing step, last lines and log file."""
    shown = lines[:1]
    for line, outcome in zip(lines[1:], outcomes, strict=True):
        shown.append(line)
        if outcome.status == Status.FAILED and outcome.failure:
            shown += [f"    {detail}" for detail in outcome.failure.details()]
    return shown


def report_document(plan: Plan, result: RunResult) -> dict[str, Any]:
    """The JSON report: every target's status, why, digest, tags, timings, attempts and cache hits."""
    return {
        "run_id": result.run_id or None,
        "pipeline": str(plan.pipeline.file),
        "registry": plan.pipeline.registry,
        "status": run_status(result),
        "seconds": round(result.seconds, 3),
        "released": result.released,
        "release_error": result.release_error,
        "release_skipped": result.release_skipped or None,
        "release": [move.to_json() for move in result.tags],
        "release_policy": result.policy,
        "held_back": [{"target": target_id, "reason": why} for target_id, why in result.held.items()],
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "targets": [_target_document(o, result.held.get(o.target.id, "")) for o in result.outcomes.values()],
        "lint": _lint_findings(plan, result),
    }


def _lint_findings(plan: Plan, result: RunResult) -> list[dict[str, Any]]:
    """The Dockerfile lint findings of the run, paths relative to the pipeline."""
    from buildflow.quality.lint import to_json

    return to_json(result.lint, plan.pipeline.root) if result.lint else []


def run_status(result: RunResult) -> str:
    """succeeded, interrupted or failed."""
    if any(outcome.status == Status.INTERRUPTED for outcome in result.outcomes.values()):
        return "interrupted"
    return "succeeded" if result.ok else "failed"


def _target_document(outcome: Outcome, held: str) -> dict[str, Any]:
    """One target in the JSON report."""
    return {
        "id": outcome.target.id,
        "target": outcome.target.name,
        "status": str(outcome.status),
        "fingerprint": outcome.target.fingerprint,
        "digest": outcome.digest or None,
        "reference": (outcome.reference or None) if outcome.succeeded or outcome.pushed else None,
        "pushed": outcome.pushed,
        "builder": outcome.builder or None,
        "tags": list(outcome.released),
        "held_back": held or None,
        "started": _iso(outcome.started),
        "handed_on": _iso(outcome.handed_on),
        "finished": _iso(outcome.finished),
        "seconds": round(outcome.seconds, 3),
        "attempts": outcome.attempts,
        "steps": outcome.total_steps,
        "cached_steps": outcome.cached_steps,
        "error": outcome.error or None,
        "failure": outcome.failure.to_json() if outcome.failure else None,
        "log": outcome.log or None,
        "why": outcome.why or None,
        "tests": [result.to_json() for result in outcome.tests],
        "size": outcome.size.to_json() if outcome.size else None,
        "phases": [phase.to_json() for phase in outcome.timeline()],
    }


def _iso(timestamp: float) -> str | None:
    """A UTC timestamp, or None for a target that never ran."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp)) if timestamp else None


def write_report(path: Path, plan: Plan, result: RunResult) -> None:
    """Write the JSON report (parents created as needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(log.masked(json.dumps(report_document(plan, result), indent=2)) + "\n")


def image_tests_document(
    plan: Plan, results: Mapping[str, Sequence[TestResult]], problems: Mapping[str, str], run_id: str = ""
) -> dict[str, Any]:
    """The JSON report of `buildflow test`: every test's result, exit code and output, and the targets not tested."""
    return {
        "run_id": run_id or None,
        "pipeline": str(plan.pipeline.file),
        "targets": [{"id": target_id, "tests": [r.to_json() for r in found]} for target_id, found in results.items()],
        "not_run": dict(problems),
    }


def write_image_tests_report(
    path: Path, plan: Plan, results: Mapping[str, Sequence[TestResult]], problems: Mapping[str, str], run_id: str = ""
) -> None:
    """Write the JSON report of `buildflow test` (parents created as needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = image_tests_document(plan, results, problems, run_id)
    path.write_text(log.masked(json.dumps(document, indent=2)) + "\n")
