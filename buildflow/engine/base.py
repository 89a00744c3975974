"""What buildflow asks of an engine, as plain data, and the small protocols an engine implements.

The engine is a leaf: it imports nothing of buildflow but the model, the errors and the references. A Builder
builds and pushes, a Registry looks images up and stores tags and records, a Tester runs test containers; the
buildx engine is all three.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from buildflow.model import NO_ATTEST, Attest, Secret, SshForward

RECORD_MEDIA_TYPE = "application/vnd.buildflow.record.v1+json"


class EngineError(Exception):
    """A failed engine or registry call: its one-line reason, and whether trying again can help."""

    def __init__(
        self,
        message: str,
        *,
        transient: bool,
        retry_after: float | None = None,
        log_tail: tuple[str, ...] = (),
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.transient = transient
        self.retry_after = retry_after  # seconds the server asked us to wait (Retry-After), if it did
        self.log_tail = log_tail  # the last lines the failed call printed, when it printed any
        self.status = status  # the HTTP status a registry answered with: the request was refused, not lost


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
    cache_from: tuple[Mapping[str, str], ...] = ()
    cache_to: Mapping[str, str] | None = None
    no_cache: bool = False
    pull: bool = False
    attest: Attest = NO_ATTEST
    ssh: tuple[SshForward, ...] = ()
    annotations: Mapping[str, str] | None = None
    export: str = ""  # a path: the image goes only there, as an OCI layout tar (docker media types); no tag moves


@dataclass(frozen=True)
class BuildResult:
    """What a finished build produced."""

    digest: str
    seconds: float
    total_steps: int = 0
    cached_steps: int = 0
    pushed: bool = False  # BuildKit pushed it itself (a builder without an image store): digest is the registry's


@dataclass(frozen=True)
class TestRequest:
    """One test command to run in a fresh container of an image."""

    __test__ = False  # not a pytest test class

    image: str
    command: str
    env: Mapping[str, str]
    timeout: int
    network: str
    gpus: str = ""


@dataclass(frozen=True)
class TestRun:
    """How a test command ended: its exit code and output, or a timeout."""

    __test__ = False  # not a pytest test class

    exit_code: int
    output: str
    seconds: float
    timed_out: bool = False


@dataclass(frozen=True)
class ImageLayers:
    """A single-platform image in a registry: its layers as (digest, compressed size), and its config's history."""

    layers: tuple[tuple[str, int], ...]
    history: tuple[Mapping[str, Any], ...]

    @property
    def digests(self) -> tuple[str, ...]:
        """The layer digests, in order."""
        return tuple(digest for digest, _ in self.layers)


class Builder(Protocol):
    """Builds images and pushes them."""

    def build(self, request: BuildRequest) -> BuildResult:
        """Build one image into the local image store; raise EngineError on failure."""
        ...

    def push(self, reference: str) -> str:
        """Push a built image to its registry; return the digest the registry holds for it."""
        ...

    def local_digest(self, reference: str) -> str | None:
        """The id of an image in the local image store, or None."""
        ...

    def tag_local(self, source: str, references: Sequence[str]) -> None:
        """Tag an image in the local image store."""
        ...

    def save_layout(self, reference: str, directory: Path) -> None:
        """Write an image of the local image store as an OCI layout (index.json, blobs) into `directory`."""
        ...

    def cancel(self) -> None:
        """Stop every engine call in flight (they fail soon after); called from a signal handler."""
        ...

    def answers(self) -> bool:
        """True when the engine (or builder) answers now."""
        ...


class Registry(Protocol):
    """Looks images up in registries, copies tags there and keeps build records beside images."""

    def manifest_digest(self, reference: str) -> str | None:
        """The digest a registry holds for a reference, or None when it has none."""
        ...

    def tag(self, source: str, references: Sequence[str]) -> None:
        """Point more references at an image the registry already holds, without uploading layers."""
        ...

    def delete_tag(self, reference: str) -> bool:
        """Remove a tag (not the image it names); False when the registry does not delete tags."""
        ...

    def get_record(self, reference: str) -> bytes | None:
        """The build record a registry holds under `reference`, or None."""
        ...

    def put_record(self, reference: str, data: bytes) -> None:
        """Store a build record in a registry under `reference`."""
        ...

    def image_layers(self, reference: str) -> ImageLayers:
        """The layers and history of an image in a registry (linux/amd64, or the only image, of an index)."""
        ...

    def layer_digests(self, reference: str) -> tuple[str, ...]:
        """The layer digests of an image in a registry (its manifest only)."""
        ...

    def blob(self, reference: str, digest: str) -> BinaryIO:
        """A stream of one blob of a reference's repository, checked against its digest when read to the end."""
        ...


class Tester(Protocol):
    """Runs test commands in containers of images."""

    def run_test(self, request: TestRequest) -> TestRun:
        """Run a test command in a new container of an image (pulled if missing), then remove the container."""
        ...

    def has_gpus(self) -> bool:
        """True when the engine can give containers GPUs."""
        ...


class Engine(Builder, Registry, Tester, Protocol):
    """A container engine that builds images, talks to registries and runs tests: what a run needs."""
