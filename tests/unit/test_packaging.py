"""What a user who does not clone gets: a wheel with the licence, the metadata and the documentation, and
`buildflow docs` showing that documentation from wherever buildflow is installed."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from buildflow.cli.app import cli
from tests.conftest import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `make dist` builds, made offline from this checkout."""
    out = tmp_path_factory.mktemp("dist")
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(out)]
    subprocess.run([*command, str(REPO)], check=True, capture_output=True, timeout=300)
    (found,) = out.glob("buildflow-*.whl")
    return found


def test_the_wheel_holds_the_licence_the_docs_and_the_metadata(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    documented = {Path(name).name for name in names if name.startswith("buildflow/docs/") and name.endswith(".md")}
    assert documented == {path.name for path in (REPO / "docs").glob("*.md")}
    assert {"buildflow/output/report.css", "buildflow/output/report.js"} <= set(names)  # inlined in HTML reports
    metadata = next(zipfile.ZipFile(wheel).read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    assert "License-Expression: MIT" in metadata
    assert "Classifier: Topic :: Software Development :: Build Tools" in metadata
    entry_points = next(zipfile.ZipFile(wheel).read(n).decode() for n in names if n.endswith("entry_points.txt"))
    assert "buildflow = buildflow.cli:main" in entry_points


def test_docs_come_from_the_installed_wheel_outside_a_clone(wheel: Path, tmp_path: Path) -> None:
    """Installed from the wheel and run elsewhere, `buildflow docs` shows the wheel's own copy."""
    site = tmp_path / "site"
    install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)]
    subprocess.run(install, check=True, capture_output=True, timeout=300)
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    shown = subprocess.run(
        [sys.executable, "-m", "buildflow", "docs", "building", "--path"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert Path(shown.stdout.strip()) == site / "buildflow" / "docs" / "building.md"


def test_docs_lists_topics_and_shows_one() -> None:
    runner = CliRunner()
    listed = runner.invoke(cli, ["docs"])
    assert listed.exit_code == 0 and "building" in listed.output and "pipeline-format" in listed.output
    shown = runner.invoke(cli, ["docs", "ci"])
    assert shown.exit_code == 0 and shown.output.startswith("#")
    assert runner.invoke(cli, ["docs", "ci.md", "--path"]).output.strip() == str(REPO / "docs" / "ci.md")


def test_an_unknown_topic_is_refused_naming_the_topics() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "buildflow", "docs", "bilding"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "no topic 'bilding'" in result.stderr and "building" in result.stderr
