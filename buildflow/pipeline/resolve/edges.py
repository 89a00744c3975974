"""Tags under the pipeline registry, and the edges Dockerfiles imply: FROM or COPY --from another target's image."""

from __future__ import annotations

import os
from pathlib import Path

from buildflow import references
from buildflow.errors import quoted
from buildflow.model import BASE_IMAGE_ARG, EdgeKind
from buildflow.pipeline import dockerfile as dockerfiles
from buildflow.pipeline import matrix
from buildflow.pipeline.inference import named_parents
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
        elif not _only_declared_parent(image, dockerfile):
            _add_named_parents(state, image, dockerfile)


def _add_named_parents(state: State, image: Image, parsed: dockerfiles.Dockerfile) -> None:
    """Add the images a Dockerfile names as edges (declared ones keep their kind) and note external bases."""

    def lookup(text: str) -> list[str]:
        """The images a name in the Dockerfile stands for: a target's (those agreeing on axes), or a tag's."""
        if text in state.images:
            return [other.id for other in state.images[text] if matrix.agrees(other.values, image.values)]
        return state.tag_index.owners(text)

    named, ambiguous, image.bases = named_parents(parsed, _inference_args(state, image), image.id, lookup)
    uses = {edge.parent: edge for edge in named}
    declared = {edge.parent for edge in image.edges}
    image.edges = [
        edge._replace(reference=uses[edge.parent].reference, line=uses[edge.parent].line)
        if edge.parent in uses
        else edge
        for edge in image.edges
    ] + [edge for edge in named if edge.parent not in declared]
    for ambiguity in ambiguous:
        state.problems.add(("targets", image.name), ambiguity.message())


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
    shown = os.path.normpath(Path(state.display).parent / image.source.dockerfile.relative_to(state.root))
    message = f"{error} (target {image.name}); fix the Dockerfile"
    state.problems.add((), message, file=shown, line=error.line, once=str(error))
