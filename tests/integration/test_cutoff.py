"""Early cutoff for real: a parent rebuilt to the same digest leaves its descendants reused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import BASE, Project, buildflow, child, make_project, registry_digest

pytestmark = pytest.mark.integration

TREE = """\
    base: {context: base}
    mid: {context: mid, from: base}
    leaf: {context: leaf, from: mid, tags: ["leaf:1"]}
    side: {context: side, from: base}
    """


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A four-target tree outside git and without SOURCE_DATE_EPOCH, built once."""
    made = make_project(
        tmp_path,
        TREE,
        {"base": BASE, "mid": child("mid", "base"), "leaf": child("leaf", "mid"), "side": child("side", "base")},
    )
    result = made.build(env={"SOURCE_DATE_EPOCH": ""})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "source_date_epoch=0" in result.stderr  # the one line saying the epoch is fixed
    assert {target["status"] for target in made.targets().values()} == {"BUILT"}
    return made


def comment_in_base(project: Project, text: str) -> None:
    """Add a comment to the root Dockerfile: a new fingerprint, the same image."""
    dockerfile = project.root / "base" / "Dockerfile"
    dockerfile.write_text(f"# {text}\n" + dockerfile.read_text())


def why(project: Project, *arguments: str) -> dict[str, str]:
    """`status --format json`: target id -> why."""
    result = buildflow("status", "--format", "json", *arguments, cwd=project.root)
    assert result.returncode == 0, result.stderr
    return {target["id"]: target["why"] for target in json.loads(result.stdout)["targets"]}


def test_a_comment_in_the_root_rebuilds_it_to_the_same_digest_and_reuses_the_rest(project: Project) -> None:
    first = {name: target["digest"] for name, target in project.targets().items()}
    comment_in_base(project, "only a comment")
    predicted = why(project)
    assert predicted["base"] == "Dockerfile changed"
    assert predicted["mid"] == "parent base changed; reused if parent base keeps its digest"
    result = project.build(env={"SOURCE_DATE_EPOCH": ""})
    assert result.returncode == 0, result.stdout + result.stderr
    report = project.targets()
    assert {name: target["status"] for name, target in report.items()} == {
        "base": "BUILT",
        "mid": "REUSED",
        "leaf": "REUSED",
        "side": "REUSED",
    }
    assert {name: target["digest"] for name, target in report.items()} == first  # the root too: same digest
    assert report["mid"]["why"] == "parent base rebuilt, same digest"
    assert report["side"]["why"] == "parent base rebuilt, same digest"
    assert report["leaf"]["why"] == "parent mid reused, same digest"
    for name in ("mid", "leaf", "side"):  # the new fingerprint's content tag names the reused image
        assert registry_digest(report[name]["reference"]) == first[name]
    assert registry_digest(project.ref("leaf:1")) == first["leaf"]
    after = why(project)
    assert all(text.startswith("up to date") for text in after.values()), after
    again = project.build(env={"SOURCE_DATE_EPOCH": ""})
    assert again.returncode == 0
    assert {target["status"] for target in project.targets().values()} == {"REUSED"}


def test_a_parent_with_a_new_digest_rebuilds_its_children(project: Project) -> None:
    dockerfile = project.root / "base" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "RUN echo changed > /changed.txt\n")
    assert why(project)["mid"].startswith("parent base changed; reused if")
    assert project.build(env={"SOURCE_DATE_EPOCH": ""}).returncode == 0
    assert {name: target["status"] for name, target in project.targets().items()} == {
        "base": "BUILT",
        "mid": "BUILT",
        "leaf": "BUILT",
        "side": "BUILT",
    }
    assert project.targets()["mid"]["why"] == "parent base changed"


def test_without_early_cutoff_the_children_are_rebuilt(project: Project) -> None:
    first = {name: target["digest"] for name, target in project.targets().items()}
    comment_in_base(project, "another comment")
    assert project.build("--no-early-cutoff", env={"SOURCE_DATE_EPOCH": ""}).returncode == 0
    report = project.targets()
    assert {target["status"] for target in report.values()} == {"BUILT"}
    assert {name: target["digest"] for name, target in report.items()} == first  # reproducible all the same
