"""Reliability for real: a registry that fails a third of its requests, signals, a registry that stays down, 401,
and an engine that dies mid-run. Nothing may be lost or half-published."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.faults import Faults, faulty_registry
from tests.integration.conftest import BASE, REGISTRY, Project, child, make_project, unsafe_outcomes
from tests.integration.test_build import FILES, TREE

pytestmark = pytest.mark.integration

RELEASE_TAGS = {"base": ["base:1"], "mid": ["mid:1"], "leaf": ["leaf:1", "leaf:latest"], "side": ["side:1"]}


def assert_nothing_lost_or_half_published(project: Project, proxy: str) -> dict[str, Any]:
    """Every BUILT target is in the registry under exactly its digest; release tags moved only if all succeeded."""
    assert unsafe_outcomes(project, proxy, RELEASE_TAGS) == ([], [])
    return project.report()


def test_faults_on_a_third_of_registry_requests_lose_nothing_and_publish_no_half_release(tmp_path: Path) -> None:
    faults = Faults(rate=0.3, seed=7, slow_seconds=0.5)
    with faulty_registry(faults) as proxy:
        project = make_project(tmp_path, TREE, FILES, registry=proxy, attempts=15, max_delay=2)
        result = project.build("--timeout", "180", "--keep-going")  # ends: 180 s per call at most, ten tries
    report = assert_nothing_lost_or_half_published(project, proxy)
    print(f"{faults.failed} of {faults.seen} requests failed {faults.by_kind}; run {report['status']}")
    assert faults.seen > 50 and faults.failed / faults.seen >= 0.3
    assert result.returncode == (0 if report["status"] == "succeeded" else 1), result.stdout + result.stderr
    for target in report["targets"]:
        assert target["status"] in ("BUILT", "FAILED", "BLOCKED"), target
        assert target["status"] != "FAILED" or proxy in target["error"] or "injected" in target["error"], target


def test_retry_after_is_honoured_by_registry_lookups(tmp_path: Path) -> None:
    faults = Faults(first=2, status=429, retry_after="2")
    with faulty_registry(faults) as proxy:
        project = make_project(tmp_path, 'base: {context: base, tags: ["base:1"]}\n', {"base": BASE}, registry=proxy)
        result = project.build("--log-format", "json", "--debug")
    assert result.returncode == 0, result.stderr
    retried = [json.loads(line) for line in result.stderr.splitlines() if '"registry.retrying"' in line]
    waits = [event["wait"] for event in retried if "429" in event["error"]]
    assert len(waits) == 2 and all(wait >= 2 for wait in waits), waits  # each request waited as it was asked


def test_a_registry_that_stays_down_fails_with_its_name(tmp_path: Path) -> None:
    project = make_project(
        tmp_path, 'base: {context: base, tags: ["base:1"]}\n', {"base": BASE}, registry="localhost:9"
    )
    result = project.build("--retries", "2")
    assert result.returncode == 1
    base = project.targets()["base"]
    assert base["status"] == "FAILED" and "localhost:9" in base["error"], base["error"]
    assert "Traceback" not in result.stderr


def test_a_registry_that_wants_a_login_says_so(tmp_path: Path) -> None:
    with faulty_registry(Faults(first=10**6, status=401)) as proxy:
        project = make_project(tmp_path, 'base: {context: base, tags: ["base:1"]}\n', {"base": BASE}, registry=proxy)
        result = project.build()
    assert result.returncode == 1
    assert project.targets()["base"]["error"] == f"not logged in to {proxy}: run docker login {proxy}"


def start(project: Project, *arguments: str) -> subprocess.Popen[str]:
    """buildflow build in the background, JSON logs on stderr."""
    return subprocess.Popen(
        [sys.executable, "-m", "buildflow", "build", "--log-format", "json", "--report", "report.json", *arguments],
        cwd=project.root,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_event(process: subprocess.Popen[str], event: str, target: str) -> list[str]:
    """Read the run's log lines until `event` for `target`; the lines read."""
    assert process.stderr is not None
    lines = []
    for line in process.stderr:
        lines.append(line)
        if f'"event": "{event}"' in line and f'"target": "{target}"' in line:
            return lines
    raise AssertionError("the run ended before " + event + " " + target + ":\n" + "".join(lines))


@pytest.mark.parametrize(("number", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_interrupts_the_run_writes_the_report_and_releases_nothing(
    tmp_path: Path, number: signal.Signals, code: int
) -> None:
    files = {**FILES, "mid": child("mid", "base") + f"RUN sleep 600 # {number}\n"}  # ends only if cancelled
    project = make_project(tmp_path, TREE, files)
    process = start(project)
    wait_for_event(process, "target.started", "mid")
    time.sleep(2)  # mid's build is under way in BuildKit
    process.send_signal(number)
    _, stderr = process.communicate(timeout=120)  # the 600 s step must be cancelled, not waited out
    assert process.returncode == code, stderr
    assert "interrupted by " + number.name in stderr and "Traceback" not in stderr
    report = project.report()
    statuses = {t["id"]: t["status"] for t in report["targets"]}
    assert report["status"] == "interrupted" and statuses["base"] == "BUILT"
    assert statuses["mid"] == "INTERRUPTED" and statuses["leaf"] == "INTERRUPTED"
    assert_nothing_lost_or_half_published(project, REGISTRY)
    processes = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    assert [line for line in processes.splitlines() if project.namespace in line] == []  # no docker left behind
    (project.root / "mid" / "Dockerfile").write_text(child("mid", "base").replace("    ", ""))
    again = project.build()
    assert again.returncode == 0, again.stdout + again.stderr
    assert project.targets()["base"]["status"] == "REUSED"


@pytest.mark.disruptive
def test_an_engine_that_dies_mid_run_is_waited_for_and_nothing_is_half_published(tmp_path: Path) -> None:
    pid_file = Path(os.environ.get("BUILDFLOW_ENGINE_STATE", "/var/lib/buildflow-engine")) / "dockerd.pid"
    if not pid_file.exists():
        pytest.skip("the engine was not started by scripts/engine.sh, so this test may not kill it")
    files = {**FILES, "mid": child("mid", "base") + "RUN sleep 6 # dies\n"}
    project = make_project(tmp_path, TREE, files, attempts=8)
    process = start(project, "--retries", "8")
    wait_for_event(process, "target.started", "mid")
    time.sleep(2)
    try:
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
        time.sleep(3)
    finally:
        subprocess.run([str(REPO / "scripts" / "engine.sh"), "up"], check=True, capture_output=True, timeout=300)
    _, stderr = process.communicate(timeout=600)
    # A killed engine can leave BuildKit cache records whose content is gone: later builds on those images fail
    # with "failed to load cache key ... not found" until the cache is pruned. Leave the engine healthy.
    subprocess.run(["docker", "builder", "prune", "--all", "--force"], check=True, capture_output=True, timeout=300)
    report = assert_nothing_lost_or_half_published(project, REGISTRY)
    retried = [line for line in stderr.splitlines() if '"target.retrying"' in line]
    errors = {t["id"]: t["error"] for t in report["targets"] if t["error"]}
    print(f"engine killed: {len(retried)} retries; run {report['status']}; {errors}")
    assert process.returncode == (0 if report["status"] == "succeeded" else 1)
    if report["status"] != "succeeded":
        failed = [t for t in report["targets"] if t["status"] == "FAILED"]
        assert failed and all(t["error"] for t in failed)


def test_a_stalled_registry_answer_becomes_a_transient_error_not_a_hang() -> None:
    from buildflow.engine.base import EngineError
    from buildflow.engine.registry import RegistryClient

    stalling = faulty_registry(Faults(rate=1.0, kinds=("stall",), stall_seconds=5))
    with stalling as proxy, pytest.raises(EngineError) as caught:
        RegistryClient(timeout=1, attempts=1).digest(f"{proxy}/stalled/image:1")
    assert caught.value.transient and proxy.split(":")[0] in str(caught.value)
