"""What a run did, for CI: a JUnit XML file for test views, a Markdown summary for job pages."""

from __future__ import annotations

import html
import io
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from junitparser import Attr, Failure, JUnitXml, Skipped, TestCase, TestSuite

from buildflow import log
from buildflow.output.render import MERMAID_MAX_EDGES, generations_mermaid, graph_mermaid
from buildflow.output.report import (
    WASTE_HEADING,
    held_heading,
    held_lines,
    on_builder,
    printable,
    short_digest,
    size_cell,
    totals,
    waste_lines,
)
from buildflow.plan.planner import Plan
from buildflow.run.imagetests import TestResult
from buildflow.run.outcome import Outcome, RunResult, Status

RUN_ID_PROPERTY = "buildflow.run_id"  # the testsuite property holding the run's id


class _Suite(TestSuite):
    """A testsuite that also names the file its tests come from (read by GitLab and Jenkins)."""

    file = Attr()


# ---- JUnit XML ----------------------------------------------------------------------------------------------


def _tags(outcome: Outcome) -> tuple[str, ...]:
    """The tags an image is known by: its release tags, else its content tag, else none (a failed target has
    none, even when its build got as far as naming one)."""
    if not outcome.succeeded:
        return ()
    return outcome.released or ((outcome.reference,) if outcome.reference else ())


def _junit_result(outcome: Outcome) -> Failure | Skipped | None:
    """BUILT passes (None), FAILED fails with the builder's error, anything else is skipped with its reason."""
    if outcome.status == Status.BUILT:
        return None
    if outcome.status == Status.FAILED:
        failure = Failure(printable(outcome.error) or "failed", "BuildError")
        details = outcome.failure.details() if outcome.failure else []
        failure.text = printable("\n".join([outcome.error, *details]))
        return failure
    if outcome.status == Status.REUSED:
        return Skipped(printable(f"reused: {outcome.why}" if outcome.why else "reused"))
    return Skipped(printable(outcome.error) or str(outcome.status).lower())


def _system_out(outcome: Outcome, held: str) -> str:
    """The digest and tags of a target's image, one per line, and why its release tags were held back ('' when
    there is none of these)."""
    lines = [f"digest: {outcome.digest}"] if outcome.digest else []
    if on_builder(outcome):
        lines.append(f"builder: {outcome.builder}")
    tags = _tags(outcome)
    if tags:
        lines.append(f"tags: {', '.join(tags)}")
    if held and outcome.succeeded:
        lines.append(f"release tags held back: {held}")
    return printable("\n".join(lines))


def _testcase(outcome: Outcome, held: str = "") -> TestCase:
    """One target as a testcase: classname the target, name the image id, time its build."""
    case = TestCase(outcome.target.id, outcome.target.name, round(outcome.seconds, 3))
    result = _junit_result(outcome)
    if result is not None:
        case.result = result
    output = _system_out(outcome, held)
    if output:
        case.system_out = output
    return case


def _release_testcase(error: str) -> TestCase:
    """The release step as a failed testcase."""
    case = TestCase("release", "buildflow", 0.0)
    case.result = Failure(printable(error), "ReleaseError")
    return case


def _image_testcase(target_id: str, result: TestResult) -> TestCase:
    """One test run inside an image: classname the target, name the command, failure or skip with its reason."""
    case = TestCase(printable(result.test.command), printable(target_id), round(result.seconds, 3))
    if result.status == "failed":
        failure = Failure(printable(result.reason), "ImageTestFailure")
        failure.text = printable(result.output)
        case.result = failure
    elif result.status == "skipped":
        case.result = Skipped(printable(result.reason))
    if result.test.origin != target_id:
        case.system_out = printable(f"inherited from {result.test.origin}")
    return case


def junit_xml(plan: Plan, result: RunResult) -> JUnitXml:
    """The run as JUnit XML: one testsuite 'buildflow' with one testcase per target, one for a failed release,
    and one per test run inside an image."""
    cases = [_testcase(outcome, result.held.get(outcome.target.id, "")) for outcome in result.outcomes.values()]
    if result.release_error:
        cases.append(_release_testcase(result.release_error))
    tests = {outcome.target.id: outcome.tests for outcome in result.outcomes.values()}
    return _document(plan, cases + image_testcases(tests), result.run_id)


def image_testcases(tests: Mapping[str, Sequence[TestResult]]) -> list[TestCase]:
    """A testcase for every test run inside an image, target by target."""
    return [_image_testcase(target_id, result) for target_id, results in tests.items() for result in results]


def _document(plan: Plan, cases: list[TestCase], run_id: str = "") -> JUnitXml:
    """A JUnit document of one testsuite 'buildflow' holding `cases`, and the run's id as its property
    buildflow.run_id."""
    suite = _Suite("buildflow")
    suite.file = printable(str(plan.pipeline.file))
    if run_id:
        suite.add_property(RUN_ID_PROPERTY, run_id)
    suite.add_testcases(cases)
    root = JUnitXml()
    root.add_testsuite(suite)
    root.tests, root.failures, root.errors, root.skipped = suite.tests, suite.failures, suite.errors, suite.skipped
    root.time = suite.time
    return root


def junit_document(plan: Plan, result: RunResult) -> bytes:
    """The JUnit XML file's bytes (UTF-8, with an XML declaration)."""
    return _bytes(junit_xml(plan, result))


def _bytes(document: JUnitXml) -> bytes:
    """A JUnit document as UTF-8 bytes with an XML declaration."""
    buffer = io.BytesIO()
    document.write(buffer)
    return log.masked(buffer.getvalue().decode()).encode()


def write_junit(path: Path, plan: Plan, result: RunResult) -> None:
    """Write the JUnit XML file (parents created as needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(junit_document(plan, result))


def write_test_junit(path: Path, plan: Plan, tests: Mapping[str, Sequence[TestResult]], run_id: str = "") -> None:
    """Write the JUnit XML file of `buildflow test`: one testcase per test run inside an image."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_bytes(_document(plan, image_testcases(tests), run_id)))


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
        (outcome.error if outcome.status == Status.FAILED else outcome.why or outcome.error) + on_builder(outcome),
        short_digest(outcome.digest),
        size_cell(outcome.size),
        ", ".join(_tags(outcome)),
        f"{outcome.seconds:.1f}s" if outcome.started else "-",
    )
    return "| " + " | ".join(_cell(cell) for cell in cells) + " |"


def _table(result: RunResult) -> list[str]:
    """The table of targets: header, separator, one row per target."""
    header = ("Target", "Status", "Why", "Digest", "Size", "Tags", "Time")
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *(_row(outcome) for outcome in result.outcomes.values()),
    ]


def _failure_blocks(result: RunResult) -> list[str]:
    """Each failed target's failing step and last lines, collapsed: a <details> block per target."""
    blocks = []
    for outcome in result.outcomes.values():
        failure = outcome.failure
        if outcome.status != Status.FAILED or failure is None or not (failure.tail or failure.log):
            continue
        title = html.escape(f"{outcome.target.id}: {failure.step or failure.message}", quote=False)
        fence = _fence(failure.tail)
        log_file = [f"Whole output: `{failure.log}`", ""] if failure.log else []
        blocks += ["", f"<details><summary>{title}</summary>", "", *log_file, fence, *failure.tail, fence, "</details>"]
    return blocks


def _fence(lines: Sequence[str]) -> str:
    """A code fence longer than any run of backticks in the lines it holds."""
    longest = max((len(run) for line in lines for run in re.findall("`+", line)), default=0)
    return "`" * max(3, longest + 1)


def _graph(plan: Plan) -> list[str]:
    """The DAG in Mermaid, or one node per generation when its edges are over Mermaid's limit (said so)."""
    whole = graph_mermaid(plan)
    edges = sum(1 for line in whole.splitlines() if "->" in line)
    if edges <= MERMAID_MAX_EDGES:
        return ["```mermaid", whole, "```"]
    note = (
        f"The graph has {edges} edges, over Mermaid's limit of {MERMAID_MAX_EDGES}: one node per generation is "
        "drawn; `buildflow graph` draws it whole."
    )
    return [note, "", "```mermaid", generations_mermaid(plan), "```"]


def summary_markdown(plan: Plan, result: RunResult) -> str:
    """The run in Markdown: verdict, totals, a table of targets, the release error and the DAG in Mermaid."""
    lines = [f"## buildflow: {'succeeded' if result.ok else 'failed'}", "", totals(result), "", *_table(result)]
    lines += _failure_blocks(result)
    waste = waste_lines(result)
    if waste:
        lines += ["", f"**{WASTE_HEADING}**", "", *(f"- {_cell(line)}" for line in waste)]
    if result.release_error:
        lines += ["", f"**Release tags not applied:** {_cell(result.release_error)}"]
    elif result.release_skipped:
        lines += ["", f"**Release tags not applied:** {_cell(result.release_skipped)}"]
    if result.held:
        lines += ["", f"**{_cell(held_heading(result))}**", "", *(f"- {_cell(line)}" for line in held_lines(result))]
    lines += ["", *_graph(plan)]
    if result.run_id:
        lines += ["", f"<sub>buildflow run {_cell(result.run_id)}</sub>"]
    return log.masked("\n".join(lines) + "\n")


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
