"""CI steps for real: a tree built one job per image (build --only … --no-release), then released by `release`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from buildflow.engine.registry import RegistryClient
from tests.integration.conftest import BASE, Project, buildflow, child, make_project, registry_digest

pytestmark = pytest.mark.integration

TREE = """\
    base: {context: base, tags: ["base:1"]}
    mid: {context: mid, from: base, tags: ["mid:1"]}
    side: {context: side, from: base, tags: ["side:1"]}
    leaf: {context: leaf, from: mid, tags: ["leaf:1", "leaf:latest"]}
    """
FILES = {"base": BASE, "mid": child("mid", "base"), "side": child("side", "base"), "leaf": child("leaf", "mid")}
RELEASE_TAGS = {"base": ["base:1"], "mid": ["mid:1"], "side": ["side:1"], "leaf": ["leaf:1", "leaf:latest"]}
PARENTS = {"mid": "base", "side": "base", "leaf": "mid"}
JOBS = ["base", "mid", "side", "leaf"]  # the DAG's order


def job(project: Project, name: str) -> dict[str, Any]:
    """One CI job: build exactly one image, push and record it, move no release tag; its report's entry."""
    result = project.build("--only", name, "--no-release")
    assert result.returncode == 0, result.stdout + result.stderr
    report = project.report()
    assert report["released"] is False and report["release_error"] == ""
    assert report["release_skipped"] == "release skipped (--no-release)"
    targets = project.targets()
    assert list(targets) == [name]  # exactly the named image, no ancestor
    return dict(targets[name])


def release(project: Project, *arguments: str) -> tuple[int, str, str, dict[str, Any]]:
    """Run `buildflow release` with a JSON report outside every build context."""
    path = project.root / "release.json"
    done = buildflow("release", "--report", str(path), *arguments, cwd=project.root)
    return done.returncode, done.stdout, done.stderr, json.loads(path.read_text())


def no_release_tag_moved(project: Project) -> bool:
    """True when no release tag of the tree exists in the registry (every namespace is new)."""
    return all(registry_digest(project.ref(tag)) is None for tags in RELEASE_TAGS.values() for tag in tags)


def test_a_tree_built_job_by_job_then_released(tmp_path: Path) -> None:
    project = make_project(tmp_path, TREE, FILES)
    built = {}
    for name in JOBS:
        built[name] = job(project, name)
        assert built[name]["status"] == "BUILT"
        assert registry_digest(built[name]["reference"]) == built[name]["digest"]
        assert no_release_tag_moved(project)
    code, _, err, report = release(project)
    assert code == 0, err
    assert report["released"] is True and report["status"] == "succeeded"
    targets = {target["id"]: target for target in report["targets"]}
    assert {name: target["status"] for name, target in targets.items()} == dict.fromkeys(JOBS, "REUSED")
    for name, tags in RELEASE_TAGS.items():
        assert targets[name]["digest"] == built[name]["digest"]
        for tag in tags:
            assert registry_digest(project.ref(tag)) == built[name]["digest"], tag
    for name, parent in PARENTS.items():  # each job built its image on the digest its parent's job pushed
        mine = RegistryClient().layer_digests(f"{project.ref(name)}@{built[name]['digest']}")
        theirs = RegistryClient().layer_digests(f"{project.ref(parent)}@{built[parent]['digest']}")
        assert mine[: len(theirs)] == theirs and len(mine) > len(theirs), name


def test_a_job_whose_parent_was_never_built_fails_naming_the_parent_and_its_job(tmp_path: Path) -> None:
    project = make_project(tmp_path, TREE, FILES)
    job(project, "base")
    result = project.build("--only", "leaf", "--no-release")
    assert result.returncode == 1
    leaf = project.targets()["leaf"]
    assert leaf["status"] == "FAILED" and leaf["digest"] is None
    pattern = (
        rf"parent mid is not built \({re.escape(project.ref('mid'))}:bf-[0-9a-f]{{24}} is not in the registry\): "
        r"build it first: buildflow build --only mid"
    )
    assert re.fullmatch(pattern, leaf["error"]), leaf["error"]
    assert result.stderr.splitlines()[-1] == f"buildflow: 1 of 1 targets not built: leaf: {leaf['error']}"
    assert no_release_tag_moved(project)


def test_release_with_one_image_missing_exits_1_and_moves_no_tag(tmp_path: Path) -> None:
    project = make_project(tmp_path, TREE, FILES)
    for name in ("base", "mid", "side"):
        job(project, name)
    code, out, err, report = release(project)
    assert code == 1
    pattern = (
        rf"leaf: not built for its current inputs \(no {re.escape(project.ref('leaf'))}:bf-[0-9a-f]{{24}} in the "
        r"registry\): run buildflow build --only leaf"
    )
    assert re.fullmatch(pattern, err.splitlines()[-1]), err
    assert "Release tags not applied" in out
    assert report["released"] is False and report["release"] == []
    assert {target["id"]: target["status"] for target in report["targets"]} == {
        "base": "REUSED",
        "mid": "REUSED",
        "side": "REUSED",
        "leaf": "FAILED",
    }
    assert no_release_tag_moved(project)
    job(project, "leaf")  # the job the line names
    code, _, err, report = release(project)
    assert code == 0 and report["released"] is True, err
