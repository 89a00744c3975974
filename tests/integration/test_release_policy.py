"""The release policy, for real: one leaf fails; with `release: per-target` the tags of its siblings and ancestors
move and its own do not; with the default, nothing moves; `buildflow release --release per-target` does the same
for images built job by job. The exit code stays 1 either way."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import BASE, Project, buildflow, child, make_project, registry_digest

pytestmark = pytest.mark.integration

TARGETS = """\
    base: {context: base, tags: ["base:1"]}
    mid: {context: mid, from: base, tags: ["mid:1"]}
    leaf: {context: leaf, from: mid, tags: ["leaf:1"]}
    broken: {context: broken, from: mid, tags: ["broken:1"]}
    below_broken: {context: below_broken, from: broken, tags: ["below_broken:1"]}
    sibling: {context: sibling, from: base, tags: ["sibling:1"], test: ["test -f /sibling.txt"]}
    """
BROKEN = """\
    ARG BASE_IMAGE=mid
    FROM ${BASE_IMAGE}
    RUN echo the broken leaf fails >&2 && false
    """
RELEASED = ("base", "mid", "leaf", "sibling")
HELD = ("broken", "below_broken")


def project(root: Path, policy: str = "") -> Project:
    """The pipeline above (with `release: POLICY` in the file when given)."""
    parents = {"mid": "base", "leaf": "mid", "below_broken": "broken", "sibling": "base"}
    files = {"base": BASE, "broken": BROKEN, **{name: child(name, parent) for name, parent in parents.items()}}
    made = make_project(root, TARGETS, files)
    if policy:
        path = made.root / "buildflow.yaml"
        path.write_text(path.read_text().replace("targets:\n", f"release: {policy}\ntargets:\n", 1))
    return made


def tag_digests(made: Project, names: tuple[str, ...]) -> dict[str, str | None]:
    """What each target's release tag points at in the registry (None: it does not exist)."""
    return {name: registry_digest(made.ref(f"{name}:1")) for name in names}


def test_per_target_moves_the_tags_of_every_image_whose_ancestry_built(tmp_path: Path) -> None:
    made = project(tmp_path, "per-target")
    result = made.build("--keep-going", "--summary", str(tmp_path / "summary.md"))
    assert result.returncode == 1, result.stdout + result.stderr
    targets = made.targets()
    moved = tag_digests(made, RELEASED)
    assert moved == {name: targets[name]["digest"] for name in RELEASED}
    assert tag_digests(made, HELD) == {"broken": None, "below_broken": None}
    report = made.report()
    assert report["release_policy"] == "per-target" and report["released"] is True
    held = {entry["target"]: entry["reason"] for entry in report["held_back"]}
    assert set(held) == set(HELD) and held["broken"].startswith("failed")
    assert targets["sibling"]["tags"] == [made.ref("sibling:1")]
    assert "Release tags applied to 4 targets (release: per-target); 2 held back." in result.stdout
    assert "broken: failed" in (tmp_path / "summary.md").read_text()


def test_the_default_moves_no_tag_when_a_leaf_fails(tmp_path: Path) -> None:
    made = project(tmp_path)
    result = made.build("--keep-going")
    assert result.returncode == 1, result.stdout + result.stderr
    assert set(tag_digests(made, RELEASED + HELD).values()) == {None}
    report = made.report()
    assert report["release_policy"] == "all" and report["released"] is False and report["release"] == []
    held = {entry["target"]: entry["reason"] for entry in report["held_back"]}
    assert held["sibling"].startswith("release: all, and 2 of 6 targets were not built")


def test_release_command_per_target_after_jobs_that_built_all_but_one(tmp_path: Path) -> None:
    made = project(tmp_path)
    built = made.build("--keep-going", "--no-release")
    assert built.returncode == 1, built.stdout + built.stderr
    assert set(tag_digests(made, RELEASED + HELD).values()) == {None}
    report = str(tmp_path / "release.json")
    held_all = buildflow("release", "--report", report, cwd=made.root)
    assert held_all.returncode == 1 and set(tag_digests(made, RELEASED).values()) == {None}
    released = buildflow("release", "--release", "per-target", "--report", report, cwd=made.root)
    assert released.returncode == 1, released.stdout + released.stderr
    assert None not in tag_digests(made, RELEASED).values()
    assert tag_digests(made, HELD) == {"broken": None, "below_broken": None}


def test_an_unknown_release_value_exits_2_naming_the_field(tmp_path: Path) -> None:
    made = project(tmp_path, "some")
    result = buildflow("validate", cwd=made.root)
    assert result.returncode == 2
    assert result.stderr.strip() == "buildflow.yaml:5: release: 'some' is not one of all, per-target"
    bad_option = buildflow("build", "--release", "sometimes", cwd=made.root)
    assert bad_option.returncode == 2 and "--release" in bad_option.stderr
