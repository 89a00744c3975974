"""init and import bake with the real tools: `docker buildx bake --print` of an HCL file (matrix, groups, inherits,
`target:` contexts) imported with bake's DAG, and small imported and initialised pipelines built for real, pushed to
the registry on 127.0.0.1:5000 (busybox bases made here, nothing pulled from Docker Hub)."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
import uuid
from pathlib import Path

import pytest
import yaml

from buildflow.adopt.bake import bake_edges
from tests.integration.conftest import BUSYBOX, REGISTRY, buildflow, run_image

pytestmark = pytest.mark.integration

HCL = """\
    variable "RELEASE" { default = "1.0" }
    group "default" { targets = ["app", "all-tools"] }
    group "all-tools" { targets = ["tool"] }
    target "_common" {
      labels = { "org.example.release" = RELEASE }
    }
    target "base" {
      inherits = ["_common"]
      context = "base"
      tags = ["REGISTRY/base:${RELEASE}"]
    }
    target "tool" {
      inherits = ["_common"]
      name = "tool-${flavour}"
      matrix = { flavour = ["small", "full"] }
      context = "tool"
      contexts = { base = "target:base" }
      args = { FLAVOUR = flavour }
      tags = ["REGISTRY/tool:${RELEASE}-${flavour}"]
    }
    target "app" {
      context = "app"
      contexts = { parent = "target:base", tool = "target:tool-small" }
      args = { BASE_IMAGE = "parent", TOOL = "tool" }
      tags = ["REGISTRY/app:${RELEASE}"]
    }
    target "lonely" {
      context = "base"
      no-cache = true
    }
    """
DOCKERFILES = {
    "base/Dockerfile": "FROM scratch\nCOPY busybox /bin/busybox\n"
    'RUN --network=none ["/bin/busybox", "--install", "-s", "/bin"]\nRUN --network=none echo base > /base.txt\n',
    "tool/Dockerfile": "FROM base\nARG FLAVOUR\nRUN --network=none cat /base.txt && echo $FLAVOUR > /tool.txt\n",
    "app/Dockerfile": "ARG BASE_IMAGE=parent\nARG TOOL=tool\nFROM ${TOOL} AS tool\nFROM ${BASE_IMAGE}\n"
    "COPY --from=tool /tool.txt /tool.txt\nRUN --network=none cat /base.txt /tool.txt > /app.txt\n",
}


def bake_project(root: Path, namespace: str) -> Path:
    """The HCL bake file and its contexts; tags under the test's own namespace."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "docker-bake.hcl").write_text(textwrap.dedent(HCL).replace("REGISTRY", f"{REGISTRY}/{namespace}"))
    for relative, text in DOCKERFILES.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    shutil.copy(BUSYBOX, root / "base" / "busybox")
    return root / "docker-bake.hcl"


def bake_print(file: Path, *names: str) -> dict[str, object]:
    """What the real `docker buildx bake --print` prints for the file."""
    command = ["docker", "buildx", "bake", "-f", file.name, "--print", *names]
    printed = subprocess.run(command, cwd=file.parent, capture_output=True, text=True, check=True, timeout=120)
    document: dict[str, object] = json.loads(printed.stdout)
    return document


def planned_edges(pipeline: Path) -> set[tuple[str, str]]:
    """(parent, child) of every edge the real `buildflow plan` shows."""
    planned = buildflow("plan", "--offline", "--format", "json", "-f", str(pipeline), cwd=pipeline.parent)
    assert planned.returncode == 0, planned.stderr
    targets = json.loads(planned.stdout)["targets"]
    return {(parent["id"], target["id"]) for target in targets for parent in target["parents"]}


def test_an_hcl_file_is_imported_through_bake_print_with_bakes_dag(tmp_path: Path) -> None:
    file = bake_project(tmp_path, "unused")
    printed = bake_print(file, "default", "lonely", "tool", "base", "all-tools")
    imported = buildflow("import", "bake", str(file), cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    pipeline = tmp_path / "buildflow.yaml"
    document = yaml.safe_load(pipeline.read_text())
    assert set(document["targets"]) == {"base", "tool-small", "tool-full", "app", "lonely"}  # not the _common template
    assert (
        planned_edges(pipeline)
        == bake_edges(printed)
        == {
            ("base", "tool-small"),
            ("base", "tool-full"),
            ("base", "app"),
            ("tool-small", "app"),
        }
    )
    assert document["targets"]["tool-full"]["labels"] == {"org.example.release": "1.0"}  # inherits, resolved by bake
    assert document["x-bake-groups"] == {
        "default": ["app", "tool-small", "tool-full"],  # bake's own default group, not the names import asked for
        "all-tools": ["tool-small", "tool-full"],
        "tool": ["tool-small", "tool-full"],
    }
    assert "not carried over: no-cache (target lonely)" in imported.stderr
    graph = buildflow("graph", "-f", str(pipeline), cwd=tmp_path)
    assert graph.returncode == 0 and "tool-small" in graph.stdout


def test_naming_targets_imports_what_bake_prints_for_them(tmp_path: Path) -> None:
    file = bake_project(tmp_path, "unused")
    imported = buildflow("import", "bake", str(file), "app", cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert set(yaml.safe_load((tmp_path / "buildflow.yaml").read_text())["targets"]) == {"base", "tool-small", "app"}


def test_a_bake_file_bake_refuses_exits_2_with_bakes_error(tmp_path: Path) -> None:
    (tmp_path / "docker-bake.hcl").write_text('target "a" {\n  context = \n')
    imported = buildflow("import", "bake", str(tmp_path / "docker-bake.hcl"), cwd=tmp_path)
    assert imported.returncode == 2 and imported.stdout == ""
    assert imported.stderr.startswith(f"{tmp_path}/docker-bake.hcl: docker buildx bake --print failed: ")
    assert len(imported.stderr.splitlines()) == 1 and "Traceback" not in imported.stderr


def test_an_imported_pipeline_builds_for_real(tmp_path: Path) -> None:
    namespace = f"it-{uuid.uuid4().hex[:10]}"
    file = bake_project(tmp_path, namespace)
    imported = buildflow("import", "bake", str(file), "app", "--registry", f"{REGISTRY}/{namespace}", cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    built = buildflow("build", "--progress", "plain", "--report", str(tmp_path / "report.json"), cwd=tmp_path)
    assert built.returncode == 0, built.stderr[-3000:]
    statuses = {
        target["id"]: target["status"] for target in json.loads((tmp_path / "report.json").read_text())["targets"]
    }
    assert statuses == {"base": "BUILT", "tool-small": "BUILT", "app": "BUILT"}
    assert run_image(f"{REGISTRY}/{namespace}/app:1.0", "cat", "/app.txt") == "base\nsmall\n"


def test_an_initialised_tree_builds_for_real(tmp_path: Path) -> None:
    namespace = f"it-{uuid.uuid4().hex[:10]}"
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "Dockerfile").write_text(DOCKERFILES["base/Dockerfile"])
    shutil.copy(BUSYBOX, tmp_path / "base" / "busybox")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text(
        f"FROM {REGISTRY}/{namespace}/base:1\nRUN --network=none cat /base.txt > /app.txt\n"
    )
    initialised = buildflow("init", "--registry", f"{REGISTRY}/{namespace}", cwd=tmp_path)
    assert initialised.returncode == 0, initialised.stderr
    assert "app <- base (FROM localhost:5000/" in initialised.stdout
    built = buildflow("build", "--progress", "plain", cwd=tmp_path)
    assert built.returncode == 0, built.stderr[-3000:]
    assert run_image(f"{REGISTRY}/{namespace}/app:latest", "cat", "/app.txt") == "base\n"
    assert run_image(f"{REGISTRY}/{namespace}/base:1", "cat", "/base.txt") == "base\n"
