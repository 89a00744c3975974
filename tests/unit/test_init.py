"""buildflow init: a pipeline proposed for a tree of Dockerfiles — names, contexts, tags that let buildflow infer the
edges, what it cannot infer, bad input — written commented, and loading as it is."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pytest
import yaml

from buildflow import log
from buildflow.adopt.tree import find_dockerfiles, is_dockerfile, target_names
from buildflow.pipeline.loader import load_pipeline
from tests.unit.test_cli import run

TREE = {
    "base/Dockerfile": "FROM scratch\nCOPY . /\n",
    "tools/Dockerfile": "FROM base\n",  # the target's name: buildflow's named context
    "app/Dockerfile": "FROM team/base:1.0\nCOPY --from=tools /t /t\n",  # a tag init gives base
    "docker/api.Dockerfile": "ARG BASE=app\nFROM ${BASE}\n",  # an ARG default naming a target
    "docker/Dockerfile.worker": "FROM localhost:5000/team/app:2\n",  # a tag under a registry
    "python/Dockerfile": "FROM python:3.12-slim\n",  # wraps an upstream image: not a parent of anything
    "scripts/Dockerfile": "FROM python:3.12-slim\n",
}


@pytest.fixture(autouse=True)
def console_logs_afterwards() -> Iterator[None]:
    """Each test leaves logging as it found it (a command run with --log-format json changes it)."""
    yield
    log.configure()


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Write the files of a tree."""
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


def edges(path: Path) -> set[tuple[str, str]]:
    """(parent, child) of every edge of a pipeline file, as buildflow loads it."""
    pipeline = load_pipeline(path)
    return {(edge.parent, target.id) for target in pipeline.targets.values() for edge in target.parents}


# ---- what is found and how it is named ---------------------------------------------------------------------------


def test_the_three_names_of_a_dockerfile_and_not_its_ignore_file() -> None:
    assert [is_dockerfile(name) for name in ("Dockerfile", "api.Dockerfile", "Dockerfile.dev")] == [True] * 3
    refused = ("Dockerfile.dockerignore", "api.Dockerfile.dockerignore", "dockerfile", "Dockerfile-old", ".Dockerfile")
    assert [is_dockerfile(name) for name in refused] == [False] * len(refused)


def test_hidden_directories_and_dependencies_are_not_searched(tmp_path: Path) -> None:
    write_tree(tmp_path, {f"{d}/Dockerfile": "FROM scratch\n" for d in (".git", "node_modules", "a/.cache", "a/b")})
    assert find_dockerfiles(tmp_path) == [PurePosixPath("a/b/Dockerfile")]


def test_names_come_from_the_directory_or_the_file_and_grow_only_to_settle_a_clash() -> None:
    paths = [
        PurePosixPath(text)
        for text in (
            "Dockerfile",
            "Dockerfile.dev",
            "base/Dockerfile",
            "services/api/Dockerfile",
            "legacy/api/Dockerfile",
            "docker/worker.Dockerfile",
            "My App/Dockerfile",
        )
    ]
    assert target_names(paths, "Repo") == ["repo", "dev", "base", "services-api", "legacy-api", "worker", "my-app"]


def test_names_make_valid_image_names(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    names = ["a.-b", "c_.d", "e__f", "g---h", "my app!", ".hidden-ish"]
    write_tree(tmp_path, {f"{name}/Dockerfile": "FROM scratch\n" for name in names})
    assert run(capsys, "init", str(tmp_path))[0] == 0
    targets = load_pipeline(tmp_path / "buildflow.yaml").targets
    assert sorted(targets) == ["a-b", "c-d", "e__f", "g---h", "my-app"]  # hidden directories are not searched


def test_names_that_still_clash_get_a_number() -> None:
    paths = [PurePosixPath("a/Dockerfile"), PurePosixPath("A/Dockerfile"), PurePosixPath("x/a.Dockerfile")]
    assert target_names(paths, "r") == ["a", "a-2", "x-a"]


# ---- the file written ----------------------------------------------------------------------------------------------


def test_init_writes_a_commented_pipeline_whose_edges_are_buildflows_inferred_ones(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    write_tree(tmp_path, TREE)
    code, out, err = run(capsys, "init", str(tmp_path))
    written = tmp_path / "buildflow.yaml"
    assert code == 0, err
    assert out.startswith(f"wrote {written}: 7 targets, 5 edges (5 inferred from Dockerfiles)")
    assert edges(written) == {
        ("base", "tools"),
        ("base", "app"),
        ("tools", "app"),
        ("app", "api"),
        ("app", "worker"),
    }
    text = written.read_text()
    assert (
        text.startswith("# Made by `buildflow init`") and "# app/Dockerfile: parents base (FROM team/base:1.0" in text
    )
    targets = yaml.safe_load(text)["targets"]
    assert targets["base"] == {"context": "base", "tags": ["base:latest", "team/base:1.0"]}
    assert targets["api"] == {"context": "docker", "dockerfile": "api.Dockerfile", "tags": ["api:latest"]}
    assert targets["python"]["tags"] == ["python:latest"]  # FROM python:3.12-slim elsewhere is not this image
    assert "needs the registry localhost:5000/team" in err  # worker's parent is named under a registry


def test_graph_and_plan_read_the_written_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    write_tree(tmp_path, TREE)
    assert run(capsys, "init", str(tmp_path))[0] == 0
    code, out, _ = run(capsys, "plan", "--offline", "--format", "json", "-f", str(tmp_path / "buildflow.yaml"))
    assert code == 0
    parents = {target["id"]: [p["id"] for p in target["parents"]] for target in json.loads(out)["targets"]}
    assert parents["app"] == ["base", "tools"] and parents["worker"] == ["app"]
    code, out, _ = run(capsys, "graph", "-f", str(tmp_path / "buildflow.yaml"))
    assert code == 0 and "tools (inferred)" in out


def test_registry_makes_a_tag_under_it_relative_and_needs_no_other_registry(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    write_tree(tmp_path, TREE)
    code, _, err = run(capsys, "init", str(tmp_path), "--registry", "localhost:5000/team")
    assert code == 0 and "needs the registry" not in err
    document = yaml.safe_load((tmp_path / "buildflow.yaml").read_text())
    assert document["registry"] == "localhost:5000/team" and "app:2" in document["targets"]["app"]["tags"]
    assert ("app", "worker") in edges(tmp_path / "buildflow.yaml")


def test_a_parent_behind_an_arg_without_default_is_named_as_a_from_to_declare(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    write_tree(tmp_path, {"base/Dockerfile": "FROM scratch\n", "app/Dockerfile": "ARG BASE_IMAGE\nFROM $BASE_IMAGE\n"})
    code, _, err = run(capsys, "init", str(tmp_path))
    assert code == 0
    assert f"{tmp_path}/app/Dockerfile:2: FROM $BASE_IMAGE: the ARG has no default; declare from: on app" in err
    assert "    # from: PARENT   # " in (tmp_path / "buildflow.yaml").read_text()


def test_the_output_file_can_be_elsewhere_and_contexts_follow(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tree(tmp_path / "src", TREE)
    monkeypatch.chdir(tmp_path)
    code, _, _ = run(capsys, "init", "src", "-f", "pipeline.yaml")
    assert code == 0
    assert yaml.safe_load(Path("pipeline.yaml").read_text())["targets"]["base"]["context"] == "src/base"
    assert len(edges(tmp_path / "pipeline.yaml")) == 5


def test_names_with_braces_stay_literal(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    write_tree(tmp_path, {"a{b}/Dockerfile": "FROM scratch\n"})
    assert run(capsys, "init", str(tmp_path))[0] == 0
    assert load_pipeline(tmp_path / "buildflow.yaml").targets["a-b"].context == tmp_path / "a{b}"


# ---- bad input -----------------------------------------------------------------------------------------------------


def test_a_dockerfile_that_does_not_parse_is_skipped_with_its_file_and_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    write_tree(tmp_path, {**TREE, "broken/Dockerfile": "FROM base\nRUNN make\n", "empty/Dockerfile": "# nothing\n"})
    code, out, err = run(capsys, "init", str(tmp_path))
    assert code == 0
    assert f"{tmp_path}/broken/Dockerfile:2: unknown instruction: RUNN; skipped" in err.splitlines()
    assert any(line.startswith(f"{tmp_path}/empty/Dockerfile: ") for line in err.splitlines())
    assert "7 targets" in out and "2 Dockerfiles skipped" in out
    assert "broken" not in load_pipeline(tmp_path / "buildflow.yaml").targets


def test_a_directory_without_dockerfiles_exits_2_saying_so(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    code, out, err = run(capsys, "init", str(tmp_path))
    assert code == 2 and out == ""
    assert err.startswith(f"{tmp_path}: no Dockerfile here; init looks for Dockerfile, *.Dockerfile")
    assert not (tmp_path / "buildflow.yaml").exists()
    assert run(capsys, "init", str(tmp_path / "missing"))[0] == 2


def test_an_existing_file_is_overwritten_only_with_force(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    write_tree(tmp_path, TREE)
    (tmp_path / "buildflow.yaml").write_text("mine\n")
    code, _, err = run(capsys, "init", str(tmp_path))
    assert code == 2 and err == f"{tmp_path}/buildflow.yaml exists; pass --force to overwrite it\n"
    assert (tmp_path / "buildflow.yaml").read_text() == "mine\n"
    assert run(capsys, "init", str(tmp_path), "--force")[0] == 0
    assert load_pipeline(tmp_path / "buildflow.yaml").targets.keys() >= {"base", "app"}


def test_a_target_buildflow_refuses_is_left_out_with_why(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    write_tree(tmp_path, {"base/Dockerfile": "FROM scratch\n", "a/Dockerfile": "FROM b\n", "b/Dockerfile": "FROM a\n"})
    code, _, err = run(capsys, "init", str(tmp_path))
    assert code == 0 and "left out a (a/Dockerfile)" in err and "cycle" in err
    assert set(load_pipeline(tmp_path / "buildflow.yaml").targets) == {"base", "b"}


def test_with_json_logs_every_line_on_stderr_is_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    write_tree(tmp_path, {**TREE, "broken/Dockerfile": "FROM base\nRUNN make\n"})
    code, _, err = run(capsys, "--log-format", "json", "init", str(tmp_path))
    events = [json.loads(line) for line in err.splitlines()]
    assert code == 0 and {event["event"] for event in events} == {"init.skipped", "init.needs_registry"}
    assert events[0]["message"] == f"{tmp_path}/broken/Dockerfile:2: unknown instruction: RUNN; skipped"
