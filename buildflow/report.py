"""What a run did: the summary table people read and the JSON report machines read."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from buildflow.planner import Plan
from buildflow.render import aligned
from buildflow.scheduler import Outcome, RunResult, Status


def short_digest(digest: str) -> str:
    """sha256:0123456789ab."""
    return digest[:19] if digest else "-"


def _detail(outcome: Outcome) -> str:
    """Tags for a success, the reason for anything else."""
    if outcome.succeeded:
        tags = outcome.released or (outcome.reference,)
        cache = f" [{outcome.cached_steps}/{outcome.total_steps} steps cached]" if outcome.total_steps else ""
        return ", ".join(tags) + cache + (f"; {outcome.why}" if outcome.why else "")
    return outcome.error or "-"


def totals(result: RunResult) -> str:
    """'2 built, 1 reused, 1 failed in 12.3s.'."""
    counts = {status: sum(1 for o in result.outcomes.values() if o.status == status) for status in Status}
    text = ", ".join(f"{count} {status.lower()}" for status, count in counts.items() if count)
    return f"{text or 'no targets'} in {result.seconds:.1f}s."


def summary_table(result: RunResult) -> str:
    """One line per target: status, duration, digest, tags or error; then the totals."""
    header = ("TARGET", "STATUS", "TIME", "DIGEST", "DETAIL")
    rows = [
        (o.target.id, str(o.status), f"{o.seconds:.1f}s" if o.started else "-", short_digest(o.digest), _detail(o))
        for o in result.outcomes.values()
    ]
    lines = aligned(header, rows)
    lines.append("\n" + totals(result))
    if result.release_error:
        lines.append(f"Release tags not applied: {result.release_error}")
    elif not result.released and not result.ok:
        lines.append("Release tags not applied: nothing is released unless every selected target is built.")
    return "\n".join(lines)


def report_document(plan: Plan, result: RunResult) -> dict[str, Any]:
    """The JSON report: every target's status, why, digest, tags, timings, attempts and cache hits."""
    return {
        "pipeline": str(plan.pipeline.file),
        "registry": plan.pipeline.registry,
        "status": _run_status(result),
        "seconds": round(result.seconds, 3),
        "released": result.released,
        "release_error": result.release_error,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "targets": [_target_document(outcome) for outcome in result.outcomes.values()],
    }


def _run_status(result: RunResult) -> str:
    """succeeded, interrupted or failed."""
    if any(outcome.status == Status.INTERRUPTED for outcome in result.outcomes.values()):
        return "interrupted"
    return "succeeded" if result.ok else "failed"


def _target_document(outcome: Outcome) -> dict[str, Any]:
    """One target in the JSON report."""
    return {
        "id": outcome.target.id,
        "target": outcome.target.name,
        "status": str(outcome.status),
        "fingerprint": outcome.target.fingerprint,
        "digest": outcome.digest or None,
        "reference": outcome.reference or None,
        "pushed": outcome.pushed,
        "tags": list(outcome.released),
        "started": _iso(outcome.started),
        "finished": _iso(outcome.finished),
        "seconds": round(outcome.seconds, 3),
        "attempts": outcome.attempts,
        "steps": outcome.total_steps,
        "cached_steps": outcome.cached_steps,
        "error": outcome.error or None,
        "why": outcome.why or None,
    }


def _iso(timestamp: float) -> str | None:
    """A UTC timestamp, or None for a target that never ran."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp)) if timestamp else None


def write_report(path: Path, plan: Plan, result: RunResult) -> None:
    """Write the JSON report (parents created as needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report_document(plan, result), indent=2) + "\n")
