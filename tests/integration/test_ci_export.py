"""The generated CI files for real: make drives the DAG with the generated Makefile, and the GitHub workflow's jobs,
run one process each in the order of their needs (as runners would), make the release one build would make."""

from __future__ import annotations

import os
import subprocess
import sys
from graphlib import TopologicalSorter
from pathlib import Path

import pytest
import yaml

from buildflow.engine.registry import RegistryClient
from tests.conftest import REPO
from tests.integration.conftest import Project, buildflow, make_project, registry_digest
from tests.integration.test_build import FILES, TREE
from tests.integration.test_reliability import RELEASE_TAGS

pytestmark = pytest.mark.integration

BUILDFLOW = f"{sys.executable} -m buildflow"
ENV = {**os.environ, "PYTHONPATH": str(REPO), "SOURCE_DATE_EPOCH": "1700000000"}


def assert_released_and_pinned(project: Project) -> None:
    """Every release tag is there, and each child image is built on its parent's (its layers start with them)."""
    digests = {tag: registry_digest(project.ref(tag)) for tags in RELEASE_TAGS.values() for tag in tags}
    assert all(digests.values()), digests
    client = RegistryClient()
    for child, parent in (("mid:1", "base:1"), ("leaf:1", "mid:1"), ("side:1", "base:1")):
        below = client.layer_digests(f"{project.ref(child.split(':')[0])}@{digests[child]}")
        above = client.layer_digests(f"{project.ref(parent.split(':')[0])}@{digests[parent]}")
        assert below[: len(above)] == above, (child, parent)


def test_make_drives_the_generated_makefile_and_a_second_make_reuses_everything(tmp_path: Path) -> None:
    project = make_project(tmp_path, TREE, FILES)
    written = buildflow("ci", "make", "-o", "buildflow.mk", cwd=project.root)
    assert written.returncode == 0, written.stderr
    make = ["make", "-j3", "-f", "buildflow.mk", f"BUILDFLOW={BUILDFLOW}"]
    first = subprocess.run([*make, "release"], cwd=project.root, env=ENV, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stdout + first.stderr
    assert_released_and_pinned(project)
    again = subprocess.run([*make, "all"], cwd=project.root, env=ENV, capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("1 reused in") == 4 and "built in" not in again.stdout, again.stdout


def test_the_github_jobs_run_in_the_order_of_their_needs_make_what_one_build_makes(tmp_path: Path) -> None:
    project = make_project(tmp_path, TREE, FILES)
    written = buildflow("ci", "github", "-o", "workflow.yml", cwd=project.root)
    assert written.returncode == 0, written.stderr
    jobs = yaml.safe_load((project.root / "workflow.yml").read_text())["jobs"]
    order = TopologicalSorter({name: job.get("needs", []) for name, job in jobs.items()}).static_order()
    for name in order:
        for command in buildflow_commands(jobs[name]):
            ran = subprocess.run(
                command, cwd=project.root, env=ENV, shell=True, capture_output=True, text=True, check=False
            )
            assert ran.returncode == 0, f"job {name}: {command}\n{ran.stdout}{ran.stderr}"
    assert_released_and_pinned(project)
    once = project.build(env={"SOURCE_DATE_EPOCH": "1700000000"})
    assert once.returncode == 0, once.stderr
    assert {target["status"] for target in project.targets().values()} == {"REUSED"}  # nothing left to do


def buildflow_commands(job: dict[str, object]) -> list[str]:
    """The buildflow command lines of a job's run steps (set-up steps are a runner's business)."""
    commands = []
    for step in job.get("steps", []):  # type: ignore[attr-defined]
        for line in str(step.get("run", "")).splitlines():
            if line.strip().startswith("buildflow "):
                commands.append(line.strip().replace("buildflow ", f"{BUILDFLOW} ", 1))
    return commands
