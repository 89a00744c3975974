"""What a run did, for CI: a JUnit XML file for test views, a Markdown summary for job pages."""

from __future__ import annotations

import html
import io
import os
import re
from collections.abc import Mapping
from pathlib import Path

from junitparser import Attr, Failure, JUnitXml, Skipped, TestCase, TestSuite

from buildflow.planner import Plan
from buildflow.render import graph_mermaid
from buildflow.report import short_digest, totals
from buildflow.scheduler import Outcome, RunResult, Status

# Terminal colour codes, then every character XML 1.0 cannot hold (build output carries both).
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class _Suite(TestSuite):
    """A testsuite that also names the file its tests come from (read by GitLab and Jenkins)."""

    file = Attr()


# ---- JUnit XML ----------------------------------------------------------------------------------------------


def _xml_text(text: str) -> str:
    """Text that XML can hold: colour codes and control characters dropped."""
    return _NOT_XML.sub("", _ANSI.sub("", text))


def _tags(outcome: Outcome) -> tuple[str, ...]:
    """The tags an image is known by: its release tags, else its content tag, else none."""
    return outcome.released or ((outcome.reference,) if outcome.reference else ())


def _junit_result(outcome: Outcome) -> Failure | Skipped | None:
    """BUILT passes (None), FAILED fails with the builder's error, anything else is skipped with its reason."""
    if outcome.status == Status.BUILT:
        return None
    if outcome.status == Status.FAILED:
        failure = Failure(_xml_text(outcome.error) or "failed", "BuildError")
        failure.text = _xml_text(outcome.error)
        return failure
    if outcome.status == Status.REUSED:
        return Skipped(_xml_text(f"reused: {outcome.why}" if outcome.why else "reused"))
    return Skipped(_xml_text(outcome.error) or str(outcome.status).lower())


def _system_out(outcome: Outcome) -> str:
    """The digest and tags of a target's image, one per line ('' when it has neither)."""
    lines = [f"digest: {outcome.digest}"] if outcome.digest else []
    tags = _tags(outcome)
    if tags:
        lines.append(f"tags: {', '.join(tags)}")
    return _xml_text("\n".join(lines))


def _testcase(outcome: Outcome) -> TestCase:
    """One target as a testcase: classname the target, name the image id, time its build."""
    case = TestCase(outcome.target.id, outcome.target.name, round(outcome.seconds, 3))
    result = _junit_result(outcome)
    if result is not None:
        case.result = result
    output = _system_out(outcome)
    if output:
        case.system_out = output
    return case


def _release_testcase(error: str) -> TestCase:
    """The release step as a failed testcase."""
    case = TestCase("release", "buildflow", 0.0)
    case.result = Failure(_xml_text(error), "ReleaseError")
    return case


def junit_xml(plan: Plan, result: RunResult) -> JUnitXml:
    """The run as JUnit XML: one testsuite 'buildflow', one testcase per target, and one for a failed release."""
    suite = _Suite("buildflow")
    suite.file = _xml_text(str(plan.pipeline.file))
    cases = [_testcase(outcome) for outcome in result.outcomes.values()]
    if result.release_error:
        cases.append(_release_testcase(result.release_error))
    suite.add_testcases(cases)
    root = JUnitXml()
    root.add_testsuite(suite)
    root.tests, root.failures, root.errors, root.skipped = suite.tests, suite.failures, suite.errors, suite.skipped
    root.time = suite.time
    return root


def junit_document(plan: Plan, result: RunResult) -> bytes:
    """The JUnit XML file's bytes (UTF-8, with an XML declaration)."""
    buffer = io.BytesIO()
    junit_xml(plan, result).write(buffer)
    return buffer.getvalue()


def write_junit(path: Path, plan: Plan, result: RunResult) -> None:
    """Write the JUnit XML file (parents created as needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(junit_document(plan, result))


# ---- Markdown -----------------------------------------------------------------------------------------------


def _cell(text: str) -> str:
    """Text safe in one Markdown table cell: HTML escaped, pipes escaped, line breaks as <br>."""
    escaped = html.escape(text, quote=False).replace("|", "\\|")
    return "<br>".join(escaped.splitlines()) or "-"


def _row(outcome: Outcome) -> str:
    """One target as a table row."""
    cells = (
        outcome.target.id,
        str(outcome.status),
        outcome.why or outcome.error,
        short_digest(outcome.digest),
        ", ".join(_tags(outcome)),
        f"{outcome.seconds:.1f}s" if outcome.started else "-",
    )
    return "| " + " | ".join(_cell(cell) for cell in cells) + " |"


def _table(result: RunResult) -> list[str]:
    """The table of targets: header, separator, one row per target."""
    header = ("Target", "Status", "Why", "Digest", "Tags", "Time")
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *(_row(outcome) for outcome in result.outcomes.values()),
    ]


def summary_markdown(plan: Plan, result: RunResult) -> str:
    """The run in Markdown: verdict, totals, a table of targets, the release error and the DAG in Mermaid."""
    lines = [f"## buildflow: {'succeeded' if result.ok else 'failed'}", "", totals(result), "", *_table(result)]
    if result.release_error:
        lines += ["", f"**Release tags not applied:** {_cell(result.release_error)}"]
    lines += ["", "```mermaid", graph_mermaid(plan), "```"]
    return "\n".join(lines) + "\n"


def write_summary(path: Path, plan: Plan, result: RunResult) -> None:
    """Write the Markdown summary (parents created as needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(summary_markdown(plan, result), encoding="utf-8")


def append_github_step_summary(plan: Plan, result: RunResult, environ: Mapping[str, str] = os.environ) -> Path | None:
    """Append the Markdown summary to $GITHUB_STEP_SUMMARY when it is set; the file, or None."""
    name = environ.get("GITHUB_STEP_SUMMARY", "")
    if not name:
        return None
    path = Path(name)
    with path.open("a", encoding="utf-8") as summary:
        summary.write("\n" + summary_markdown(plan, result))
    return path
