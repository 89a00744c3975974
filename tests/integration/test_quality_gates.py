"""Size reports, size budgets and the lint stage through `buildflow build`, with a real engine and registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildflow.sizes import human
from tests.integration.conftest import BASE, buildflow, make_project, registry_digest

pytestmark = pytest.mark.integration

WASTEFUL = """\
    ARG BASE_IMAGE=parent
    FROM ${BASE_IMAGE}
    RUN dd if=/dev/zero of=/big bs=1000 count=3000
    RUN rm /big
    """
GROWS = """\
    ARG BASE_IMAGE=parent
    FROM ${BASE_IMAGE}
    RUN dd if=/dev/zero of=/grown bs=1000 count=4000
    """
TARGETS = """\
    base: {context: base, tags: ["base:1"]}
    wasteful: {context: wasteful, from: base, tags: ["wasteful:1"], size_budget: 10MB}
    big: {context: big, from: base, tags: ["big:1"], size_budget: 5MB}
    on_big: {context: on_big, from: big, tags: ["on_big:1"]}
    """


def test_sizes_waste_and_budgets_in_a_real_build(tmp_path: Path) -> None:
    on_big = GROWS.replace("/grown", "/more")
    project = make_project(tmp_path, TARGETS, {"base": BASE, "wasteful": WASTEFUL, "big": GROWS, "on_big": on_big})
    result = project.build("--keep-going", "--summary", "summary.md")
    assert result.returncode == 1, result.stdout + result.stderr
    targets = project.targets()

    base, wasteful = targets["base"]["size"], targets["wasteful"]["size"]
    assert base["added"] == base["size"] > 1_000_000  # busybox
    assert wasteful["size"] == base["size"] + 3_000_000
    assert wasteful["added"] == 3_000_000 and wasteful["added_layers"] == 2
    assert [layer["instruction"] for layer in wasteful["layers"] if layer["added"]] == [
        "RUN dd if=/dev/zero of=/big bs=1000 count=3000",
        "RUN rm /big",
    ]
    assert wasteful["wasted_here"] == 3_000_000
    (entry,) = wasteful["waste"]
    assert (entry["path"], entry["bytes"], entry["how"]) == ("/big", 3_000_000, "deleted")
    assert (entry["written_by"], entry["removed_by"]) == (
        "RUN dd if=/dev/zero of=/big bs=1000 count=3000",
        "RUN rm /big",
    )
    assert "wasteful: /big 3.0 MB, written by layer" in result.stdout
    assert "3.0 MB wasted" in (tmp_path / "summary.md").read_text()

    big = targets["big"]
    assert big["status"] == "FAILED"
    assert big["error"] == (
        f"image is {human(base['size'] + 4_000_000)}, over its size_budget of 5.0 MB; "
        "its largest layer is 4.0 MB from `RUN dd if=/dev/zero of=/grown bs=1000 count=4000`"
    )
    assert targets["on_big"]["status"] == "BLOCKED"
    assert project.report()["released"] is False
    assert registry_digest(project.ref("wasteful:1")) is None  # nothing released while one target fails

    again = project.build("--keep-going")
    assert again.returncode == 1
    statuses = {name: target["status"] for name, target in project.targets().items()}
    assert statuses == {"base": "REUSED", "wasteful": "REUSED", "big": "FAILED", "on_big": "BLOCKED"}
    assert project.targets()["wasteful"]["size"]["wasted_here"] == 3_000_000  # from its build record


def test_lint_findings_are_shown_and_lint_error_stops_the_run_before_building(tmp_path: Path) -> None:
    sloppy = "FROM scratch\nCOPY busybox /bin/busybox\nRUN apt-get update\nRUN apt-get install -y curl\n"
    project = make_project(tmp_path, "base: {context: base, lint: {ignore: [BF001]}}\n", {"base": sloppy})
    result = project.build("--lint=error")
    assert result.returncode == 1
    assert "Dockerfile lint findings (--lint=error); nothing was built" in result.stderr
    assert "base/Dockerfile:4 DL3008 warning" in result.stderr and "base/Dockerfile:3 DL3009" in result.stderr
    assert not project.report_path.exists()
    listed = buildflow("lint", cwd=tmp_path)
    assert listed.returncode == 1
    assert listed.stdout.splitlines()[-1] == "4 findings (1 warning, 3 info) in 1 Dockerfile"
