"""Tags under the pipeline registry, and the edges Dockerfiles imply: FROM or COPY --from another target's image."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from buildflow import references
from buildflow.errors import did_you_mean, quoted
from buildflow.model import BASE_IMAGE_ARG, Edge, EdgeKind
from buildflow.pipeline import dockerfile as dockerfiles
from buildflow.pipeline import matrix
from buildflow.pipeline.inference import sorted_uses
from buildflow.pipeline.resolve.render import FINGERPRINT
from buildflow.pipeline.resolve.state import Image, State

_FROM = EdgeKind.FROM
_Parsed = dict[Path, dockerfiles.Dockerfile | dockerfiles.DockerfileError]


def index_tags(state: State, images: list[Image]) -> None:
    """Qualify and check every tag, and index images by the references they publish."""
    for image in images:
        qualified = []
        for index, tag in enumerate(image.tags):
            if FINGERPRINT in tag:
                qualified.append(tag)
            elif tag:
                written, pushed = qualify(state, image, index, tag)
                if pushed is not None:
                    qualified.append(str(pushed))
                    state.tag_index.add(written, pushed, image.id)
        image.tags = qualified


def qualify(
    state: State, image: Image, index: int, tag: str
) -> tuple[references.Reference, references.Reference | None]:
    """A tag as written and under the pipeline registry; None (with a problem) when it is invalid."""
    try:
        written = references.parse(tag)
        return written, references.qualify(written, state.registry)
    except ValueError as error:
        template = state.specs[image.name]["tags"][index]
        shown = quoted(tag, 512) + (f" (from {quoted(template, 512)}, target {image.id})" if template != tag else "")
        state.problems.add(("targets", image.name, "tags", index), f"{shown} is not a valid tag: {error}")
        return references.Reference("", "", "", ""), None


def infer_edges(state: State, images: list[Image]) -> None:
    """Add an edge for every Dockerfile FROM / COPY --from that names another target's image."""
    parsed: _Parsed = {}  # each Dockerfile read once
    for image in images:
        if image.source is None:
            continue
        dockerfile = _parsed(parsed, image.source.dockerfile)
        if isinstance(dockerfile, dockerfiles.DockerfileError):
            _dockerfile_problem(state, image, dockerfile)
        elif image.stage and not dockerfile.has_stage(image.stage):
            _unknown_stage(state, image, dockerfile)
        elif not _only_declared_parent(image, dockerfile):
            _add_named_parents(state, image, dockerfile)
    if any(isinstance(item, dockerfiles.Dockerfile) and item.has_triggers for item in parsed.values()):
        for image in images:
            if image.source is not None and image.edges:
                _add_trigger_parents(state, image, parsed)


def _lookup(state: State, image: Image) -> Callable[[str], list[str]]:
    """The images a name in the Dockerfile stands for: a target's (those agreeing on axes), or a tag's."""

    def lookup(text: str) -> list[str]:
        if text in state.images:
            return [other.id for other in state.images[text] if matrix.agrees(other.values, image.values)]
        return state.tag_index.owners(text)

    return lookup


def _add_named_parents(state: State, image: Image, parsed: dockerfiles.Dockerfile) -> None:
    """Add the images a Dockerfile names as edges (declared ones keep their kind) and note external bases."""
    args, contexts = _inference_args(state, image), _context_names(state, image, parsed)
    resolution = dockerfiles.resolve(parsed, args, stage=image.stage, platforms=image.platforms, contexts=contexts)
    found = [*resolution.uses, resolution.frontend] if resolution.frontend else resolution.uses
    named, ambiguous, image.bases = sorted_uses(found, image.id, _lookup(state, image))
    _merge(image, named)
    for ambiguity in ambiguous:
        state.problems.add(("targets", image.name), ambiguity.message())
    for unresolved in resolution.unresolved:
        _unresolved_warning(state, image, unresolved)


def _merge(image: Image, named: list[Edge]) -> None:
    """Declared edges keep their kind (and get the Dockerfile's name for the parent); the others are added."""
    uses = {edge.parent: edge for edge in named}
    declared = {edge.parent for edge in image.edges}
    image.edges = [
        edge._replace(reference=uses[edge.parent].reference, line=uses[edge.parent].line)
        if edge.parent in uses
        else edge
        for edge in image.edges
    ] + [edge for edge in named if edge.parent not in declared]


def _add_trigger_parents(state: State, image: Image, parsed: _Parsed) -> None:
    """An image built FROM another target's image runs that image's ONBUILD triggers: what they COPY --from or
    mount is the child's to wait for (a target's, as an edge) or to track (an external image's, as a base)."""
    own = parsed.get(image.source.dockerfile) if image.source else None
    if not isinstance(own, dockerfiles.Dockerfile):
        return
    found: list[tuple[dockerfiles.ImageUse, str]] = []
    for edge in image.edges:
        parent = state.by_id[edge.parent]
        if not edge.lineage or parent.source is None:
            continue
        theirs = _parsed(parsed, parent.source.dockerfile)
        if isinstance(theirs, dockerfiles.Dockerfile) and theirs.has_triggers:
            for use in dockerfiles.triggers(theirs, parent.stage):
                if not _names_a_stage(own, use.text):
                    found.append((dockerfiles.ImageUse(edge.line, use.instruction, use.text, frozenset()), use.text))
    if found:
        named, ambiguous, external = sorted_uses(found, image.id, _lookup(state, image))
        _merge(image, [edge for edge in named if edge.parent not in {e.parent for e in image.edges}])
        image.bases = [*image.bases, *(name for name in external if name not in image.bases)]
        for ambiguity in ambiguous:
            state.problems.add(("targets", image.name), ambiguity.message())


def _names_a_stage(parsed: dockerfiles.Dockerfile, text: str) -> bool:
    """True when a --from names a stage of this Dockerfile, by name or index."""
    return text.lower() in parsed.stages or text.isdigit()


def _context_names(state: State, image: Image, parsed: dockerfiles.Dockerfile) -> frozenset[str]:
    """The named build contexts a build passes that replace a stage of the same name: `from:` parents by target
    name (BuildKit builds on the context instead of the stage)."""
    if not parsed.stages:
        return frozenset()
    names = {state.by_id[edge.parent].name for edge in image.edges if edge.kind is _FROM}
    return frozenset(names & parsed.stages)


def _unknown_stage(state: State, image: Image, parsed: dockerfiles.Dockerfile) -> None:
    """A target stage the Dockerfile does not have: BuildKit's 'target stage could not be found'."""
    assert image.source is not None
    known = ", ".join(sorted(parsed.stages)) or "none is named"
    message = (
        f"no stage '{image.stage}' in {_shown(state, image.source.dockerfile)} (its stages: {known})"
        + did_you_mean(image.stage.lower(), parsed.stages)
    )
    state.problems.add(state.setting_path(image.name, "stage"), message, once=f"stage {image.stage}")


def _unresolved_warning(state: State, image: Image, unresolved: dockerfiles.Unresolved) -> None:
    """A FROM line that cannot be resolved offline: reported once per Dockerfile line, not tracked."""
    assert image.source is not None
    shown = _shown(state, image.source.dockerfile)
    line = unresolved.use.line
    state.warnings.add((), unresolved.message(image.name), file=shown, line=line, once=f"{line}")


def _shown(state: State, path: Path) -> str:
    """A Dockerfile's path as the user would name it: beside the pipeline file as they named it."""
    return os.path.normpath(Path(state.display).parent / path.relative_to(state.root))


def _only_declared_parent(image: Image, parsed: dockerfiles.Dockerfile) -> bool:
    """True when every FROM is ${BASE_IMAGE}, which buildflow sets to the first `from:` parent."""
    has_from_parent = bool(image.edges) and image.edges[0].kind is _FROM
    return has_from_parent and BASE_IMAGE_ARG not in image.args and parsed.only_uses(BASE_IMAGE_ARG)


def _parsed(parsed: _Parsed, path: Path) -> dockerfiles.Dockerfile | dockerfiles.DockerfileError:
    """A parsed Dockerfile (or why it cannot be parsed), read once per run."""
    if path not in parsed:
        try:
            parsed[path] = dockerfiles.read(path)
        except dockerfiles.DockerfileError as error:
            parsed[path] = error
    return parsed[path]


def _inference_args(state: State, image: Image) -> dict[str, str]:
    """Build args as the build will see them: BASE_IMAGE names the first `from:` parent."""
    primary = next((edge.parent for edge in image.edges if edge.kind == EdgeKind.FROM), None)
    if primary is None or BASE_IMAGE_ARG in image.args:
        return image.args
    return {**image.args, BASE_IMAGE_ARG: state.by_id[primary].name}


def _dockerfile_problem(state: State, image: Image, error: dockerfiles.DockerfileError) -> None:
    """A Dockerfile BuildKit would refuse, reported against the Dockerfile itself (once, for the first target)."""
    assert image.source is not None
    shown = _shown(state, image.source.dockerfile)
    message = f"{error} (target {image.name}); fix the Dockerfile"
    state.problems.add((), message, file=shown, line=error.line, once=str(error))
