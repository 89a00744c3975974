"""Registry clean-up (`buildflow gc`): which content tags and build records go, and which stay and why.

Every build leaves `bf-<fingerprint>` (its image) and `bf-<fingerprint>.record` (its record) in its target's
repository. A build stays when it is what the pipeline's current inputs name (what the next run reuses), one of
the N newest of its target, or built within AGE (its record's time, else its image's creation). Whatever a tag
not written by buildflow points at (a release tag) stays, with its record, and so does every `bf-last.<target>`
record with the image it names: `status` compares against it. A registry deletes manifests by digest, which
removes every tag on that digest, so a digest goes only when every tag on it is to go.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from buildflow.engine.base import RECORD_MEDIA_TYPE, EngineError
from buildflow.engine.catalog import Deleted, RegistryCatalog
from buildflow.model import Target, parse_age
from buildflow.run.naming import CONTENT_TAG_PREFIX, repository
from buildflow.run.records import decode

LOOKUPS = 8  # registry lookups at once
_CONTENT = re.compile(rf"{CONTENT_TAG_PREFIX}([0-9a-f]{{24}})(\.record)?")
Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass(frozen=True)
class Policy:
    """What gc keeps: the N newest builds of each target, and (when set) every build used within AGE seconds."""

    keep: int = 1
    age: str = ""  # --older-than, e.g. 7d; '' : age keeps nothing
    selected: frozenset[str] | None = None  # target ids named on the command line; None: every target

    @property
    def older_than(self) -> float | None:
        """--older-than in seconds, or None."""
        return parse_age(self.age) if self.age else None


@dataclass
class Build:
    """One fingerprint's content tag and record in one repository, and what gc decided about them."""

    repository: str
    key: str  # the 24 hex digits of bf-<key>
    image: str = ""  # the digest bf-<key> points at ('' when the tag is missing)
    record: str = ""  # the digest bf-<key>.record points at
    target: str = ""  # the target its record names ('' when there is no readable record)
    built_at: float = 0.0  # its record's time, else its image's creation; 0 when unknown
    keep: str = ""  # why it stays ('' when it goes)
    image_left: str = ""  # why its image tag stays although the build goes: another staying tag shares its digest
    record_left: str = ""  # the same for its record

    @property
    def image_tag(self) -> str:
        """Its content tag."""
        return f"{CONTENT_TAG_PREFIX}{self.key}"

    @property
    def record_tag(self) -> str:
        """Its record's tag."""
        return f"{CONTENT_TAG_PREFIX}{self.key}.record"

    @property
    def tags(self) -> list[str]:
        """Its tags that exist."""
        return [tag for tag, digest in ((self.image_tag, self.image), (self.record_tag, self.record)) if digest]

    @property
    def going(self) -> dict[str, str]:
        """Tag -> digest of what is deleted (or would be, with --dry-run): nothing when it stays."""
        if self.keep:
            return {}
        parts = ((self.image_tag, self.image, self.image_left), (self.record_tag, self.record, self.record_left))
        return {tag: digest for tag, digest, left in parts if digest and not left}

    @property
    def goes(self) -> bool:
        """Something of it is deleted (or would be, with --dry-run)."""
        return bool(self.going)

    @property
    def why(self) -> str:
        """Why (some of) it stays."""
        return self.keep or "; ".join(reason for reason in (self.image_left, self.record_left) if reason)


@dataclass
class Repository:
    """One repository's tags and digests, and the builds found in it."""

    name: str
    tags: dict[str, str]  # tag -> digest
    builds: dict[str, Build] = field(default_factory=dict)  # key -> build
    latest: dict[str, tuple[str, str]] = field(default_factory=dict)  # bf-last.<target> -> (its digest, image's)

    def protected(self) -> dict[str, str]:
        """Digest -> a tag on it that stays (every tag that is not a build's that goes)."""
        going = {tag for build in self.builds.values() for tag in build.going}
        return {digest: tag for tag, digest in sorted(self.tags.items()) if tag not in going}


def repositories(targets: Iterable[Target], registry: str) -> dict[str, list[Target]]:
    """The repositories the targets push to, each with its targets."""
    found: dict[str, list[Target]] = defaultdict(list)
    for target in targets:
        if target.push:
            found[repository(target, registry)].append(target)
    return dict(found)


def scan(catalog: RegistryCatalog, name: str) -> Repository:
    """A repository's tags, their digests, and its builds with their records read."""
    tags = catalog.tags(name)
    digests = each(lambda tag: catalog.digest(f"{name}:{tag}") or "", tags)
    found = Repository(name, {tag: digest for tag, digest in zip(tags, digests, strict=True) if digest})
    for tag, digest in found.tags.items():
        match = _CONTENT.fullmatch(tag)
        if match:
            build = found.builds.setdefault(match[1], Build(name, match[1]))
            if match[2]:
                build.record = digest
            else:
                build.image = digest
    each(lambda build: _read_record(catalog, build), list(found.builds.values()))
    last = [tag for tag in found.tags if tag.startswith(f"{CONTENT_TAG_PREFIX}last.")]
    stored = each(lambda tag: catalog.get_artifact(f"{name}:{tag}", RECORD_MEDIA_TYPE), last)
    for tag, data in zip(last, stored, strict=True):
        record = decode(data)
        found.latest[tag] = (found.tags[tag], record.digest if record is not None else "")
    return found


def _read_record(catalog: RegistryCatalog, build: Build) -> None:
    """Fill in a build's target and time from its record, else its time from its image's creation."""
    stored = (
        decode(catalog.get_artifact(f"{build.repository}:{build.record_tag}", RECORD_MEDIA_TYPE))
        if build.record
        else None
    )
    if stored is not None:
        build.target, build.built_at = stored.target, stored.built_at
    if not build.built_at and build.image:
        build.built_at = catalog.created(f"{build.repository}@{build.image}")


def decide(found: Repository, current: Mapping[str, str], policy: Policy, now: float) -> None:
    """Say of every build in a repository whether it stays and why, or goes; `current` maps the content keys the
    pipeline's current inputs name to their targets."""
    released = {digest: tag for tag, digest in sorted(found.tags.items()) if not tag.startswith(CONTENT_TAG_PREFIX)}
    by_target: dict[str, list[Build]] = defaultdict(list)
    for build in found.builds.values():
        build.keep = _reason_to_keep(build, current, policy, now)
        if not build.keep and build.image in released:
            build.keep = f"release tag {released[build.image]} points at it"
        by_target[build.target].append(build)
    for tag, build in _latest(found).items():
        build.keep = build.keep or f"the latest build: {tag} names it (status compares against it)"
    for target, builds in by_target.items():
        newest = sorted(builds, key=lambda build: build.built_at, reverse=True)[: policy.keep]
        for build in newest:
            build.keep = build.keep or f"one of the {policy.keep} newest of {target or 'the builds without record'}"
    _leave_shared_digests(found)


def _latest(found: Repository) -> dict[str, Build]:
    """bf-last.<target> tag -> the build it is the record of (the one whose record has the same bytes, else the
    newest build of the image it names)."""
    builds = sorted(found.builds.values(), key=lambda build: build.built_at, reverse=True)
    latest = {}
    for tag, (record, image) in found.latest.items():
        named = [b for b in builds if b.record == record] or [b for b in builds if image and b.image == image]
        if named:
            latest[tag] = named[0]
    return latest


def _leave_shared_digests(found: Repository) -> None:
    """Leave the tags of a build that goes which share a digest with a tag that stays (deleting the digest would
    delete that tag too), until there is none left to find."""
    while True:
        protected = found.protected()
        shared = [(b, tag) for b in found.builds.values() for tag, digest in b.going.items() if digest in protected]
        if not shared:
            return
        for build, tag in shared:
            other = protected[build.image if tag == build.image_tag else build.record]
            reason = f"{tag} stays: {other}, which stays, points at the same digest"
            if tag == build.image_tag:
                build.image_left = reason
            else:
                build.record_left = reason


def _reason_to_keep(build: Build, current: Mapping[str, str], policy: Policy, now: float) -> str:
    """Why a build stays whatever its age and rank ('' when nothing keeps it)."""
    if policy.selected is not None and build.target not in policy.selected:
        return "not of a selected target"
    if build.key in current:
        return f"the current inputs of {current[build.key]}"
    if policy.older_than is not None and build.built_at >= now - policy.older_than:
        return "built within --older-than"
    return ""


@dataclass
class Cleanup:
    """What gc found, kept, deleted (or would delete) and freed, and whether the registry refused to delete."""

    policy: Policy
    dry_run: bool
    repositories: list[Repository] = field(default_factory=list)
    freed: int = 0  # bytes of manifests and blobs that nothing kept references any more
    deleted: set[str] = field(default_factory=set)  # repository@digest deleted
    refused: str = ""  # the registry that refuses deletes, and what it said
    error: str = ""  # a delete that failed otherwise: gc stopped there

    @property
    def going(self) -> list[Build]:
        """Every build that goes (or would go)."""
        return [build for found in self.repositories for build in found.builds.values() if build.goes]

    def gone(self, build: Build) -> bool:
        """The build was deleted (with --dry-run: would be)."""
        digests = {f"{build.repository}@{digest}" for digest in build.going.values()}
        return build.goes and (self.dry_run or digests <= self.deleted)

    def to_json(self) -> dict[str, Any]:
        """The report of --report FILE."""
        builds = [build for found in self.repositories for build in found.builds.values()]
        return {
            "dry_run": self.dry_run,
            "keep": self.policy.keep,
            "older_than": self.policy.age or None,
            "repositories": [found.name for found in self.repositories],
            "deleted": [_build_json(build) for build in builds if self.gone(build)],
            "not_deleted": [_build_json(build) for build in builds if build.goes and not self.gone(build)],
            "kept": [_build_json(build) for build in builds if not build.goes],
            "freed_bytes": self.freed,
            "refused": self.refused,
            "error": self.error,
        }


def collect(
    catalog: RegistryCatalog, targets: Sequence[Target], registry: str, policy: Policy, *, dry_run: bool
) -> Cleanup:
    """Scan the repositories of the targets, decide, count what deleting frees, then delete unless dry_run."""
    result = Cleanup(policy, dry_run)
    chosen = [t for t in targets if policy.selected is None or t.id in policy.selected]
    by_repository = repositories(targets, registry)
    now = time.time()
    for name in sorted(repositories(chosen, registry)):
        found = scan(catalog, name)
        decide(found, {target.fingerprint[:24]: target.id for target in by_repository[name]}, policy, now)
        result.repositories.append(found)
    result.freed = freed(catalog, result.repositories)
    if not dry_run:
        delete(catalog, result)
    return result


def freed(catalog: RegistryCatalog, found: Sequence[Repository]) -> int:
    """Bytes of the manifests, configs and layers of what goes that nothing kept in these repositories uses."""
    going = sorted({f"{r.name}@{digest}" for r in found for b in r.builds.values() for digest in b.going.values()})
    kept = sorted({f"{r.name}@{digest}" for r in found for digest in r.protected()})
    going_blobs: dict[str, int] = {}
    for contents in each(catalog.contents, going):
        going_blobs |= contents
    kept_blobs = {digest for contents in each(catalog.contents, kept) for digest in contents}
    return sum(size for digest, size in going_blobs.items() if digest not in kept_blobs)


def delete(catalog: RegistryCatalog, result: Cleanup) -> None:
    """Delete the image then the record of every build that goes; stop at the first refusal."""
    for build in result.going:
        for digest in build.going.values():
            if f"{build.repository}@{digest}" in result.deleted:
                continue
            try:
                answer = catalog.delete_manifest(build.repository, digest)
            except EngineError as error:
                result.error = str(error)
                return
            if answer is Deleted.REFUSED:
                host = build.repository.split("/", 1)[0]
                result.refused = f"{host} refuses deletes (405 UNSUPPORTED)"
                return
            result.deleted.add(f"{build.repository}@{digest}")


def _build_json(build: Build) -> dict[str, Any]:
    """One build in the report."""
    return {
        "repository": build.repository,
        "tags": build.tags,
        "image": build.image,
        "record": build.record,
        "target": build.target,
        "built_at": build.built_at,
        "deleted_tags": sorted(build.going),
        "why_kept": build.why,
    }


def each(function: Callable[[Item], Result], items: Sequence[Item]) -> list[Result]:
    """function over items, a few at once, in order."""
    if len(items) < 2:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(LOOKUPS, len(items))) as pool:
        return list(pool.map(function, items))
