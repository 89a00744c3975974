"""Registries as they are outside a laptop: TLS with a CA of one's own (Docker's certs.d), client certificates, the
daemon's insecure registries, blob mounts a registry refuses with 202, copies across registries.

Each test starts the distribution registry with TLS on loopback, with a CA and certificates made here. Only
buildflow's own registry client talks to it (digests, pushes of saved images, tag copies, mounts), and a build
whose push goes through it: the engine and BuildKit never need to trust the test CA.
"""

from __future__ import annotations

import shutil
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from buildflow.engine.base import EngineError
from buildflow.engine.layout import SavedImage, read_saved
from buildflow.engine.registry import RegistryClient
from buildflow.engine.trust import CERTS_DIR_VARIABLE, DaemonRegistries, Trust
from buildflow.references import parse
from tests.integration.conftest import BASE, REGISTRY, make_project, registry_digest
from tests.tls import Certificates, Registry, make_certificates, oci_image, tls_registry

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory, certificates: Certificates) -> Iterator[Registry]:
    """A TLS registry on [::1]: not insecure for Docker (only 127.0.0.0/8 is, by default)."""
    with tls_registry(tmp_path_factory.mktemp("secure"), "::1", certificates) as registry:
        yield registry


def certs_dir(root: Path, host: str, *files: tuple[Path, str]) -> Path:
    """A directory laid out like /etc/docker/certs.d, with files (source, name) for one host."""
    (root / host).mkdir(parents=True, exist_ok=True)
    for source, name in files:
        shutil.copy(source, root / host / name)
    return root


def saved(path: Path) -> SavedImage:
    """The image of an OCI layout tar."""
    image = read_saved(str(path))
    assert image is not None
    return image


def client(certs: Path, daemon: DaemonRegistries | None = None) -> RegistryClient:
    """A registry client reading certificates from `certs`; Docker's defaults for the daemon unless given."""
    return RegistryClient(timeout=10, attempts=2, trust=Trust(lambda: daemon or DaemonRegistries(), certs_dir=certs))


def test_without_its_ca_a_tls_registry_is_refused_with_the_host_and_what_to_set(
    secure: Registry, tmp_path: Path
) -> None:
    with pytest.raises(EngineError) as caught:
        client(tmp_path).digest(f"{secure.host}/x/y:1")
    message = str(caught.value)
    assert message.startswith(f"{secure.host}: its TLS certificate is not trusted (")
    assert f"{tmp_path}/{secure.host}/ca.crt" in message and f"add {secure.host} to insecure-registries" in message
    assert not caught.value.transient  # not tried again: only a setting mends it
    assert not any("/v2/x/y/" in line for line in secure.requests())  # nothing was sent


def test_with_its_ca_in_certs_d_lookups_pushes_copies_and_mounts_work(
    secure: Registry, certificates: Certificates, tmp_path: Path
) -> None:
    registry = client(certs_dir(tmp_path / "certs.d", secure.host, (certificates.ca, "ca.crt")))
    host = secure.host
    assert registry.digest(f"{host}/none/such:1") is None
    top, _ = oci_image(tmp_path / "one.tar", {"base.txt": b"base"})
    assert registry.push_saved(saved(tmp_path / "one.tar"), f"{host}/one/image:1") == top
    assert registry.digest(f"{host}/one/image:1") == top
    assert registry.copy_tag(f"{host}/one/image:1", f"{host}/one/image:2") == top  # same repository
    assert registry.copy_tag(f"{host}/one/image:1", f"{host}/other/image:1") == top  # blobs mounted
    mounts = [line for line in secure.requests() if "/v2/other/image/blobs/uploads/?mount=" in line]
    assert len(mounts) == 2 and all('" 201 ' in line for line in mounts)  # config and layer
    assert registry.get_artifact(f"{host}/one/image:1", "application/json") is None
    assert registry.put_artifact(f"{host}/one/record:1", b"{}", "application/json")
    assert registry.get_artifact(f"{host}/one/record:1", "application/json") == b"{}"


def test_a_mount_the_registry_answers_with_202_becomes_an_upload(
    secure: Registry, certificates: Certificates, tmp_path: Path
) -> None:
    """The client mounts a blob from the repository it last put it in; when that repository lacks it now, the
    registry starts an upload instead (202), and the blob is uploaded into it."""
    registry = client(certs_dir(tmp_path / "certs.d", secure.host, (certificates.ca, "ca.crt")))
    host, name = secure.host, f"mount-{uuid.uuid4().hex[:8]}"
    _, (base,) = oci_image(tmp_path / "base.tar", {"base.txt": b"base " + name.encode()})
    registry.push_saved(saved(tmp_path / "base.tar"), f"{host}/{name}/base:1")
    unlinked = registry._request("DELETE", parse(f"{host}/{name}/base:1"), f"blobs/{base}", {})
    assert unlinked[0] == 202  # the base repository no longer holds its layer
    top, _ = oci_image(tmp_path / "child.tar", {"base.txt": b"base " + name.encode()}, {"own": b"own"}, index=True)
    pushed = registry.push_saved(saved(tmp_path / "child.tar"), f"{host}/{name}/child:1")
    assert pushed == top == registry.digest(f"{host}/{name}/child:1")
    quoted = urllib.parse.quote(base)
    mount = [line for line in secure.requests() if f"/{name}/child/blobs/uploads/?mount={quoted}" in line]
    assert len(mount) == 1 and '" 202 ' in mount[0], mount
    copied = registry.copy_tag(f"{host}/{name}/child:1", f"{host}/{name}/copy:1")  # an index: its image comes too
    assert copied == top == registry.digest(f"{host}/{name}/copy:1")


def test_a_copy_to_another_registry_streams_the_blobs(
    secure: Registry, certificates: Certificates, tmp_path: Path
) -> None:
    registry = client(certs_dir(tmp_path / "certs.d", secure.host, (certificates.ca, "ca.crt")))
    top, _ = oci_image(tmp_path / "image.tar", {"file": uuid.uuid4().bytes}, index=True)
    registry.push_saved(saved(tmp_path / "image.tar"), f"{secure.host}/across/image:1")
    target = f"{REGISTRY}/it-{uuid.uuid4().hex[:10]}/image:1"
    assert registry.copy_tag(f"{secure.host}/across/image:1", target) == top
    assert registry_digest(target) == top


def test_a_registry_on_ipv4_loopback_is_insecure_as_the_daemon_says(tmp_path: Path, certificates: Certificates) -> None:
    """127.0.0.0/8 is insecure on every Docker daemon: reached over HTTPS without verifying its certificate, as
    Docker does (the daemon itself is asked here), while the plain HTTP registry on it still answers."""
    with tls_registry(tmp_path / "registry", "127.0.0.1", certificates) as registry:
        plain = RegistryClient(timeout=10, trust=Trust(certs_dir=tmp_path / "empty"))
        assert plain.put_artifact(f"{registry.host}/x/record:1", b"{}", "application/json")
        assert plain.get_artifact(f"{registry.host}/x/record:1", "application/json") == b"{}"
        assert plain.transport.base(registry.host) == f"https://{registry.host}"
        assert plain.digest(f"{REGISTRY}/none/such:1") is None
        assert plain.transport.base(REGISTRY) == f"http://{REGISTRY}"  # HTTPS got no TLS answer: remembered


def test_a_registry_named_insecure_by_the_daemon_is_not_verified(secure: Registry, tmp_path: Path) -> None:
    insecure = client(tmp_path, DaemonRegistries(insecure_names=frozenset({secure.host})))
    assert insecure.digest(f"{secure.host}/none/such:1") is None


def test_client_certificates_come_from_certs_d(tmp_path: Path, certificates: Certificates) -> None:
    with tls_registry(tmp_path / "registry", "::1", certificates, client_ca=True) as registry:
        reference = f"{registry.host}/none/such:1"
        ca_only = certs_dir(tmp_path / "ca-only", registry.host, (certificates.ca, "ca.crt"))
        with pytest.raises(EngineError, match="wants a client certificate") as caught:
            client(ca_only).digest(reference)
        assert f"put it and its key in {ca_only}/{registry.host}/ as client.cert and client.key" in str(caught.value)
        assert not caught.value.transient
        pair = (
            (certificates.ca, "ca.crt"),
            (certificates.client, "client.cert"),
            (certificates.client_key, "client.key"),
        )
        assert client(certs_dir(tmp_path / "pair", registry.host, *pair)).digest(reference) is None
        half = certs_dir(tmp_path / "half", registry.host, (certificates.ca, "ca.crt"), pair[1])
        with pytest.raises(EngineError, match=r"client\.cert: a client certificate without its key client\.key"):
            client(half).digest(reference)


def test_a_build_pushes_to_a_tls_registry_with_the_ca_from_the_certs_directory(
    secure: Registry, certificates: Certificates, tmp_path: Path
) -> None:
    """The whole run (lookups, push of the saved image, records, release tag) through buildflow's client, which
    finds the CA through BUILDFLOW_DOCKER_CERTS_DIR; without it, one line says what to set."""
    targets = 'base: {context: base, tags: ["base:1"], cache: none}\n'
    refused = make_project(tmp_path / "refused", targets, {"base": BASE}, registry=secure.host, attempts=1)
    result = refused.build(env={CERTS_DIR_VARIABLE: str(tmp_path / "empty")})
    assert result.returncode == 1, result.stderr
    (error,) = [target["error"] for target in refused.report()["targets"]]
    assert f"{secure.host}: its TLS certificate is not trusted" in error and "insecure-registries" in error
    certs = certs_dir(tmp_path / "certs.d", secure.host, (certificates.ca, "ca.crt"))
    project = make_project(tmp_path / "trusted", targets, {"base": BASE}, registry=secure.host)
    result = project.build(env={CERTS_DIR_VARIABLE: str(certs)})
    assert result.returncode == 0, result.stderr
    (target,) = project.report()["targets"]
    assert target["status"] == "BUILT"
    assert client(certs).digest(f"{secure.host}/{project.namespace}/base:1") == target["digest"]
