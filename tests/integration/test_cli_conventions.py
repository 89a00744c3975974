"""The command line's conventions on real builds: every stderr line JSON with --log-format json, run.started and
run.finished with the right counts and exit code, options before the command, environment variables, and
status --exit-code against the registry."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.integration.conftest import BASE, buildflow, child, make_project, registry_digest

pytestmark = pytest.mark.integration

TREE = """\
    base: {context: base, tags: ["base:1"]}
    good: {context: good, from: base, tags: ["good:1"]}
    bad: {context: bad, from: base, tags: ["bad:1"]}
    leaf: {context: leaf, from: bad, tags: ["leaf:1"]}
    """
BROKEN = "ARG BASE_IMAGE=parent\nFROM ${BASE_IMAGE}\nRUN echo broken && exit 3\n"
FILES = {"base": BASE, "good": child("good", "base"), "bad": BROKEN, "leaf": child("leaf", "bad")}


def lines_as_json(stderr: str) -> list[dict[str, Any]]:
    """Every line of stderr parsed as one JSON object; a line that is not fails the test, naming it."""
    found = []
    for line in stderr.splitlines():
        try:
            found.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not JSON on stderr: {line!r}")
        assert isinstance(found[-1], dict), line
    return found


def test_a_failed_build_in_json_is_json_on_every_line_framed_by_run_events(tmp_path: Path) -> None:
    project = make_project(tmp_path, TREE, FILES)
    reports = ["--report", "report.json", "--junit", "junit.xml", "--summary", "summary.md"]
    result = buildflow(
        *("-f", "buildflow.yaml", "--log-format", "json", "build", "--keep-going", *reports), cwd=project.root
    )
    assert result.returncode == 1, result.stderr
    events = lines_as_json(result.stderr)
    started = next(event for event in events if event["event"] == "run.started")
    finished = next(event for event in events if event["event"] == "run.finished")
    run_id = project.report()["run_id"]
    assert started["run_id"] == finished["run_id"] == run_id and started["command"] == "build"
    assert started["file"] == "buildflow.yaml" and sorted(started["targets"]) == ["bad", "base", "good", "leaf"]
    assert started["builders"] == [] and started["selection"] == {}
    assert finished["counts"] == {"BLOCKED": 1, "BUILT": 2, "FAILED": 1} and finished["targets"] == 4
    assert finished["exit_code"] == 1 and finished["released"] is False and finished["seconds"] > 0
    assert events.index(started) < events.index(finished) == len(events) - 2
    last = events[-1]
    assert last["event"] == "error" and last["exit_code"] == 1
    assert last["message"].startswith("buildflow: 2 of 4 targets not built: bad: ")
    assert {"target.failed", "target.blocked", "target.built"} <= {event["event"] for event in events}
    junit = ET.parse(project.root / "junit.xml").getroot()
    assert {p.attrib["name"]: p.attrib["value"] for p in junit.iter("property")} == {"buildflow.run_id": run_id}
    summary = (project.root / "summary.md").read_text()
    assert summary.splitlines()[-1] == f"<sub>buildflow run {run_id}</sub>"


def test_environment_variables_and_options_before_the_command_drive_a_real_build(tmp_path: Path) -> None:
    """BUILDFLOW_FILE from another directory, BUILDFLOW_BUILD_PUSH=false, the report named by its variable, JSON by
    BUILDFLOW_LOG_FORMAT; then -f and --registry before the command, overridden after it."""
    project = make_project(tmp_path / "project", TREE, {**FILES, "bad": child("bad", "base")})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    environment = {
        "BUILDFLOW_FILE": str(project.root / "buildflow.yaml"),
        "BUILDFLOW_BUILD_PUSH": "false",
        "BUILDFLOW_BUILD_REPORT": str(elsewhere / "local.json"),
        "BUILDFLOW_BUILD_JOBS": "2",
        "BUILDFLOW_LOG_FORMAT": "json",
    }
    result = buildflow("build", "base", cwd=elsewhere, env=environment)
    assert result.returncode == 0, result.stderr
    report = json.loads((elsewhere / "local.json").read_text())
    assert [(t["id"], t["status"], t["pushed"]) for t in report["targets"]] == [("base", "BUILT", False)]
    assert registry_digest(project.ref("base:1")) is None
    finished = [event for event in lines_as_json(result.stderr) if event["event"] == "run.finished"]
    assert finished[0]["exit_code"] == 0 and finished[0]["counts"] == {"BUILT": 1}

    before = ["-f", str(elsewhere / "missing.yaml"), "--registry", "nowhere.invalid:1/x", "--debug"]
    after = ["-f", "buildflow.yaml", "--registry", f"localhost:5000/{project.namespace}"]
    result = buildflow(*before, "build", "--progress", "plain", "--report", "report.json", *after, cwd=project.root)
    assert result.returncode == 0, result.stderr
    assert {t["status"] for t in project.targets().values()} == {"BUILT"}
    assert registry_digest(project.ref("leaf:1")) == project.targets()["leaf"]["digest"]
    assert "pipeline.loaded" in result.stderr  # --debug before the command took effect


def test_status_exit_code_says_whether_anything_would_be_built(tmp_path: Path) -> None:
    project = make_project(tmp_path, TREE, {**FILES, "bad": child("bad", "base")})
    stale = buildflow("status", "--exit-code", cwd=project.root)
    assert stale.returncode == 1 and "not built before" in stale.stdout
    assert stale.stderr == "buildflow: 4 of 4 images would be built\n"
    assert buildflow("status", cwd=project.root).returncode == 0  # without --exit-code, 0 as before
    assert project.build().returncode == 0
    fresh = buildflow("status", "--exit-code", cwd=project.root)
    assert fresh.returncode == 0 and fresh.stderr == "" and "4 up to date, 0 to build." in fresh.stdout
    (project.root / "leaf" / "Dockerfile").write_text(child("leaf", "bad") + "RUN true\n")
    changed = buildflow("--log-format", "json", "status", "--exit-code", "--format", "json", cwd=project.root)
    assert changed.returncode == 1
    assert [t["id"] for t in json.loads(changed.stdout)["targets"] if not t["up_to_date"]] == ["leaf"]
    (error,) = lines_as_json(changed.stderr)
    assert error["event"] == "error" and error["message"] == "buildflow: 1 of 4 images would be built"


def test_an_interrupted_build_in_json_ends_with_json_events(tmp_path: Path) -> None:
    project = make_project(tmp_path, "slow: {context: slow, tags: ['slow:1']}\n", {"slow": BASE + "RUN sleep 600\n"})
    process = subprocess.Popen(
        [sys.executable, "-m", "buildflow", "--log-format", "json", "build", "--progress", "tty"],
        cwd=project.root,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    read = []
    for line in process.stderr:
        read.append(line)
        if '"event": "target.started"' in line:
            break
    time.sleep(1)  # the build is under way
    process.send_signal(signal.SIGTERM)
    _, rest = process.communicate(timeout=120)
    assert process.returncode == 143
    events = lines_as_json("".join(read) + rest)  # --progress tty drew no live view: JSON wins
    finished = next(event for event in events if event["event"] == "run.finished")
    assert finished["exit_code"] == 143 and finished["counts"] == {"INTERRUPTED": 1}
    assert events[-1]["event"] == "error" and events[-1]["exit_code"] == 143
    assert events[-1]["message"].startswith("buildflow: interrupted by SIGTERM")
