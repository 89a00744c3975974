"""CI reports: the JUnit XML file test views read and the Markdown summary job pages show."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from junitparser import Failure, JUnitXml, Skipped

from buildflow.output.ci_reports import (
    append_github_step_summary,
    junit_document,
    summary_markdown,
    write_junit,
    write_summary,
)
from buildflow.output.render import graph_mermaid
from buildflow.plan.planner import Plan, make_plan
from buildflow.quality.summary import SizeSummary
from buildflow.run import failures as run
from buildflow.run.failures import FailureKind
from buildflow.run.outcome import Outcome, RunResult, Status
from tests.conftest import dockerfiles, load

TREE = """\
    version: 1
    registry: localhost:5000/t
    targets:
      base: {tags: ["base:1"]}
      cuda: {from: base, tags: ["cuda:1"]}
      cpu: {from: base, tags: ["cpu:1"]}
      app: {from: cuda, tags: ["app:1", "app:latest"]}
    """
DIGEST = "sha256:" + "ab" * 32
ERROR = "failed to solve: process \"/bin/sh -c make <all> && echo 'done'\" did not complete: exit code: 2"
ERROR_CELL = (  # the error as HTML text in a Markdown cell
    "failed to solve: process \"/bin/sh -c make &lt;all&gt; &amp;&amp; echo 'done'\" did not complete: exit code: 2"
)


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    """A plan of four targets: base, cuda and cpu on base, app on cuda."""
    return make_plan(load(tmp_path, TREE, dockerfiles(".")))


def _outcomes(plan: Plan) -> dict[str, Outcome]:
    """An outcome per target: base reused, cpu built, cuda failed, app blocked."""
    outcomes = {step.target.id: Outcome(step.target) for step in plan.steps}
    base, cpu, cuda, app = (outcomes[name] for name in ("base", "cpu", "cuda", "app"))
    base.status, base.why, base.digest, base.reference = Status.REUSED, "fingerprint abc in registry", DIGEST, "r:bf-1"
    cpu.status, cpu.digest, cpu.reference, cpu.started, cpu.finished = Status.BUILT, DIGEST, "r:bf-2", 10.0, 12.5
    cpu.why, cpu.released = "new Dockerfile", ("cpu:1", "cpu:latest")
    cuda.end(Status.FAILED, FailureKind.BUILD, ERROR)
    cuda.started, cuda.finished = 10.0, 13.5
    app.end(Status.BLOCKED, FailureKind.BLOCKED, "cuda failed")
    return outcomes


@pytest.fixture
def mixed(plan: Plan) -> RunResult:
    """A run with one target each reused, built, failed and blocked."""
    return RunResult(_outcomes(plan), 4.5)


@pytest.fixture
def built(plan: Plan) -> RunResult:
    """A run where every target was built and released."""
    outcomes = {step.target.id: Outcome(step.target, Status.BUILT, digest=DIGEST) for step in plan.steps}
    return RunResult(outcomes, 1.0, released=True)


def _cases(document: bytes) -> dict[str, ET.Element]:
    """The testcases of a JUnit document by name, read with the standard library."""
    return {case.attrib["name"]: case for case in ET.fromstring(document).iter("testcase")}


# ---- JUnit XML ----------------------------------------------------------------------------------------------


def test_junit_root_and_suite_counts(plan: Plan, mixed: RunResult) -> None:
    """The root is <testsuites>; it and the one 'buildflow' suite carry the same counts and time."""
    root = ET.fromstring(junit_document(plan, mixed))
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    for element in (root, suites[0]):
        counts = {key: element.attrib[key] for key in ("tests", "failures", "errors", "skipped")}
        assert counts == {"tests": "4", "failures": "1", "errors": "0", "skipped": "2"}
        assert float(element.attrib["time"]) == pytest.approx(6.0)
    assert suites[0].attrib["name"] == "buildflow"
    assert suites[0].attrib["file"] == str(plan.pipeline.file)


def test_junit_testcases_per_target(plan: Plan, mixed: RunResult) -> None:
    """One testcase per target: name the id, classname the target, time its build."""
    cases = _cases(junit_document(plan, mixed))
    assert sorted(cases) == ["app", "base", "cpu", "cuda"]
    assert {name: case.attrib["classname"] for name, case in cases.items()} == {n: n for n in cases}
    assert float(cases["cpu"].attrib["time"]) == pytest.approx(2.5)
    assert float(cases["app"].attrib["time"]) == 0.0
    assert [child.tag for child in cases["cpu"]] == ["system-out"]


def test_junit_status_mapping(plan: Plan, mixed: RunResult) -> None:
    """REUSED and BLOCKED are skipped with their reasons, FAILED fails with the error line, BUILT passes."""
    cases = _cases(junit_document(plan, mixed))
    skipped = {name: case.find("skipped") for name, case in cases.items()}
    assert skipped["base"] is not None and skipped["base"].attrib["message"] == "reused: fingerprint abc in registry"
    assert skipped["app"] is not None and skipped["app"].attrib["message"] == "cuda failed"
    assert skipped["cpu"] is None and skipped["cuda"] is None
    failure = cases["cuda"].find("failure")
    assert failure is not None and failure.attrib["message"] == ERROR and failure.text == ERROR
    assert cases["cpu"].find("failure") is None and cases["base"].find("failure") is None


def test_junit_cancelled_is_skipped_with_its_reason(plan: Plan, built: RunResult) -> None:
    """A cancelled target is skipped with the reason it never started."""
    outcome = built.outcomes["app"]
    outcome.end(Status.CANCELLED, FailureKind.CANCELLED, "not started: an earlier target failed")
    skipped = _cases(junit_document(plan, built))["app"].find("skipped")
    assert skipped is not None and skipped.attrib["message"] == "not started: an earlier target failed"


def test_junit_reads_back_with_junitparser(plan: Plan, mixed: RunResult, tmp_path: Path) -> None:
    """The written file reads back with junitparser: counts, results and messages."""
    path = tmp_path / "reports" / "junit.xml"
    write_junit(path, plan, mixed)
    xml = JUnitXml.fromfile(str(path))
    assert (xml.tests, xml.failures, xml.errors, xml.skipped) == (4, 1, 0, 2)
    (suite,) = list(xml)
    assert suite.name == "buildflow"
    cases = {case.name: case for case in suite}
    assert cases["cpu"].is_passed and cases["cpu"].classname == "cpu"
    assert cases["base"].is_skipped and cases["app"].is_skipped
    assert cases["cuda"].is_failure
    (failure,) = cases["cuda"].result
    assert isinstance(failure, Failure) and failure.message == ERROR
    (reused,) = cases["base"].result
    assert isinstance(reused, Skipped) and reused.message == "reused: fingerprint abc in registry"


def test_junit_system_out_has_digest_and_tags(plan: Plan, mixed: RunResult) -> None:
    """system-out holds the digest and the tags; a target with neither has none."""
    cases = _cases(junit_document(plan, mixed))
    assert cases["cpu"].findtext("system-out") == f"digest: {DIGEST}\ntags: cpu:1, cpu:latest"
    assert cases["base"].findtext("system-out") == f"digest: {DIGEST}\ntags: r:bf-1"
    assert cases["app"].find("system-out") is None


def test_junit_keeps_xml_special_characters_and_drops_control_characters(plan: Plan, mixed: RunResult) -> None:
    """<, &, quotes survive; colour codes and NUL, which XML cannot hold, are dropped."""
    mixed.outcomes["cuda"].failure = run.Failure(FailureKind.BUILD, "\x1b[31mERROR\x1b[0m: a < b & \"c\" 'd' >\x00 e")
    document = junit_document(plan, mixed)
    assert document.startswith(b"<?xml")
    failure = _cases(document)["cuda"].find("failure")
    assert failure is not None and failure.attrib["message"] == "ERROR: a < b & \"c\" 'd' > e"


def test_junit_multiline_error_survives_in_the_message(plan: Plan, mixed: RunResult) -> None:
    """A line break in an error stays a line break in the message attribute."""
    mixed.outcomes["cuda"].failure = run.Failure(FailureKind.BUILD, "first line\nsecond line")
    (suite,) = list(JUnitXml.fromstring(junit_document(plan, mixed)))
    (failure,) = next(case for case in suite if case.name == "cuda").result
    assert failure.message == "first line\nsecond line"


def test_junit_release_error_is_a_failed_testcase(plan: Plan, built: RunResult) -> None:
    """A release error adds a failed 'release' testcase."""
    built.released, built.release_error = False, "app: tag app:latest: 401 Unauthorized"
    document = junit_document(plan, built)
    root = ET.fromstring(document)
    assert (root.attrib["tests"], root.attrib["failures"], root.attrib["skipped"]) == ("5", "1", "0")
    failure = _cases(document)["release"].find("failure")
    assert failure is not None and failure.attrib["message"] == "app: tag app:latest: 401 Unauthorized"


def test_junit_all_built_has_no_failures(plan: Plan, built: RunResult) -> None:
    """A run where everything was built passes every testcase and has no 'release' testcase."""
    root = ET.fromstring(junit_document(plan, built))
    assert (root.attrib["tests"], root.attrib["failures"], root.attrib["skipped"]) == ("4", "0", "0")
    assert "release" not in _cases(junit_document(plan, built))


# ---- Markdown -----------------------------------------------------------------------------------------------


def _table_rows(markdown: str) -> list[str]:
    """The lines of the Markdown table, header and separator included."""
    return [line for line in markdown.splitlines() if line.startswith("|")]


def _cells(row: str) -> list[str]:
    """The cells of a table row, split on unescaped pipes."""
    placeholder = "\0"
    return [cell.strip().replace(placeholder, "\\|") for cell in row.replace("\\|", placeholder).split("|")[1:-1]]


def test_summary_heading_totals_and_table(plan: Plan, mixed: RunResult) -> None:
    """Verdict heading, totals per status, and one table row per target with its cells."""
    markdown = summary_markdown(plan, mixed)
    lines = markdown.splitlines()
    assert lines[0] == "## buildflow: failed"
    assert "1 built, 1 reused, 1 failed, 1 blocked in 4.5s." in lines
    rows = _table_rows(markdown)
    assert _cells(rows[0]) == ["Target", "Status", "Why", "Digest", "Size", "Tags", "Time"]
    assert len(rows) == 2 + len(plan.steps)
    by_target = {_cells(row)[0]: _cells(row) for row in rows[2:]}
    assert sorted(by_target) == ["app", "base", "cpu", "cuda"]
    assert by_target["cpu"] == [
        "cpu",
        "BUILT",
        "new Dockerfile",
        "sha256:abababababab",
        "-",
        "cpu:1, cpu:latest",
        "2.5s",
    ]
    assert by_target["base"][1:6] == ["REUSED", "fingerprint abc in registry", "sha256:abababababab", "-", "r:bf-1"]
    assert by_target["app"] == ["app", "BLOCKED", "cuda failed", "-", "-", "-", "-"]
    assert by_target["cuda"][2] == ERROR_CELL


def test_summary_escapes_pipes_and_newlines(plan: Plan, mixed: RunResult) -> None:
    """Pipes and line breaks in a cell do not break the table."""
    mixed.outcomes["cuda"].failure = run.Failure(FailureKind.BUILD, "a | b\nc || d")
    rows = _table_rows(summary_markdown(plan, mixed))
    assert all(len(_cells(row)) == 7 for row in rows)
    cuda = next(_cells(row) for row in rows if row.startswith("| cuda "))
    assert cuda[2] == "a \\| b<br>c \\|\\| d"


SIZE = {
    "reference": "localhost:5000/t/cpu@sha256:1",
    "size": 7_000_000,
    "compressed": 3_000_000,
    "added": 5_000_000,
    "added_layers": 2,
    "wasted": 5_000_000,
    "wasted_here": 5_000_000,
    "layers": [],
    "waste": [
        {
            "path": "/tmp/x.bin",
            "bytes": 5_000_000,
            "how": "deleted",
            "written_in": 2,
            "written_by": "RUN dd of=/tmp/x.bin",
            "removed_in": 3,
            "removed_by": "RUN rm /tmp/x.bin",
            "here": True,
        }
    ],
}


def test_summary_shows_sizes_and_wasted_space(plan: Plan, mixed: RunResult) -> None:
    """The Size cell and a Wasted space list naming the file and both instructions."""
    mixed.outcomes["cpu"].size = SizeSummary.from_json(SIZE)
    markdown = summary_markdown(plan, mixed)
    cpu = next(_cells(row) for row in _table_rows(markdown) if row.startswith("| cpu "))
    assert cpu[4] == "7.0 MB (+5.0 MB, 5.0 MB wasted)"
    assert (
        "- cpu: /tmp/x.bin 5.0 MB, written by layer 2 `RUN dd of=/tmp/x.bin`, deleted by layer 3 `RUN rm /tmp/x.bin`"
        in markdown.splitlines()
    )


def test_summary_succeeded_has_no_release_error(plan: Plan, built: RunResult) -> None:
    """A run where everything was built and released succeeds, with no release line."""
    markdown = summary_markdown(plan, built)
    assert markdown.startswith("## buildflow: succeeded\n")
    assert "4 built in 1.0s." in markdown and "Release" not in markdown


def test_summary_release_error(plan: Plan, built: RunResult) -> None:
    """A release error fails the run and is shown, escaped."""
    built.released, built.release_error = False, "app: tag | denied"
    markdown = summary_markdown(plan, built)
    assert markdown.startswith("## buildflow: failed\n")
    assert "**Release tags not applied:** app: tag \\| denied" in markdown.splitlines()


def test_summary_ends_with_the_mermaid_graph(plan: Plan, mixed: RunResult) -> None:
    """The DAG closes the summary as the Mermaid graph of render.graph_mermaid."""
    markdown = summary_markdown(plan, mixed)
    assert markdown.endswith(f"```mermaid\n{graph_mermaid(plan)}\n```\n")
    assert markdown.count("```mermaid") == 1


def test_write_summary_creates_parents(plan: Plan, mixed: RunResult, tmp_path: Path) -> None:
    """write_summary creates missing parent directories."""
    path = tmp_path / "out" / "deep" / "summary.md"
    write_summary(path, plan, mixed)
    assert path.read_text(encoding="utf-8") == summary_markdown(plan, mixed)


def test_github_step_summary_appends(plan: Plan, mixed: RunResult, tmp_path: Path) -> None:
    """Each call appends to $GITHUB_STEP_SUMMARY and keeps what earlier steps wrote."""
    path = tmp_path / "step_summary.md"
    path.write_text("# earlier step\n", encoding="utf-8")
    environ = {"GITHUB_STEP_SUMMARY": str(path)}
    assert append_github_step_summary(plan, mixed, environ) == path
    assert append_github_step_summary(plan, mixed, environ) == path
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# earlier step\n")
    assert text.count("## buildflow: failed") == 2
    assert text.endswith(summary_markdown(plan, mixed))


@pytest.mark.parametrize("environ", [{}, {"GITHUB_STEP_SUMMARY": ""}])
def test_github_step_summary_unset_does_nothing(
    plan: Plan, mixed: RunResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, environ: dict[str, str]
) -> None:
    """Unset or empty $GITHUB_STEP_SUMMARY: None, and no file written."""
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.iterdir())
    assert append_github_step_summary(plan, mixed, environ) is None
    assert sorted(tmp_path.iterdir()) == before


def test_github_step_summary_reads_the_process_environment(
    plan: Plan, mixed: RunResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """By default the variable is read from the process environment."""
    path = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(path))
    assert append_github_step_summary(plan, mixed) == path
    assert "## buildflow: failed" in path.read_text(encoding="utf-8")


# ---- the failing step ---------------------------------------------------------------------------------------


def _with_failing_step(result: RunResult) -> RunResult:
    """cuda failed at a RUN whose output holds backticks and HTML."""
    tail = ("compiling <main.c>", "```not a fence end", "make: *** [all] Error 2")
    step = "Dockerfile:3: [2/3] RUN make all"
    result.outcomes["cuda"].failure = run.Failure(
        FailureKind.BUILD, "RUN at Dockerfile:3 failed", tail, False, step, "/logs/r1/cuda.log"
    )
    result.outcomes["cuda"].reference = "r:bf-never-pushed"
    return result


def test_junit_failure_body_holds_the_step_and_its_last_lines(plan: Plan, mixed: RunResult) -> None:
    failure = _cases(junit_document(plan, _with_failing_step(mixed)))["cuda"].find("failure")
    assert failure is not None and failure.attrib["message"] == "RUN at Dockerfile:3 failed"
    assert failure.text is not None
    assert failure.text.splitlines() == [
        "RUN at Dockerfile:3 failed",
        "failed at Dockerfile:3: [2/3] RUN make all",
        "| compiling <main.c>",
        "| ```not a fence end",
        "| make: *** [all] Error 2",
        "whole output: /logs/r1/cuda.log",
    ]


def test_markdown_collapses_each_failing_step_and_the_row_shows_the_error(plan: Plan, mixed: RunResult) -> None:
    markdown = summary_markdown(plan, _with_failing_step(mixed))
    assert "<details><summary>cuda: Dockerfile:3: [2/3] RUN make all</summary>" in markdown
    block = markdown[markdown.index("<details>") : markdown.index("</details>")]
    assert "\n````\ncompiling <main.c>\n```not a fence end\nmake: *** [all] Error 2\n````\n" in block
    assert "Whole output: `/logs/r1/cuda.log`" in block
    row = next(_cells(line) for line in _table_rows(markdown) if line.startswith("| cuda "))
    assert row[2] == "RUN at Dockerfile:3 failed" and row[5] == "-"  # its error; no tag it never had


def test_a_failed_row_shows_its_error_not_why_it_was_built(plan: Plan, mixed: RunResult) -> None:
    mixed.outcomes["cuda"].why = "not built before (no build record in the registry)"
    row = next(_cells(line) for line in _table_rows(summary_markdown(plan, mixed)) if line.startswith("| cuda "))
    assert row[2] == ERROR_CELL


def _wide_plan(tmp_path: Path, leaves: int) -> Plan:
    """A root and `leaves` children, each with a child of its own: 2 * leaves edges."""
    lines = ["version: 1", "registry: localhost:5000/w", "targets:", "  root: {}"]
    for number in range(leaves):
        lines += [f"  l{number}: {{from: root}}", f"  m{number}: {{from: l{number}}}"]
    return make_plan(load(tmp_path, "\n".join(lines) + "\n", dockerfiles(".")))


def test_a_graph_over_mermaids_edge_limit_is_drawn_by_generation(tmp_path: Path) -> None:
    plan = _wide_plan(tmp_path, 300)  # 600 edges
    result = RunResult({step.target.id: Outcome(step.target, Status.BUILT) for step in plan.steps}, 1.0)
    markdown = summary_markdown(plan, result)
    graph = markdown[markdown.index("```mermaid") :]
    assert "The graph has 600 edges, over Mermaid's limit of 500: one node per generation" in markdown
    assert graph.count("-->") == 2 and 'g0["generation 0: 1 targets<br>root"]' in graph
    assert 'g1["generation 1: 300 targets<br>l0, l1, l2, ..."]' in graph


def test_a_graph_under_the_limit_is_drawn_whole(tmp_path: Path) -> None:
    plan = _wide_plan(tmp_path, 250)  # 500 edges
    result = RunResult({step.target.id: Outcome(step.target, Status.BUILT) for step in plan.steps}, 1.0)
    markdown = summary_markdown(plan, result)
    assert "one node per generation" not in markdown and markdown.count("-->") == 500


# ---- the run id -----------------------------------------------------------------------------------------------


def test_the_run_id_is_a_junit_property_and_the_markdown_summary_s_last_line(plan: Plan, mixed: RunResult) -> None:
    mixed.run_id = "20261202T080531Z-150b"
    suite = ET.fromstring(junit_document(plan, mixed)).find("testsuite")
    assert suite is not None
    properties = {p.attrib["name"]: p.attrib["value"] for p in suite.iter("property")}
    assert properties == {"buildflow.run_id": "20261202T080531Z-150b"}
    assert summary_markdown(plan, mixed).splitlines()[-1] == "<sub>buildflow run 20261202T080531Z-150b</sub>"
    mixed.run_id = ""
    assert "<property" not in junit_document(plan, mixed).decode()
    assert "buildflow run" not in summary_markdown(plan, mixed)
