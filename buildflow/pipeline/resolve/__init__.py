"""From a validated spec to a resolved Pipeline: defaults, matrix, variables, tags, contexts, edges, fingerprints."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from buildflow.errors import Problem
from buildflow.model import Pipeline, Target
from buildflow.pipeline.resolve.budget import LimitExceeded
from buildflow.pipeline.resolve.builders import check_builders
from buildflow.pipeline.resolve.edges import index_tags, infer_edges
from buildflow.pipeline.resolve.expand import expand_target
from buildflow.pipeline.resolve.freeze import BaseResolver, base_digests, freeze_images
from buildflow.pipeline.resolve.order import image_order, template_order
from buildflow.pipeline.resolve.render import base_scope, render_images
from buildflow.pipeline.resolve.settings import builder_specs, rebuild_policy, retry_policy
from buildflow.pipeline.resolve.state import State, start
from buildflow.pipeline.resolve.tests import render_tests
from buildflow.pipeline.spec import PipelineSpec

__all__ = ["BaseResolver", "image_names", "resolve"]


def resolve(
    spec: PipelineSpec,
    *,
    file: Path,
    display: str,
    overrides: Mapping[str, str],
    registry: str | None,
    skip: Mapping[str, set[str]],
    uses_git: bool = True,
    resolve_bases: BaseResolver | None = None,
) -> tuple[Pipeline | None, list[Problem]]:
    """The resolved pipeline (None when it has problems) and every problem found, all at once."""
    # skip: the targets with schema problems and the settings they are in. resolve_bases: finds the digests of
    # external bases (without it they enter the fingerprints by name only).
    state = start(spec, file=file, display=display, registry=registry, skip=skip)
    try:
        scope = base_scope(state, overrides, uses_git=uses_git)
        for name in template_order(state, skip):
            state.images[name] = expand_target(state, name, scope)
        images = [image for name in state.specs for image in state.images.get(name, [])]
        render_images(state, images)
        render_tests(state, images)
        check_builders(state, images)
        index_tags(state, images)
        infer_edges(state, images)
        order = image_order(state, images)
        if state.problems:
            return None, state.problems.found
        targets = freeze_images(state, images, order, base_digests(state, images, resolve_bases))
    except LimitExceeded:  # the problem is recorded; nothing after it would be worth reporting
        return None, state.problems.found
    return (None if state.problems else _pipeline(state, targets, order)), state.problems.found


def _pipeline(state: State, targets: dict[str, Target], order: list[list[str]]) -> Pipeline:
    """The resolved pipeline with its retry and rebuild policies and its builders."""
    retry, rebuild = retry_policy(state.spec.get("retry", {})), rebuild_policy(state.spec.get("rebuild", {}))
    builders = builder_specs(state.spec.get("builders", []))
    release = state.spec.get("release", "all")
    warnings = tuple(warning.render() for warning in state.warnings.found)
    return Pipeline(state.file, state.root, state.registry, targets, order, retry, rebuild, builders, release, warnings)


def image_names(
    spec: PipelineSpec, *, file: Path, overrides: Mapping[str, str], skip: Mapping[str, set[str]]
) -> list[tuple[str, str]]:
    """(target name, image id) of every image, from variables and matrices alone, problems ignored: no Dockerfile
    or context is read (for shell completion)."""
    state = start(spec, file=file, display=str(file), registry=None, skip=skip)
    try:
        scope = base_scope(state, overrides, uses_git=False)
        for name in template_order(state, skip):
            state.images[name] = expand_target(state, name, scope)
    except LimitExceeded:
        pass
    return [(image.name, image.id) for name in state.specs for image in state.images.get(name, [])]
