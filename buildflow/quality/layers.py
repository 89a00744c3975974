"""Size and waste report of an image: what each layer adds, and the bytes later layers delete or overwrite.

Definitions used throughout:

- The *size* of a layer is the sum of the sizes of the regular files in its tar: the bytes of file content it adds.
  Directories, symlinks, hard links, devices and whiteouts count 0 (tar headers and padding are not counted; the
  raw length of the uncompressed tar is kept in the layer cache as `tar_size`). The size of an image is the sum of
  its layers' sizes; `compressed` is the sum of the layer sizes its manifest names (what a pull downloads).
- A layer *wastes* the bytes of a file a lower layer wrote when it hides that file: by deleting it (an OCI
  whiteout `.wh.NAME`, which removes NAME and everything beneath it, or an opaque directory `.wh..wh..opq`, which
  hides everything lower layers had in that directory) or by overwriting it (the same path written again, as a
  file or anything else; a non-directory written over a directory deletes everything beneath it). The bytes stay
  in the image, in the lower layer, for every pull. Entries of 0 bytes are not reported.
- Layers *added* over a parent are those after the longest prefix of layer digests the image shares with the
  parent's; `wasted_here` is the waste whose hiding layer is one of them (what this image's own Dockerfile can fix).
- A layer's *instruction* comes from the image config's `history`: entries with `empty_layer: true` made no layer,
  the others map to the layers in order. BuildKit's `/bin/sh -c `, `|N ARG=...` and `# buildkit` are left out.

Layer blobs are streamed (gzip or uncompressed tar; zstd is refused with a clear message), never held in memory,
and their file listings are cached by digest, so a parent shared by many children is read once.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import posixpath
import re
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from buildflow.engine.base import ImageLayers

_CACHE_VERSION = 1
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"
_DIGEST = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_ARGS_PREFIX = re.compile(r"^\|(\d+) ")

# One tar member of a layer: (path without a leading slash, kind, bytes); kinds below.
_Entry = tuple[str, str, int]
_FILE, _DIR, _LINK, _WHITEOUT_KIND, _OPAQUE_KIND, _OTHER = "file", "dir", "link", "whiteout", "opaque", "other"


@dataclass(frozen=True)
class LayerInfo:
    """One layer: its index, digest, regular-file bytes, compressed (manifest) size and the instruction that made it."""

    index: int
    digest: str
    size: int
    compressed: int
    instruction: str


@dataclass(frozen=True)
class Waste:
    """Bytes of a file written in one layer and deleted or overwritten in a later one (layer indexes)."""

    path: str
    bytes: int
    written_in: int
    removed_in: int
    how: str  # "deleted" | "overwritten"


@dataclass(frozen=True)
class SizeReport:
    """Sizes of an image and its layers, what it adds over its parent, and the bytes its layers waste."""

    reference: str
    size: int
    compressed: int
    layers: tuple[LayerInfo, ...]
    added: int
    added_layers: int
    wasted: int
    waste: tuple[Waste, ...]

    @property
    def wasted_here(self) -> int:
        """Wasted bytes hidden by the image's own (added) layers."""
        return sum(waste.bytes for waste in self.waste if waste.removed_in >= self._first_added)

    def top_waste(self, n: int = 5) -> tuple[Waste, ...]:
        """The n largest waste entries, largest first."""
        return _by_bytes(self.waste)[:n]

    @property
    def _first_added(self) -> int:
        """Index of the first layer the image adds over its parent (len(layers) when it adds none)."""
        return len(self.layers) - self.added_layers

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: sizes in bytes, waste sorted by bytes (largest first), instructions spelled out."""
        return {
            "reference": self.reference,
            "size": self.size,
            "compressed": self.compressed,
            "added": self.added,
            "added_layers": self.added_layers,
            "wasted": self.wasted,
            "wasted_here": self.wasted_here,
            "layers": [self._layer_json(layer) for layer in self.layers],
            "waste": [self._waste_json(waste) for waste in _by_bytes(self.waste)],
        }

    def _layer_json(self, layer: LayerInfo) -> dict[str, Any]:
        """One layer as JSON."""
        return {
            "index": layer.index,
            "digest": layer.digest,
            "size": layer.size,
            "compressed": layer.compressed,
            "instruction": layer.instruction,
            "added": layer.index >= self._first_added,
        }

    def _waste_json(self, waste: Waste) -> dict[str, Any]:
        """One waste entry as JSON, with the instructions of both layers."""
        return {
            "path": waste.path,
            "bytes": waste.bytes,
            "how": waste.how,
            "written_in": waste.written_in,
            "written_by": self.layers[waste.written_in].instruction,
            "removed_in": waste.removed_in,
            "removed_by": self.layers[waste.removed_in].instruction,
            "here": waste.removed_in >= self._first_added,
        }


@dataclass(frozen=True)
class _Listing:
    """What one layer holds: its members in tar order, their regular-file bytes and the raw tar length."""

    size: int
    tar_size: int
    entries: tuple[_Entry, ...]


class LayerCache:
    """File listings of layers by digest: in memory, and as JSON files in a directory when given one.

    Digests name content, so an entry never goes stale; unreadable files are ignored and read again.
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        """Files directly in `directory`; in memory only without one."""
        self.directory = Path(directory) if directory is not None else None
        self._memory: dict[str, _Listing] = {}

    def get(self, digest: str) -> _Listing | None:
        """The cached listing of a layer, or None."""
        if digest in self._memory:
            return self._memory[digest]
        path = self._path(digest)
        if path is None:
            return None
        try:
            listing = _listing_from_json(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        self._memory[digest] = listing
        return listing

    def put(self, digest: str, listing: _Listing) -> None:
        """Remember a layer's listing (the file is written atomically: a temporary file, then os.replace)."""
        self._memory[digest] = listing
        path = self._path(digest)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_atomically(path, json.dumps(_listing_to_json(digest, listing), separators=(",", ":")))
        except OSError:
            return  # a cache that cannot be written is only slower

    def _path(self, digest: str) -> Path | None:
        """The file of a digest, None without a directory or for a digest that is no safe file name."""
        if self.directory is None or not _DIGEST.fullmatch(digest):
            return None
        return self.directory / (digest.replace(":", "-") + ".json")


def analyze(
    layers: Sequence[tuple[str, int]],
    history: Sequence[Mapping[str, Any]],
    open_layer: Callable[[str], BinaryIO],
    *,
    reference: str,
    parent_layers: Sequence[str] = (),
    cache: LayerCache | None = None,
) -> SizeReport:
    """The size and waste report of an image from its (digest, compressed size) layers, history and layer blobs."""
    cache = cache if cache is not None else LayerCache()
    instructions = _instructions(history, len(layers))
    tree = _Tree()
    infos: list[LayerInfo] = []
    waste: list[Waste] = []
    for index, (digest, compressed) in enumerate(layers):
        listing = _cached_listing(digest, open_layer, cache)
        infos.append(LayerInfo(index, digest, listing.size, compressed, instructions[index]))
        waste.extend(tree.apply(index, listing.entries))
    shared = _shared_prefix([digest for digest, _ in layers], parent_layers)
    return SizeReport(
        reference=reference,
        size=sum(info.size for info in infos),
        compressed=sum(info.compressed for info in infos),
        layers=tuple(infos),
        added=sum(info.size for info in infos[shared:]),
        added_layers=len(infos) - shared,
        wasted=sum(item.bytes for item in waste),
        waste=_by_bytes(waste),
    )


class LayerSource(Protocol):
    """Where an image's layers are read from: a registry client, or an engine's registry side."""

    def image_layers(self, reference: str) -> ImageLayers:
        """The layers and history of a single-platform image."""
        ...

    def blob(self, reference: str, digest: str) -> BinaryIO:
        """A stream of one blob of the image's repository."""
        ...


def from_registry(
    source: LayerSource, reference: str, *, parent_layers: Sequence[str] = (), cache: LayerCache | None = None
) -> SizeReport:
    """The size and waste report of an image in a registry (layers streamed from it, or taken from the cache)."""
    image = source.image_layers(reference)
    return analyze(
        image.layers,
        image.history,
        lambda digest: source.blob(reference, digest),
        reference=reference,
        parent_layers=parent_layers,
        cache=cache,
    )


class _Tree:
    """The files the layers applied so far leave visible: path -> (layer, bytes), and each directory's children."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[int, int]] = {}
        self.children: dict[str, set[str]] = {}

    def apply(self, layer: int, entries: Sequence[_Entry]) -> list[Waste]:
        """Apply one layer's entries; the waste it causes (hidden bytes of lower layers, 0-byte entries left out)."""
        hidden: list[tuple[str, int, int, str]] = []
        for path, kind, size in entries:
            if kind == _WHITEOUT_KIND:  # hides lower layers only, never what this layer writes
                hidden.extend(self._hide(path, layer, "deleted"))
                hidden.extend(self._hide_beneath(path, layer))
            elif kind == _OPAQUE_KIND:
                hidden.extend(self._hide_beneath(path, layer))
            else:  # anything written over a non-directory replaces it; a non-directory replaces a whole tree
                hidden.extend(self._hide(path, layer + 1, "overwritten"))
                if kind != _DIR:
                    hidden.extend(self._hide_beneath(path, layer))
                    self.files[path] = (layer, size)
                self._link(path)
        return [Waste("/" + path, size, written, layer, how) for path, written, size, how in hidden if size > 0]

    def _hide(self, path: str, below: int, how: str) -> Iterator[tuple[str, int, int, str]]:
        """Remove the non-directory at path if a layer below `below` wrote it; (path, layer, bytes, how) if so."""
        written = self.files.get(path)
        if written is None or written[0] >= below:
            return
        del self.files[path]
        self.children.get(posixpath.dirname(path), set()).discard(path)
        yield path, written[0], written[1], how

    def _hide_beneath(self, directory: str, layer: int) -> Iterator[tuple[str, int, int, str]]:
        """Remove everything lower layers left beneath a directory; what this layer wrote there stays."""
        for child in sorted(self.children.get(directory, ())):
            if child in self.files:
                yield from self._hide(child, layer, "deleted")
            else:
                yield from self._hide_beneath(child, layer)
                if not self.children.get(child):
                    self.children.pop(child, None)
                    self.children[directory].discard(child)

    def _link(self, path: str) -> None:
        """Record path (and its ancestors) as children of their directories."""
        while path:
            parent = posixpath.dirname(path)
            siblings = self.children.setdefault(parent, set())
            if path in siblings:
                return
            siblings.add(path)
            path = parent


def _cached_listing(digest: str, open_layer: Callable[[str], BinaryIO], cache: LayerCache) -> _Listing:
    """A layer's listing from the cache, or read from its blob (and cached)."""
    listing = cache.get(digest)
    if listing is None:
        with open_layer(digest) as blob:
            listing = _read_layer(blob, digest)
        cache.put(digest, listing)
    return listing


def _read_layer(blob: BinaryIO, digest: str) -> _Listing:
    """The listing of a layer blob (gzip or plain tar), streamed; the blob is read to its end (so it is verified)."""
    head = blob.read(4)
    if not head:
        return _Listing(size=0, tar_size=0, entries=())
    if head.startswith(_ZSTD_MAGIC):
        raise ValueError(f"layer {digest} is zstd-compressed, which buildflow cannot read yet: push it with gzip")
    raw = _Prefixed(head, blob)
    tar_stream = _Counting(gzip.GzipFile(fileobj=raw, mode="rb") if head.startswith(_GZIP_MAGIC) else raw)
    try:
        entries = tuple(_entries(tar_stream))
        while tar_stream.read(1 << 16):  # the end-of-archive blocks and padding count in the tar length
            pass
    except tarfile.ReadError as error:
        if tar_stream.count:
            raise ValueError(f"layer {digest} is not a readable tar (gzip or uncompressed): {error}") from None
        entries = ()  # an empty (gzip-compressed) blob: an empty layer
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise ValueError(f"layer {digest} is not a readable tar (gzip or uncompressed): {error}") from None
    while blob.read(1 << 16):
        pass
    size = sum(length for _, kind, length in entries if kind == _FILE)
    return _Listing(size=size, tar_size=tar_stream.count, entries=entries)


def _entries(stream: io.RawIOBase) -> Iterator[_Entry]:
    """The members of a tar stream as entries, without keeping the TarInfo objects."""
    with tarfile.open(fileobj=stream, mode="r|") as archive:
        while (member := archive.next()) is not None:
            archive.members.clear()  # type: ignore[attr-defined]  # read once: keep no header of a large layer
            entry = _entry(member)
            if entry is not None:
                yield entry


def _entry(member: tarfile.TarInfo) -> _Entry | None:
    """One tar member as (path, kind, bytes); whiteouts name the path they hide."""
    path = _normalized(member.name)
    directory, name = posixpath.split(path)
    if name == _OPAQUE:
        return directory, _OPAQUE_KIND, 0
    if not path or name.startswith(_WHITEOUT + _WHITEOUT):
        return None  # the root itself, or other AUFS metadata (.wh..wh.plnk, ...)
    if name.startswith(_WHITEOUT):
        return posixpath.join(directory, name[len(_WHITEOUT) :]), _WHITEOUT_KIND, 0
    if member.isreg():
        return path, _FILE, member.size
    kind = _DIR if member.isdir() else _LINK if member.issym() or member.islnk() else _OTHER
    return path, kind, 0


def _normalized(name: str) -> str:
    """A member name as a path without a leading slash or './' ('' for the root)."""
    path = posixpath.normpath("/" + name).lstrip("/")
    return "" if path == "." else path


def _instructions(history: Sequence[Mapping[str, Any]], count: int) -> list[str]:
    """The instruction of each of count layers: history entries that made a layer, in order ('' when unknown)."""
    made = [entry for entry in history if isinstance(entry, Mapping) and not entry.get("empty_layer")]
    texts = [_instruction(str(entry.get("created_by") or entry.get("comment") or "")) for entry in made]
    return (texts + [""] * count)[:count]


def _instruction(created_by: str) -> str:
    """A history entry's created_by without BuildKit's and the classic builder's shell and ARG noise."""
    text = created_by.strip().removesuffix("# buildkit").strip()
    if text.startswith("/bin/sh -c #(nop) "):
        return text.removeprefix("/bin/sh -c #(nop) ").strip()
    if text.startswith("/bin/sh -c "):
        return "RUN " + text.removeprefix("/bin/sh -c ").strip()
    if not text.startswith("RUN "):
        return text
    command = text.removeprefix("RUN ")
    args = _ARGS_PREFIX.match(command)
    if args:  # |N A=1 B=2 (values with spaces are left as they are)
        command = re.sub(r"^\|\d+ " + r"\S+=\S* " * int(args.group(1)), "", command)
    return "RUN " + command.removeprefix("/bin/sh -c ").strip()


def _shared_prefix(digests: Sequence[str], parent: Sequence[str]) -> int:
    """How many leading layers two layer lists share."""
    shared = 0
    for mine, theirs in zip(digests, parent, strict=False):
        if mine != theirs:
            break
        shared += 1
    return shared


def _by_bytes(waste: Sequence[Waste]) -> tuple[Waste, ...]:
    """Waste entries, largest first (then by path and layer, so the order is stable)."""
    return tuple(sorted(waste, key=lambda item: (-item.bytes, item.path, item.written_in, item.removed_in)))


def _listing_to_json(digest: str, listing: _Listing) -> dict[str, Any]:
    """A listing as a cache file's JSON."""
    return {
        "version": _CACHE_VERSION,
        "digest": digest,
        "size": listing.size,
        "tar_size": listing.tar_size,
        "entries": [list(entry) for entry in listing.entries],
    }


def _listing_from_json(document: Mapping[str, Any]) -> _Listing:
    """A listing from a cache file's JSON; ValueError for another version."""
    if document.get("version") != _CACHE_VERSION:
        raise ValueError("another cache version")
    entries = tuple((str(path), str(kind), int(size)) for path, kind, size in document["entries"])
    return _Listing(size=int(document["size"]), tar_size=int(document["tar_size"]), entries=entries)


def _write_atomically(path: Path, text: str) -> None:
    """Write a file so that readers see the old content or the new, never a part."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class _Prefixed(io.RawIOBase):
    """A stream that answers some bytes already read from another stream, then the rest of that stream."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        super().__init__()
        self.head, self.rest, self._offset = head, rest, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill buffer from the head, then from the rest."""
        view = memoryview(buffer).cast("B")
        if self._offset < len(self.head):
            chunk = self.head[self._offset : self._offset + len(view)]
            self._offset += len(chunk)
        else:
            chunk = self.rest.read(len(view))
        view[: len(chunk)] = chunk
        return len(chunk)


class _Counting(io.RawIOBase):
    """A readable stream that counts the bytes read through it."""

    def __init__(self, stream: BinaryIO | io.RawIOBase | gzip.GzipFile) -> None:
        super().__init__()
        self.stream, self.count = stream, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill buffer from the stream and count."""
        view = memoryview(buffer).cast("B")
        chunk = self.stream.read(len(view)) or b""
        view[: len(chunk)] = chunk
        self.count += len(chunk)
        return len(chunk)


def instructions(history: Sequence[Mapping[str, Any]], count: int) -> list[str]:
    """The instruction of each of `count` layers, from an image config's history ('' when unknown)."""
    return _instructions(history, count)
