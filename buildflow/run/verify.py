"""`buildflow verify`: rebuild images without cache, on the parents and SOURCE_DATE_EPOCH their build records name,
into a local OCI layout (no push, no tag moves), and say whether each digest is reproduced, and if not, which
layers and which files differ."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from buildflow.engine.base import BuildRequest, Engine, EngineError
from buildflow.engine.layout import INDEXES, SavedImage, read_saved
from buildflow.model import Pipeline, Target
from buildflow.pipeline.variables import slug
from buildflow.quality.layers import instructions
from buildflow.quality.reproduce import LayerDifference, Layers, differences
from buildflow.run.naming import BuildOptions, build_request, image_parents, record_reference, repository
from buildflow.run.records import BuildRecord, decode

REPRODUCED, TIMES_ONLY, DIFFERS, NOT_VERIFIED = "reproduced", "file times only", "differs", "not verified"


@dataclass
class Verdict:
    """What the rebuild of one image gave: its status, the two digests, the layers that differ, and why."""

    target: str
    status: str
    digest: str = ""  # the registry's, from the build record
    rebuilt: str = ""
    layers: list[LayerDifference] = field(default_factory=list)
    message: str = ""

    def passed(self, strict: bool) -> bool:
        """Reproduced, or (unless strict) the same files with other times."""
        return self.status == REPRODUCED or (self.status == TIMES_ONLY and not strict)

    def to_json(self) -> dict[str, Any]:
        """The verdict as a JSON object."""
        return {
            "id": self.target,
            "status": self.status,
            "digest": self.digest,
            "rebuilt": self.rebuilt,
            "message": self.message,
            "layers": [layer.to_json() for layer in self.layers],
        }


def verify(pipeline: Pipeline, targets: Sequence[Target], engine: Engine) -> list[Verdict]:
    """Rebuild each target without cache and compare it with the image its build record names."""
    with tempfile.TemporaryDirectory(prefix="buildflow-verify-") as scratch:
        return [verify_one(pipeline, target, engine, Path(scratch)) for target in targets]


def verify_one(pipeline: Pipeline, target: Target, engine: Engine, scratch: Path) -> Verdict:
    """Rebuild one target into scratch and compare; a build that fails or an image that cannot be read is said."""
    record = decode(engine.get_record(record_reference(target, pipeline.registry)))
    if record is None:
        return Verdict(target.id, NOT_VERIFIED, message="no build record for its current inputs: build it first")
    if len(target.platforms) > 1:
        return Verdict(target.id, NOT_VERIFIED, record.digest, message="multi-platform images are not verified yet")
    missing = [parent for parent in image_parents(target) if parent not in record.parent_digests]
    if missing:
        return Verdict(target.id, NOT_VERIFIED, record.digest, message=f"its record names no digest of {missing[0]}")
    path = scratch / f"{slug(target.id)}.tar"
    try:
        engine.build(_request(pipeline, target, record, path))
    except EngineError as error:
        return Verdict(target.id, NOT_VERIFIED, record.digest, message=f"the rebuild failed: {error}")
    saved = read_saved(str(path))
    if saved is None:
        return Verdict(target.id, NOT_VERIFIED, record.digest, message="the rebuilt image could not be read")
    try:
        return _compare(pipeline, target, record, saved, engine)
    finally:
        saved.close()
        path.unlink(missing_ok=True)


def _request(pipeline: Pipeline, target: Target, record: BuildRecord, path: Path) -> BuildRequest:
    """The rebuild: on the recorded parent digests and epoch, without cache, into an OCI layout at path."""
    parents = {
        parent: f"{repository(pipeline.targets[parent], pipeline.registry)}@{record.parent_digests[parent]}"
        for parent in image_parents(target)
    }
    request = build_request(
        target,
        parents,
        registry=pipeline.registry,
        root=pipeline.root,
        options=BuildOptions(push=False, no_cache=True),
        source_date_epoch=record.source_date_epoch,
        registry_cache=False,
    )
    return dataclasses.replace(request, cache_from=(), cache_to=None, export=str(path))


def _compare(pipeline: Pipeline, target: Target, record: BuildRecord, saved: SavedImage, engine: Engine) -> Verdict:
    """The rebuilt image against the registry's, layer by layer when the digests differ."""
    manifest = saved.below[0] if saved.top.media_type in INDEXES and saved.below else saved.top
    verdict = Verdict(target.id, REPRODUCED, record.digest, manifest.digest)
    if manifest.digest == record.digest:
        return verdict
    reference = f"{repository(target, pipeline.registry)}@{record.digest}"
    found = engine.image_layers(reference)
    rebuilt = [str(layer["digest"]) for layer in json.loads(manifest.data).get("layers", [])]
    registry = Layers(found.digests, lambda digest: engine.blob(reference, digest))
    registry.instructions = instructions(found.history, len(found.digests))
    verdict.layers = differences(registry, Layers(rebuilt, saved.open))
    if any(layer.content for layer in verdict.layers):
        verdict.status = DIFFERS
    elif verdict.layers:
        verdict.status = TIMES_ONLY
    else:
        verdict.status, verdict.message = DIFFERS, "the layers are the same; the image config differs"
    return verdict
