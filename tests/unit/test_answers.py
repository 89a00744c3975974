"""The answer cache (buildflow/answers.py): a re-run of `validate` or `plan --offline` with nothing changed prints
the same answer without importing click; any change to what the run read, or to its environment, gives a fresh one."""

from __future__ import annotations

import marshal
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from buildflow import answers, caches

REPO = Path(__file__).resolve().parents[2]
PIPELINE = """\
version: 1
registry: localhost:5000/answers
defaults: {context: ctx}
targets:
  base: {args: {N: "1"}}
  app: {from: base, tags: ["app:1"]}
"""
DOCKERFILE = "ARG BASE_IMAGE=scratch\nFROM ${BASE_IMAGE}\nARG N\nCOPY extra.txt /\nLABEL n=${N}\n"
PLAN = ("plan", "--offline")
LONG_AGO = time.time() - 3600


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A two-target pipeline whose Dockerfile copies a file the context does not have yet, its times long past."""
    directory = tmp_path / "project"
    (directory / "ctx").mkdir(parents=True)
    (directory / "ctx" / "Dockerfile").write_text(DOCKERFILE)
    (directory / "buildflow.yaml").write_text(PIPELINE)
    age(directory)
    return directory


def age(directory: Path) -> None:
    """Every file and directory's times set an hour back, to one time: only the racy rule is kept out of the way."""
    for path in [*directory.rglob("*"), directory]:
        os.utime(path, (LONG_AGO, LONG_AGO))


def age_changed(changed: Path) -> None:
    """A changed file's times (and its directory's, when the file is new) set back to what they were: only the
    rest of their status tells the change."""
    for path in (changed, changed.parent):
        if path.stat().st_mtime != LONG_AGO:
            os.utime(path, (LONG_AGO, LONG_AGO))


def run(project: Path, *arguments: str, **environment: str) -> tuple[subprocess.CompletedProcess[str], bool]:
    """A whole `python -m buildflow` process in the project, and whether it was answered without importing click."""
    variables = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "XDG_CACHE_HOME": str(project.parent / "cache"),
        "BUILDFLOW_FILE_CACHE": "1",
        **environment,
    }
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "buildflow", *arguments],
        cwd=project,
        capture_output=True,
        text=True,
        env=variables,
        check=False,
    )
    replayed = not re.search(r"\|\s+click$", done.stderr, re.MULTILINE)
    return done, replayed


def messages(done: subprocess.CompletedProcess[str]) -> str:
    """stderr without -X importtime's lines."""
    return "".join(line for line in done.stderr.splitlines(keepends=True) if not line.startswith("import time:"))


def entries(project: Path) -> list[Path]:
    """The answers kept."""
    return sorted((project.parent / "cache" / "buildflow" / "answers").glob("*/*"))


@pytest.mark.parametrize("command", [PLAN, ("validate",)])
def test_a_rerun_with_nothing_changed_is_answered_without_click(project: Path, command: tuple[str, ...]) -> None:
    (project / "ctx" / "extra.txt").write_text("extra\n")
    age(project)
    first, replayed_first = run(project, *command)
    again, replayed_again = run(project, *command)
    assert (first.returncode, messages(first)) == (0, "")
    assert not replayed_first
    assert replayed_again
    assert (again.stdout, again.returncode, messages(again)) == (first.stdout, 0, "")
    assert "localhost:5000/answers/app:1" in first.stdout or "valid" in first.stdout
    assert len(entries(project)) == 1


def edit_pipeline(project: Path) -> Path:
    """Same size, other bytes."""
    path = project / "buildflow.yaml"
    path.write_text(PIPELINE.replace('N: "1"', 'N: "2"'))
    return path


def edit_dockerfile(project: Path) -> Path:
    """Same size, other bytes."""
    path = project / "ctx" / "Dockerfile"
    path.write_text(DOCKERFILE.replace("LABEL n=", "LABEL m="))
    return path


def add_to_context(project: Path) -> Path:
    """A file nothing copies, but that the context sends."""
    path = project / "ctx" / "notes.txt"
    path.write_text("more\n")
    return path


def create_copy_source(project: Path) -> Path:
    """The COPY source the Dockerfile names, missing until now."""
    path = project / "ctx" / "extra.txt"
    path.write_text("extra\n")
    return path


@pytest.mark.parametrize("change", [edit_pipeline, edit_dockerfile, add_to_context, create_copy_source])
def test_a_changed_input_gives_the_fresh_answer(project: Path, change: Callable[[Path], Path]) -> None:
    first, _ = run(project, *PLAN)
    assert run(project, *PLAN)[1]
    age_changed(change(project))
    fresh, replayed = run(project, *PLAN)
    uncached, _ = run(project, *PLAN, BUILDFLOW_FILE_CACHE="0")
    assert not replayed
    assert fresh.stdout == uncached.stdout
    assert fresh.stdout != first.stdout
    again, replayed_again = run(project, *PLAN)
    assert replayed_again
    assert again.stdout == fresh.stdout


def test_another_environment_gives_the_fresh_answer(project: Path) -> None:
    first, _ = run(project, *PLAN)
    assert run(project, *PLAN)[1]
    other, replayed = run(project, *PLAN, BUILDFLOW_REGISTRY="registry.example/other")
    assert not replayed
    assert "registry.example/other/app:1" in other.stdout
    assert "registry.example/other" not in first.stdout


def test_turning_the_file_cache_off_turns_answers_off(project: Path) -> None:
    for _ in range(2):
        done, replayed = run(project, *PLAN, BUILDFLOW_FILE_CACHE="0")
        assert done.returncode == 0
        assert not replayed
    assert not (project.parent / "cache").exists()


def test_an_answer_with_anything_on_stderr_is_not_kept(project: Path) -> None:
    for _ in range(2):
        done, replayed = run(project, "validate")
        assert done.returncode == 2
        assert "extra.txt" in messages(done)
        assert not replayed
    assert entries(project) == []


def test_a_file_changed_a_moment_ago_is_not_trusted(project: Path) -> None:
    (project / "buildflow.yaml").write_text(PIPELINE)
    run(project, *PLAN)
    assert not run(project, *PLAN)[1]
    assert entries(project) == []


RECORDED = """\
import subprocess, sys
from buildflow import answers
with answers.Recorded("0" * 64):
    print("answer")
    if sys.argv[1] == "write":
        open("written.txt", "w").close()
    elif sys.argv[1] == "spawn":
        subprocess.run(["true"], check=True)
    sys.exit(1)
"""


@pytest.mark.parametrize(("action", "kept"), [("nothing", True), ("write", False), ("spawn", False)])
def test_a_run_that_writes_a_file_or_starts_a_process_is_not_kept(project: Path, action: str, kept: bool) -> None:
    variables = {**os.environ, "PYTHONPATH": str(REPO), "XDG_CACHE_HOME": str(project.parent / "cache")}
    done = subprocess.run(
        [sys.executable, "-c", RECORDED, action],
        cwd=project,
        capture_output=True,
        text=True,
        env=variables,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (1, "answer\n", "")
    assert len(entries(project)) == (1 if kept else 0)


class _Terminal:
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_a_terminal_is_never_answered_from_the_cache(monkeypatch: pytest.MonkeyPatch, stream: str) -> None:
    monkeypatch.setenv("BUILDFLOW_FILE_CACHE", "1")
    monkeypatch.setattr(sys, "stdout", _Terminal() if stream == "stdout" else open(os.devnull, "w"))  # noqa: SIM115
    monkeypatch.setattr(sys, "stderr", _Terminal() if stream == "stderr" else open(os.devnull, "w"))  # noqa: SIM115
    assert answers.cache_key(["validate"], "1") is None


@pytest.mark.parametrize(
    ("argv", "answerable"),
    [
        (["validate"], True),
        (["-f", "x.yaml", "plan", "--offline", "--format", "json"], True),
        (["plan", "--offline", "app"], True),
        (["plan"], False),
        (["--offline", "plan"], False),
        (["-f", "validate", "build"], False),
        (["validate", "--help"], False),
        (["--debug", "validate"], False),
        (["--version"], False),
        ([], False),
    ],
)
def test_only_validate_and_offline_plans_are_answered(argv: list[str], answerable: bool) -> None:
    assert answers.answerable(argv) is answerable


def test_the_keys_differ_with_the_environment_the_day_and_the_file_cache_switch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdout", open(os.devnull, "w"))  # noqa: SIM115
    monkeypatch.setattr(sys, "stderr", open(os.devnull, "w"))  # noqa: SIM115
    monkeypatch.setenv("BUILDFLOW_FILE_CACHE", "1")
    one = answers.cache_key(["validate"], "1")
    monkeypatch.setenv("SOMETHING_ELSE", "x")
    assert one is not None and answers.cache_key(["validate"], "1") not in (None, one)
    two = answers.cache_key(["validate"], "1")
    monkeypatch.setattr(time, "gmtime", lambda: time.struct_time((2031, 1, 2, 0, 0, 0, 3, 2, 0)))
    assert answers.cache_key(["validate"], "1") not in (None, one, two)  # the `date` variable's day
    monkeypatch.setenv("BUILDFLOW_FILE_CACHE", "off")
    assert answers.cache_key(["validate"], "1") is None


def test_answers_live_beside_the_other_caches(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert Path(answers.cache_root()) == caches.user_cache("answers").parent
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert Path(answers.cache_root()) == caches.user_cache("answers").parent


@pytest.mark.parametrize("kept", [b"\x00garbage", b"", marshal.dumps((answers.FORMAT, [1], b"x", 0))])
def test_a_damaged_answer_is_no_answer(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kept: bytes) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    answers.store("ab" * 32, kept)
    answers.replay("ab" * 32)  # returns, rather than exiting with an answer


def test_past_the_limit_the_oldest_answers_go(tmp_path: Path) -> None:
    for index in range(12):
        entry = tmp_path / f"{index:02x}" / f"{index:02x}entry"
        entry.parent.mkdir()
        entry.write_bytes(b"")
        os.utime(entry, (LONG_AGO + index, LONG_AGO + index))
    answers.bound(str(tmp_path), limit=10)
    assert sorted(path.name for path in tmp_path.glob("*/*")) == [f"{index:02x}entry" for index in range(4, 12)]


def test_the_answer_cache_imports_nothing_of_buildflow() -> None:
    probe = "import sys\nimport buildflow.answers\nprint(' '.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO)
    loaded = set(done.stdout.split())
    assert {name for name in loaded if name.startswith("buildflow")} == {"buildflow", "buildflow.answers"}
    assert not {"click", "typing", "hashlib", "pathlib"} & loaded
