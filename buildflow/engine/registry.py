"""A small OCI distribution client: lookups, byte-exact tag copies, records, image uploads, Docker's credentials.

`docker buildx imagetools create` (buildx 0.13) wraps a single-platform manifest in a new index, so the
release tag would not carry the digest that was built; copying the manifest bytes keeps it. A copy to another
repository brings the blobs along: mounted where the registry can (same registry), else uploaded, streamed from
the source (a mount the registry answers with 202, another registry). Requests go through a Transport (deadlines,
interruption, Docker's TLS trust and insecure registries), and each one that fails in a way that can pass (a
reset, a 5xx, a 429, no answer in time) is tried again on its own, a few times and quickly, before its caller's
retries start over. Docker Hub is not spoken to (requests.py says why).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import io
import json
import urllib.parse
from collections.abc import Callable, Mapping
from typing import IO, Any, BinaryIO

from buildflow.engine.base import EngineError, ImageLayers
from buildflow.engine.blobs import VerifiedStream, digest_matches, platform_digest
from buildflow.engine.layout import INDEXES, Manifest, SavedImage
from buildflow.engine.requests import Requests
from buildflow.references import Reference, parse

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)
_CONCURRENT_UPLOADS = 3  # uploads of a saved image when another upload of the same blobs gets in the way
_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
_TAG_DELETE_ANSWERED = frozenset({400, 401, 404, 405})  # a tag delete refused (or anonymous): answered, not raised
INLINE_ARTIFACT_BYTES = 64 * 1024  # artifacts (build records) up to this size are embedded in their manifest too
_IMAGE_MANIFESTS = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)


class RegistryClient(Requests):
    """Manifest HEAD/GET/PUT, blob uploads and mounts against the registries of the references it is given."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._holders: dict[tuple[str, str], str] = {}  # (host, blob digest) -> a repository this client put it in

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
        media_type = headers.get("Content-Type", _OCI_MANIFEST)
        if (dst.host, dst.remote) != (src.host, src.remote):
            self._copy_contents(src, dst, _json_object(body, source))
        self._request("PUT", dst, f"manifests/{dst.version}", {"Content-Type": media_type}, body)
        return "sha256:" + hashlib.sha256(body).hexdigest()

    def delete_tag(self, reference: str) -> bool:
        """Remove a tag, not the manifest it names (OCI distribution 1.1), answering the registry's challenge (a
        token with the delete scope) and trying again what can pass, like any call; False when it refuses to.
        A 404 is checked: the tag may be gone (a try whose answer was lost deleted it) or the registry may not
        know the call."""
        ref = parse(reference)
        url = f"{self._base(ref)}/v2/{ref.remote}/manifests/{ref.version}"
        status, headers, _ = self._request_url("DELETE", ref, url, {}, None, answered=_TAG_DELETE_ANSWERED)
        if status in (200, 202):
            return True
        if status == 404:
            return self.digest(reference) is None
        if status in (400, 405) or (status == 401 and self.credentials.of(ref.host) is None):
            return False  # distribution 2.x answers 400 DIGEST_INVALID: it deletes manifests by digest only
        raise self._http_error(status, headers.get("Retry-After", ""), ref, f"DELETE {ref.canonical}")

    def put_artifact(self, reference: str, data: bytes, media_type: str) -> str:
        """Store `data` as an OCI artifact (its config blob, no layers) under a tag; return the manifest digest."""
        ref = parse(reference)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self._upload_blob(ref, digest, len(data), lambda: io.BytesIO(data))
        blob: dict[str, Any] = {"mediaType": media_type, "digest": digest, "size": len(data)}
        if len(data) <= INLINE_ARTIFACT_BYTES:  # OCI descriptors' `data`: reading it back takes one request
            blob["data"] = base64.b64encode(data).decode()
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
        inline = _inline_data(config)
        if inline is not None:
            return inline
        status, _, data = self._request("GET", ref, f"blobs/{config['digest']}", {})
        if status == 404 or "sha256:" + hashlib.sha256(data).hexdigest() != config["digest"]:
            return None
        return data

    def push_saved(self, image: SavedImage, reference: str) -> str:
        """Upload an image saved from the local store (its blobs, then its manifests) under a tag; its digest.

        Another run pushing the same image at the same moment can make the registry refuse a blob or a manifest
        (400: its upload of the same blob was committed in between): the upload is then checked and done again.
        """
        ref = parse(reference)
        for attempt in range(1, _CONCURRENT_UPLOADS + 1):
            try:
                return self._push_saved_once(image, ref)
            except EngineError as error:
                if error.status != 400 or attempt == _CONCURRENT_UPLOADS:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _push_saved_once(self, image: SavedImage, ref: Reference) -> str:
        """One upload of a saved image: every blob the repository lacks, the manifests below the top, the top."""
        for digest, size in image.blobs.items():
            opened = functools.partial(image.open, digest)
            self._upload_blob(ref, digest, size, opened, self._holder(ref, digest))
        for manifest in image.below:
            self._put_manifest(ref, manifest.digest, manifest)
        self._put_manifest(ref, ref.version, image.top)
        return image.top.digest

    def manifest(self, reference: str) -> tuple[dict[str, Any], str]:
        """The parsed manifest (or index) a reference names, and its media type; EngineError when it is missing."""
        body, content_type = self._manifest_bytes(parse(reference))
        manifest = _json_object(body, reference)
        media_type = manifest.get("mediaType") or content_type or _OCI_MANIFEST
        return manifest, str(media_type)

    def _manifest_bytes(self, ref: Reference) -> tuple[bytes, str]:
        """The bytes of the manifest a reference names (checked against its digest, when it names one) and the
        media type the registry gives them."""
        status, headers, body = self._request("GET", ref, f"manifests/{ref.version}", {"Accept": MANIFEST_TYPES})
        if status == 404:
            raise EngineError(f"{ref} is not in the registry", transient=False)
        if ref.version.startswith("sha256:") and "sha256:" + hashlib.sha256(body).hexdigest() != ref.version:
            raise EngineError(f"{ref}: the registry answered a manifest with another digest", transient=False)
        return body, (headers.get("Content-Type") or "").split(";")[0].strip()

    def blob(self, reference: str, digest: str, size: int = 0) -> BinaryIO:
        """A stream of one blob of a reference's repository, checked against its digest when read to the end; its
        deadline allows for `size` bytes."""
        return self._blob(parse(reference), digest, size)

    def _blob(self, ref: Reference, digest: str, size: int) -> BinaryIO:
        """blob() of a parsed reference."""
        url = f"{self._base(ref)}/v2/{ref.remote}/blobs/{digest}"
        response = self._open_stream(ref, url, size)
        return io.BufferedReader(VerifiedStream(response, digest, f"{ref.host}/{ref.remote}@{digest}"))

    def blob_json(self, reference: str, digest: str) -> Any:
        """A small JSON blob (an image config), parsed, after checking its digest."""
        ref = parse(reference)
        status, _, data = self._request("GET", ref, f"blobs/{digest}", {})
        where = f"{ref.host}/{ref.remote}@{digest}"
        if status == 404:
            raise EngineError(f"blob {where} is not in the registry", transient=False)
        if not digest_matches(digest, data):
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
        if media_type in INDEXES:
            ref = parse(reference)
            digest = platform_digest(manifest, reference)
            manifest, media_type = self.manifest(f"{ref.host}/{ref.remote}@{digest}")
        if media_type not in _IMAGE_MANIFESTS or not isinstance(manifest.get("config"), dict):
            raise EngineError(f"{reference} is not a single-platform image (media type {media_type})", transient=False)
        return manifest

    def _put_manifest(self, ref: Reference, name: str, manifest: Manifest) -> None:
        """Store a manifest under a tag or its digest."""
        self._request("PUT", ref, f"manifests/{name}", {"Content-Type": manifest.media_type}, manifest.data)

    def _upload_blob(
        self, ref: Reference, digest: str, size: int, body: Callable[[], IO[bytes]], mount_from: str = ""
    ) -> None:
        """Put one blob into a repository unless it has it: mounted from `mount_from` (another repository of the same
        registry) where the registry can, else uploaded. Each request is tried again on its own; a failed PUT starts
        a new upload, since an upload session does not outlive a failure."""
        self._tried(lambda: self._upload_once(ref, digest, size, body, mount_from))
        self._holders[(ref.host, digest)] = ref.remote

    def _upload_once(
        self, ref: Reference, digest: str, size: int, body: Callable[[], IO[bytes]], mount_from: str
    ) -> None:
        """One upload: nothing when the blob is there (perhaps from a PUT whose answer was lost); else a mount
        (201: done) or a POST, then a PUT into the upload session either started. A registry answers a mount it
        cannot make (the other repository lacks the blob, or may not be read) with 202 and a session: the blob is
        then uploaded into it."""
        if self._request("HEAD", ref, f"blobs/{digest}", {})[0] == 200:
            return
        query = "?" + urllib.parse.urlencode({"mount": digest, "from": mount_from}) if mount_from else ""
        status, headers, _ = self._request("POST", ref, f"blobs/uploads/{query}", {"Content-Length": "0"}, b"")
        if status == 201 and mount_from:
            return
        location = headers.get("Location", "")
        if not location and mount_from:
            self._upload_once(ref, digest, size, body, "")  # no mounts here: a plain upload
            return
        if not location:
            raise EngineError(f"{ref.host} gave no upload location for {ref.remote}", transient=True)
        url = urllib.parse.urljoin(f"{self._base(ref)}/", location)
        url += ("&" if "?" in url else "?") + urllib.parse.urlencode({"digest": digest})
        headers_out = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        try:
            self._request_url("PUT", ref, url, headers_out, body, attempts=1)
        except EngineError:
            if self._request("HEAD", ref, f"blobs/{digest}", {})[0] != 200:
                raise  # else another upload of the same blob (another run's) finished first: a 400 for this one

    def _holder(self, ref: Reference, digest: str) -> str:
        """Another repository of the reference's registry this client put a blob in (to mount it from), or ''."""
        holder = self._holders.get((ref.host, digest), "")
        return "" if holder == ref.remote else holder

    def _digest_by_get(self, ref: Reference) -> str:
        _, _, body = self._request("GET", ref, f"manifests/{ref.version}", {"Accept": MANIFEST_TYPES})
        return "sha256:" + hashlib.sha256(body).hexdigest()

    def _copy_contents(self, src: Reference, dst: Reference, manifest: Mapping[str, Any]) -> None:
        """Put what a manifest refers to into another repository, of the same registry or another: an index's
        manifests (and what they refer to), an image's config and layers."""
        for child in manifest.get("manifests", []):  # an index's
            self._copy_manifest(src, dst, str(child["digest"]))
        mount_from = src.remote if src.host == dst.host else ""
        for blob in [manifest.get("config"), *manifest.get("layers", [])]:
            if isinstance(blob, dict) and "digest" in blob:
                digest, size = str(blob["digest"]), int(blob.get("size", 0))
                streamed = functools.partial(self._blob, src, digest, size)
                self._upload_blob(dst, digest, size, streamed, mount_from)

    def _copy_manifest(self, src: Reference, dst: Reference, digest: str) -> None:
        """Copy one manifest of an index, by digest, with what it refers to (unless the repository has it)."""
        if self._request("HEAD", dst, f"manifests/{digest}", {"Accept": MANIFEST_TYPES})[0] == 200:
            return
        child = src._replace(tag="", digest=digest)
        body, content_type = self._manifest_bytes(child)
        manifest = _json_object(body, str(child))
        self._copy_contents(src, dst, manifest)
        media_type = str(manifest.get("mediaType") or content_type or _OCI_MANIFEST)
        self._request("PUT", dst, f"manifests/{digest}", {"Content-Type": media_type}, body)


def _json_object(body: bytes, reference: str) -> dict[str, Any]:
    """A manifest's bytes, parsed; EngineError unless they are a JSON object."""
    try:
        manifest = json.loads(body)
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict):
        raise EngineError(f"{reference}: the registry answered a manifest that is no JSON object", transient=False)
    return manifest


def _inline_data(descriptor: Mapping[str, Any]) -> bytes | None:
    """A descriptor's embedded `data` when it is there and matches its digest; None: fetch the blob."""
    encoded = descriptor.get("data")
    if not isinstance(encoded, str):
        return None
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None
    return data if "sha256:" + hashlib.sha256(data).hexdigest() == descriptor.get("digest") else None
