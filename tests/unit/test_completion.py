"""Shell completion, as the shells ask for it (the _BUILDFLOW_COMPLETE protocol of click, in a subprocess): target
names and image ids from the pipeline file the line names, quoted for bash, silent on every problem, and without
docker or a registry."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, dockerfiles, write_pipeline

PIPELINE = """\
    version: 1
    registry: localhost:5000/demo
    targets:
      base: {context: base, tags: ["base:1"]}
      app: {context: app, from: base, matrix: {tf: ["1.8.0", "1.15.5"]}, tags: ["app:{tf}"]}
      tools: {context: tools, from: base, tags: ["tools:1"]}
    """
EVERY = ["base", "app", "tools", "app[tf=1.8.0]", "app[tf=1.15.5]"]


def complete(shell: str, words: str, cwd: Path, **env: str) -> tuple[list[str], subprocess.CompletedProcess[str]]:
    """What buildflow offers to complete the last of `words` (a command line as the shell splits it), in a world
    where docker does not exist: the values, and the process."""
    cword = len(words.split(" ")) - 1
    environment = {
        **{name: value for name, value in os.environ.items() if not name.startswith("BUILDFLOW_")},
        "PYTHONPATH": str(REPO),
        "PATH": str(cwd / "no-docker-here"),
        "DOCKER_HOST": "unix:///nonexistent.sock",
        "_BUILDFLOW_COMPLETE": f"{shell}_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": str(cword),
        **env,
    }
    done = subprocess.run(
        [sys.executable, "-m", "buildflow"], cwd=cwd, env=environment, capture_output=True, text=True, check=False
    )
    if shell == "bash":
        values = [line.partition(",")[2] for line in done.stdout.splitlines() if line]
    else:  # zsh: type, value, help; three lines each
        values = done.stdout.splitlines()[1::3]
    return values, done


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_pipeline(tmp_path / "project", PIPELINE, dockerfiles("base", "app", "tools"))
    write_pipeline(tmp_path / "other", "version: 1\ntargets: {solo: {context: .}}\n", dockerfiles("."))
    return tmp_path / "project"


def test_target_names_then_image_ids(project: Path) -> None:
    values, done = complete("zsh", "buildflow build ", project)
    assert done.returncode == 0 and done.stderr == ""
    assert values == EVERY
    assert complete("zsh", "buildflow plan ap", project)[0] == ["app", "app[tf=1.8.0]", "app[tf=1.15.5]"]
    assert complete("zsh", "buildflow plan app[tf=1.1", project)[0] == ["app[tf=1.15.5]"]


@pytest.mark.parametrize(
    "words",
    [
        "buildflow build --only ",
        "buildflow build --force-target ",
        "buildflow plan --downstream ",
        "buildflow release ",
        "buildflow test ",
        "buildflow status ",
        "buildflow ci github ",
        "buildflow graph base ",
    ],
)
def test_every_place_a_target_is_named(project: Path, words: str) -> None:
    assert complete("zsh", words, project)[0] == EVERY


def test_bash_gets_ids_quoted_unless_a_quote_is_open(project: Path) -> None:
    assert complete("bash", "buildflow build a", project)[0] == ["app", "'app[tf=1.8.0]'", "'app[tf=1.15.5]'"]
    assert complete("bash", "buildflow build 'app[", project)[0] == ["app[tf=1.8.0]", "app[tf=1.15.5]"]


def test_the_file_named_on_the_line_is_read(project: Path) -> None:
    other = str(project.parent / "other" / "buildflow.yaml")
    assert complete("zsh", f"buildflow -f {other} build ", project.parent)[0] == ["solo"]
    assert complete("zsh", f"buildflow build -f {other} ", project.parent)[0] == ["solo"]
    assert complete("zsh", f"buildflow -f nowhere.yaml plan -f {other} ", project.parent)[0] == ["solo"]
    assert complete("zsh", "buildflow plan ", project.parent, BUILDFLOW_FILE=other)[0] == ["solo"]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("buildflow.yaml", "version: 1\ntargets: [\n"),  # not YAML
        ("buildflow.yaml", "version: 7\n"),  # not a pipeline
        ("buildflow.yaml", "\x00\x01binary"),
        ("elsewhere.yaml", ""),  # no ./buildflow.yaml at all
    ],
)
def test_a_broken_or_missing_file_completes_nothing_silently(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / name).write_text(text)
    for shell in ("bash", "zsh"):
        values, done = complete(shell, "buildflow build ", tmp_path)
        assert (values, done.returncode, done.stderr) == ([], 0, "")
    values, done = complete("zsh", "buildflow --var broken build ", tmp_path)
    assert (values, done.returncode, done.stderr) == ([], 0, "")


def test_a_target_with_a_problem_still_completes_the_others(tmp_path: Path) -> None:
    text = PIPELINE.replace("tools: {context: tools,", "tools: {contxt: tools,")
    write_pipeline(tmp_path, text, dockerfiles("base", "app"))
    values, done = complete("zsh", "buildflow build ", tmp_path)
    assert values == ["base", "app", "app[tf=1.8.0]", "app[tf=1.15.5]"] and done.stderr == ""


def test_commands_and_options_complete_too(project: Path) -> None:
    assert "build" in complete("zsh", "buildflow bu", project)[0]
    assert complete("zsh", "buildflow build --keep", project)[0] == ["--keep-going"]
    assert complete("zsh", "buildflow plan --format ", project)[0] == ["table", "json"]
    assert complete("zsh", "buildflow docs bu", project)[0] == ["builders", "building"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_scripts_to_source(shell: str, tmp_path: Path) -> None:
    environment = {**os.environ, "PYTHONPATH": str(REPO), "_BUILDFLOW_COMPLETE": f"{shell}_source"}
    done = subprocess.run(
        [sys.executable, "-m", "buildflow"], env=environment, capture_output=True, text=True, check=False, cwd=tmp_path
    )
    assert done.returncode == 0 and done.stderr == "" and "_BUILDFLOW_COMPLETE" in done.stdout


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash here")
def test_bash_itself_completes_an_id_quoted(project: Path, tmp_path: Path) -> None:
    """The bash script click writes, sourced in a real bash, fills COMPREPLY with what bash inserts."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "buildflow").write_text(f'#!/bin/sh\nexec {sys.executable} -m buildflow "$@"\n')
    (bin_dir / "buildflow").chmod(0o755)
    script = (
        'eval "$(_BUILDFLOW_COMPLETE=bash_source buildflow)"; '
        "COMP_WORDS=(buildflow plan app); COMP_CWORD=2; _buildflow_completion buildflow; "
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )
    environment = {"PATH": f"{bin_dir}:/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(tmp_path)}
    done = subprocess.run(
        ["bash", "--norc", "-c", script], cwd=project, env=environment, capture_output=True, text=True, check=False
    )
    assert done.stdout.splitlines() == ["app", "'app[tf=1.8.0]'", "'app[tf=1.15.5]'"], done.stderr
