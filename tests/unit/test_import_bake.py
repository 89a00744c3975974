"""buildflow import bake: bake's printed definition mapped onto a pipeline — every setting that has an equivalent,
`target:` contexts as edges, groups as selections, the rest listed — and the DAG equal to bake's, on the benchmarks'
generated bake files and a hand-written one with a matrix and groups (as bake prints them: expanded)."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from buildflow import log
from buildflow.adopt import bakefile
from buildflow.adopt.bake import bake_edges, import_bake
from buildflow.adopt.bakecache import fields_of
from buildflow.pipeline.loader import load_pipeline
from tests.conftest import REPO
from tests.unit.test_cli import run

CHILD = "ARG BASE_IMAGE=parent\nFROM ${BASE_IMAGE}\n"
# What `docker buildx bake --print` prints for a file with a matrix (tool: v in 1, 2), nested groups and inherits.
PRINTED: dict[str, Any] = {
    "group": {
        "default": {"targets": ["app", "all-tools"]},
        "all-tools": {"targets": ["tool"]},
        "tool": {"targets": ["tool-1", "tool-2"]},
    },
    "target": {
        "base": {
            "context": "base",
            "dockerfile": "Dockerfile",
            "labels": {"org.example": "y"},
            "tags": ["localhost:5000/bk/base:1.0"],
            "platforms": ["linux/amd64", "linux/arm64"],
            "cache-from": ["type=registry,ref=localhost:5000/bk/cache:base"],
            "cache-to": ["type=registry,ref=localhost:5000/bk/cache:base,mode=max"],
            "secret": ["id=tok,env=TOKEN", "id=key,src=./keys/key.txt", "type=env,id=HOME"],
            "output": ["type=registry"],
        },
        "tool-1": {"context": "tool", "dockerfile": "Dockerfile", "args": {"V": "1"}, "tags": ["bk/tool:1"]},
        "tool-2": {"context": "tool", "dockerfile": "Dockerfile", "args": {"V": "2"}, "tags": ["bk/tool:2"]},
        "app": {
            "context": "app",
            "dockerfile": "app.Dockerfile",
            "contexts": {"parent": "target:base", "tool": "target:tool-1", "src": "./src"},
            "args": {"BASE_IMAGE": "parent", "TOOL": "tool", "GREETING": "{hello}"},
            "target": "final",
            "shm-size": "2g",
            "no-cache": True,
            "pull": False,
        },
    },
}
FILES = {
    "base/Dockerfile": "FROM scratch\n",
    "tool/Dockerfile": "FROM scratch\n",
    "app/app.Dockerfile": "ARG BASE_IMAGE=parent\nFROM ${BASE_IMAGE} AS final\nARG TOOL\nCOPY --from=tool /x /x\n",
    "keys/key.txt": "k\n",
}


@pytest.fixture(autouse=True)
def console_logs_afterwards() -> Iterator[None]:
    """Each test leaves logging as it found it (a command run with --log-format json changes it)."""
    yield
    log.configure()


def bench(name: str) -> Any:
    """A benchmark script's module (bench/ is not a package: its scripts import `common` as a sibling)."""
    if str(REPO / "bench") not in sys.path:
        sys.path.insert(0, str(REPO / "bench"))
    return importlib.import_module(name)


def write(root: Path, files: dict[str, str], printed: dict[str, Any], name: str = "docker-bake.json") -> Path:
    """The files and the printed bake definition."""
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    (root / name).write_text(json.dumps(printed))
    return root / name


def planned_edges(capsys: pytest.CaptureFixture[str], pipeline: Path) -> set[tuple[str, str]]:
    """(parent, child) of every edge `buildflow plan` shows."""
    code, out, err = run(capsys, "plan", "--offline", "--format", "json", "-f", str(pipeline))
    assert code == 0, err
    return {(parent["id"], target["id"]) for target in json.loads(out)["targets"] for parent in target["parents"]}


# ---- the mapping ---------------------------------------------------------------------------------------------------


def test_every_setting_with_an_equivalent_is_mapped(tmp_path: Path) -> None:
    imported = import_bake(PRINTED, bake_dir=tmp_path, out_dir=tmp_path, registry=None)
    targets = {name: target.fields for name, target in imported.draft.targets.items()}
    assert targets["base"] == {
        "context": "base",
        "labels": {"org.example": "y"},
        "tags": ["localhost:5000/bk/base:1.0"],
        "platforms": ["linux/amd64", "linux/arm64"],
        "cache": {"type": "registry", "ref": "localhost:5000/bk/cache:base", "mode": "max"},
        "secrets": {"tok": {"env": "TOKEN"}, "key": {"file": "keys/key.txt"}, "HOME": {"env": "HOME"}},
        "push": True,
    }
    assert targets["tool-2"] == {"context": "tool", "args": {"V": "2"}, "tags": ["bk/tool:2"]}
    assert targets["app"] == {
        "context": "app",
        "dockerfile": "app.Dockerfile",
        "stage": "final",
        "from": ["base", "tool-1"],
        "args": {"TOOL": "tool-1", "GREETING": "{{hello}}"},  # BASE_IMAGE is buildflow's; a context name is a parent's
    }


def test_target_contexts_are_the_edges_and_the_base_image_one_comes_first(tmp_path: Path) -> None:
    printed = {"target": {"a": {}, "b": {}, "c": {"contexts": {"x": "target:a", "base": "target:b"}, "args": {}}}}
    printed["target"]["c"]["args"] = {"BASE_IMAGE": "base"}
    imported = import_bake(printed, bake_dir=tmp_path, out_dir=tmp_path, registry=None)
    assert imported.draft.targets["c"].fields["from"] == ["b", "a"] and "args" not in imported.draft.targets["c"].fields
    assert imported.edges == {("a", "c"), ("b", "c")} == bake_edges(printed)
    assert imported.aliases == {"c": {"x": "a", "base": "b"}}


def test_what_has_no_equivalent_is_listed_once_per_setting(tmp_path: Path) -> None:
    imported = import_bake(PRINTED, bake_dir=tmp_path, out_dir=tmp_path, registry=None)
    lines = imported.notes.lines()
    assert (
        "contexts.src (target app): a local directory (./src): buildflow passes only parents as named contexts" in lines
    )
    assert any(line.startswith("shm-size (target app): no /dev/shm size") for line in lines)
    assert any(line.startswith("no-cache (target app): not per target") for line in lines)
    assert not any(line.startswith("pull") for line in lines)  # pull: false is bake's default


def test_cache_entries_map_to_buildflows_one_cache(tmp_path: Path) -> None:
    def cache(spec: dict[str, Any]) -> tuple[Any, list[str]]:
        imported = import_bake({"target": {"t": spec}}, bake_dir=tmp_path / "b", out_dir=tmp_path, registry=None)
        return imported.draft.targets["t"].fields.get("cache"), imported.notes.lines()

    assert cache({"cache-to": ["type=inline"], "cache-from": ["r/app:1"]})[0] == "inline"
    assert cache({"cache-to": ["type=registry,ref=r/c:t"]}) == ({"type": "registry", "ref": "r/c:t", "mode": "min"}, [])
    assert cache({"cache-to": ["type=local,dest=.cache"], "cache-from": ["type=local,src=.cache"]}) == (
        {"type": "local", "dir": "b/.cache"},
        [],
    )
    setting, lines = cache({"cache-to": ["type=gha"], "cache-from": ["type=gha"]})
    assert setting is None and lines == [
        "cache-to (target t): type=gha: buildflow's caches are registry, inline and local"
    ]
    setting, lines = cache({"cache-from": ["type=registry,ref=r/c:t"]})
    assert setting is None and "without a cache-to" in lines[0]
    _, lines = cache({"cache-to": ["type=registry,ref=r/c:t,compression=zstd"], "cache-from": ["r/other:x"]})
    assert [line.split(":")[0] for line in lines] == ["cache-to compression (target t)", "cache-from (target t)"]


def test_outputs_secrets_names_and_tags_that_buildflow_cannot_take_are_listed(tmp_path: Path) -> None:
    printed = {
        "target": {
            "_base": {"tags": ["x/a:1"], "output": ["type=docker"]},
            "b": {"tags": ["x/a:1", "x/b:1"], "output": ["type=local,dest=out"], "secret": ["id=bad id,env=X"]},
        }
    }
    imported = import_bake(printed, bake_dir=tmp_path, out_dir=tmp_path, registry="localhost:5000/x")
    assert imported.names == {"_base": "base", "b": "b"}
    assert imported.draft.targets["base"].fields == {"tags": ["x/a:1"], "push": False}
    assert imported.draft.targets["b"].fields == {"tags": ["x/b:1"]}
    assert [line.split(" (")[0] for line in imported.notes.lines()] == ["name", "tags", "secret", "output"]


def test_tags_under_the_registry_are_written_relative_to_it(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    printed = {"target": {"a": {"context": "a", "tags": ["localhost:5000/team/a:1", "localhost:5000/other/a:1"]}}}
    file = write(tmp_path, {"a/Dockerfile": "FROM scratch\n"}, printed)
    assert run(capsys, "import", "bake", str(file), "--registry", "localhost:5000/team")[0] == 0
    assert yaml.safe_load((tmp_path / "buildflow.yaml").read_text())["targets"]["a"]["tags"] == [
        "a:1",
        "localhost:5000/other/a:1",
    ]
    assert load_pipeline(tmp_path / "buildflow.yaml").targets["a"].tags == tuple(printed["target"]["a"]["tags"])


def test_groups_are_selections_with_nested_and_matrix_groups_expanded(tmp_path: Path) -> None:
    imported = import_bake(PRINTED, bake_dir=tmp_path, out_dir=tmp_path, registry=None)
    assert imported.groups == {
        "default": ["app", "tool-1", "tool-2"],
        "all-tools": ["tool-1", "tool-2"],
        "tool": ["tool-1", "tool-2"],
    }


def test_bake_entries_parse_as_buildx_writes_them() -> None:
    assert fields_of('type=registry,"ref=a,b",mode=max') == {"type": "registry", "ref": "a,b", "mode": "max"}
    assert fields_of({"type": "gha", "scope": "x"}) == {"type": "gha", "scope": "x"}
    assert fields_of("user/app:cache") == {"": "user/app:cache"}


# ---- whole files: the pipeline loads and plans bake's DAG ---------------------------------------------------------


def test_ssh_attestations_and_annotations_are_carried_over(tmp_path: Path) -> None:
    spec = {
        "context": "app",
        "ssh": ["key=./keys/id", "default"],
        "attest": ["type=provenance,mode=max", "type=sbom,generator=localhost:5000/scan:1", "type=spdx"],
        "annotations": ["org.a=1", "index,manifest:org.b=x, y", "manifest-descriptor:org.c=z"],
    }
    imported = import_bake({"target": {"app": spec}}, bake_dir=tmp_path / "bk", out_dir=tmp_path, registry=None)
    fields = imported.draft.targets["app"].fields
    assert fields["ssh"] == [{"id": "key", "paths": ["bk/keys/id"]}]
    assert fields["attest"] == {"provenance": "max", "sbom": {"generator": "localhost:5000/scan:1"}}
    assert fields["annotations"] == {"org.a": "1", "org.b": "x, y"}
    assert sorted(line.split(":")[0] for line in imported.notes.lines()) == [
        "annotations (target app)",
        "attest (target app)",
        "ssh (target app)",
    ]
    plain = import_bake(
        {"target": {"a": {"ssh": ["default"], "attest": ["type=provenance,disabled=true"]}}},
        bake_dir=tmp_path,
        out_dir=tmp_path,
        registry=None,
    )
    assert plain.draft.targets["a"].fields == {"ssh": ["default"]} and plain.notes.lines() == []


def test_the_hand_written_file_imports_with_bakes_dag(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    file = write(tmp_path, FILES, PRINTED)
    code, out, err = run(capsys, "import", "bake", str(file))
    assert code == 0, err
    written = tmp_path / "buildflow.yaml"
    assert out.startswith(f"wrote {written}: 4 targets, 2 edges (0 inferred from Dockerfiles), bake has 2, 3 groups")
    assert planned_edges(capsys, written) == bake_edges(PRINTED) == {("base", "app"), ("tool-1", "app")}
    text = written.read_text()
    assert "# Not carried over (no equivalent in buildflow):" in text and "#   - shm-size (target app)" in text
    assert "#   - default: buildflow build app tool-1 tool-2" in text
    assert yaml.safe_load(text)["x-bake-groups"]["all-tools"] == ["tool-1", "tool-2"]
    assert "not carried over: shm-size (target app)" in err


@pytest.mark.parametrize("count", [1, 21, 300])
def test_the_plan_benchmarks_bake_file_imports_with_bakes_dag(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, count: int
) -> None:
    plan_scale = bench("plan_scale")
    printed = plan_scale.bake_file(count)
    file = write(tmp_path, {"ctx/Dockerfile": plan_scale.DOCKERFILE}, printed)
    code, _, err = run(capsys, "import", "bake", str(file))
    assert code == 0 and err == ""
    assert planned_edges(capsys, tmp_path / "buildflow.yaml") == bake_edges(printed)
    assert len(bake_edges(printed)) == count - 1
    assert set(load_pipeline(tmp_path / "buildflow.yaml").targets) == set(printed["target"])


def test_the_build_benchmarks_bake_file_imports_with_bakes_dag(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    build_tree = bench("build_tree")
    build_tree.write_tree(tmp_path, "ns", "nonce")
    printed = json.loads((tmp_path / "docker-bake.json").read_text())
    output = tmp_path / "imported.json"
    code, _, err = run(capsys, "import", "bake", str(tmp_path / "docker-bake.json"), "-f", str(output))
    assert code == 0 and err == ""
    assert planned_edges(capsys, output) == bake_edges(printed) and len(bake_edges(printed)) == 20
    root = load_pipeline(output).targets["t0"]
    assert (
        root.args == {"N": "0", "NONCE": "nonce", "BASE_IMAGE": build_tree.BASE}
        and root.push
        and root.network == "none"
    )


def test_edges_buildflow_infers_beyond_bakes_are_said(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    printed = {"target": {"a": {"context": "a"}, "b": {"context": "b"}}}
    file = write(tmp_path, {"a/Dockerfile": "FROM scratch\n", "b/Dockerfile": "FROM a\n"}, printed)
    code, out, err = run(capsys, "import", "bake", str(file))
    assert code == 0 and "1 edges (1 inferred from Dockerfiles), bake has 0" in out
    assert err == "an edge bake does not have: b <- a (FROM a, Dockerfile line 1)\n"
    assert "#   - b <- a (FROM a, Dockerfile line 1)" in (tmp_path / "buildflow.yaml").read_text()


def test_json_output_keeps_the_notes_under_an_extension_key(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    file = write(tmp_path, FILES, PRINTED)
    code, _, _ = run(capsys, "import", "bake", str(file), "-f", str(tmp_path / "pipeline.json"))
    document = json.loads((tmp_path / "pipeline.json").read_text())
    assert code == 0 and any(line.startswith("  - shm-size") for line in document["x-notes"])
    assert load_pipeline(tmp_path / "pipeline.json").targets["app"].stage == "final"


# ---- bad input -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "got"),  # got: None for a file whose one target or group has not bake's shape
    [
        ('{"targets": {}}', "a mapping with targets, and no 'target'"),
        ("[1, 2]", "a JSON list"),
        ('{"target": [1]}', "'target' holding a list"),
        ('{"target": {"a": 1}}', None),
        ('{"target": {"a": {"tags": "x:1"}}}', None),
        ('{"target": {}, "group": {"g": {"targets": "a"}}}', None),
    ],
)
def test_json_that_is_not_bakes_exits_2_naming_what_was_expected(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, got: str | None
) -> None:
    (tmp_path / "bake.json").write_text(text)
    code, out, err = run(capsys, "import", "bake", str(tmp_path / "bake.json"))
    assert code == 2 and out == ""
    expected = {
        '{"target": {"a": 1}}': "target.a: expected a mapping of settings, got a JSON number",
        '{"target": {"a": {"tags": "x:1"}}}': "target.a.tags: expected a list, got a JSON string",
        '{"target": {}, "group": {"g": {"targets": "a"}}}': 'group.g: expected {"targets": [NAME, ...]}, got a mapping',
    }
    shown = f"expected {bakefile.EXPECTED}; got {got}" if got else expected[text]
    assert err.startswith(f"{tmp_path}/bake.json: {shown}") and len(err.splitlines()) == 1
    assert not (tmp_path / "buildflow.yaml").exists()


def test_broken_json_and_missing_files_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "bake.json").write_text('{"target": {"a": }')
    code, _, err = run(capsys, "import", "bake", str(tmp_path / "bake.json"))
    assert code == 2 and err.startswith(f"{tmp_path}/bake.json:1: not valid JSON (Expecting value); expected")
    code, _, err = run(capsys, "import", "bake", str(tmp_path / "none.hcl"))
    assert code == 2 and err == f"{tmp_path}/none.hcl: no such file\n"


def test_hcl_without_buildx_exits_2_saying_what_to_do(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("buildflow.engine.bake.available", lambda: False)
    (tmp_path / "docker-bake.hcl").write_text('target "a" {}\n')
    code, _, err = run(capsys, "import", "bake", str(tmp_path / "docker-bake.hcl"))
    assert code == 2
    assert "this file is not JSON (HCL or compose?), which needs docker buildx bake to print it" in err
    assert "docker buildx bake -f FILE --print > bake.json" in err


def test_an_existing_output_is_kept_without_force(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    file = write(tmp_path, FILES, PRINTED)
    (tmp_path / "buildflow.yaml").write_text("mine\n")
    code, _, err = run(capsys, "import", "bake", str(file))
    assert code == 2 and err == f"{tmp_path}/buildflow.yaml exists; pass --force to overwrite it\n"
    assert run(capsys, "import", "bake", str(file), "--force")[0] == 0


def test_a_pipeline_that_does_not_load_is_written_with_its_problems_and_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    file = write(tmp_path, {}, {"target": {"a": {"context": "missing"}}})
    code, _, err = run(capsys, "import", "bake", str(file))
    assert code == 2 and "which does not load yet" in err and "missing" in err
    assert "# Does not load yet" in (tmp_path / "buildflow.yaml").read_text()


def test_hcl_names_are_read_for_a_whole_file_import() -> None:
    text = 'group "default" {\n  targets = ["a"]\n}\ntarget "_common" {}\ntarget "a" {\n  inherits = ["_common"]\n}\n'
    assert bakefile.declared_names(text, None) == ["default", "a"]
    assert bakefile.declared_names("", {"target": {"x": {"inherits": ["y"]}, "y": {}}}) == ["x"]
