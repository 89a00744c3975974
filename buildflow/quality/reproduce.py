"""Did a rebuild reproduce an image? Its layers compared with the registry's, file by file.

Each layer is read as a stream (a gzip or plain tar) into a listing: path -> type, mode, owner, link target,
content digest and modification time. Two listings differ in files added, removed or changed; a file whose only
difference is its time is counted apart, since the docker driver cannot rewrite file times in the layers it
stores (BuildKit's `rewrite-timestamp` conflicts with unpacking into the image store).
"""

from __future__ import annotations

import hashlib
import posixpath
import tarfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

Entry = tuple[str, int, str, str, str, int]  # type, mode, owner, link, content digest, mtime
_FIELDS = ("type", "mode", "owner", "link", "content", "time")
SHOWN_FILES = 20  # files listed per layer; the rest are counted


@dataclass(frozen=True)
class FileChange:
    """A file that differs between the registry's layer and the rebuilt one, and how (`content`, `mode, owner`,
    `added`, `removed`...)."""

    path: str
    change: str

    def to_json(self) -> dict[str, str]:
        """The change as a JSON object."""
        return {"path": self.path, "change": self.change}


@dataclass(frozen=True)
class LayerDifference:
    """A layer whose digest was not reproduced: its position (from 1), instruction, digests and what differs."""

    index: int
    instruction: str
    registry: str
    rebuilt: str
    files: tuple[FileChange, ...] = ()  # differences other than times (the first SHOWN_FILES)
    more_files: int = 0  # further differences not listed
    times_only: int = 0  # files that differ only in their modification time

    @property
    def content(self) -> bool:
        """Whether anything but file times differs."""
        return bool(self.files) or self.more_files > 0 or not (self.registry and self.rebuilt)

    def to_json(self) -> dict[str, Any]:
        """The layer as a JSON object."""
        return {
            "index": self.index,
            "instruction": self.instruction,
            "registry": self.registry,
            "rebuilt": self.rebuilt,
            "files": [change.to_json() for change in self.files],
            "more_files": self.more_files,
            "times_only": self.times_only,
        }


def listing(stream: IO[bytes]) -> dict[str, Entry]:
    """A layer's entries by path (with a leading '/'), read as a stream; regular files are hashed."""
    entries: dict[str, Entry] = {}
    with tarfile.open(fileobj=stream, mode="r|*") as archive:
        for member in archive:
            path = "/" + posixpath.normpath("/" + member.name).lstrip("/")
            content = ""
            if member.isreg():
                content = _content_digest(archive.extractfile(member))
            kind = "file" if member.isreg() else "dir" if member.isdir() else "link" if member.issym() else "other"
            owner = f"{member.uid}:{member.gid}"
            entries[path] = (kind, member.mode, owner, member.linkname, content, int(member.mtime))
    return entries


def compare(before: Mapping[str, Entry], after: Mapping[str, Entry]) -> tuple[list[FileChange], int]:
    """What differs from the registry's listing to the rebuilt one, and how many files differ only in time."""
    changes, times = [], 0
    for path in sorted(set(before) | set(after)):
        if path not in after:
            changes.append(FileChange(path, "removed"))
        elif path not in before:
            changes.append(FileChange(path, "added"))
        else:
            what = [name for name, old, new in zip(_FIELDS, before[path], after[path], strict=True) if old != new]
            if what == ["time"]:
                times += 1
            elif what:
                changes.append(FileChange(path, ", ".join(name for name in what if name != "time")))
    return changes, times


@dataclass
class Layers:
    """One side of the comparison: its layer digests and how to open one."""

    digests: Sequence[str]
    open: Callable[[str], IO[bytes]]
    instructions: Sequence[str] = field(default_factory=tuple)


def differences(registry: Layers, rebuilt: Layers) -> list[LayerDifference]:
    """Every layer whose digest differs, with the files that differ (a layer only one side has: all its files)."""
    found = []
    for index in range(max(len(registry.digests), len(rebuilt.digests))):
        old = registry.digests[index] if index < len(registry.digests) else ""
        new = rebuilt.digests[index] if index < len(rebuilt.digests) else ""
        if old == new:
            continue
        changes, times = compare(_listing(registry, old), _listing(rebuilt, new))
        instruction = registry.instructions[index] if index < len(registry.instructions) else ""
        shown = tuple(changes[:SHOWN_FILES])
        found.append(LayerDifference(index + 1, instruction, old, new, shown, len(changes) - len(shown), times))
    return found


def _listing(side: Layers, digest: str) -> dict[str, Entry]:
    """The listing of one layer of one side ({} when that side has no such layer)."""
    if not digest:
        return {}
    with side.open(digest) as stream:
        return listing(stream)


def _content_digest(handle: IO[bytes] | None) -> str:
    """sha256 of a file read in chunks."""
    digest = hashlib.sha256()
    while handle is not None and (chunk := handle.read(1 << 20)):
        digest.update(chunk)
    return digest.hexdigest()
