"""A failing step, shown everywhere without --debug: its instruction and last lines on the console, in the
target.failed event, the JSON report, the JUnit body, the Markdown summary and the run's log file; a failing
image test the same; a secret the build prints masked in each; a log directory that cannot be written refused."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import pytest

from tests.integration.conftest import BASE, Project, make_project, registry_digest

pytestmark = pytest.mark.integration

SECRET = "s3cr3t-value-4f2a9c"
MARKER = "BF-MARKER about to fail"
TARGETS = """\
    base: {context: base, tags: ["base:1"]}
    broken:
      context: broken
      from: base
      tags: ["broken:1"]
      secrets: {tok: {env: BF_FAIL_TOKEN}}
    after: {context: after, from: broken, tags: ["after:1"]}
    untested:
      context: untested
      from: base
      tags: ["untested:1"]
      test: {commands: ["echo BF-TEST-MARKER checking; echo token $(cat /token); exit 4"], inherit: false}
    """
BROKEN = """\
    ARG BASE_IMAGE=base
    FROM ${BASE_IMAGE}
    RUN echo prepared > /prepared.txt
    RUN --mount=type=secret,id=tok echo "token $(cat /run/secrets/tok)" \\
        && for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35; \\
           do echo "noise $i"; done \\
        && printf 'bad utf-8: \\377\\376\\n' && echo "BF-MARKER about to fail" && exit 3
    """
UNTESTED = """\
    ARG BASE_IMAGE=base
    FROM ${BASE_IMAGE}
    RUN echo s3cr3t-value-4f2a9c > /token
    """
AFTER = "ARG BASE_IMAGE=broken\nFROM ${BASE_IMAGE}\n"


@pytest.fixture(scope="module")
def failed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, str, str, Path]:
    """The pipeline built once with --keep-going, every report asked for, the logs kept in logs/."""
    root = tmp_path_factory.mktemp("failures")
    project = make_project(
        root,
        TARGETS,
        {"base": BASE, "broken": BROKEN, "after": AFTER, "untested": UNTESTED},
        attempts=1,
    )
    logs = root.parent / f"{root.name}-logs"
    env = {"BF_FAIL_TOKEN": SECRET}
    arguments = ["--keep-going", "--junit", "J.xml", "--summary", "S.md", "--log-dir", str(logs)]
    result = project.build(*arguments, env=env)
    assert result.returncode == 1, result.stderr
    return project, result.stdout, result.stderr, logs


def test_the_console_shows_the_failing_instruction_and_its_last_lines(failed: tuple[Project, str, str, Path]) -> None:
    """Under the failed row: the Dockerfile line, the instruction, the marker and the file with everything."""
    _, stdout, _, logs = failed
    table = stdout[stdout.index("TARGET") :]
    assert "failed at Dockerfile:4" in table and "RUN --mount=type=secret,id=tok" in table
    assert f"| {MARKER}" in table
    assert "| noise 35" in table and "| noise 1\n" not in table  # the last lines, not all of them
    assert str(logs) in table


def test_the_failed_event_carries_the_step_and_the_tail(failed: tuple[Project, str, str, Path]) -> None:
    """target.failed (the console log without --debug) names the step and holds the marker."""
    _, _, stderr, _ = failed
    failed_lines = [line for line in stderr.splitlines() if "target.failed" in line]
    assert failed_lines, stderr
    assert MARKER in stderr[stderr.index("target.failed") :]
    assert "about to fail" not in stderr[: stderr.index("target.failed")]  # no raw builder output before it


def test_the_report_has_the_failure_and_the_log_file(failed: tuple[Project, str, str, Path]) -> None:
    """The JSON report: kind, message, step, tail and the log file, which holds the whole output; no content tag
    for a target that was never pushed."""
    project, _, _, logs = failed
    report = project.report()
    broken = project.targets()["broken"]
    failure = broken["failure"]
    assert failure["kind"] == "build" and failure["message"] == "RUN at Dockerfile:4 failed with exit code 3"
    assert failure["step"].startswith("Dockerfile:4: [") and "RUN --mount" in failure["step"]
    assert failure["log_tail"][-1] == MARKER and len(failure["log_tail"]) <= 30
    assert broken["reference"] is None and broken["tags"] == []
    log_file = Path(failure["log"])
    assert log_file.parent == logs / report["run_id"] and broken["log"] == failure["log"]
    whole = log_file.read_text()
    assert "noise 1\n" in whole and MARKER in whole and "bad utf-8: \ufffd\ufffd" in whole
    assert Path(project.targets()["base"]["log"]).is_file()  # every built target keeps its output


def test_junit_and_markdown_show_the_step(failed: tuple[Project, str, str, Path]) -> None:
    """The JUnit failure body and the collapsed Markdown block hold the step and the marker; the row its error."""
    project, _, _, _ = failed
    cases = {case.get("name"): case for case in ElementTree.parse(project.root / "J.xml").iter("testcase")}
    body = cases["broken"].find("failure")
    assert body is not None and MARKER in (body.text or "") and "Dockerfile:4" in (body.text or "")
    summary = (project.root / "S.md").read_text()
    assert "<details><summary>broken: Dockerfile:4: [" in summary and MARKER in summary
    row = next(line for line in summary.splitlines() if line.startswith("| broken |"))
    assert "RUN at Dockerfile:4 failed with exit code 3" in row and "bf-" not in row


def test_a_failing_image_test_is_shown_the_same_way(failed: tuple[Project, str, str, Path]) -> None:
    """A test's output: under its row, in the report, JUnit and Markdown."""
    project, stdout, _, _ = failed
    untested = project.targets()["untested"]
    assert untested["status"] == "FAILED" and untested["failure"]["kind"] == "test"
    assert untested["failure"]["step"].startswith("test `echo BF-TEST-MARKER")
    assert any("BF-TEST-MARKER checking" in line for line in untested["failure"]["log_tail"])
    assert "| BF-TEST-MARKER checking" in stdout
    assert "BF-TEST-MARKER checking" in (project.root / "S.md").read_text()
    assert "BF-TEST-MARKER checking" in (project.root / "J.xml").read_text()


def test_the_secret_is_masked_everywhere(failed: tuple[Project, str, str, Path]) -> None:
    """The build secret the RUN printed, and the same value printed by a test, appear in nothing kept."""
    project, stdout, stderr, logs = failed
    files = [project.report_path, project.root / "J.xml", project.root / "S.md", *logs.rglob("*.log")]
    for text in (stdout, stderr, *(path.read_text(errors="replace") for path in files)):
        assert SECRET not in text
    assert "token ***" in Path(project.targets()["broken"]["log"]).read_text()  # masked, not dropped


def test_a_log_directory_that_cannot_be_written_stops_before_building(tmp_path: Path) -> None:
    """--log-dir on a file: exit 2, one line naming it, nothing built."""
    project = make_project(tmp_path / "p", TARGETS, {"base": BASE, "broken": BROKEN, "after": AFTER})
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = project.build("--log-dir", str(blocker / "logs"), "base")
    assert result.returncode == 2
    assert f"--log-dir {blocker / 'logs'}" in result.stderr and "Traceback" not in result.stderr
    assert not project.report_path.exists()


def test_no_push_leaves_the_registry_cache_untouched(tmp_path: Path) -> None:
    """--no-push reads the shared registry cache and writes none; a pushed build writes it."""
    project = make_project(tmp_path, 'base: {context: base, tags: ["base:1"], cache: registry}\n', {"base": BASE})
    cache = f"{project.ref('buildcache')}:base"
    local = project.build("--no-push")
    assert local.returncode == 0, local.stderr
    assert registry_digest(cache) is None and registry_digest(project.ref("base:1")) is None
    pushed = project.build("--force")
    assert pushed.returncode == 0, pushed.stderr
    assert registry_digest(cache) is not None
