"""Registries as Docker reaches them, without Docker: the daemon's insecure registries and Docker Hub's credential key
read from a `docker info` answer, certs.d files, HTTPS first to an insecure registry, Docker Hub left to buildx,
and copies that go on when a registry answers a blob mount with 202."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import re
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from buildflow.engine.auth import Credentials
from buildflow.engine.base import EngineError
from buildflow.engine.builders import BuilderInfo
from buildflow.engine.buildx import BuildxEngine
from buildflow.engine.docker import Docker
from buildflow.engine.registry import RegistryClient
from buildflow.engine.transport import Transport
from buildflow.engine.trust import DaemonRegistries, Trust, daemon_registries, from_daemon
from tests.conftest import QuietHandler, serving

HUB_KEY = "the-key-the-daemon-names"  # what `docker info` calls IndexServerAddress, made up here
DOCKER_INFO = {
    "RegistryConfig": {
        "IndexConfigs": {
            "docker.io": {"Name": "docker.io", "Official": True, "Secure": True, "Mirrors": []},
            "registry.internal:5000": {"Name": "registry.internal:5000", "Secure": False, "Mirrors": []},
        },
        "InsecureRegistryCIDRs": ["127.0.0.0/8", "192.0.2.0/24", "2001:db8::/32", "not a network"],
        "Mirrors": None,
    },
    "IndexServerAddress": HUB_KEY,
}


def test_the_daemons_insecure_registries_are_read_from_docker_info() -> None:
    daemon = daemon_registries(DOCKER_INFO)
    assert daemon.hub_key == HUB_KEY
    assert daemon.insecure("registry.internal:5000")  # named in insecure-registries
    assert not daemon.insecure("registry.internal:5001")  # another port is another registry
    assert daemon.insecure("192.0.2.7:5000") and daemon.insecure("[2001:db8::1]:443")  # in an insecure network
    assert daemon.insecure("127.0.0.1:5000")
    assert not daemon.insecure("198.51.100.1:5000") and not daemon.insecure("[::1]:5000")
    assert not daemon.insecure("docker.io")  # named secure: never looked up


@pytest.mark.parametrize("info", [{}, {"RegistryConfig": None}, {"RegistryConfig": {"IndexConfigs": []}}, []])
def test_an_answer_without_registry_settings_means_dockers_defaults(info: Any) -> None:
    daemon = daemon_registries(info) if isinstance(info, dict) else DaemonRegistries()
    assert daemon == DaemonRegistries()
    assert daemon.insecure("localhost:5000") and daemon.insecure("127.0.0.1:5000")  # 127.0.0.0/8, always
    assert not daemon.insecure("[::1]:5000") and daemon.hub_key == ""


def test_the_daemon_is_asked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[list[str]] = []

    def output(self: Docker, arguments: list[str], *, missing_ok: bool = False) -> str:
        asked.append([self.context, *arguments])
        return json.dumps(DOCKER_INFO)

    monkeypatch.setattr(Docker, "output", output)
    from_daemon.cache_clear()
    try:
        assert from_daemon("ctx") == from_daemon("ctx") == daemon_registries(DOCKER_INFO)
    finally:
        from_daemon.cache_clear()
    assert len(asked) == 1 and asked[0][:3] == ["ctx", "info", "--format"]


def test_without_a_daemon_dockers_defaults_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    def output(self: Docker, arguments: list[str], *, missing_ok: bool = False) -> str:
        raise EngineError("Cannot connect to the Docker daemon", transient=True)

    monkeypatch.setattr(Docker, "output", output)
    from_daemon.cache_clear()
    try:
        assert from_daemon() == DaemonRegistries()
    finally:
        from_daemon.cache_clear()


def test_loopback_registries_never_ask_the_daemon() -> None:
    def never() -> DaemonRegistries:
        raise AssertionError("the daemon was asked")

    trust = Trust(never)
    assert trust.insecure("localhost:5000") and trust.insecure("127.0.0.1:5000") and trust.insecure("127.1.2.3")


def credentials(tmp_path: Path, daemon: DaemonRegistries, config: dict[str, Any]) -> Credentials:
    (tmp_path / "config.json").write_text(json.dumps(config))
    return Credentials(Transport(trust=Trust(lambda: daemon)), tmp_path)


def auth(user: str, secret: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{secret}".encode()).decode()}


def test_docker_hubs_credentials_are_under_the_key_the_daemon_names(tmp_path: Path) -> None:
    config = {"auths": {HUB_KEY: auth("hubuser", "s1"), "registry.internal:5000": auth("me", "s2")}}
    found = credentials(tmp_path, daemon_registries(DOCKER_INFO), config)
    assert found.key("docker.io") == HUB_KEY
    assert found.of("docker.io") == ("hubuser", "s1")
    assert found.of("registry.internal:5000") == ("me", "s2")
    assert found.of("registry.internal:5001") is None
    unknown = credentials(tmp_path, DaemonRegistries(), config)  # no daemon answered: the key is not known
    assert unknown.key("docker.io") == "" and unknown.of("docker.io") is None
    assert unknown.of("registry.internal:5000") == ("me", "s2")


def test_a_credential_helper_is_asked_with_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[str, str]] = []

    def helper(name: str, key: str) -> tuple[str, str]:
        asked.append((name, key))
        return ("u", "s")

    monkeypatch.setattr("buildflow.engine.auth._from_helper", helper)
    found = credentials(tmp_path, daemon_registries(DOCKER_INFO), {"credHelpers": {HUB_KEY: "hub"}})
    assert found.of("docker.io") == ("u", "s") and asked == [("hub", HUB_KEY)]


@pytest.mark.parametrize(
    "reference",
    ["ubuntu:22.04", "docker.io/library/ubuntu:22.04", "team/app:1", "docker.io/team/app@sha256:" + "a" * 64],
)
def test_docker_hub_is_left_to_buildx_with_one_clear_error(reference: str) -> None:
    client = RegistryClient(trust=Trust(DaemonRegistries))
    for call in (
        lambda: client.digest(reference),
        lambda: client.copy_tag(reference, "localhost:5000/x/y:1"),
        lambda: client.get_artifact(reference, "application/json"),
        lambda: client.delete_tag(reference),
        lambda: client.blob(reference, "sha256:" + "0" * 64),
    ):
        with pytest.raises(EngineError, match="does not talk to Docker Hub") as caught:
            call()
        assert not caught.value.transient and "docker buildx imagetools create" in str(caught.value)


def hub_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, logged_in: bool) -> BuildxEngine:
    engine = BuildxEngine(info=BuilderInfo(name=""))
    engine.registry.transport.trust = Trust(lambda: daemon_registries(DOCKER_INFO))
    config = {"auths": {HUB_KEY: auth("hubuser", "s")}} if logged_in else {}
    (tmp_path / "config.json").write_text(json.dumps(config))
    engine.registry.credentials.docker_config = tmp_path

    def output(arguments: list[str], *, missing_ok: bool = False) -> str:
        raise EngineError("failed to authorize: failed to fetch oauth token: 401 Unauthorized", transient=False)

    monkeypatch.setattr(engine.docker, "output", output)
    return engine


def test_a_docker_hub_lookup_refused_says_whether_docker_login_has_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(EngineError, match=r"it is private and needs docker login docker\.io") as anonymous:
        hub_engine(monkeypatch, tmp_path, logged_in=False).manifest_digest("team/private:1")
    assert "401 Unauthorized" in str(anonymous.value) and not anonymous.value.transient
    with pytest.raises(EngineError, match=r"refused the credentials of docker login"):
        hub_engine(monkeypatch, tmp_path, logged_in=True).manifest_digest("team/private:1")


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        ({"client.cert": "x"}, "client.cert: a client certificate without its key client.key"),
        ({"client.key": "x"}, "client.key: a key without its client certificate client.cert"),
        ({"ca.crt": "not PEM"}, "ca.crt: not a usable PEM certificate or key"),
    ],
)
def test_certs_d_files_docker_would_refuse_are_named(tmp_path: Path, files: dict[str, str], problem: str) -> None:
    host = "registry.internal:5000"
    (tmp_path / host).mkdir()
    for name, text in files.items():
        (tmp_path / host / name).write_text(text)
    trust = Trust(lambda: daemon_registries(DOCKER_INFO), certs_dir=tmp_path)
    with pytest.raises(EngineError, match=problem) as caught:
        trust.context(host)
    assert str(caught.value).startswith(str(tmp_path / host)) and not caught.value.transient


def test_certs_dir_defaults_to_dockers_and_can_be_moved(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("BUILDFLOW_DOCKER_CERTS_DIR", raising=False)
    assert Trust().certs_dir == Path("/etc/docker/certs.d")
    monkeypatch.setenv("BUILDFLOW_DOCKER_CERTS_DIR", str(tmp_path))
    assert Trust().certs_dir == tmp_path


class FakeRegistry(http.server.ThreadingHTTPServer):
    """A plain HTTP registry in memory that answers every blob mount with 202 (as registries do when the token
    does not allow reading the other repository): manifests, blobs and upload sessions per repository."""

    def __init__(self, address: str = "127.0.0.1") -> None:
        self.address_family = socket.AF_INET6 if ":" in address else socket.AF_INET
        super().__init__((address, 0), _Handler)
        self.manifests: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.blobs: dict[tuple[str, str], bytes] = {}
        self.log: list[str] = []

    @property
    def host(self) -> str:
        address, port = self.server_address[:2]
        return f"[{address!s}]:{port}" if self.address_family == socket.AF_INET6 else f"{address!s}:{port}"

    def put_blob(self, repository: str, data: bytes) -> dict[str, Any]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self.blobs[(repository, digest)] = data
        return {"mediaType": "application/octet-stream", "digest": digest, "size": len(data)}

    def put_manifest(self, repository: str, tag: str, document: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(document).encode()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        for name in (tag, digest):
            self.manifests[(repository, name)] = (data, document["mediaType"])
        return {"mediaType": document["mediaType"], "digest": digest, "size": len(data)}


class _Handler(QuietHandler):
    server: FakeRegistry

    def _parts(self) -> tuple[str, str, str, dict[str, list[str]]]:
        import urllib.parse

        url = urllib.parse.urlsplit(self.path)
        path = url.path.removeprefix("/v2/")
        for kind in ("/manifests/", "/blobs/uploads/", "/blobs/"):
            if kind in path:
                repository, _, name = path.partition(kind)
                return repository, kind.strip("/"), name, urllib.parse.parse_qs(url.query)
        return "", "", "", {}

    def do_GET(self) -> None:
        repository, kind, name, _ = self._parts()
        self.server.log.append(f"{self.command} {self.path}")
        if kind == "manifests" and (repository, name) in self.server.manifests:
            data, media_type = self.server.manifests[(repository, name)]
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            return self._answer(200, data, {"Content-Type": media_type, "Docker-Content-Digest": digest})
        if kind == "blobs" and (repository, name) in self.server.blobs:
            return self._answer(200, self.server.blobs[(repository, name)])
        return self._answer(404)

    do_HEAD = do_GET

    def do_POST(self) -> None:
        repository, kind, _, _ = self._parts()
        self.server.log.append(f"{self.command} {self.path}")
        assert kind == "blobs/uploads"
        status = 202  # a mount too: refused, an upload session started instead
        self._answer(status, headers={"Location": f"/v2/{repository}/blobs/uploads/{uuid.uuid4().hex}"})

    def do_PUT(self) -> None:
        repository, kind, _, query = self._parts()
        self.server.log.append(f"{self.command} {self.path}")
        data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if kind == "blobs/uploads":
            digest = query["digest"][0]
            if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
                return self._answer(400)
            self.server.blobs[(repository, digest)] = data
            return self._answer(201)
        document = json.loads(data)
        wanted = [document.get("config"), *document.get("layers", [])]
        if any(blob and (repository, blob["digest"]) not in self.server.blobs for blob in wanted):
            return self._answer(400)  # MANIFEST_BLOB_UNKNOWN
        if any((repository, child["digest"]) not in self.server.manifests for child in document.get("manifests", [])):
            return self._answer(400)  # a child manifest unknown
        self.server.put_manifest(repository, self._parts()[2], document)
        return self._answer(201)


@pytest.fixture(params=["127.0.0.1"])
def fake(request: pytest.FixtureRequest) -> Iterator[FakeRegistry]:
    with serving(FakeRegistry(request.param)) as server:
        yield server


def test_a_copy_goes_on_when_the_registry_answers_a_mount_with_202(fake: FakeRegistry) -> None:
    config, layer = fake.put_blob("src", b"{}"), fake.put_blob("src", b"layer bytes")
    image = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": config}
    child = fake.put_manifest("src", "child", {**image, "layers": [layer]})
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [child]}
    top = fake.put_manifest("src", "1", index)
    client = RegistryClient(timeout=10, attempts=1)
    assert client.copy_tag(f"{fake.host}/src:1", f"{fake.host}/dst:1") == top["digest"]
    assert fake.manifests[("dst", "1")] == fake.manifests[("src", "1")]  # the same bytes
    assert fake.blobs[("dst", layer["digest"])] == b"layer bytes"
    mounts = [line for line in fake.log if line.startswith("POST") and "mount=" in line]
    assert len(mounts) == 2 and all("from=src" in line for line in mounts)
    uploads = [line for line in fake.log if line.startswith("PUT /v2/dst/blobs/uploads/")]
    assert len(uploads) == 2  # each into the session its refused mount started: no second POST
    assert not [line for line in fake.log if line.startswith("POST") and "mount=" not in line]


def test_an_insecure_registry_is_tried_over_https_then_remembered_as_plain_http(fake: FakeRegistry) -> None:
    transport = Transport(trust=Trust(DaemonRegistries))
    assert transport.base(fake.host) == f"https://{fake.host}"
    status, _, _ = transport.send("GET", f"https://{fake.host}/v2/x/manifests/none", {})
    assert status == 404 and transport.base(fake.host) == f"http://{fake.host}"
    status, _, _ = transport.send("GET", f"https://{fake.host}/v2/x/manifests/none", {})  # no TLS try any more
    assert status == 404 and len(fake.log) == 2


@pytest.mark.parametrize("fake", ["::1"], indirect=True)
def test_a_secure_registry_that_speaks_plain_http_says_what_to_set(fake: FakeRegistry) -> None:
    secure = Transport(trust=Trust(DaemonRegistries))  # [::1] is not insecure by Docker's defaults
    with pytest.raises(EngineError, match=re.escape(f"{fake.host}: the registry does not answer TLS")) as caught:
        secure.send("GET", f"https://{fake.host}/v2/", {})
    assert f"add {fake.host} to insecure-registries" in str(caught.value) and not caught.value.transient
