"""Real registries with TLS on loopback for tests: a CA and certificates made with the openssl CLI, the distribution
registry (Debian's docker-registry, as scripts/engine.sh starts it) serving them, and small OCI images to push."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import socket
import ssl
import subprocess
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
STARTUP = 20.0  # seconds a registry may take to answer


@dataclass(frozen=True)
class Certificates:
    """A CA, a server certificate it signed for loopback (::1, 127.0.0.1, localhost), and a client certificate."""

    ca: Path
    server: Path
    server_key: Path
    client: Path
    client_key: Path


def make_certificates(directory: Path) -> Certificates:
    """A throwaway CA with a server and a client certificate (EC keys, valid two days)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = directory / "ca.crt", directory / "ca.key"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
        "-subj", "/CN=buildflow test CA", "-keyout", ca_key, "-out", ca,
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    server = _signed(
        directory / "server", (ca, ca_key), "subjectAltName=IP:::1,IP:127.0.0.1,DNS:localhost", "serverAuth"
    )
    client = _signed(directory / "client", (ca, ca_key), "subjectAltName=DNS:buildflow-test-client", "clientAuth")
    return Certificates(ca, server, server.with_suffix(".key"), client, client.with_suffix(".key"))


def _signed(stem: Path, signer: tuple[Path, Path], names: str, usage: str) -> Path:
    """STEM.crt signed by the CA (its certificate and key); its key beside it as STEM.key."""
    (ca, ca_key), name = signer, stem.name
    certificate, key, request, extensions = (stem.with_suffix(suffix) for suffix in (".crt", ".key", ".csr", ".ext"))
    extensions.write_text(
        f"{names}\nextendedKeyUsage={usage}\nkeyUsage=critical,digitalSignature\nbasicConstraints=CA:FALSE\n"
        "authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n"
    )
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj",
             f"/CN={name}", "-keyout", key, "-out", request)  # fmt: skip
    _openssl("x509", "-req", "-in", request, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-days", "2",
             "-extfile", extensions, "-out", certificate)  # fmt: skip
    return certificate


def _openssl(*arguments: str | Path) -> None:
    subprocess.run(["openssl", *map(str, arguments)], check=True, capture_output=True, timeout=60)


def free_port(address: str) -> int:
    """A port nothing listens on at a loopback address (::1 or 127.0.0.1)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family) as probe:
        probe.bind((address, 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Registry:
    """A running registry: its host as references name it, and its log (requests with their statuses)."""

    host: str
    log: Path

    def requests(self) -> list[str]:
        """The request lines of its access log: '"POST /v2/... HTTP/1.1" 202 ...'."""
        return [line for line in self.log.read_text().splitlines() if ' HTTP/1.1" ' in line]


@contextmanager
def tls_registry(
    directory: Path, address: str, certificates: Certificates, *, client_ca: bool = False
) -> Iterator[Registry]:
    """The distribution registry with TLS on a loopback address, tags deletable; with client_ca, it wants client
    certificates signed by the test CA."""
    port = free_port(address)
    host = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    directory.mkdir(parents=True, exist_ok=True)
    config, log = directory / "registry.yml", directory / "registry.log"
    tls: dict[str, Any] = {"certificate": str(certificates.server), "key": str(certificates.server_key)}
    if client_ca:
        tls["clientcas"] = [str(certificates.ca)]
    settings = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": False}},
        "storage": {"filesystem": {"rootdirectory": str(directory / "storage")}, "delete": {"enabled": True}},
        "http": {"addr": host, "tls": tls},
    }
    config.write_text(json.dumps(settings))  # JSON is YAML
    with log.open("wb") as output:
        process = subprocess.Popen(
            [_registry_binary(), "serve", str(config)],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        _wait(process, address, port, log)
        yield Registry(host, log)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _registry_binary() -> str:
    """Debian's docker-registry (what scripts/engine.sh installs), or upstream's registry."""
    found = shutil.which("docker-registry") or shutil.which("registry")
    if found is None:
        raise RuntimeError("no docker-registry: run scripts/engine.sh install (make test does)")
    return found


def _wait(process: subprocess.Popen[bytes], address: str, port: int, log: Path) -> None:
    """Until the registry completes a TLS handshake; its log when it exits or does not answer in time."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    deadline = time.monotonic() + STARTUP
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the registry exited: {log.read_text()}")
        try:
            with socket.create_connection((address, port), timeout=2) as raw, context.wrap_socket(raw):
                return
        except (OSError, ssl.SSLError):
            time.sleep(0.1)
    raise RuntimeError(f"the registry did not answer within {STARTUP:.0f} s: {log.read_text()}")


def oci_image(path: Path, *layer_files: dict[str, bytes], index: bool = False) -> tuple[str, list[str]]:
    """An image as `docker save` writes it (an OCI layout in a tar): one layer per mapping of file names to
    contents, its top an image manifest or (index=True) an index of it; (top digest, layer digests)."""
    blobs: dict[str, bytes] = {}

    def add(data: bytes, media_type: str) -> dict[str, Any]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    layers = [add(_layer(files), "application/vnd.oci.image.layer.v1.tar+gzip") for files in layer_files]
    diff_ids = ["sha256:" + hashlib.sha256(_tar(files)).hexdigest() for files in layer_files]
    config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    config_descriptor = add(json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json")
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_descriptor, "layers": layers}
    top = add(json.dumps(manifest).encode(), OCI_MANIFEST)
    if index:
        platform = {"architecture": "amd64", "os": "linux"}
        document = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{**top, "platform": platform}]}
        top = add(json.dumps(document).encode(), OCI_INDEX)
    with tarfile.open(path, "w") as archive:
        _member(archive, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        _member(archive, "index.json", json.dumps({"schemaVersion": 2, "manifests": [top]}).encode())
        for digest, data in blobs.items():
            _member(archive, "blobs/sha256/" + digest.removeprefix("sha256:"), data)
    return top["digest"], [layer["digest"] for layer in layers]


def _tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in sorted(files.items()):
            _member(archive, name, data)
    return buffer.getvalue()


def _layer(files: dict[str, bytes]) -> bytes:
    return gzip.compress(_tar(files), mtime=0)


def _member(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))
