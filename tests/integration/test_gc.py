"""Registry clean-up for real: five runs with changes, then gc against the test registry (deletes enabled), and a
second registry of the same binary with deletes disabled."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from buildflow.engine.catalog import RegistryCatalog
from buildflow.engine.registry import MANIFEST_TYPES, RegistryClient
from buildflow.references import parse
from tests.integration.conftest import BASE, REGISTRY, Project, buildflow, child, make_project, registry_digest

pytestmark = pytest.mark.integration

TREE = """\
    base: {context: base, tags: ["base:1"]}
    mid: {context: mid, from: base, tags: ["mid:1"]}
    leaf: {context: leaf, from: mid, tags: ["leaf:1", "leaf:latest"]}
    side: {context: side, from: base, tags: ["side:1"]}
    """
NOTED_BASE = BASE + "    COPY note.txt /note.txt\n"
FILES = {"base": NOTED_BASE, "mid": child("mid", "base"), "leaf": child("leaf", "mid"), "side": child("side", "base")}
REPOSITORIES = ("base", "mid", "leaf", "side")


def five_runs(project: Project) -> list[dict[str, str]]:
    """Five builds, base's context file changed before each (every image changes); each run's digests."""
    digests = []
    for run in range(5):
        (project.root / "base" / "note.txt").write_text(f"run {run}\n")
        result = project.build()
        assert result.returncode == 0, result.stdout + result.stderr
        digests.append({name: target["digest"] for name, target in project.targets().items()})
    return digests


def tags(project: Project, name: str, registry: str = REGISTRY) -> set[str]:
    """The tags of one of the project's repositories."""
    return set(RegistryCatalog().tags(f"{registry}/{project.namespace}/{name}"))


def manifest_status(reference: str) -> int:
    """The status of a GET of a manifest (by tag or digest), straight from the registry."""
    ref = parse(reference)
    url = f"http://{ref.host}/v2/{ref.remote}/manifests/{ref.version}"
    request = urllib.request.Request(url, headers={"Accept": MANIFEST_TYPES})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def gc(project: Project, *arguments: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """Run `buildflow gc` with a report; its result and the report."""
    report = project.root / "gc.json"
    result = buildflow("gc", "--report", str(report), *arguments, cwd=project.root)
    return result, (json.loads(report.read_text()) if report.exists() else {})


@pytest.fixture
def built(tmp_path: Path) -> tuple[Project, list[dict[str, str]], str]:
    """The tree built five times with changes, and a human tag base:v1 left on the second run's base."""
    project = make_project(tmp_path, TREE, FILES)
    digests = five_runs(project)
    pinned = f"{REGISTRY}/{project.namespace}/base:v1"
    RegistryClient().copy_tag(f"{REGISTRY}/{project.namespace}/base@{digests[1]['base']}", pinned)
    return project, digests, pinned


def test_gc_keep_1_removes_old_builds_and_leaves_every_release_tag_pullable(
    built: tuple[Project, list[dict[str, str]], str],
) -> None:
    project, digests, pinned = built
    before = {name: tags(project, name) for name in REPOSITORIES}
    assert all(
        len([t for t in found if t.startswith("bf-") and not t.startswith("bf-last")]) == 10
        for found in before.values()
    )

    result, report = gc(project, "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert {name: tags(project, name) for name in REPOSITORIES} == before, "--dry-run deleted something"
    assert report["dry_run"] and len(report["deleted"]) == 15 and report["freed_bytes"] > 0
    assert "would delete" in result.stdout

    result, report = gc(project, "--keep", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    print(result.stdout)
    for name in REPOSITORIES:
        left = {t for t in tags(project, name) if t.startswith("bf-") and not t.startswith("bf-last")}
        current = digests[-1][name]
        assert registry_digest(f"{REGISTRY}/{project.namespace}/{name}:1") == current
        assert manifest_status(f"{REGISTRY}/{project.namespace}/{name}@{current}") == 200
        expected = 4 if name == "base" else 2  # the newest build, and base's build that base:v1 points at
        assert len(left) == expected, left
        for run in digests[:-1]:
            wanted = 200 if name == "base" and run is digests[1] else 404
            assert manifest_status(f"{REGISTRY}/{project.namespace}/{name}@{run[name]}") == wanted, (name, run)
    assert registry_digest(pinned) == digests[1]["base"]
    assert manifest_status(f"{REGISTRY}/{project.namespace}/leaf:latest") == 200
    after = {name: len(tags(project, name)) for name in REPOSITORIES}
    print(f"tags before { ({n: len(t) for n, t in before.items()}) }, after {after}; freed {report['freed_bytes']} B")
    assert len(report["deleted"]) == 15 and report["freed_bytes"] > 0
    assert not report["not_deleted"] and not report["refused"]
    assert "went" in result.stdout.splitlines()[-1]

    again = project.build()
    assert again.returncode == 0, again.stdout + again.stderr
    assert {target["status"] for target in project.targets().values()} == {"REUSED"}
    (project.root / "base" / "note.txt").write_text("run 0\n")  # the first run's inputs: their record is gone
    rebuilt = project.build()
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert {target["status"] for target in project.targets().values()} == {"BUILT"}


def test_gc_of_one_target_and_older_than_keep_the_rest(built: tuple[Project, list[dict[str, str]], str]) -> None:
    project, _, _ = built
    before = {name: tags(project, name) for name in REPOSITORIES}
    result, report = gc(project, "side", "--keep", "0", "--older-than", "1h")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not report["deleted"], "every build is younger than an hour"
    result, report = gc(project, "side", "--keep", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert {name: tags(project, name) for name in ("base", "mid", "leaf")} == {
        name: before[name] for name in ("base", "mid", "leaf")
    }
    assert len(before["side"] - tags(project, "side")) == 6  # three old builds, each an image and a record
    assert {build["target"] for build in report["deleted"]} == {"side"}


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateRegistry:
    """A registry of the test's own (the same binary scripts/engine.sh starts) on another loopback port, its
    storage in the test's directory: started and stopped by the test, its garbage collected while stopped."""

    def __init__(self, root: Path, *, deletes: bool) -> None:
        binary = shutil.which("docker-registry")
        if binary is None:
            pytest.fail("docker-registry is missing: run scripts/engine.sh install")
        self.binary, self.port, self.storage = binary, free_port(), root / "storage"
        self.config = root / "registry.yml"
        self.config.write_text(
            f"version: 0.1\nlog: {{level: warn}}\nstorage:\n  filesystem: {{rootdirectory: {self.storage}}}\n"
            f"  delete: {{enabled: {str(deletes).lower()}}}\nhttp:\n  addr: 127.0.0.1:{self.port}\n"
        )
        self.env = {"REGISTRY_STORAGE_DELETE_ENABLED": str(deletes).lower(), "PATH": "/usr/bin:/bin"}
        self.server: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"localhost:{self.port}"

    def start(self) -> None:
        self.server = subprocess.Popen(
            [self.binary, "serve", str(self.config)], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v2/", timeout=5):
                    return
            except OSError:
                time.sleep(0.05)
        pytest.fail(f"the registry on 127.0.0.1:{self.port} did not answer")

    def stop(self) -> None:
        if self.server is not None:
            self.server.terminate()
            self.server.wait(timeout=30)
            self.server = None

    def collect_garbage(self) -> None:
        """distribution's own garbage-collect, untagged manifests too (BuildKit's cache leaves them), stopped."""
        self.stop()
        subprocess.run(
            [self.binary, "garbage-collect", "--delete-untagged", str(self.config)],
            env=self.env,
            capture_output=True,
            check=True,
            timeout=120,
        )
        self.start()

    def blob_bytes(self) -> int:
        """The bytes of every blob stored (manifests, configs, layers)."""
        return sum(path.stat().st_size for path in self.storage.glob("docker/registry/v2/blobs/**/data"))


@pytest.fixture
def no_delete_registry(tmp_path: Path) -> Iterator[str]:
    """A private registry with deletes disabled."""
    registry = PrivateRegistry(tmp_path, deletes=False)
    registry.start()
    try:
        yield registry.address
    finally:
        registry.stop()


def test_the_bytes_gc_reports_are_what_the_registry_frees_at_its_garbage_collect(tmp_path: Path) -> None:
    registry = PrivateRegistry(tmp_path, deletes=True)
    registry.start()
    try:
        project = make_project(tmp_path / "p", TREE, FILES, registry=registry.address)
        five_runs(project)
        registry.collect_garbage()
        before = registry.blob_bytes()
        result, report = gc(project, "--keep", "1")
        assert result.returncode == 0, result.stdout + result.stderr
        registry.collect_garbage()
        after = registry.blob_bytes()
    finally:
        registry.stop()
    print(f"stored blobs {before} B before gc, {after} B after; gc reported {report['freed_bytes']} B freed")
    assert report["freed_bytes"] == before - after > 0


def test_a_registry_that_refuses_deletes_is_named_in_one_line_and_exit_1(
    tmp_path: Path, no_delete_registry: str
) -> None:
    project = make_project(
        tmp_path / "p", 'base: {context: base, tags: ["base:1"]}\n', {"base": NOTED_BASE}, registry=no_delete_registry
    )
    for run in range(2):
        (project.root / "base" / "note.txt").write_text(f"run {run}\n")
        result = project.build()
        assert result.returncode == 0, result.stdout + result.stderr
    before = tags(project, "base", no_delete_registry)

    result, report = gc(project, "--keep", "1")
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "refuses deletes (405 UNSUPPORTED)" in lines[0] and no_delete_registry in lines[0]
    assert "REGISTRY_STORAGE_DELETE_ENABLED=true" in lines[0]
    assert tags(project, "base", no_delete_registry) == before
    assert report["refused"] and not report["deleted"] and len(report["not_deleted"]) == 1


def test_a_registry_that_does_not_answer_ends_gc_in_one_line_and_exit_1(tmp_path: Path) -> None:
    project = make_project(
        tmp_path, 'base: {context: base, tags: ["base:1"]}\n', {"base": BASE}, registry="localhost:9"
    )
    result = buildflow("gc", cwd=project.root)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert "localhost:9" in lines[0] and "nothing was deleted" in lines[0]
