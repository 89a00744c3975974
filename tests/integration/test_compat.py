"""The compatibility patterns (tests/compat) built for real: busybox images stand in for Ubuntu and the
toolchains, so that BuildKit itself checks that the edges and bases buildflow infers are the ones it builds on."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Project, buildflow, make_project, push_base, run_image

pytestmark = pytest.mark.integration

ROOT = """\
    ARG ROOT_IMAGE=default_root_image
    FROM {upstream} AS default_root_image

    FROM $ROOT_IMAGE
    RUN echo foundation > /foundation.txt
    """
CHILD = """\
    ARG REGISTRY=localhost:5000
    ARG OWNER={owner}
    ARG BASE_IMAGE=$REGISTRY/$OWNER/{parent}
    FROM $BASE_IMAGE
    RUN cat /{parent}.txt > /dev/null && echo {name} > /{name}.txt
    """
TOOLCHAIN = """\
    FROM scratch
    COPY busybox /bin/busybox
    RUN ["/bin/busybox", "--install", "-s", "/bin"]
    RUN echo toolchain > /toolchain.txt
    """
APP = """\
    ARG UBUNTU_VERSION=24.04
    ARG TOOLCHAIN=localhost:5000/{owner}/toolchain:1
    FROM --platform=$BUILDPLATFORM ${TOOLCHAIN} AS build
    ARG TARGETARCH
    RUN cat /toolchain.txt > /dev/null && echo "built for $TARGETARCH" > /out.txt

    FROM localhost:5000/{owner}/never-pushed:1 AS debug
    COPY --from=build /out.txt /out.txt

    FROM {ubuntu}:${UBUNTU_VERSION} AS runtime
    COPY --from=build /out.txt /out.txt
    """


def write(project: Project, files: dict[str, str]) -> None:
    """Dockerfiles into the project's contexts."""
    for context, text in files.items():
        (project.root / context).mkdir(exist_ok=True)
        (project.root / context / "Dockerfile").write_text(textwrap.dedent(text))


def plan_json(project: Project) -> dict[str, dict[str, Any]]:
    """Target id -> its entry in `plan --format json` (bases resolved through the registry)."""
    result = buildflow("plan", "--format", "json", cwd=project.root)
    assert result.returncode == 0, result.stderr
    return {target["id"]: target for target in json.loads(result.stdout)["targets"]}


def test_a_notebook_stacks_chain_is_inferred_and_built_on_each_parent(tmp_path: Path) -> None:
    chain = {"base-notebook": "foundation", "minimal-notebook": "base-notebook", "scipy-notebook": "minimal-notebook"}
    targets = "".join(f'{name}: {{context: {name}, tags: ["{name}:latest"]}}\n' for name in ["foundation", *chain])
    project = make_project(tmp_path, targets, {})
    upstream = project.ref("ubuntu")
    digest = push_base(f"{upstream}:24.04", "root")
    files = {"foundation": ROOT.replace("{upstream}", f"{upstream}@{digest}")}
    for name, parent in chain.items():
        files[name] = CHILD.replace("{owner}", project.namespace).replace("{parent}", parent).replace("{name}", name)
    write(project, files)

    validate = buildflow("validate", cwd=project.root)
    assert validate.stdout.endswith("4 images of 4 targets in 4 generations, 3 edges (3 inferred from Dockerfiles)\n")
    planned = plan_json(project)
    assert planned["foundation"]["bases"] == {f"{upstream}@{digest}": digest}
    assert [parent["id"] for parent in planned["scipy-notebook"]["parents"]] == ["minimal-notebook"]
    assert all(not planned[name]["bases"] for name in chain)

    result = project.build()
    assert result.returncode == 0, result.stdout + result.stderr
    assert {target["status"] for target in project.targets().values()} == {"BUILT"}
    files_in_leaf = run_image(project.ref("scipy-notebook:latest"), "cat", "/marker.txt", "/foundation.txt")
    assert files_in_leaf.split() == ["root", "foundation"]
    assert run_image(project.ref("scipy-notebook:latest"), "cat", "/minimal-notebook.txt").strip() == "minimal-notebook"


def test_a_builder_runtime_pair_needs_only_its_stages(tmp_path: Path) -> None:
    targets = """\
        toolchain: {context: toolchain, tags: ["toolchain:1"]}
        app: {context: app, tags: ["app:1"]}
        app-build: {context: app, stage: build, tags: ["app:build"]}
        """
    project = make_project(tmp_path, targets, {"toolchain": TOOLCHAIN})
    ubuntu = project.ref("ubuntu")
    digest = push_base(f"{ubuntu}:24.04", "runtime-base")
    write(project, {"app": APP.replace("{owner}", project.namespace).replace("{ubuntu}", ubuntu)})

    planned = plan_json(project)
    assert [(p["id"], p["kind"]) for p in planned["app"]["parents"]] == [("toolchain", "inferred")]
    assert planned["app"]["bases"] == {f"{ubuntu}:24.04": digest}  # never-pushed:1 is in a stage app does not need
    assert planned["app-build"]["bases"] == {}

    result = project.build()
    assert result.returncode == 0, result.stdout + result.stderr
    assert {target["status"] for target in project.targets().values()} == {"BUILT"}
    out = run_image(project.ref("app:1"), "cat", "/out.txt", "/marker.txt").split("\n")
    assert out[0].startswith("built for ") and out[1] == "runtime-base"
