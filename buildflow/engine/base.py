"""What buildflow asks of an engine, as plain data, and the Protocol an engine implements.

Requests are built here without touching Docker, so what a build will be given is testable on its own;
the buildx engine (python-on-whales) is the only code that carries them out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from buildflow.model import BASE_IMAGE_ARG, EdgeKind, Secret, Target


@dataclass(frozen=True)
class BuildRequest:
    """Everything one `docker buildx build` needs for one target."""

    target_id: str
    context: Path
    dockerfile: Path
    stage: str
    args: Mapping[str, str]
    labels: Mapping[str, str]
    platforms: tuple[str, ...]
    tags: tuple[str, ...]
    build_contexts: Mapping[str, str]
    secrets: tuple[Secret, ...]
    network: str
    push: bool
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()
    no_cache: bool = False
    pull: bool = False


@dataclass(frozen=True)
class BuildResult:
    """What a finished build produced."""

    digest: str
    seconds: float
    cached_steps: int = 0
    total_steps: int = 0
    log_tail: tuple[str, ...] = field(default_factory=tuple)


class Engine(Protocol):
    """A container engine that builds images and talks to registries."""

    def build(self, request: BuildRequest) -> BuildResult:
        """Build (and push, if asked) one image; raise EngineError on failure."""
        ...

    def manifest_digest(self, reference: str) -> str | None:
        """The digest a registry holds for a reference, or None when it has none."""
        ...

    def tag(self, source: str, references: Sequence[str]) -> None:
        """Point more references at an image the registry already holds, without uploading layers."""
        ...


def pinned(reference: str, digest: str) -> str:
    """repository@digest: a parent as exactly the image built in this run."""
    repository = reference.rsplit(":", 1)[0] if ":" in reference.rsplit("/", 1)[-1] else reference
    return f"{repository}@{digest}"


def build_request(target: Target, parents: Mapping[str, str], *, push: bool = True) -> BuildRequest:
    """The request for `target`, given each built parent's pinned reference (by target id).

    The first `from:` parent also fills the BASE_IMAGE build arg (when the target does not set it); every
    `from:` parent is a named build context under its target name, and every inferred parent under the
    name the Dockerfile uses, so `FROM ${BASE_IMAGE}`, `FROM cuda` and `FROM cuda:9.0` all build on the
    exact digest. depends_on parents only order the build.
    """
    from_parents = [edge.parent for edge in target.parents if edge.kind == EdgeKind.FROM]
    args = dict(target.args)
    if from_parents and BASE_IMAGE_ARG not in args:
        args[BASE_IMAGE_ARG] = parents[from_parents[0]]
    contexts = {_context_name(parent): f"docker-image://{parents[parent]}" for parent in from_parents}
    for edge in target.parents:
        if edge.kind == EdgeKind.INFERRED:
            contexts[edge.reference] = f"docker-image://{parents[edge.parent]}"
    return BuildRequest(
        target_id=target.id,
        context=target.context,
        dockerfile=target.dockerfile,
        stage=target.stage,
        args=args,
        labels=target.labels,
        platforms=target.platforms,
        tags=target.tags,
        build_contexts=contexts,
        secrets=target.secrets,
        network=target.network,
        push=push and target.push,
    )


def _context_name(target_id: str) -> str:
    """The named build context of a parent: its target name (matrix values dropped)."""
    return target_id.split("[", 1)[0]
