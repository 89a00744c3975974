"""Build records: what a build was made of, kept beside its image in the registry so that any runner can compare.

A build record is a small JSON document stored as an OCI artifact next to the image it describes, under
`bf-<fingerprint>.record` and, for the latest build of each target, `bf-last.<target>`. It holds the inputs
(Dockerfile and context file digests, build args, bases, parents), the digest built and when, so that a
CI runner that keeps nothing locally can still say what changed since the last build.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from buildflow import __version__
from buildflow.model import Pipeline, Target, relative_path
from buildflow.pipeline.fingerprint import context_files, file_digest
from buildflow.quality.summary import SizeSummary

RECORD_VERSION = 1

Inputs = dict[str, Any]  # everything the fingerprint covers, spelled out (see inputs())


@dataclass(frozen=True)
class BuildRecord:
    """The record of one build: the digest built, when, on which parents, from which inputs, and its checks."""

    target: str
    digest: str
    built: str  # ISO 8601, UTC
    built_at: float  # seconds since the epoch
    source_date_epoch: str
    parent_digests: Mapping[str, str]
    buildflow: str
    inputs: Inputs
    tests: str | None = None  # the key of the image tests that passed on it (image_tests_key)
    size: SizeSummary | None = None
    version: int = RECORD_VERSION
    extra: Mapping[str, Any] = field(default_factory=dict)  # fields of a newer buildflow, kept as they are

    def with_tests(self, key: str) -> BuildRecord:
        """The same record, noting that the tests with this key passed."""
        return replace(self, tests=key)

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON object (size and tests only when known)."""
        document: dict[str, Any] = {
            **self.extra,
            "version": self.version,
            "target": self.target,
            "digest": self.digest,
            "built": self.built,
            "built_at": self.built_at,
            "source_date_epoch": self.source_date_epoch,
            "parent_digests": dict(self.parent_digests),
            "buildflow": self.buildflow,
            "inputs": self.inputs,
        }
        if self.tests is not None:
            document["tests"] = self.tests
        if self.size is not None:
            document["size"] = self.size.to_json()
        return document


_FIELDS = {"version", "target", "digest", "built", "built_at", "source_date_epoch", "parent_digests", "buildflow"}


def inputs(target: Target, pipeline: Pipeline) -> Inputs:
    """Everything the fingerprint of a target covers, spelled out so that two builds can be compared."""
    supply: Inputs = {"attest": [target.attest.sbom, target.attest.provenance]} if target.attest else {}
    if target.annotations:
        supply["annotations"] = dict(target.annotations)
    return {
        **supply,  # only when set: records of targets without them stay as they were
        "fingerprint": target.fingerprint,
        "dockerfile": relative_path(target.dockerfile, pipeline.root),
        "dockerfile_digest": file_digest(target.dockerfile),
        "context": relative_path(target.context, pipeline.root),
        "files": context_files(target.context, target.dockerfile),
        "args": dict(target.args),
        "stage": target.stage,
        "platforms": list(target.platforms),
        "labels": dict(target.labels),
        "secrets": [secret.id for secret in target.secrets],
        "bases": dict(target.bases),
        "parents": {edge.parent: pipeline.targets[edge.parent].fingerprint for edge in target.parents},
    }


def build_record(
    target: Target, pipeline: Pipeline, *, digest: str, parent_digests: Mapping[str, str], epoch: str
) -> BuildRecord:
    """The record of a finished build (no secret values: only secret ids are in the inputs)."""
    now = time.time()
    return BuildRecord(
        target=target.id,
        digest=digest,
        built=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        built_at=now,
        source_date_epoch=epoch,
        parent_digests=dict(parent_digests),
        buildflow=__version__,
        inputs=inputs(target, pipeline),
    )


def encode(record: BuildRecord) -> bytes:
    """A record as the bytes stored in the registry."""
    return json.dumps(record.to_json(), sort_keys=True, separators=(",", ":")).encode()


def decode(data: bytes | None) -> BuildRecord | None:
    """A stored record, or None when there is none or it is not one this version reads."""
    if not data:
        return None
    try:
        document = json.loads(data)
    except ValueError:
        return None
    if not isinstance(document, dict) or document.get("version") != RECORD_VERSION or "digest" not in document:
        return None
    return _from_json(document)


def _from_json(document: dict[str, Any]) -> BuildRecord:
    """A record from its JSON object; fields an older buildflow did not write get their defaults."""
    parents = document.get("parent_digests")
    found = document.get("inputs")
    return BuildRecord(
        target=str(document.get("target", "")),
        digest=str(document["digest"]),
        built=str(document.get("built", "")),
        built_at=_number(document.get("built_at")),
        source_date_epoch=str(document.get("source_date_epoch", "")),
        parent_digests=parents if isinstance(parents, dict) else {},
        buildflow=str(document.get("buildflow", "")),
        inputs=found if isinstance(found, dict) else {},
        tests=document["tests"] if isinstance(document.get("tests"), str) else None,
        size=_size(document.get("size")),
        extra={key: value for key, value in document.items() if key not in {*_FIELDS, "inputs", "tests", "size"}},
    )


def _number(value: object) -> float:
    """A stored time in seconds, 0 when missing or unreadable."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0


def _size(document: object) -> SizeSummary | None:
    """A stored size summary, or None when there is none or it cannot be read."""
    if not isinstance(document, dict):
        return None
    try:
        return SizeSummary.from_json(document)
    except (KeyError, TypeError):
        return None
