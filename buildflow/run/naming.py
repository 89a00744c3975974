"""The runner's naming rules and requests: content and record tags, pinned references, what a build is given.

Requests are built here without touching Docker, so what a build will be given is testable on its own; the
engine only carries them out.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from buildflow.engine.base import BuildRequest
from buildflow.model import BASE_IMAGE_ARG, EdgeKind, Secret, SshForward, Target
from buildflow.pipeline.variables import slug
from buildflow.references import pinned, untagged

CONTENT_TAG_PREFIX = "bf-"
SOURCE_DATE_EPOCH = "SOURCE_DATE_EPOCH"


@dataclass(frozen=True)
class BuildOptions:
    """Run-wide choices that shape every build."""

    push: bool = True
    no_cache: bool = False
    pull: bool = False


def repository(target: Target, registry: str) -> str:
    """The repository a target is pushed to: its first tag's, or REGISTRY/NAME."""
    if target.tags:
        return untagged(target.tags[0])
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
    registry_cache: bool = True,
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
    cache_from, cache_to = cache_settings(target, registry=registry, root=root, registry_cache=registry_cache)
    pushes = options.push and target.push
    if not pushes and cache_to is not None and cache_to.get("type") == "registry":
        cache_to = None  # --no-push: an experiment reads the shared cache, never writes it
    return BuildRequest(
        target_id=target.id,
        context=target.context,
        dockerfile=target.dockerfile,
        stage=target.stage,
        args=args,
        labels=target.labels,
        platforms=target.platforms,
        tags=(content_reference(target, registry),),
        build_contexts=_build_contexts(target, parents, from_parents),
        secrets=tuple(_absolute(secret, root) for secret in target.secrets),
        network=target.network,
        push=pushes,
        cache_from=cache_from,
        cache_to=cache_to,
        no_cache=options.no_cache,
        pull=options.pull,
        attest=target.attest,
        ssh=tuple(_ssh_absolute(forward, root) for forward in target.ssh),
        annotations=target.annotations or None,
    )


def _build_contexts(target: Target, parents: Mapping[str, str], from_parents: list[str]) -> dict[str, str]:
    """Named build contexts: pinned external bases, `from:` parents by target name, parents by Dockerfile name."""
    contexts = {
        name: f"docker-image://{pinned(name, digest)}"
        for name, digest in target.bases.items()
        if digest and "@" not in name  # a base written with its digest is pinned already
    }
    contexts |= {parent.split("[", 1)[0]: f"docker-image://{parents[parent]}" for parent in from_parents}
    for edge in target.parents:
        if edge.reference:
            contexts[edge.reference] = f"docker-image://{parents[edge.parent]}"
    return contexts


def cache_settings(
    target: Target, *, registry: str, root: Path, registry_cache: bool = True
) -> tuple[tuple[Mapping[str, str], ...], Mapping[str, str] | None]:
    """cache-from and cache-to for a target's cache policy (a failed cache export never fails a build). A builder
    that cannot export registry cache (the docker driver on the classic store) gets inline cache instead."""
    policy, name = target.cache, slug(target.id)
    if policy.type == "registry" and not registry_cache:
        policy = dataclasses.replace(policy, type="inline")
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


def _ssh_absolute(forward: SshForward, root: Path) -> SshForward:
    """An SSH forward's sockets and key files made absolute against the pipeline directory."""
    return SshForward(forward.id, tuple(str((root / path).resolve()) for path in forward.paths))
