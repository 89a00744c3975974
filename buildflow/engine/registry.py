"""A small OCI distribution client: manifest lookups and byte-exact tag copies, with Docker's credentials.

`docker buildx imagetools create` (buildx 0.13) wraps a single-platform manifest in a new index, so the
release tag would not carry the digest that was built; copying the manifest bytes keeps it. Requests go through
a Transport (deadlines, interruption, HTTP for loopback registries and HTTPS for the others).
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import io
import json
import os
import re
import subprocess
import time
import urllib.parse
from collections.abc import Mapping
from email.message import Message
from pathlib import Path
from typing import Any, BinaryIO

from buildflow.engine.base import EngineError, ImageLayers
from buildflow.engine.transport import DEADLINE, Stream, Transport, scheme
from buildflow.references import DEFAULT_DOMAIN, Reference, parse

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)
DOCKER_HUB = DEFAULT_DOMAIN
_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
_IMAGE_MANIFESTS = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
_INDEXES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


class RegistryClient:
    """Manifest HEAD/GET/PUT and blob mounts against the registries of the references it is given."""

    def __init__(self, *, timeout: float = DEADLINE, docker_config: Path | None = None) -> None:
        self.transport = Transport(deadline=timeout)
        self.docker_config = docker_config or Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker"))
        self._tokens: dict[tuple[str, str], str] = {}

    def interrupt(self) -> None:
        """End every request under way at once (from a signal handler); later requests are sent as usual."""
        self.transport.interrupt()

    def digest(self, reference: str) -> str | None:
        """The digest of the manifest a reference names, or None when the registry has none."""
        ref = parse(reference)
        status, headers, _ = self._request("HEAD", ref, f"manifests/{ref.version}", {"Accept": MANIFEST_TYPES})
        if status == 404:
            return None
        return headers.get("Docker-Content-Digest") or self._digest_by_get(ref)

    def copy_tag(self, source: str, target: str) -> str:
        """Make `target` point at exactly the manifest of `source` (same bytes, same digest); return it."""
        src, dst = parse(source), parse(target)
        status, headers, body = self._request("GET", src, f"manifests/{src.version}", {"Accept": MANIFEST_TYPES})
        if status == 404:
            raise EngineError(f"{source} is not in the registry", transient=False)
        media_type = headers.get("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        if (dst.host, dst.remote) != (src.host, src.remote):
            self._mount_blobs(src, dst, json.loads(body))
        self._request("PUT", dst, f"manifests/{dst.version}", {"Content-Type": media_type}, body)
        return "sha256:" + hashlib.sha256(body).hexdigest()

    def delete_tag(self, reference: str) -> bool:
        """Remove a tag, not the manifest it names (OCI distribution 1.1); False when the registry refuses to."""
        ref = parse(reference)
        url = f"{scheme(ref.host)}://{ref.host}/v2/{ref.remote}/manifests/{ref.version}"
        status, headers, _ = self._send("DELETE", url, {}, None, ref)
        if status in (200, 202):
            return True
        if status in (400, 404, 405) or (status == 401 and self._credentials(ref.host) is None):
            return False  # distribution 2.x answers 400 DIGEST_INVALID: it deletes manifests by digest only
        raise self._http_error(status, headers.get("Retry-After", ""), ref, f"DELETE {ref.canonical}")

    def put_artifact(self, reference: str, data: bytes, media_type: str) -> str:
        """Store `data` as an OCI artifact (its config blob, no layers) under a tag; return the manifest digest."""
        ref = parse(reference)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self._upload_blob(ref, digest, data)
        blob = {"mediaType": media_type, "digest": digest, "size": len(data)}
        manifest = {
            "schemaVersion": 2,
            "mediaType": _OCI_MANIFEST,
            "artifactType": media_type,
            "config": blob,
            "layers": [],
        }
        body = json.dumps(manifest, sort_keys=True).encode()
        self._request("PUT", ref, f"manifests/{ref.version}", {"Content-Type": _OCI_MANIFEST}, body)
        return "sha256:" + hashlib.sha256(body).hexdigest()

    def get_artifact(self, reference: str, media_type: str) -> bytes | None:
        """The data of an artifact put_artifact stored, or None when the tag is missing or holds something else."""
        ref = parse(reference)
        status, _, body = self._request("GET", ref, f"manifests/{ref.version}", {"Accept": MANIFEST_TYPES})
        if status == 404:
            return None
        try:
            config = json.loads(body)["config"]
        except (ValueError, KeyError, TypeError):
            return None
        if not isinstance(config, dict) or config.get("mediaType") != media_type:
            return None
        status, _, data = self._request("GET", ref, f"blobs/{config['digest']}", {})
        if status == 404 or "sha256:" + hashlib.sha256(data).hexdigest() != config["digest"]:
            return None
        return data

    def manifest(self, reference: str) -> tuple[dict[str, Any], str]:
        """The parsed manifest (or index) a reference names, and its media type; EngineError when it is missing."""
        ref = parse(reference)
        status, headers, body = self._request("GET", ref, f"manifests/{ref.version}", {"Accept": MANIFEST_TYPES})
        if status == 404:
            raise EngineError(f"{reference} is not in the registry", transient=False)
        if ref.version.startswith("sha256:") and "sha256:" + hashlib.sha256(body).hexdigest() != ref.version:
            raise EngineError(f"{reference}: the registry answered a manifest with another digest", transient=False)
        try:
            manifest = json.loads(body)
        except ValueError:
            manifest = None
        if not isinstance(manifest, dict):
            raise EngineError(f"{reference}: the registry answered a manifest that is no JSON object", transient=False)
        content_type = (headers.get("Content-Type") or "").split(";")[0].strip()
        media_type = manifest.get("mediaType") or content_type or _OCI_MANIFEST
        return manifest, str(media_type)

    def blob(self, reference: str, digest: str, size: int = 0) -> BinaryIO:
        """A stream of one blob of a reference's repository, checked against its digest when read to the end; its
        deadline allows for `size` bytes."""
        ref = parse(reference)
        url = f"{scheme(ref.host)}://{ref.host}/v2/{ref.remote}/blobs/{digest}"
        response = self._open_stream(ref, url, size)
        return io.BufferedReader(_VerifiedStream(response, digest, f"{ref.host}/{ref.remote}@{digest}"))

    def blob_json(self, reference: str, digest: str) -> Any:
        """A small JSON blob (an image config), parsed, after checking its digest."""
        ref = parse(reference)
        status, _, data = self._request("GET", ref, f"blobs/{digest}", {})
        where = f"{ref.host}/{ref.remote}@{digest}"
        if status == 404:
            raise EngineError(f"blob {where} is not in the registry", transient=False)
        if not _digest_matches(digest, data):
            raise EngineError(f"blob {where}: its content does not match its digest", transient=False)
        try:
            return json.loads(data)
        except ValueError:
            raise EngineError(f"blob {where} is not JSON", transient=False) from None

    def image_layers(self, reference: str) -> ImageLayers:
        """The layers and config history of a single-platform image (linux/amd64, or the only image, of an index)."""
        manifest = self._image_manifest(reference)
        config = self.blob_json(reference, manifest["config"]["digest"])
        history = config.get("history") if isinstance(config, dict) else None
        layers = tuple((str(layer["digest"]), int(layer.get("size", 0))) for layer in manifest.get("layers", []))
        return ImageLayers(layers, tuple(history) if isinstance(history, list) else ())

    def layer_digests(self, reference: str) -> tuple[str, ...]:
        """The layer digests of an image, in order, from its manifest alone (cheap: no blob is read)."""
        manifest = self._image_manifest(reference)
        return tuple(str(layer["digest"]) for layer in manifest.get("layers", []))

    def _image_manifest(self, reference: str) -> dict[str, Any]:
        """The single-platform image manifest of a reference: itself, or linux/amd64 (or the only image) of an index."""
        manifest, media_type = self.manifest(reference)
        if media_type in _INDEXES:
            ref = parse(reference)
            digest = _platform_digest(manifest, reference)
            manifest, media_type = self.manifest(f"{ref.host}/{ref.remote}@{digest}")
        if media_type not in _IMAGE_MANIFESTS or not isinstance(manifest.get("config"), dict):
            raise EngineError(f"{reference} is not a single-platform image (media type {media_type})", transient=False)
        return manifest

    def _open_stream(self, ref: Reference, url: str, size: int) -> Stream:
        """A GET whose answer is read as a stream, authenticating once when challenged; errors become EngineErrors."""
        response = self.transport.open(url, self._auth_header(ref), size)
        if response.status == 401:
            challenge = response.headers.get("WWW-Authenticate", "")
            response.close()
            authorization = self._authorize(ref, challenge)
            if authorization:
                response = self.transport.open(url, {"Authorization": authorization}, size)
        if response.status < 400:
            return response
        status, retry_after = response.status, response.headers.get("Retry-After", "")
        response.close()
        where = f"{ref.host}/{ref.remote}/{url.rpartition('/')[2]}"
        if status == 404:
            raise EngineError(f"blob {where} is not in the registry", transient=False)
        raise self._http_error(status, retry_after, ref, f"GET {where}")

    def _auth_header(self, ref: Reference) -> dict[str, str]:
        """The bearer token this client holds for a repository, if any."""
        token = self._tokens.get((ref.host, ref.remote))
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _upload_blob(self, ref: Reference, digest: str, data: bytes) -> None:
        """Upload one blob (monolithic POST then PUT), unless the repository has it already."""
        if self._request("HEAD", ref, f"blobs/{digest}", {})[0] == 200:
            return
        _, headers, _ = self._request("POST", ref, "blobs/uploads/", {"Content-Length": "0"}, b"")
        location = headers.get("Location", "")
        if not location:
            raise EngineError(f"{ref.host} gave no upload location for {ref.remote}", transient=True)
        url = urllib.parse.urljoin(f"{scheme(ref.host)}://{ref.host}/", location)
        url += ("&" if "?" in url else "?") + urllib.parse.urlencode({"digest": digest})
        self._request_url("PUT", ref, url, {"Content-Type": "application/octet-stream"}, data)

    def _digest_by_get(self, ref: Reference) -> str:
        _, _, body = self._request("GET", ref, f"manifests/{ref.version}", {"Accept": MANIFEST_TYPES})
        return "sha256:" + hashlib.sha256(body).hexdigest()

    def _mount_blobs(self, src: Reference, dst: Reference, manifest: Mapping[str, object]) -> None:
        """Mount a manifest's config and layers into another repository of the same registry."""
        if src.host != dst.host:
            raise EngineError(
                f"cannot tag across registries ({src.host} -> {dst.host}) without pulling", transient=False
            )
        blobs = [manifest.get("config"), *manifest.get("layers", [])]  # type: ignore[misc]
        for blob in blobs:
            if isinstance(blob, dict) and "digest" in blob:
                query = urllib.parse.urlencode({"mount": blob["digest"], "from": src.remote})
                self._request("POST", dst, f"blobs/uploads/?{query}", {"Content-Length": "0"}, b"")

    def _request(
        self, method: str, ref: Reference, path: str, headers: Mapping[str, str], body: bytes | None = None
    ) -> tuple[int, Message, bytes]:
        """One registry call, authenticating once when challenged; errors become EngineErrors."""
        url = f"{scheme(ref.host)}://{ref.host}/v2/{ref.remote}/{path}"
        return self._request_url(method, ref, url, headers, body)

    def _request_url(
        self, method: str, ref: Reference, url: str, headers: Mapping[str, str], body: bytes | None = None
    ) -> tuple[int, Message, bytes]:
        """_request for a full URL (an upload location)."""
        status, answer_headers, answer = self._send(method, url, dict(headers), body, ref)
        if status == 401:
            authorization = self._authorize(ref, answer_headers.get("WWW-Authenticate", ""))
            if authorization:
                status, answer_headers, answer = self._send(
                    method, url, {**headers, "Authorization": authorization}, body, ref
                )
        if status >= 400 and status != 404:
            raise self._http_error(status, answer_headers.get("Retry-After", ""), ref, f"{method} {ref.canonical}")
        return status, answer_headers, answer

    def _send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, ref: Reference
    ) -> tuple[int, Message, bytes]:
        """One request with this client's token for the repository, under the transport's deadline."""
        return self.transport.send(method, url, {**self._auth_header(ref), **headers}, body)

    def _authorize(self, ref: Reference, challenge: str) -> str | None:
        """An Authorization header answering a Basic or Bearer challenge with Docker's credentials."""
        credentials = self._credentials(ref.host)
        if challenge.lower().startswith("basic"):
            return _basic(credentials) if credentials else None
        fields = dict(_CHALLENGE.findall(challenge))
        if "realm" not in fields:
            return None
        scope = fields.get("scope") or f"repository:{ref.remote}:pull,push"
        query = urllib.parse.urlencode({"service": fields.get("service", ""), "scope": scope})
        headers = {"Authorization": _basic(credentials)} if credentials else {}
        try:
            status, _, body = self.transport.send("GET", f"{fields['realm']}?{query}", headers)
            answer = json.loads(body) if status == 200 else {}
        except (EngineError, ValueError):
            return None
        token = answer.get("token") or answer.get("access_token")
        if not token:
            return None
        self._tokens[(ref.host, ref.remote)] = token
        return f"Bearer {token}"

    def _http_error(self, status: int, retry_after: str, ref: Reference, request: str) -> EngineError:
        """The error of a failed call: no or refused credentials (401, 403), or its status (5xx, 429: transient)."""
        if status in (401, 403) and self._credentials(ref.host) is None:
            return EngineError(f"not logged in to {ref.host}: run docker login {ref.host}", transient=False)
        if status in (401, 403):
            return EngineError(
                f"{ref.host} refused the credentials of docker login ({status}): run docker login {ref.host} again, "
                "with an account that may push to it",
                transient=False,
            )
        transient = status >= 500 or status == 429
        wait = _retry_after(retry_after) if transient else None
        return EngineError(f"{request}: {status} from {ref.host}", transient=transient, retry_after=wait)

    def _credentials(self, host: str) -> tuple[str, str] | None:
        """(user, secret) for a registry from the Docker config or its credential helper; never logged."""
        try:
            config = json.loads((self.docker_config / "config.json").read_text())
        except (OSError, ValueError):
            return None
        helper = config.get("credHelpers", {}).get(host) or config.get("credsStore")
        if helper:
            return _from_helper(helper, host)
        auth = config.get("auths", {}).get(host, {}).get("auth")
        if auth:
            user, _, secret = base64.b64decode(auth).decode().partition(":")
            return user, secret
        return None


def _platform_digest(index: Mapping[str, Any], reference: str) -> str:
    """The digest of linux/amd64 in an index, or of its only image (attestation manifests left out)."""
    images = [
        entry
        for entry in index.get("manifests", [])
        if isinstance(entry, dict) and entry.get("platform", {}).get("os") != "unknown"
    ]
    for entry in images:
        platform = entry.get("platform", {})
        if platform.get("os") == "linux" and platform.get("architecture") == "amd64":
            return str(entry["digest"])
    if len(images) == 1:
        return str(images[0]["digest"])
    platforms = sorted(f"{e.get('platform', {}).get('os')}/{e.get('platform', {}).get('architecture')}" for e in images)
    available = ", ".join(platforms) or "none"
    raise EngineError(f"{reference} has no linux/amd64 image (it has {available})", transient=False)


def _retry_after(value: str) -> float | None:
    """Seconds from a Retry-After header: a number of seconds or an HTTP date; None when absent or unreadable."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _digest_matches(digest: str, data: bytes) -> bool:
    """Whether data has a digest; True for algorithms hashlib does not know (nothing to check against)."""
    algorithm, _, hexdigest = digest.partition(":")
    try:
        return hashlib.new(algorithm, data).hexdigest() == hexdigest
    except ValueError:
        return True


class _VerifiedStream(io.RawIOBase):
    """A blob download, read as it arrives, that raises EngineError at its end when it does not match its digest."""

    def __init__(self, response: Stream, digest: str, where: str) -> None:
        super().__init__()
        algorithm, _, self._expected = digest.partition(":")
        try:
            self._hash: Any = hashlib.new(algorithm)
        except ValueError:
            self._hash = None
        self._response, self._where, self._checked = response, where, False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        """Read the next bytes into buffer; at the end, check the digest of everything read."""
        try:
            count = self._response.readinto(buffer)
        except EngineError as error:
            raise EngineError(f"blob {self._where}: {error}", transient=error.transient) from None
        if count and self._hash is not None:
            self._hash.update(memoryview(buffer)[:count])
        elif not count and not self._checked:
            self._checked = True
            if self._hash is not None and self._hash.hexdigest() != self._expected:
                raise EngineError(f"blob {self._where}: its content does not match its digest", transient=False)
        return count

    def close(self) -> None:
        if not self.closed:
            self._response.close()
        super().close()


def _basic(credentials: tuple[str, str]) -> str:
    """An HTTP Basic Authorization value."""
    return "Basic " + base64.b64encode(":".join(credentials).encode()).decode()


def _from_helper(helper: str, host: str) -> tuple[str, str] | None:
    """Ask docker-credential-HELPER for a registry's credentials."""
    try:
        result = subprocess.run(
            [f"docker-credential-{helper}", "get"], input=host, capture_output=True, text=True, timeout=30, check=False
        )
        answer = json.loads(result.stdout) if result.returncode == 0 else {}
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None
    return (answer["Username"], answer["Secret"]) if answer.get("Secret") else None
