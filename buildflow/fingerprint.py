"""Content fingerprints: what a build depends on, hashed so that equal inputs give equal names everywhere."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from buildflow import dockerignore

FINGERPRINT_VERSION = 1


class ContextError(OSError):
    """A context file that cannot be read."""


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def context_digest(context: Path, dockerfile: Path) -> str:
    """sha256 over the files .dockerignore lets through: paths, types, exec bits and contents; no times."""
    rules = dockerignore.parse(dockerignore.read_rules_text(context, dockerfile))
    digest = hashlib.sha256()
    for line in _entries(context, "", rules):
        digest.update(line.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def _entries(root: Path, prefix: str, rules: dockerignore.IgnoreRules) -> Iterator[str]:
    """One line per entry the build would send, in a stable order."""
    try:
        children = sorted(os.scandir(root / prefix if prefix else root), key=lambda entry: entry.name)
    except OSError as error:
        raise ContextError(f"cannot list {prefix or '.'}: {error.strerror}") from None
    for entry in children:
        relative = f"{prefix}/{entry.name}" if prefix else entry.name
        ignored = rules.ignores(relative)
        mode = entry.stat(follow_symlinks=False).st_mode
        if stat.S_ISDIR(mode):
            if ignored and not rules.has_exclusions:
                continue
            if not ignored:
                yield f"d {relative}\n"
            yield from _entries(root, relative, rules)
        elif ignored:
            continue
        elif stat.S_ISLNK(mode):
            yield f"l {relative} {os.readlink(entry.path)}\n"
        elif stat.S_ISREG(mode):
            executable = "x" if mode & stat.S_IXUSR else "-"
            yield f"f {relative} {executable} {_content_digest(Path(entry.path), relative)}\n"


def _content_digest(path: Path, relative: str) -> str:
    """sha256 of one context file."""
    try:
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError as error:
        raise ContextError(f"cannot read context file {relative}: {error.strerror}") from None


def target_fingerprint(
    *,
    dockerfile: str,
    context: str,
    args: Mapping[str, str],
    stage: str,
    platforms: Sequence[str],
    labels: Mapping[str, str],
    secret_ids: Sequence[str],
    parents: Sequence[str],
) -> str:
    """sha256 of everything that decides a target's image; secret values never enter it.

    The input is the repr of a tuple of strings and sorted tuples: unambiguous, and several times cheaper
    than JSON for the thousands of small payloads of a large pipeline.
    """
    payload = (
        FINGERPRINT_VERSION,
        dockerfile,
        context,
        tuple(sorted(args.items())) if args else (),
        stage,
        tuple(sorted(platforms)) if platforms else (),
        tuple(sorted(labels.items())) if labels else (),
        tuple(sorted(secret_ids)) if secret_ids else (),
        tuple(sorted(parents)),
    )
    return hashlib.sha256(repr(payload).encode()).hexdigest()
