"""The compatibility suite: trees of Dockerfiles in the patterns of well-known image hierarchies (tests/compat),
each with a pipeline that names little more than contexts, tags and the registry. buildflow must find the DAG
and the upstream bases that BuildKit would build them from."""

from __future__ import annotations

import pytest

from buildflow.model import Pipeline
from buildflow.pipeline.loader import load_pipeline
from tests.conftest import REPO

COMPAT = REPO / "tests" / "compat"
NOTEBOOKS = {
    "base-notebook": "docker-stacks-foundation",
    "minimal-notebook": "base-notebook",
    "scipy-notebook": "minimal-notebook",
    "r-notebook": "minimal-notebook",
    "julia-notebook": "minimal-notebook",
    "tensorflow-notebook": "scipy-notebook",
    "pytorch-notebook": "scipy-notebook",
    "datascience-notebook": "scipy-notebook",
    "pyspark-notebook": "scipy-notebook",
    "all-spark-notebook": "pyspark-notebook",
}
UBUNTU = "ubuntu:24.04@sha256:" + "c0ffee" * 10 + "c0de"


def load(pattern: str, file: str = "buildflow.yaml") -> Pipeline:
    return load_pipeline(COMPAT / pattern / file)


def parents(pipeline: Pipeline) -> dict[str, list[tuple[str, str, str, int]]]:
    """Target id -> its parents as (id, kind, Dockerfile instruction, line)."""
    return {
        target.id: [(edge.parent, str(edge.kind), edge.instruction, edge.line) for edge in target.parents]
        for target in pipeline.targets.values()
    }


def bases(pipeline: Pipeline) -> dict[str, list[str]]:
    """Target id -> the external images it is built from."""
    return {target.id: sorted(target.bases) for target in pipeline.targets.values()}


def test_every_pattern_has_a_test() -> None:
    tested = {"jupyter-stacks", "tensorflow", "nvidia-cuda", "docker-library", "multi-stage", "cross-platform"}
    assert {path.name for path in COMPAT.iterdir() if path.is_dir()} == tested | {"onbuild"}


@pytest.mark.parametrize("file", ["buildflow.yaml", "fork.buildflow.yaml"])
def test_notebook_stacks_chain_through_arg_defaults(file: str) -> None:
    pipeline = load("jupyter-stacks", file)
    assert parents(pipeline) == {
        "docker-stacks-foundation": [],
        **{child: [(parent, "inferred", "FROM", 4)] for child, parent in NOTEBOOKS.items()},
    }
    assert len(pipeline.generations) == 6 and pipeline.generations[-1] == ["all-spark-notebook"]
    # the pinned root is the only upstream base; no '$REGISTRY/$OWNER/...' is tracked as one
    assert bases(pipeline) == {"docker-stacks-foundation": [UBUNTU], **{child: [] for child in NOTEBOOKS}}
    assert pipeline.targets["docker-stacks-foundation"].bases[UBUNTU] == UBUNTU.rpartition("@")[2]
    assert pipeline.warnings == ()


def test_notebook_stacks_edges_name_the_images_as_the_fork_pushes_them() -> None:
    fork = load("jupyter-stacks", "fork.buildflow.yaml")
    assert fork.targets["minimal-notebook"].parents[0].reference == "ghcr.io/me/base-notebook"
    assert load("jupyter-stacks").targets["minimal-notebook"].parents[0].reference == "quay.io/jupyter/base-notebook"


def test_tensorflow_ubuntu_version_arg_and_cuda_tag_made_of_args() -> None:
    pipeline = load("tensorflow")
    assert parents(pipeline) == {"cpu": [], "gpu": [], "models": [("gpu", "inferred", "FROM", 3)]}
    assert bases(pipeline) == {
        "cpu": ["ubuntu:22.04"],
        "gpu": ["nvidia/cuda:12.2.0-base-ubuntu22.04"],
        "models": [],
    }
    matrix = load("tensorflow", "ubuntu-matrix.buildflow.yaml")
    assert bases(matrix) == {
        "cpu[ubuntu=20.04]": ["ubuntu:20.04"],
        "cpu[ubuntu=22.04]": ["ubuntu:22.04"],
        "gpu[ubuntu=20.04]": ["nvidia/cuda-arm64:12.3.2-base-ubuntu20.04"],
        "gpu[ubuntu=22.04]": ["nvidia/cuda-arm64:12.3.2-base-ubuntu22.04"],
    }


def test_nvidia_image_name_without_a_value_is_reported_once_per_line() -> None:
    pipeline = load("nvidia-cuda")
    assert parents(pipeline) == {"base": [], "runtime": [], "devel": []}
    assert bases(pipeline) == {"base": ["ubuntu:22.04"], "runtime": [], "devel": []}
    dist = "dist/12.3.1/ubuntu2204"
    assert [warning.split(": ", 2)[:2] for warning in pipeline.warnings] == [
        [f"{COMPAT}/nvidia-cuda/{dist}/runtime/Dockerfile:3", "FROM ${IMAGE_NAME}:12.3.1-base-ubuntu22.04"],
        [f"{COMPAT}/nvidia-cuda/{dist}/devel/Dockerfile:2", "FROM ${IMAGE_NAME}:12.3.1-runtime-ubuntu22.04"],
    ]
    assert "ARG IMAGE_NAME has no default and no build arg sets it (target runtime)" in pipeline.warnings[0]


def test_nvidia_with_image_name_given_chains_through_the_arch_stages() -> None:
    pipeline = load("nvidia-cuda", "image-name.buildflow.yaml")
    assert parents(pipeline) == {
        "base": [],
        "runtime": [("base", "inferred", "FROM", 3)],
        "devel": [("runtime", "inferred", "FROM", 2)],
    }
    assert bases(pipeline) == {"base": ["ubuntu:22.04"], "runtime": [], "devel": []}
    assert pipeline.warnings == ()


def test_docker_library_images_by_published_tag_on_digest_pinned_bases() -> None:
    pipeline = load("docker-library")
    assert parents(pipeline) == {
        "buildpack-deps-curl": [],
        "buildpack-deps-scm": [("buildpack-deps-curl", "inferred", "FROM", 1)],
        "buildpack-deps": [("buildpack-deps-scm", "inferred", "FROM", 1)],
        "python": [("buildpack-deps", "inferred", "FROM", 4)],
        "python-slim": [],
        "app": [("python", "inferred", "FROM", 2), ("python-slim", "inferred", "FROM", 6)],
    }
    pinned = {target: dict(t.bases) for target, t in pipeline.targets.items() if t.bases}
    assert pinned == {
        "buildpack-deps-curl": {"debian:bookworm@sha256:b0" + "0" * 61 + "1": "sha256:b0" + "0" * 61 + "1"},
        "python-slim": {"debian:bookworm-slim@sha256:5e" + "0" * 61 + "2": "sha256:5e" + "0" * 61 + "2"},
    }


def test_multi_stage_pairs_pull_in_what_their_stage_needs() -> None:
    pipeline = load("multi-stage")
    toolchain = ("toolchain", "inferred", "FROM", 5)
    assert parents(pipeline) == {
        "toolchain": [],
        "assets": [],
        "api": [toolchain, ("assets", "inferred", "RUN --mount", 19)],
        "api-test": [toolchain],
        "api-debug": [toolchain],
        "worker": [("toolchain", "inferred", "COPY --from", 9)],
    }
    frontend = "docker/dockerfile:1"
    assert bases(pipeline) == {
        "toolchain": ["golang:1.22-bookworm"],
        "assets": [],
        "api": [frontend, "gcr.io/distroless/static-debian12:nonroot"],
        "api-test": [frontend],
        "api-debug": [frontend, "gcr.io/distroless/static-debian12:debug"],
        "worker": ["alpine:3.20@sha256:" + "beef" * 16, "golang:1.22-bookworm"],
    }


def test_cross_builds_need_the_image_of_every_target_platform() -> None:
    pipeline = load("cross-platform")
    assert parents(pipeline)["app"] == [
        ("rootfs-amd64", "inferred", "FROM", 10),
        ("rootfs-arm64", "inferred", "FROM", 10),
    ]
    assert bases(pipeline)["app"] == ["golang:1.22-alpine"]  # the build stage runs on the build platform


def test_onbuild_triggers_belong_to_the_children() -> None:
    pipeline = load("onbuild")
    assert parents(pipeline) == {
        "assets": [],
        "builder": [],
        "site": [("builder", "inferred", "FROM", 1), ("assets", "inferred", "ONBUILD COPY --from", 1)],
    }
    assert bases(pipeline) == {"assets": [], "builder": ["node:20-bookworm-slim"], "site": ["nginx:1.27-alpine"]}


def test_the_shipped_recommenders_pipeline_tracks_only_the_stage_each_image_builds() -> None:
    pipeline = load_pipeline(REPO / "pipelines" / "recommenders" / "buildflow.yaml")
    cuda = "nvidia/cuda:12.2.2-cudnn8-runtime-ubuntu22.04"
    assert bases(pipeline) == {
        "recommenders[env=cpu]": ["docker/dockerfile:1", "ubuntu:22.04"],
        "recommenders[env=pyspark]": ["docker/dockerfile:1", "ubuntu:22.04"],
        "recommenders[env=gpu]": ["docker/dockerfile:1", cuda],
    }


def test_compat_dockerfiles_parse_like_any_other() -> None:
    from buildflow.pipeline.dockerfile import read

    for path in sorted(COMPAT.rglob("*Dockerfile")):
        assert read(path).stage_list, path
