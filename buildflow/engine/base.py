"""What buildflow asks of an engine, as plain data, and the Protocol an engine implements.

Requests are built here without touching Docker, so what a build will be given is testable on its own;
the buildx engine (python-on-whales) is the only code that carries them out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from buildflow.quality.layers import SizeReport

from buildflow.model import BASE_IMAGE_ARG, EdgeKind, Secret, Target
from buildflow.pipeline.variables import slug

CONTENT_TAG_PREFIX = "bf-"
SOURCE_DATE_EPOCH = "SOURCE_DATE_EPOCH"
RECORD_MEDIA_TYPE = "application/vnd.buildflow.record.v1+json"


class EngineError(Exception):
    """A failed engine or registry call: its one-line reason, and whether trying again can help."""

    def __init__(self, message: str, *, transient: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.retry_after = retry_after  # seconds the server asked us to wait (Retry-After), if it did


@dataclass(frozen=True)
class BuildOptions:
    """Run-wide choices that shape every build."""

    push: bool = True
    no_cache: bool = False
    pull: bool = False


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


@dataclass(frozen=True)
class BuildResult:
    """What a finished build produced."""

    digest: str
    seconds: float
    total_steps: int = 0
    cached_steps: int = 0
    log_tail: tuple[str, ...] = field(default_factory=tuple)


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


class Engine(Protocol):
    """A container engine that builds images and talks to registries."""

    def build(self, request: BuildRequest) -> BuildResult:
        """Build one image into the local image store; raise EngineError on failure."""
        ...

    def push(self, reference: str) -> str:
        """Push a built image to its registry; return the digest the registry holds for it."""
        ...

    def manifest_digest(self, reference: str) -> str | None:
        """The digest a registry holds for a reference, or None when it has none."""
        ...

    def tag(self, source: str, references: Sequence[str]) -> None:
        """Point more references at an image the registry already holds, without uploading layers."""
        ...

    def tag_local(self, source: str, references: Sequence[str]) -> None:
        """Tag an image in the local image store."""
        ...

    def cancel(self) -> None:
        """Stop every engine call in flight (they fail soon after); called from a signal handler."""
        ...

    def local_digest(self, reference: str) -> str | None:
        """The id of an image in the local image store, or None."""
        ...

    def get_record(self, reference: str) -> bytes | None:
        """The build record a registry holds under `reference`, or None."""
        ...

    def put_record(self, reference: str, data: bytes) -> None:
        """Store a build record in a registry under `reference`."""
        ...

    def run_test(self, request: TestRequest) -> TestRun:
        """Run a test command in a new container of an image (pulled if missing), then remove the container."""
        ...

    def has_gpus(self) -> bool:
        """True when the engine can give containers GPUs."""
        ...

    def image_size(self, reference: str, parent_layers: Sequence[str]) -> SizeReport:
        """The size and waste report of an image in a registry; layers shared with the parent's are not added."""
        ...

    def layer_digests(self, reference: str) -> tuple[str, ...]:
        """The layer digests of an image in a registry (its manifest only)."""
        ...


def repository(target: Target, registry: str) -> str:
    """The repository a target is pushed to: its first tag's, or REGISTRY/NAME."""
    if target.tags:
        return _untagged(target.tags[0])
    return f"{registry}/{target.name}" if registry else target.name


def content_reference(target: Target, registry: str) -> str:
    """Where an image goes first: its repository, tagged with its fingerprint (bf-<24 hex digits>)."""
    return f"{repository(target, registry)}:{CONTENT_TAG_PREFIX}{target.fingerprint[:24]}"


def record_reference(target: Target, registry: str) -> str:
    """Where the record of a target's build is kept: beside its image, tagged bf-<fingerprint>.record."""
    return f"{content_reference(target, registry)}.record"


def last_record_reference(target: Target, registry: str) -> str:
    """The record of a target's latest build, whatever its fingerprint: what `status` compares against."""
    key = slug(target.id)
    if len(key) > 100:
        key = key[:80] + "-" + hashlib.sha256(target.id.encode()).hexdigest()[:12]
    return f"{repository(target, registry)}:{CONTENT_TAG_PREFIX}last.{key}"


def pinned(reference: str, digest: str) -> str:
    """repository@digest: exactly the image built in this run."""
    return f"{_untagged(reference)}@{digest}"


def _untagged(reference: str) -> str:
    """A reference without its tag (a registry's :port is not a tag)."""
    return reference.rsplit(":", 1)[0] if ":" in reference.rsplit("/", 1)[-1] else reference


def image_parents(target: Target) -> list[str]:
    """The parents whose image a build uses (depends_on parents that the Dockerfile does not name only order it)."""
    return [edge.parent for edge in target.parents if edge.kind != EdgeKind.DEPENDS_ON or edge.reference]


def build_request(
    target: Target,
    parents: Mapping[str, str],
    *,
    registry: str,
    root: Path,
    options: BuildOptions,
    source_date_epoch: str = "",
) -> BuildRequest:
    """The request for `target`, given the reference each parent was built as (by target id).

    The first `from:` parent also fills the BASE_IMAGE build arg (unless the target sets it); every `from:`
    parent is a named build context under its target name, and every parent the Dockerfile names (inferred
    or declared) under that name too, so `FROM ${BASE_IMAGE}`, `FROM cuda`, `FROM cuda:9.0` and
    `COPY --from=tool:1` all build on the exact image of this run. Other depends_on parents only order the build.
    External bases resolved to a digest are pinned the same way, so the build uses the base its fingerprint
    names even if the tag moves meanwhile. SOURCE_DATE_EPOCH, when given, fixes the image's timestamps.
    """
    from_parents = [edge.parent for edge in target.parents if edge.kind == EdgeKind.FROM]
    args = dict(target.args)
    if from_parents and BASE_IMAGE_ARG not in args:
        args[BASE_IMAGE_ARG] = parents[from_parents[0]]
    if source_date_epoch:
        args[SOURCE_DATE_EPOCH] = source_date_epoch
    contexts = {
        name: f"docker-image://{pinned(name, digest)}"
        for name, digest in target.bases.items()
        if digest and "@" not in name  # a base written with its digest is pinned already
    }
    contexts |= {parent.split("[", 1)[0]: f"docker-image://{parents[parent]}" for parent in from_parents}
    for edge in target.parents:
        if edge.reference:
            contexts[edge.reference] = f"docker-image://{parents[edge.parent]}"
    cache_from, cache_to = cache_settings(target, registry=registry, root=root)
    return BuildRequest(
        target_id=target.id,
        context=target.context,
        dockerfile=target.dockerfile,
        stage=target.stage,
        args=args,
        labels=target.labels,
        platforms=target.platforms,
        tags=(content_reference(target, registry),),
        build_contexts=contexts,
        secrets=tuple(_absolute(secret, root) for secret in target.secrets),
        network=target.network,
        push=options.push and target.push,
        cache_from=cache_from,
        cache_to=cache_to,
        no_cache=options.no_cache,
        pull=options.pull,
    )


def cache_settings(
    target: Target, *, registry: str, root: Path
) -> tuple[tuple[Mapping[str, str], ...], Mapping[str, str] | None]:
    """cache-from and cache-to for a target's cache policy (a failed cache export never fails a build)."""
    policy, name = target.cache, slug(target.id)
    if policy.type == "registry" and (policy.ref or registry):
        ref = policy.ref_for(registry, name)
        return ({"type": "registry", "ref": ref},), {
            "type": "registry",
            "ref": ref,
            "mode": policy.mode,
            "ignore-error": "true",
        }
    if policy.type == "inline":
        return ({"type": "registry", "ref": content_reference(target, registry)},), {"type": "inline"}
    if policy.type == "local":
        directory = root / policy.dir_for(name)
        cache_from = ({"type": "local", "src": str(directory)},) if directory.is_dir() else ()
        return cache_from, {"type": "local", "dest": str(directory), "mode": policy.mode, "ignore-error": "true"}
    return (), None


def _absolute(secret: Secret, root: Path) -> Secret:
    """A file secret's path made absolute against the pipeline directory."""
    if secret.source != "file":
        return secret
    return Secret(secret.id, secret.source, str((root / secret.location).resolve()))
