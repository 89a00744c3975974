"""Builders for real: a tree spread over two engines, an engine killed mid-run, the classic image store, and a cache
a builder cannot export. Needs `scripts/engine.sh up --engines 3 --classic` (make test starts them)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from buildflow.engine.registry import RegistryClient
from tests.conftest import REPO
from tests.integration.conftest import BASE, Project, child, make_project, registry_digest, run_image
from tests.integration.test_build import FILES, TREE
from tests.integration.test_reliability import RELEASE_TAGS, start, wait_for_event

pytestmark = pytest.mark.integration

STATE = Path(os.environ.get("BUILDFLOW_ENGINE_STATE", "/var/lib/buildflow-engine"))
LEAVES = [f"l{index}" for index in range(6)]
WIDE = 'root: {context: root, tags: ["root:1"]}\n' + "".join(
    f'{name}: {{context: {name}, from: root, tags: ["{name}:1"]}}\n' for name in LEAVES
)
WIDE_FILES = {"root": BASE, **{name: child(name, "base") for name in LEAVES}}


@pytest.fixture(scope="module", autouse=True)
def engines() -> None:
    """Fail (not skip) when the extra engines are not there: make test starts them."""
    for context in ("buildflow-2", "buildflow-classic"):
        answer = subprocess.run(["docker", "--context", context, "version"], capture_output=True, check=False)
        if answer.returncode != 0:
            pytest.fail(f"engine {context} does not answer: run scripts/engine.sh up --engines 3 --classic")


def layers(reference: str) -> tuple[str, ...]:
    """The layer digests of an image in the registry."""
    return RegistryClient().layer_digests(reference)


def assert_pinned_on_their_parent(project: Project, parent: str, children: list[str]) -> None:
    """Each child image is built on exactly the parent's image: its layers start with the parent's."""
    targets = project.targets()
    parent_layers = layers(f"{project.ref(parent)}@{targets[parent]['digest']}")
    for name in children:
        mine = layers(f"{project.ref(name)}@{targets[name]['digest']}")
        assert mine[: len(parent_layers)] == parent_layers, name


def test_a_tree_spread_over_two_engines_uses_both_and_is_reused_from_either(tmp_path: Path) -> None:
    project = make_project(tmp_path, WIDE, WIDE_FILES)
    result = project.build("--builder", "default", "--builder", "buildflow-2", "--jobs", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    targets = project.targets()
    assert {target["builder"] for target in targets.values()} == {"default", "buildflow-2"}
    assert_pinned_on_their_parent(project, "root", LEAVES)
    for name, target in targets.items():
        assert registry_digest(f"{project.ref(name)}:1") == target["digest"]
    assert run_image(project.ref("l5:1"), "cat", "/base.txt", "/l5.txt") == "base\nl5\n"
    again = project.build("--builder", "buildflow-2")
    assert again.returncode == 0, again.stderr
    assert {target["status"] for target in project.targets().values()} == {"REUSED"}


def test_the_classic_image_store_builds_pushes_and_reuses(tmp_path: Path) -> None:
    project = make_project(tmp_path, TREE, FILES)
    result = project.build("--builder", "buildflow-classic")
    assert result.returncode == 0, result.stdout + result.stderr
    targets = project.targets()
    assert {target["builder"] for target in targets.values()} == {"buildflow-classic"}
    for target in targets.values():
        assert registry_digest(target["reference"]) == target["digest"]  # the digest the registry holds
    for tag in RELEASE_TAGS["leaf"]:
        assert registry_digest(f"{project.ref(tag)}") == targets["leaf"]["digest"]
    assert_pinned_on_their_parent(project, "mid", ["leaf"])
    again = project.build("--builder", "buildflow-classic")
    assert again.returncode == 0, again.stderr
    assert {target["status"] for target in project.targets().values()} == {"REUSED"}


def test_registry_cache_asked_of_a_builder_that_cannot_export_it_is_refused_before_building(tmp_path: Path) -> None:
    project = make_project(tmp_path, 'base: {context: base, tags: ["base:1"], cache: registry}\n', {"base": BASE})
    result = project.build("--builder", "buildflow-classic")
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "targets.base.cache" in lines[0] and "buildflow-classic" in lines[0], lines
    assert not project.report_path.exists() and registry_digest(f"{project.ref('base')}:1") is None


@pytest.mark.disruptive
def test_an_engine_killed_mid_run_leaves_the_pool_and_the_run_finishes_on_the_other(tmp_path: Path) -> None:
    pid_file = STATE / "engine-3" / "dockerd.pid"
    if not pid_file.exists():
        pytest.fail("engine 3 was not started by scripts/engine.sh up --engines 3")
    slow = {name: child(name, "base") + f"RUN sleep 8 # {name}\n" for name in LEAVES}
    project = make_project(tmp_path, WIDE, {**WIDE_FILES, **slow})
    process = start(project, "--builder", "default", "--builder", "buildflow-3", "--jobs", "3")
    try:
        lines = wait_for_event(process, "target.started", "l5")  # every leaf started: three on each engine
        time.sleep(2)
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
        _, stderr = process.communicate(timeout=600)
    finally:
        subprocess.run([str(REPO / "scripts" / "engine.sh"), "up", "--engines", "3"], check=True, timeout=300)
    assert process.returncode == 0, "".join(lines) + stderr
    assert '"event": "target.builder_lost"' in stderr and '"event": "target.requeued"' in stderr
    targets = project.targets()
    assert {target["status"] for target in targets.values()} == {"BUILT"}
    assert {target["builder"] for name, target in targets.items() if name != "root"} == {"default"}
    assert_pinned_on_their_parent(project, "root", LEAVES)
    report = project.report()
    assert report["released"] and all(registry_digest(f"{project.ref(n)}:1") for n in LEAVES)
