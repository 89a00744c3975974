"""Size and waste reports of images buildx built and pushed to the test registry."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
import uuid
from pathlib import Path

import pytest

from buildflow.engine.registry import RegistryClient
from buildflow.quality.layers import LayerCache, from_registry
from tests.integration.conftest import BUSYBOX, REGISTRY

pytestmark = pytest.mark.integration

WASTEFUL = """\
    FROM scratch
    COPY busybox /bin/busybox
    RUN ["/bin/busybox", "dd", "if=/dev/zero", "of=/big", "bs=1000", "count=3000"]
    RUN ["/bin/busybox", "rm", "/big"]
    """
PARENT = """\
    FROM scratch
    COPY busybox /bin/busybox
    RUN ["/bin/busybox", "dd", "if=/dev/zero", "of=/parent.bin", "bs=1000", "count=1"]
    """
CHILD = """\
    ARG BASE_IMAGE
    FROM ${BASE_IMAGE}
    RUN ["/bin/busybox", "dd", "if=/dev/zero", "of=/child.bin", "bs=1000", "count=7"]
    RUN ["/bin/busybox", "rm", "/parent.bin"]
    """


def build(root: Path, reference: str, dockerfile: str, *arguments: str) -> None:
    """Build a Dockerfile (with busybox in its context) and push it, as buildflow does: no network, no provenance."""
    root.mkdir(parents=True)
    (root / "Dockerfile").write_text(textwrap.dedent(dockerfile))
    shutil.copy(BUSYBOX, root / "busybox")
    command = ["docker", "buildx", "build", "--network", "none", "--provenance=false", "--progress", "plain"]
    output = f"type=image,name={reference},push=true"
    result = subprocess.run(
        [*command, *arguments, "--output", output, str(root)], capture_output=True, text=True, check=False, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture
def namespace() -> str:
    return f"{REGISTRY}/it-layers-{uuid.uuid4().hex[:10]}"


def test_a_file_written_in_one_run_and_removed_in_the_next_is_wasted(tmp_path: Path, namespace: str) -> None:
    reference = f"{namespace}/x:t"
    build(tmp_path / "x", reference, WASTEFUL)
    report = from_registry(RegistryClient(), reference, cache=LayerCache(tmp_path))
    assert len(report.layers) == 3
    dd, rm = report.layers[1], report.layers[2]
    assert [(waste.path, waste.bytes, waste.how) for waste in report.waste] == [("/big", 3_000_000, "deleted")]
    assert (report.waste[0].written_in, report.waste[0].removed_in) == (dd.index, rm.index)
    assert "dd" in dd.instruction and "of=/big" in dd.instruction
    assert "rm" in rm.instruction and "/big" in rm.instruction
    assert (report.wasted, report.wasted_here) == (3_000_000, 3_000_000)
    assert (dd.size, rm.size) == (3_000_000, 0)
    assert report.layers[0].size == BUSYBOX.stat().st_size
    assert dd.compressed < dd.size  # zeros compress
    assert report.to_json()["waste"][0]["removed_by"] == rm.instruction


def test_a_child_adds_only_its_own_layers_over_its_parent(tmp_path: Path, namespace: str) -> None:
    parent, child = f"{namespace}/parent:t", f"{namespace}/child:t"
    build(tmp_path / "parent", parent, PARENT)
    build(tmp_path / "child", child, CHILD, "--build-arg", f"BASE_IMAGE={parent}")
    client, cache = RegistryClient(), LayerCache(tmp_path)
    parent_layers = client.layer_digests(parent)
    report = from_registry(client, child, parent_layers=parent_layers, cache=cache)
    assert tuple(layer.digest for layer in report.layers[: len(parent_layers)]) == parent_layers
    assert report.added_layers == 2
    assert report.added == sum(layer.size for layer in report.layers[len(parent_layers) :]) == 7000
    assert report.size == BUSYBOX.stat().st_size + 1000 + 7000
    assert [(waste.path, waste.bytes, waste.written_in, waste.removed_in) for waste in report.waste] == [
        ("/parent.bin", 1000, 1, 3)
    ]
    assert report.wasted_here == 1000
    assert from_registry(client, parent, cache=cache).wasted == 0
