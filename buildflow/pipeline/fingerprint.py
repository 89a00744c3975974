"""Content fingerprints: what a build depends on, hashed so that equal inputs give equal names everywhere."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from buildflow.pipeline import dockerignore

FINGERPRINT_VERSION = 2  # 2: external base digests


class ContextError(OSError):
    """A context file that cannot be read."""


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def context_digest(context: Path, dockerfile: Path) -> str:
    """sha256 over the files .dockerignore lets through: paths, types, exec bits and contents; no times."""
    digest = hashlib.sha256()
    for line in _context_lines(context, dockerfile):
        digest.update(line.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def context_files(context: Path, dockerfile: Path) -> dict[str, str]:
    """What context_digest hashes, per entry: relative path -> type, exec bit and content digest."""
    files = {}
    for line in _context_lines(context, dockerfile):
        kind, rest = line[0], line[2:-1]
        if kind == "f":
            path, executable, digest = rest.rsplit(" ", 2)
            files[path] = f"{executable} {digest}"
        elif kind == "l":
            path, _, link = rest.partition(" ")  # a path with spaces is read up to its first one: display only
            files[path] = f"-> {link}"
    return files


def _context_lines(context: Path, dockerfile: Path) -> Iterator[str]:
    """The context's entries as lines, in a stable order."""
    rules = dockerignore.parse(dockerignore.read_rules_text(context, dockerfile))
    for relative, entry, mode in dockerignore.sent_entries(context, rules, _unlistable):
        if stat.S_ISDIR(mode):
            yield f"d {relative}\n"
        elif stat.S_ISLNK(mode):
            yield f"l {relative} {os.readlink(entry.path)}\n"
        elif stat.S_ISREG(mode):
            executable = "x" if mode & stat.S_IXUSR else "-"
            yield f"f {relative} {executable} {_content_digest(Path(entry.path), relative)}\n"


def _unlistable(directory: str, error: OSError) -> None:
    """A context directory that cannot be listed fails the fingerprint."""
    raise ContextError(f"cannot list {directory}: {error.strerror}") from None


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
    bases: Mapping[str, str],
    artifact: tuple[tuple[str, ...], ...] = (),
) -> str:
    """sha256 of everything that decides a target's image; secret values never enter it.

    `bases` maps each external image the build pulls in to its digest ("" when not resolved), so a base that
    moves upstream changes the fingerprint of every target on it, and of their descendants. They are found as
    BuildKit would find them (pipeline/dockerfile): FROM lines with their ARGs expanded, COPY --from and
    RUN --mount from= images, in the stages the target's stage needs, the `# syntax=` frontend, and the
    ONBUILD sources of a parent image. The Dockerfile itself enters by its bytes.

    The input is the repr of a tuple of strings and sorted tuples: unambiguous, and several times cheaper
    than JSON for the thousands of small payloads of a large pipeline. `artifact` (attestations, annotations)
    changes the pushed artifact, not the image: it is added only when set, so fingerprints without it stay as
    they were.
    """
    payload: tuple[object, ...] = (
        FINGERPRINT_VERSION,
        dockerfile,
        context,
        tuple(sorted(args.items())) if args else (),
        stage,
        tuple(sorted(platforms)) if platforms else (),
        tuple(sorted(labels.items())) if labels else (),
        tuple(sorted(secret_ids)) if secret_ids else (),
        tuple(sorted(parents)),
        tuple(sorted(bases.items())) if bases else (),
    )
    if artifact:
        payload = (*payload, artifact)
    return hashlib.sha256(repr(payload).encode()).hexdigest()
