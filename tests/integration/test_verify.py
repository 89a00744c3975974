"""buildflow verify for real: a rebuild without cache, compared with the registry's image layer by layer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import BASE, Project, buildflow, make_project, registry_digest

pytestmark = pytest.mark.integration

TREE = """\
    good: {context: good}
    dated: {context: dated, from: good}
    """
DATED = """\
    ARG BASE_IMAGE=good
    FROM ${BASE_IMAGE}
    RUN date +%s%N > /stamp
    """


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A reproducible image and, on it, one that writes the time into a file; built once."""
    made = make_project(tmp_path, TREE, {"good": BASE, "dated": DATED})
    result = made.build()
    assert result.returncode == 0, result.stdout + result.stderr
    return made


def test_a_reproducible_image_reproduces_and_a_dated_one_names_its_layer_and_file(project: Project) -> None:
    before = {
        name: registry_digest(project.ref(f"{name}:{target['reference'].rpartition(':')[2]}"))
        for name, target in project.targets().items()
    }
    report = project.root / "verify.json"
    result = buildflow("verify", "--report", str(report), cwd=project.root)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.strip().endswith("1 of 2 images not reproduced")
    images = {image["id"]: image for image in json.loads(report.read_text())["images"]}
    good, dated = images["good"], images["dated"]
    assert good["status"] in ("reproduced", "file times only"), good
    assert all(change["change"] != "content" for layer in good["layers"] for change in layer["files"])
    assert not any(layer["files"] or layer["more_files"] for layer in good["layers"])
    assert dated["status"] == "differs" and dated["digest"] == project.targets()["dated"]["digest"]
    stamp = [layer for layer in dated["layers"] if layer["files"]]
    assert len(stamp) == 1 and stamp[0]["index"] == 4, dated
    assert (
        stamp[0]["instruction"].startswith("RUN date") and {"path": "/stamp", "change": "content"} in stamp[0]["files"]
    )
    assert "layer 4 (RUN date +%s%N > /stamp)" in result.stdout and "/stamp: content" in result.stdout
    after = {
        name: registry_digest(project.ref(f"{name}:{target['reference'].rpartition(':')[2]}"))
        for name, target in project.targets().items()
    }
    assert after == before  # nothing pushed, no tag moved
    alone = buildflow("verify", "good", "--strict", cwd=project.root)
    assert alone.stdout.startswith("good: ")
    assert alone.returncode == (0 if good["status"] == "reproduced" else 1), alone.stdout + alone.stderr


def test_verify_of_an_unknown_target_exits_2_in_one_line(project: Project) -> None:
    result = buildflow("verify", "nosuch", cwd=project.root)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "nosuch" in result.stderr, result.stderr
