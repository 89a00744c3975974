"""An image as `docker save` writes it from the containerd image store: an OCI layout in a tar, with the very
manifest and compressed layers the build made, so that uploading them gives the registry the built digest."""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

INDEXES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


@dataclass(frozen=True)
class Manifest:
    """A manifest (or an index) of the layout: its digest, media type and bytes."""

    digest: str
    media_type: str
    data: bytes


@dataclass
class SavedImage:
    """The image of a saved OCI layout: its top manifest, the manifests below it (an index's), and its blobs."""

    archive: tarfile.TarFile
    top: Manifest
    below: list[Manifest] = field(default_factory=list)  # an index's image manifests, uploaded before it
    blobs: dict[str, int] = field(default_factory=dict)  # configs and layers: digest -> size

    def open(self, digest: str) -> IO[bytes]:
        """A blob of the layout, to read (and seek, to read it again)."""
        stream = self.archive.extractfile(_member(digest))
        if stream is None:
            raise KeyError(digest)
        return stream

    def close(self) -> None:
        """Close the tar."""
        self.archive.close()


def read_saved(path: str) -> SavedImage | None:
    """The image of a `docker save` tar; None unless it is an OCI layout of one image with every blob in it."""
    archive = tarfile.open(path)  # noqa: SIM115  # closed by SavedImage.close, or below
    try:
        image = _image(archive)
    except (KeyError, ValueError, TypeError, tarfile.TarError):
        image = None
    if image is None:
        archive.close()
    return image


def unpack_layout(archive: Path, directory: Path) -> None:
    """Unpack a `docker save` tar into `directory` (emptied first): an OCI layout, to copy or `skopeo copy oci:`.
    Only files and directories are taken, none outside `directory`."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        members = [member for member in tar.getmembers() if _inside(member)]
        tar.extractall(directory, members=members)  # members checked by _inside
    if not (directory / "index.json").is_file():
        raise OSError(f"{archive.name} holds no index.json (the engine's image store writes no OCI layout)")


def _inside(member: tarfile.TarInfo) -> bool:
    """A plain file or directory whose path stays inside the layout."""
    parts = Path(member.name).parts
    return (member.isfile() or member.isdir()) and not Path(member.name).is_absolute() and ".." not in parts


def _image(archive: tarfile.TarFile) -> SavedImage | None:
    """The layout's image, checked against the digests its blobs must have."""
    names = set(archive.getnames())
    index = json.loads(_read(archive, "index.json"))
    descriptors = index.get("manifests", [])
    if len(descriptors) != 1:
        return None
    top = _manifest(archive, descriptors[0])
    image = SavedImage(archive, top)
    for manifest in [top] if top.media_type not in INDEXES else list(_children(archive, image, top)):
        for blob in _blobs(json.loads(manifest.data)):
            image.blobs[str(blob["digest"])] = int(blob["size"])
    if not all(_member(digest) in names for digest in image.blobs):
        return None
    return image


def _children(archive: tarfile.TarFile, image: SavedImage, index: Manifest) -> Iterator[Manifest]:
    """The image manifests of an index, kept as the manifests to upload before it."""
    for descriptor in json.loads(index.data).get("manifests", []):
        child = _manifest(archive, descriptor)
        image.below.append(child)
        yield child


def _manifest(archive: tarfile.TarFile, descriptor: dict[str, Any]) -> Manifest:
    """The manifest a descriptor names, its bytes checked against its digest."""
    digest = str(descriptor["digest"])
    data = _read(archive, _member(digest))
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise ValueError(f"{digest} does not match its content")
    return Manifest(digest, str(descriptor.get("mediaType") or json.loads(data).get("mediaType", "")), data)


def _blobs(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The config and layers of an image manifest."""
    return [manifest["config"], *manifest.get("layers", [])]


def _member(digest: str) -> str:
    """Where a blob lies in the layout."""
    algorithm, _, hexdigest = digest.partition(":")
    return f"blobs/{algorithm}/{hexdigest}"


def _read(archive: tarfile.TarFile, name: str) -> bytes:
    """A small member of the tar, whole."""
    stream = archive.extractfile(name)
    if stream is None:
        raise KeyError(name)
    return stream.read()
