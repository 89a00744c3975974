"""Inferred edges: a Dockerfile that names another target's image (by tag or target name) depends on it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from buildflow import references
from buildflow.model import Edge, EdgeKind
from buildflow.pipeline.dockerfile import Dockerfile, ImageUse, resolve


class TagIndex:
    """Which images publish a reference, by its normalised form, as written and as pushed.

    Normalising every tag costs time on large pipelines, so the index is built on the first lookup.
    """

    def __init__(self) -> None:
        self._pending: list[tuple[references.Reference, references.Reference, str]] = []
        self._owners: dict[str, list[str]] = {}

    def add(self, written: references.Reference, pushed: references.Reference, image_id: str) -> None:
        """Record that `image_id` publishes `pushed` (written in the pipeline as `written`)."""
        self._pending.append((written, pushed, image_id))

    def owners(self, text: str) -> list[str]:
        """The images that publish the reference `text` names (none for an invalid reference)."""
        for written, pushed, image_id in self._pending:
            full = references.normalized(pushed)
            self._owners.setdefault(full, []).append(image_id)
            if written.domain != pushed.domain:
                as_written = references.normalized(written)
                if as_written != full:  # docker.io/library and a Docker Hub name: the same reference
                    self._owners.setdefault(as_written, []).append(image_id)
        self._pending.clear()
        try:
            return self._owners.get(references.normalized(references.parse(text)), [])
        except ValueError:
            return []


@dataclass(frozen=True, slots=True)
class Ambiguity:
    """A Dockerfile reference that matches several images."""

    use: ImageUse
    text: str
    candidates: Sequence[str]

    def message(self) -> str:
        """What is wrong and what to do."""
        shown = ", ".join(self.candidates[:3]) + ("…" if len(self.candidates) > 3 else "")
        return (
            f"Dockerfile line {self.use.line}: {self.use.instruction} {self.text} matches "
            f"{len(self.candidates)} images ({shown}); declare from: to pick one per image"
        )


class Uses(NamedTuple):
    """The images a Dockerfile names, sorted out: other targets, ambiguous names and external images."""

    edges: list[Edge]
    ambiguous: list[Ambiguity]
    external: list[str]


def named_parents(
    dockerfile: Dockerfile,
    build_args: Mapping[str, str],
    image_id: str,
    lookup: Callable[[str], list[str]],
    *,
    stage: str = "",
    platforms: Sequence[str] = (),
    contexts: frozenset[str] = frozenset(),
) -> Uses:
    """An edge to every other target's image that a build of `stage` names (once each, as first named), the
    names that match several images, and the names of images from outside the pipeline (ubuntu:22.04), the
    `# syntax=` frontend last. The caller keeps the declared edges and adds the rest as inferred."""
    resolution = resolve(dockerfile, build_args, stage=stage, platforms=platforms, contexts=contexts)
    frontend = [resolution.frontend] if resolution.frontend else []
    return sorted_uses([*resolution.uses, *frontend], image_id, lookup)


def sorted_uses(found: Iterable[tuple[ImageUse, str]], image_id: str, lookup: Callable[[str], list[str]]) -> Uses:
    """Image names sorted out: other targets' images (edges), names of several images, external images."""
    uses = Uses([], [], [])
    seen: set[str] = set()
    for use, text in found:
        candidates = [candidate for candidate in lookup(text) if candidate != image_id]
        if len(candidates) > 1:
            uses.ambiguous.append(Ambiguity(use, text, candidates))
        elif not candidates and text not in uses.external:
            uses.external.append(text)
        elif candidates and candidates[0] not in seen:
            seen.add(candidates[0])
            uses.edges.append(Edge(candidates[0], EdgeKind.INFERRED, text, use.line, use.instruction))
    return uses
