"""Incremental builds for real: reuse, exact rebuilds after a change, upstream bases, reports, the run lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from xml.etree import ElementTree

import pytest
from junitparser import JUnitXml

from tests.conftest import REPO
from tests.integration.conftest import Project, buildflow, child, make_project, push_base, registry_digest

pytestmark = pytest.mark.integration

BASE_ON = """\
    FROM {base}
    RUN echo base > /base.txt
    """
TREE = """\
    base: {context: base}
    mid: {context: mid, from: base, tags: ["mid:1"]}
    leaf: {context: leaf, from: mid, args: {FLAVOUR: "{flavour}"}, tags: ["leaf:1"]}
    side: {context: side, from: base, tags: ["side:1"]}
    """


def statuses(project: Project) -> dict[str, str]:
    """Target id -> status in the last report."""
    return {name: target["status"] for name, target in project.targets().items()}


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A four-target tree on an external base in the test registry, built once; a git checkout."""
    made = make_project(tmp_path, TREE, {})
    external = made.ref("upstream:1")
    push_base(external, "one")
    files = {
        "base": BASE_ON.replace("{base}", external),
        "mid": child("mid", "base"),
        "leaf": child("leaf", "mid") + "ARG FLAVOUR\nRUN echo $FLAVOUR > /flavour\n",
        "side": child("side", "base"),
    }
    text = (tmp_path / "buildflow.yaml").read_text().replace("targets:", "vars: {flavour: plain}\ntargets:", 1)
    (tmp_path / "buildflow.yaml").write_text(text)
    for context, dockerfile in files.items():
        (tmp_path / context).mkdir(exist_ok=True)
        (tmp_path / context / "Dockerfile").write_text(textwrap.dedent(dockerfile))
    git(tmp_path, "init", "-q")
    commit(tmp_path, "first")
    result = made.build()
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(statuses(made).values()) == {"BUILT"}
    return made


def git(root: Path, *arguments: str) -> str:
    """Run git in the project."""
    return subprocess.run(["git", "-C", str(root), *arguments], check=True, capture_output=True, text=True).stdout


def commit(root: Path, message: str) -> None:
    """Commit everything (the report aside)."""
    (root / ".gitignore").write_text("report.json\n*.xml\n*.md\n")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-q", "-m", message)


def test_a_second_run_with_nothing_changed_builds_nothing(project: Project) -> None:
    first = project.targets()
    result = project.build("--debug")
    assert result.returncode == 0, result.stderr
    second = project.targets()
    assert set(statuses(project).values()) == {"REUSED"}
    assert all(target["attempts"] == 0 and target["steps"] == 0 for target in second.values())
    assert "build.output" not in result.stderr  # no BuildKit call at all
    assert {name: t["digest"] for name, t in second.items()} == {name: t["digest"] for name, t in first.items()}
    assert all(target["why"].startswith("up to date (built ") for target in second.values())
    assert registry_digest(project.ref("leaf:1")) == second["leaf"]["digest"]  # release tags still applied


def test_a_changed_context_file_rebuilds_exactly_that_target_and_its_descendants(project: Project) -> None:
    (project.root / "mid" / "train.py").write_text("print('new')\n")
    status = buildflow("status", "--format", "json", cwd=project.root)
    assert status.returncode == 0, status.stderr
    why = {target["id"]: target["why"] for target in json.loads(status.stdout)["targets"]}
    assert why["mid"] == "context file train.py added"
    assert why["leaf"] == "parent mid changed; reused if parent mid keeps its digest"
    assert why["base"].startswith("up to date") and why["side"].startswith("up to date")
    assert project.build("--no-early-cutoff").returncode == 0
    assert statuses(project) == {"base": "REUSED", "mid": "BUILT", "leaf": "BUILT", "side": "REUSED"}


def test_a_context_file_no_step_copies_rebuilds_its_target_to_the_same_digest_and_reuses_its_children(
    project: Project,
) -> None:
    first = {name: target["digest"] for name, target in project.targets().items()}
    (project.root / "mid" / "notes.txt").write_text("not copied\n")
    commit(project.root, "notes")  # a new commit time: the rebuild keeps the epoch of mid's latest build
    assert project.build().returncode == 0
    assert statuses(project) == {"base": "REUSED", "mid": "BUILT", "leaf": "REUSED", "side": "REUSED"}
    assert {name: target["digest"] for name, target in project.targets().items()} == first
    assert project.targets()["leaf"]["why"] == "parent mid rebuilt, same digest"


def test_a_changed_build_arg_rebuilds_exactly_that_target(project: Project) -> None:
    status = buildflow("status", "--var", "flavour=spicy", cwd=project.root)
    assert "build arg FLAVOUR changed" in status.stdout
    assert project.build("--var", "flavour=spicy").returncode == 0
    assert statuses(project) == {"base": "REUSED", "mid": "REUSED", "leaf": "BUILT", "side": "REUSED"}


def test_an_upstream_base_that_moves_rebuilds_exactly_its_dependants(project: Project) -> None:
    moved = push_base(project.ref("upstream:1"), "two")
    status = buildflow("status", cwd=project.root)
    assert f"base {project.ref('upstream:1')} moved sha256:" in status.stdout
    assert f"→ {moved[:19]}…" in status.stdout
    assert project.build().returncode == 0
    assert set(statuses(project).values()) == {"BUILT"}  # every target here stands on the base
    leaf = project.targets()["leaf"]["digest"]
    marker = subprocess.run(
        ["docker", "run", "--rm", "--network=none", f"{project.ref('leaf')}@{leaf}", "cat", "/marker.txt"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert marker.stdout.strip() == "two"  # built on the base digest its fingerprint names


def test_forced_and_max_age_rebuilds_of_unchanged_inputs_give_the_same_digests(project: Project) -> None:
    first = {name: target["digest"] for name, target in project.targets().items()}
    assert project.build("--force").returncode == 0
    assert set(statuses(project).values()) == {"BUILT"}
    assert {name: target["digest"] for name, target in project.targets().items()} == first
    time.sleep(2)
    assert project.build("--max-age", "1s").returncode == 0
    report = project.targets()
    assert report["base"]["why"].startswith("older than max-age 1s")
    assert {name: target["digest"] for name, target in report.items()} == first
    created = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Created}}", report["leaf"]["reference"]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    epoch = int(git(project.root, "log", "-1", "--format=%ct").strip())
    assert created.startswith(time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)))  # SOURCE_DATE_EPOCH


def test_since_selects_what_changed_since_a_commit_and_its_descendants(project: Project) -> None:
    (project.root / "side" / "notes.txt").write_text("changed\n")
    commit(project.root, "side changes")
    plan = buildflow("plan", "--offline", "--since", "HEAD~1", "--format", "json", cwd=project.root)
    assert plan.returncode == 0, plan.stderr
    assert [target["id"] for target in json.loads(plan.stdout)["targets"]] == ["side"]
    assert project.build("--since", "HEAD~1").returncode == 0
    assert statuses(project) == {"side": "BUILT"}
    bad = buildflow("build", "--since", "no-such-rev", cwd=project.root)
    assert bad.returncode == 2 and "--since no-such-rev: not a commit" in bad.stderr


def test_the_junit_file_counts_built_reused_failed_and_blocked(project: Project) -> None:
    (project.root / "mid" / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN exit 7\n")
    junit, summary = project.root / "junit.xml", project.root / "summary.md"
    result = project.build("--keep-going", "--junit", str(junit), "--summary", str(summary))
    assert result.returncode == 1
    assert statuses(project) == {"base": "REUSED", "mid": "FAILED", "leaf": "BLOCKED", "side": "REUSED"}
    suite = ElementTree.parse(junit).getroot()
    assert suite.tag == "testsuites"
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("4", "1", "3")
    cases = {case.name: case for suite in JUnitXml.fromfile(str(junit)) for case in suite}
    assert "exit code 7" in cases["mid"].result[0].message
    text = summary.read_text()
    assert "| mid | FAILED |" in text and "```mermaid" in text


def test_two_runs_of_one_pipeline_do_not_interleave(project: Project, tmp_path: Path) -> None:
    (project.root / "side" / "Dockerfile").write_text(
        textwrap.dedent(child("side", "base")) + f"RUN sleep 4 && echo {time.time()}\n"
    )
    locks = tmp_path / "locks"
    env = {"BUILDFLOW_LOCK_DIR": str(locks)}
    first = subprocess.Popen(
        [sys.executable, "-m", "buildflow", "build", "--progress", "plain", "--report", "first.json"],
        cwd=project.root,
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        stderr=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not any(lock.read_text() for lock in locks.glob("*.lock")) and time.monotonic() < deadline:
        time.sleep(0.1)
    refused = buildflow("build", "--no-wait", cwd=project.root, env=env)
    waited = buildflow("build", "--wait", "--report", "second.json", cwd=project.root, env=env)
    assert first.wait(timeout=300) == 0
    assert refused.returncode == 4, refused.stderr
    assert "another buildflow run holds the lock" in refused.stderr and "--wait" in refused.stderr
    assert waited.returncode == 0, waited.stderr
    assert "lock.waiting" in waited.stderr
    one = json.loads((project.root / "first.json").read_text())
    two = json.loads((project.root / "second.json").read_text())
    assert min(t["started"] for t in two["targets"] if t["started"]) >= max(t["finished"] for t in one["targets"])
    assert {target["status"] for target in two["targets"]} == {"REUSED"}
