"""Integration tests: a real Docker engine, buildx and a registry on 127.0.0.1:5000 (scripts/engine.sh up)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from buildflow.engine.registry import RegistryClient
from tests.conftest import REPO

REGISTRY = "localhost:5000"
BUSYBOX = Path("/bin/busybox")

BASE = """\
    FROM scratch
    COPY busybox /bin/busybox
    RUN ["/bin/busybox", "--install", "-s", "/bin"]
    RUN echo base > /base.txt
    """
CHILD = """\
    ARG BASE_IMAGE=parent
    FROM ${BASE_IMAGE}
    RUN cat /{parent}.txt > /dev/null && echo {name} > /{name}.txt
    """


@pytest.fixture(scope="session", autouse=True)
def engine_and_registry() -> None:
    """Fail (not skip) when there is nothing to build with: make test starts both with scripts/engine.sh up."""
    engine = subprocess.run(["docker", "info"], capture_output=True, check=False, timeout=30)
    if engine.returncode != 0 or RegistryClient().digest(f"{REGISTRY}/probe/nothing:none") is not None:
        pytest.fail("no Docker engine or registry answers: run scripts/engine.sh up (make test does)")
    if not BUSYBOX.exists():
        pytest.fail("/bin/busybox is missing: run scripts/engine.sh install (make test does)")


@dataclass
class Project:
    """A pipeline of busybox images in a temporary directory, under its own registry namespace."""

    root: Path
    namespace: str

    def ref(self, name: str) -> str:
        return f"{REGISTRY}/{self.namespace}/{name}"

    def build(self, *arguments: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run `buildflow build` as a user would, with a JSON report at report.json."""
        return buildflow(
            "build", "--progress", "plain", "--report", str(self.report_path), *arguments, cwd=self.root, env=env
        )

    @property
    def report_path(self) -> Path:
        return self.root / "report.json"

    def report(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.report_path.read_text())
        return document

    def targets(self) -> dict[str, dict[str, Any]]:
        return {target["id"]: target for target in self.report()["targets"]}


def buildflow(*arguments: str, cwd: Path, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real command line in a subprocess."""
    import os

    return subprocess.run(
        [sys.executable, "-m", "buildflow", *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
    )


def make_project(
    root: Path,
    targets: str,
    dockerfiles: Mapping[str, str],
    registry: str = REGISTRY,
    *,
    attempts: int = 3,
    max_delay: float = 30,
) -> Project:
    """Write a pipeline whose contexts are directories named after the targets."""
    namespace = f"it-{uuid.uuid4().hex[:10]}"
    root.mkdir(parents=True, exist_ok=True)
    retry = f"{{attempts: {attempts}, initial_delay: 0.2, max_delay: {max_delay}}}"
    prefix = f"'{registry}/{namespace}'" if registry.startswith("[") else f"{registry}/{namespace}"  # [::1]: YAML
    header = f"version: 1\nregistry: {prefix}\nretry: {retry}\ndefaults: {{network: none}}\ntargets:\n"
    (root / "buildflow.yaml").write_text(header + textwrap.indent(textwrap.dedent(targets), "  "))
    for context, text in dockerfiles.items():
        (root / context).mkdir(parents=True, exist_ok=True)
        (root / context / "Dockerfile").write_text(textwrap.dedent(text))
        if "COPY busybox" in text:
            shutil.copy(BUSYBOX, root / context / "busybox")
    return Project(root, namespace)


def child(name: str, parent: str) -> str:
    """A Dockerfile that needs its parent's file and adds its own."""
    return CHILD.replace("{name}", name).replace("{parent}", parent)


def run_image(reference: str, *command: str) -> str:
    """Run a command in an image (pulled from the registry if needed), without a network."""
    result = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--pull", "missing", reference, *command],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def registry_digest(reference: str) -> str | None:
    """What the registry holds for a reference."""
    return RegistryClient().digest(reference)


def unsafe_outcomes(project: Project, proxy: str, release_tags: Mapping[str, list[str]]) -> tuple[list[str], list[str]]:
    """What a run lost (BUILT targets the registry does not hold under their digest) and what it half-published
    (release tags that moved although the run did not release, or point elsewhere), read from the registry
    itself rather than through the fault proxy at `proxy`."""
    report = project.report()
    lost = [
        target["id"]
        for target in report["targets"]
        if target["status"] == "BUILT"
        and registry_digest(target["reference"].replace(proxy, REGISTRY, 1)) != target["digest"]
    ]
    digests = {target["id"]: target["digest"] for target in report["targets"]}
    half = [
        f"{name} {tag}"
        for name, tags in release_tags.items()
        for tag in tags
        if registry_digest(f"{REGISTRY}/{project.namespace}/{tag}") != (digests[name] if report["released"] else None)
    ]
    return lost, half


def push_base(reference: str, marker: str) -> str:
    """Build and push a busybox image holding /marker.txt to the test registry; its digest."""
    with tempfile.TemporaryDirectory() as directory:
        shutil.copy(BUSYBOX, Path(directory) / "busybox")
        (Path(directory) / "Dockerfile").write_text(
            'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
            f"RUN echo {marker} > /marker.txt\n"
        )
        subprocess.run(
            ["docker", "buildx", "build", "-q", "--provenance=false", "--network=none", "--push", "-t", reference, "."],
            cwd=directory,
            check=True,
            capture_output=True,
            timeout=300,
        )
    digest = registry_digest(reference)
    assert digest is not None
    return digest
