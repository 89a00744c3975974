"""The promises of docs/reliability.md under attack, for real: a release that cannot finish is put back, a
dripping registry ends the run in bounded time, signals end it in every phase, two pipelines share a target."""

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

from buildflow.run.lock import RunLock, lock_path
from tests.conftest import REPO
from tests.faults import Faults, faulty_registry
from tests.integration.conftest import BASE, REGISTRY, Project, child, make_project, registry_digest
from tests.integration.test_build import FILES, TREE
from tests.integration.test_reliability import RELEASE_TAGS, start, wait_for_event

pytestmark = pytest.mark.integration

SIGNAL_GRACE = 10  # seconds a run may take to end after a signal before the test calls it hung (it should take 5)


def release_digests(project: Project) -> dict[str, str | None]:
    """Every release tag of the tree, and the digest the registry itself holds for it."""
    return {
        tag: registry_digest(f"{REGISTRY}/{project.namespace}/{tag}") for tags in RELEASE_TAGS.values() for tag in tags
    }


def moved_base(project: Project) -> None:
    """Change the root image, so that every target is built again and every release tag must move."""
    with (project.root / "base" / "Dockerfile").open("a") as dockerfile:
        dockerfile.write(f"RUN echo {os.urandom(4).hex()} > /changed\n")


def through_proxy(project: Project, proxy: str) -> None:
    """Point a project at the fault proxy in front of the registry (same namespace, so the same images)."""
    pipeline = project.root / "buildflow.yaml"
    pipeline.write_text(pipeline.read_text().replace(f"registry: {REGISTRY}/", f"registry: {proxy}/"))


def tag_states(report: dict[str, Any]) -> dict[str, str]:
    """Each release tag's end state in the report, by its name under the namespace."""
    return {entry["tag"].rsplit("/", 1)[1]: entry["state"] for entry in report["release"]}


def test_a_release_tag_the_registry_refuses_leaves_every_tag_as_it_was(tmp_path: Path) -> None:
    project = make_project(tmp_path, TREE, FILES)
    assert project.build().returncode == 0
    before = release_digests(project)
    moved_base(project)
    refusing = Faults(rate=1.0, kinds=("503",), only=f"^PUT /v2/{project.namespace}/leaf/manifests/latest$")
    with faulty_registry(refusing) as proxy:
        through_proxy(project, proxy)
        result = project.build()
    assert result.returncode == 1, result.stdout + result.stderr
    assert release_digests(project) == before  # the registry itself: every tag as before the run
    report = project.report()
    assert not report["released"] and {t["status"] for t in report["targets"]} == {"BUILT"}
    assert tag_states(report)["leaf:latest"] == "failed"
    assert set(tag_states(report).values()) <= {"failed", "restored"}
    assert report["release_error"].endswith("every tag is as it was before the release (4 put back)")
    assert "the release tags were not applied: leaf: " in result.stderr


def test_a_dripping_registry_ends_the_run_with_its_name(tmp_path: Path) -> None:
    dripping = Faults(rate=1.0, kinds=("drip",), drip_seconds=5)
    with faulty_registry(dripping) as proxy:
        project = make_project(tmp_path, 'base: {context: base, tags: ["base:1"]}\n', {"base": BASE}, registry=proxy)
        result = project.build()  # bounded by the subprocess timeout: a hang fails the test
    assert result.returncode == 1, result.stdout + result.stderr
    error = project.targets()["base"]["error"]
    assert error.startswith(f"{proxy} does not answer: 3 requests in a row had no complete answer within 30 s")


def test_sigterm_while_a_registry_drips_ends_the_run(tmp_path: Path) -> None:
    dripping = Faults(rate=1.0, kinds=("drip",), drip_seconds=5)
    with faulty_registry(dripping) as proxy:
        project = make_project(tmp_path, 'base: {context: base, tags: ["base:1"]}\n', {"base": BASE}, registry=proxy)
        process = start(project)
        wait_for_event(process, "target.started", "base")  # waiting for its registry lookup
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=SIGNAL_GRACE)
    assert process.returncode == 143, stderr
    assert "interrupted by SIGTERM; nothing was released" in stderr and "Traceback" not in stderr
    assert project.report()["status"] == "interrupted"


def test_sigterm_while_waiting_for_the_lock_ends_the_run_and_writes_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path, TREE, FILES)
    locks = tmp_path / "locks"
    monkeypatch.setenv("BUILDFLOW_LOCK_DIR", str(locks))  # the lock this test holds is the one the run waits for
    registry = f"{REGISTRY}/{project.namespace}"
    repositories = [f"{registry}/{name}" for name in ("base", "mid", "leaf", "side")]
    holder = RunLock(lock_path(registry, repositories), wait=False, describe="the test", on_wait=lambda _: None)
    with holder:
        process = subprocess.Popen(
            [sys.executable, "-m", "buildflow", "build", "--log-format", "json", "--report", "report.json"],
            cwd=project.root,
            env={**os.environ, "PYTHONPATH": str(REPO), "BUILDFLOW_LOCK_DIR": str(locks)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _wait_for_line(process, '"lock.waiting"')
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=SIGNAL_GRACE)
    assert process.returncode == 143, stderr
    report = project.report()
    assert report["status"] == "interrupted"
    assert {t["error"] for t in report["targets"]} == {"not started: interrupted (SIGTERM)"}


def test_sigterm_during_the_release_puts_the_moved_tags_back(tmp_path: Path) -> None:
    project = make_project(tmp_path, TREE, FILES)
    assert project.build().returncode == 0
    before = release_digests(project)
    moved_base(project)
    slow = Faults(rate=1.0, kinds=("slow",), slow_seconds=2, only=r"^PUT .*/manifests/1$")  # release tags' PUTs
    with faulty_registry(slow) as proxy:
        through_proxy(project, proxy)
        process = start(project)
        _wait_for_events(process, "target.built", {"base", "mid", "leaf", "side"})
        time.sleep(1)  # the release is under way: each copy of a release tag takes 2 s
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=SIGNAL_GRACE)
    assert process.returncode == 143, stderr
    report = project.report()
    assert release_digests(project) == before or report["released"], (stderr, report["release"])
    if not report["released"]:
        assert "interrupted by SIGTERM; the release: " in stderr
        assert "every tag is as it was before the release" in stderr


def test_two_pipelines_that_share_a_target_build_it_at_once(tmp_path: Path) -> None:
    shared = 'shared: {context: shared, tags: ["shared:1"]}\n'
    one = make_project(
        tmp_path / "one",
        shared + 'one: {context: one, from: shared, tags: ["one:1"]}\n',
        {
            "shared": BASE,
            "one": child("one", "base"),  # the shared image is BASE, which writes /base.txt
        },
    )
    two = make_project(
        tmp_path / "two",
        shared + 'two: {context: two, from: shared, tags: ["two:1"]}\n',
        {
            "shared": BASE,
            "two": child("two", "base"),
        },
    )
    pipeline = two.root / "buildflow.yaml"
    pipeline.write_text(pipeline.read_text().replace(two.namespace, one.namespace))
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "buildflow", "build", "--progress", "plain", "--report", "report.json"],
            cwd=project.root,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for project in (one, two)
    ]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    digests = [json.loads((p.root / "report.json").read_text())["targets"][0]["digest"] for p in (one, two)]
    assert digests[0] == digests[1] == registry_digest(f"{REGISTRY}/{one.namespace}/shared:1")


def _wait_for_events(process: subprocess.Popen[str], event: str, targets: set[str]) -> None:
    """Read the run's JSON log lines until `event` was seen for every one of `targets`, in any order."""
    assert process.stderr is not None
    waiting = set(targets)
    for line in process.stderr:
        if f'"event": "{event}"' in line:
            waiting.discard(json.loads(line)["target"])
        if not waiting:
            return
    raise AssertionError(f"the run ended before {event} of {sorted(waiting)}")


def _wait_for_line(process: subprocess.Popen[str], text: str) -> None:
    """Read the run's log lines until one contains `text` (any line, for '')."""
    assert process.stderr is not None
    for line in process.stderr:
        if text in line:
            return
    raise AssertionError(f"the run ended before a line with {text!r}")
