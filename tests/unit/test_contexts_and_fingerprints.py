"""Contexts on disk and content fingerprints: escapes refused, changes reach exactly their descendants."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from buildflow.pipeline import fingerprint
from buildflow.pipeline.loader import load_pipeline
from buildflow.pipeline.resolve import freeze
from tests.conftest import dockerfiles, load, one_problem, write_pipeline

TREE = """\
    version: 1
    targets:
      base: {context: base}
      cuda: {context: cuda, from: base}
      cpu: {context: cpu, from: base}
      app: {context: app, from: cuda, args: {V: "1"}}
    """
FILES = {**dockerfiles("base", "cuda", "cpu", "app"), "cuda/src/train.py": "print(1)\n"}


def fingerprints(path: Path) -> dict[str, str]:
    return {target.id: target.fingerprint for target in load_pipeline(path).targets.values()}


def changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {name for name in before if before[name] != after[name]}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return write_pipeline(tmp_path / "repo", TREE, FILES)


def test_fingerprints_are_stable_across_checkout_paths(tree: Path, tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere" / "checkout"
    shutil.copytree(tree.parent, copy)
    os.utime(copy / "cuda" / "src" / "train.py", (0, 0))
    assert fingerprints(tree) == fingerprints(copy / "buildflow.yaml")


def test_a_context_change_reaches_exactly_the_target_and_its_descendants(tree: Path) -> None:
    before = fingerprints(tree)
    (tree.parent / "cuda" / "src" / "train.py").write_text("print(2)\n")
    assert changed(before, fingerprints(tree)) == {"cuda", "app"}


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda root: (root / "base" / "Dockerfile").write_text("FROM scratch\nLABEL a=b\n"),
            {"base", "cuda", "cpu", "app"},
        ),
        (lambda root: (root / "cpu" / "new.txt").write_text("x"), {"cpu"}),
        (lambda root: (root / "cuda" / "src" / "train.py").chmod(0o755), {"cuda", "app"}),
        (lambda root: (root / "cuda" / "link").symlink_to("src/train.py"), {"cuda", "app"}),
    ],
)
def test_what_enters_a_fingerprint(tree: Path, edit: object, expected: set[str]) -> None:
    before = fingerprints(tree)
    edit(tree.parent)  # type: ignore[operator]
    assert changed(before, fingerprints(tree)) == expected


def test_build_args_stage_platforms_labels_and_secret_ids_enter_it(tree: Path) -> None:
    (tree.parent / "cpu" / "Dockerfile").write_text("FROM scratch AS final\nFROM scratch\n")  # a stage: to name
    before = fingerprints(tree)
    for old, new, expected in [
        ('args: {V: "1"}', 'args: {V: "2"}', {"app"}),
        ("context: cpu,", "context: cpu, stage: final,", {"cpu"}),
        ("context: cpu,", "context: cpu, platforms: [linux/arm64],", {"cpu"}),
        ("context: cpu,", "context: cpu, labels: {a: b},", {"cpu"}),
        ("context: cpu,", "context: cpu, secrets: {token: {env: TOKEN}},", {"cpu"}),
    ]:
        tree.write_text(TREE.replace("    ", "", 1).replace("\n    ", "\n").replace(old, new))
        assert changed(before, fingerprints(tree)) == expected, old


def test_secret_values_never_enter_it(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree.write_text(tree.read_text().replace("context: cpu,", "context: cpu, secrets: {token: {env: TOKEN}},"))
    monkeypatch.setenv("TOKEN", "one")
    first = fingerprints(tree)
    monkeypatch.setenv("TOKEN", "two")
    assert fingerprints(tree) == first


def test_dockerignored_files_do_not_count(tree: Path) -> None:
    (tree.parent / "cuda" / ".dockerignore").write_text("src/*.pyc\n**/cache\n!src/cache/keep\n")
    before = fingerprints(tree)
    (tree.parent / "cuda" / "src" / "x.pyc").write_text("junk")
    (tree.parent / "cuda" / "src" / "cache").mkdir()
    (tree.parent / "cuda" / "src" / "cache" / "tmp").write_text("junk")
    assert changed(before, fingerprints(tree)) == set()
    (tree.parent / "cuda" / "src" / "cache" / "keep").write_text("kept")
    assert changed(before, fingerprints(tree)) == {"cuda", "app"}


def test_dockerfile_specific_ignore_file_wins(tree: Path) -> None:
    (tree.parent / "cuda" / "Dockerfile.dockerignore").write_text("src\n")
    before = fingerprints(tree)
    (tree.parent / "cuda" / "src" / "train.py").write_text("changed")
    assert changed(before, fingerprints(tree)) == set()


def test_a_shared_context_is_hashed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    targets = "\n".join(f"  t{i}: {{args: {{N: '{i}'}}}}" for i in range(50))
    path = write_pipeline(tmp_path, f"version: 1\ntargets:\n{targets}\n", {"Dockerfile": "FROM scratch\n"})
    calls = []
    original = fingerprint.context_digest

    def counted(*args: Path) -> str:
        calls.append(args)
        return original(*args)

    monkeypatch.setattr(freeze, "context_digest", counted)
    assert len(load_pipeline(path).targets) == 50
    assert len(calls) == 1


def test_context_outside_the_pipeline_directory(tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "Dockerfile").write_text("FROM scratch\n")
    line = one_problem(tmp_path / "repo", "version: 1\ntargets: {a: {context: ../outside}}\n")
    assert "targets.a.context: '../outside' is outside the pipeline directory" in line


def test_context_symlink_escaping_the_pipeline_directory(tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "ctx").symlink_to(tmp_path / "outside")
    assert "is outside the pipeline directory" in one_problem(
        tmp_path / "repo", "version: 1\ntargets: {a: {context: ctx}}\n"
    )


def test_dockerfile_outside_the_context(tmp_path: Path) -> None:
    line = one_problem(
        tmp_path,
        "version: 1\ntargets: {a: {context: ctx, dockerfile: ../Dockerfile}}\n",
        {"Dockerfile": "FROM scratch\n", "ctx/x": ""},
    )
    assert "targets.a.dockerfile: '../Dockerfile' is outside the context 'ctx'; move it into the context" in line


def test_missing_context_and_dockerfile(tmp_path: Path) -> None:
    assert "targets.a.context: 'nope' does not exist" in one_problem(
        tmp_path, "version: 1\ntargets: {a: {context: nope}}\n"
    )
    line = one_problem(tmp_path / "2", "version: 1\ntargets: {a: {context: ctx}}\n", {"ctx/x": ""})
    assert "targets.a.dockerfile: 'Dockerfile' not found in context 'ctx'" in line


def test_problems_from_defaults_point_at_defaults(tmp_path: Path) -> None:
    line = one_problem(tmp_path, "version: 1\ndefaults: {context: nope}\ntargets: {a: {}, b: {}}\n")
    assert ":2: defaults.context: 'nope' does not exist" in line


def test_unreadable_context_file_is_a_problem(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tree.parent / "cpu" / "secret"
    secret.write_text("x")
    real_open = Path.open

    def refuse(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == secret:
            raise PermissionError(13, "Permission denied")
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)
    line = one_problem(tree.parent, TREE)
    assert "targets.cpu.context: cannot read context file secret: Permission denied" in line


def test_context_paths_in_the_plan_are_real(tree: Path) -> None:
    pipeline = load(tree.parent, TREE, FILES)
    assert pipeline.targets["cuda"].context == (tree.parent / "cuda").resolve()
    assert pipeline.targets["cuda"].dockerfile == (tree.parent / "cuda" / "Dockerfile").resolve()
