"""Pipeline files that were read and passed the schema before, kept by their bytes: a re-run of the same file
skips YAML, JSON Schema and their imports (about half of `validate`'s time for a small pipeline).

One entry per pipeline file (its resolved path), holding the hash of the text it was read from and the document;
the hash also covers buildflow's version and the files that decide how a document is read and checked, so an
entry read by other rules is never used. Anything wrong with an entry (missing, stale, unreadable) means reading
the file again; failing to write one changes nothing. BUILDFLOW_FILE_CACHE=0 turns it off.
"""

from __future__ import annotations

import hashlib
import marshal
import os
from pathlib import Path
from typing import Any

from buildflow import __version__, answers
from buildflow.caches import user_cache

_RULES = ("source.py", "yamlnodes.py", "spec.py", "pipeline.schema.json", "documents.py")


def _entry(path: Path) -> Path:
    """The cache file of one pipeline file."""
    return user_cache("documents") / hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]


def _stamp(text: str) -> bytes:
    """The hash of the text and of the rules it was read and checked by."""
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass"))
    here = Path(__file__).parent
    for name in _RULES:
        status = (here / name).stat()
        digest.update(f"{name}:{status.st_size}:{status.st_mtime_ns};".encode())
    digest.update(__version__.encode())
    return digest.digest()


def checked(path: Path, text: str) -> tuple[bytes, Any]:
    """(stamp, the document read from this text before and found valid), or (stamp, None)."""
    if not answers.enabled():  # BUILDFLOW_FILE_CACHE: one switch for both caches
        return b"", None
    stamp = _stamp(text)
    try:
        kept, document = marshal.loads(_entry(path).read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        return stamp, None
    return stamp, document if kept == stamp else None


def remember(path: Path, stamp: bytes, document: Any) -> None:
    """Keep a document that passed the schema, for the next run on the same text."""
    if not stamp:
        return
    entry = _entry(path)
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        temporary = entry.with_name(f"{entry.name}.{os.getpid()}.tmp")
        temporary.write_bytes(marshal.dumps((stamp, document)))
        os.replace(temporary, entry)
    except (OSError, ValueError):  # ValueError: a value marshal cannot hold; the cache is only an optimisation
        return
