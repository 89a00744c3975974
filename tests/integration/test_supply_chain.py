"""Supply chain and overrides on the real engine and registry: attestations, SSH forwarding, OCI annotations, OCI
layouts, --set."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import BASE, Project, make_project, registry_digest, run_image

pytestmark = pytest.mark.integration

ACCEPT = ",".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    )
)
APP = """\
    FROM scratch
    COPY busybox /bin/busybox
    RUN ["/bin/busybox", "--install", "-s", "/bin"]
    ARG VERSION=1
    RUN echo "$VERSION" > /version.txt
    """
KID = """\
    ARG BASE_IMAGE=app
    FROM ${BASE_IMAGE}
    RUN cat /version.txt > /kid.txt
    """


def manifest(project: Project, name: str, version: str) -> dict[str, Any]:
    """What the registry holds for a tag or digest, as JSON (an index or a manifest)."""
    url = f"http://127.0.0.1:5000/v2/{project.namespace}/{name}/manifests/{version}"
    request = urllib.request.Request(url, headers={"Accept": ACCEPT})
    with urllib.request.urlopen(request, timeout=30) as answer:  # loopback registry
        document: dict[str, Any] = json.loads(answer.read())
    return document


def test_attestations_push_an_index_with_an_attestation_manifest_and_children_build_on_it(tmp_path: Path) -> None:
    targets = """\
        app: {context: app, tags: ["app:1"], attest: {provenance: min}}
        kid: {context: kid, from: app, tags: ["kid:1"]}
        """
    project = make_project(tmp_path, targets, {"app": APP, "kid": KID})
    result = project.build()
    assert result.returncode == 0, result.stderr
    index = manifest(project, "app", "1")
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    kinds = [entry.get("annotations", {}).get("vnd.docker.reference.type") for entry in index["manifests"]]
    assert kinds.count("attestation-manifest") == 1
    attestation = next(e for e in index["manifests"] if e.get("annotations"))
    statement = manifest(project, "app", attestation["digest"])
    assert statement["layers"][0]["annotations"]["in-toto.io/predicate-type"].startswith("https://slsa.dev/provenance")
    assert project.targets()["app"]["digest"] == registry_digest(project.ref("app:1"))
    assert run_image(project.ref("kid:1"), "cat", "/kid.txt").strip() == "1"
    kid = manifest(project, "kid", "1")
    assert "layers" in kid and "manifests" not in kid  # no attestation asked: a manifest, no index
    again = project.build()
    assert again.returncode == 0, again.stderr
    assert {t["status"] for t in project.targets().values()} == {"REUSED"}


def test_attestations_are_refused_before_building_on_the_classic_image_store(tmp_path: Path) -> None:
    targets = """\
        app: {context: app, tags: ["app:1"], attest: {provenance: max}, cache: inline}
        """
    project = make_project(tmp_path, targets, {"app": APP})
    result = project.build("--builder", "buildflow-classic")
    assert result.returncode == 2, result.stderr
    assert "targets.app.attest: buildflow-classic (docker driver, classic image store) cannot attach" in result.stderr
    assert registry_digest(project.ref("app:1")) is None


def test_annotations_are_on_the_pushed_manifest(tmp_path: Path) -> None:
    targets = """\
        app:
          context: app
          tags: ["app:1"]
          annotations: {org.opencontainers.image.title: "hello, world", org.example.n: 2}
        """
    project = make_project(tmp_path, targets, {"app": APP})
    result = project.build()
    assert result.returncode == 0, result.stderr
    pushed = manifest(project, "app", "1")
    assert pushed["annotations"]["org.opencontainers.image.title"] == "hello, world"
    assert pushed["annotations"]["org.example.n"] == "2"


@pytest.fixture
def ssh_agent(tmp_path: Path) -> Iterator[str]:
    """An ssh-agent of its own for the test: its socket."""
    if shutil.which("ssh-agent") is None:
        pytest.skip("no ssh-agent here")
    socket = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(socket)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if socket.exists() or agent.poll() is not None:
                break
            time.sleep(0.05)
        assert socket.is_socket(), "ssh-agent did not start"
        yield str(socket)
    finally:
        os.kill(agent.pid, signal.SIGTERM)
        agent.wait(timeout=10)


def test_ssh_forwarding_reaches_a_run_with_an_ssh_mount(tmp_path: Path, ssh_agent: str) -> None:
    dockerfile = BASE + 'RUN --mount=type=ssh test -S "$SSH_AUTH_SOCK" && echo forwarded > /ssh.txt\n'
    targets = """\
        app: {context: app, tags: ["app:1"], ssh: [default]}
        """
    project = make_project(tmp_path, targets, {"app": dockerfile})
    result = project.build(env={"SSH_AUTH_SOCK": ssh_agent})
    assert result.returncode == 0, result.stderr
    assert run_image(project.ref("app:1"), "cat", "/ssh.txt").strip() == "forwarded"


def test_ssh_forwards_a_socket_path_under_an_id(tmp_path: Path, ssh_agent: str) -> None:
    dockerfile = BASE + 'RUN --mount=type=ssh,id=agent test -S "$SSH_AUTH_SOCK" && echo by-id > /ssh.txt\n'
    (tmp_path / "sockets").mkdir()
    (tmp_path / "sockets" / "agent.sock").symlink_to(ssh_agent)
    targets = """\
        app: {context: app, tags: ["app:1"], ssh: [{id: agent, paths: [sockets/agent.sock]}]}
        """
    project = make_project(tmp_path, targets, {"app": dockerfile})
    result = project.build(env={"SSH_AUTH_SOCK": ""})
    assert result.returncode == 0, result.stderr
    assert run_image(project.ref("app:1"), "cat", "/ssh.txt").strip() == "by-id"


def test_ssh_without_it_the_ssh_mount_has_no_agent(tmp_path: Path) -> None:
    dockerfile = BASE + 'RUN --mount=type=ssh,required=false test -S "$SSH_AUTH_SOCK"\n'
    project = make_project(tmp_path, 'app: {context: app, tags: ["app:1"]}\n', {"app": dockerfile})
    result = project.build()
    assert result.returncode == 1
    assert project.targets()["app"]["status"] == "FAILED"
    assert 'test -S "$SSH_AUTH_SOCK"' in result.stderr + result.stdout


def test_output_oci_writes_a_layout_per_image_in_local_mode(tmp_path: Path) -> None:
    targets = """\
        app: {context: app, tags: ["app:1"], output: {type: oci, dest: layouts}}
        kid: {context: kid, from: app, tags: ["kid:1"], output: oci}
        """
    project = make_project(tmp_path, targets, {"app": APP, "kid": KID})
    result = project.build("--no-push")
    assert result.returncode == 0, result.stderr
    for directory in (tmp_path / "layouts" / "app", tmp_path / ".buildflow" / "oci" / "kid"):
        index = json.loads((directory / "index.json").read_text())
        top = index["manifests"][0]["digest"]
        blobs = directory / "blobs" / "sha256"
        image = json.loads((blobs / top.partition(":")[2]).read_text())
        for blob in [image["config"], *image["layers"]]:
            assert (blobs / blob["digest"].partition(":")[2]).stat().st_size == blob["size"]
    assert registry_digest(project.ref("app:1")) is None


def test_set_overrides_a_field_for_one_run(tmp_path: Path) -> None:
    targets = """\
        app: {context: app, tags: ["app:1"]}
        kid: {context: kid, from: app, tags: ["kid:1"]}
        """
    project = make_project(tmp_path, targets, {"app": APP, "kid": KID})
    result = project.build("--set", "app.args.VERSION=2", "--set", "*.platforms=linux/amd64")
    assert result.returncode == 0, result.stderr
    assert run_image(project.ref("kid:1"), "cat", "/kid.txt").strip() == "2"
    bad = project.build("--set", "app.platforms=linux/AMD 64")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith("--set app.platforms=linux/AMD 64: targets.app.platforms[0]")
    unknown = project.build("--set", "app.colour=red")
    assert unknown.returncode == 2
    assert "unknown field 'colour'" in unknown.stderr
