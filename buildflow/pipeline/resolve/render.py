"""Templates: the variables every target sees, and the templated settings of each image."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from buildflow.errors import FieldPath, did_you_mean, quoted
from buildflow.pipeline.contexts import check_paths
from buildflow.pipeline.resolve.state import Image, Scope, Source, State
from buildflow.pipeline.templates import Ambiguous, TemplateError, render
from buildflow.pipeline.variables import BUILTIN_NAMES, as_text, date_stamp, git_variables

FINGERPRINT = "{fingerprint}"
_NONE: Mapping[str, Any] = {}
_Sources = dict[tuple[str, str], tuple[Source | None, list[tuple[str, str]]]]


def render_text(state: State, template: str, scope: Mapping[str, str | Ambiguous], path: FieldPath, image: str) -> str:
    """Render one template, recording a problem (and returning '') when it cannot be filled."""
    try:
        rendered = render(template, scope)
    except TemplateError as error:
        if error.name.startswith("git_") and error.name not in scope:
            hint = f": {state.root} is not in a git checkout; pass --var {error.name}=VALUE"
        elif "undefined" in str(error):
            hint = did_you_mean(error.name, [n for n, v in scope.items() if isinstance(v, str)])
        else:
            hint = ""
        where = f" in {quoted(template)}" + (f" (target {image})" if image else "")
        # one report per setting and variable, not per matrix image
        state.problems.add(path, f"{error}{where}{hint}", once=f"template variable {error.name}")
        return ""
    if rendered is not template:
        state.budget.spend_characters(path, len(rendered))
    return rendered


def base_scope(state: State, overrides: Mapping[str, str], *, uses_git: bool) -> Scope:
    """Built-ins and pipeline variables (with --var overrides): what every target sees."""
    scope: Scope = {"registry": state.registry, "date": date_stamp()}
    if uses_git:
        scope.update(git_variables(state.root))
    declared = state.spec.get("vars", {})
    for name, value in declared.items():
        if name in BUILTIN_NAMES:
            state.problems.add(("vars", name), f"'{name}' is a built-in variable; choose another name")
        else:
            scope[name] = render_text(state, as_text(value), scope, ("vars", name), "")
    for name, value in overrides.items():
        if name not in declared and name not in BUILTIN_NAMES:
            known = [*declared, *sorted(BUILTIN_NAMES - {"target", "fingerprint"})]
            message = f"not a pipeline variable{did_you_mean(name, known)}; declare it under vars:"
            state.problems.add((), message, file=f"--var {name}")
        scope[name] = value
    return scope


def render_images(state: State, images: list[Image]) -> None:
    """Fill every templated setting of the images and check their contexts and Dockerfiles."""
    sources: _Sources = {}
    for image in images:
        _render(state, image, sources)


def _render(state: State, image: Image, sources: _Sources) -> None:
    """Fill every templated setting of an image and check its context and Dockerfile."""
    spec = state.specs[image.name]
    image.args = _fill_mapping(state, spec.get("args", _NONE), image, "args")
    image.labels = _fill_mapping(state, spec.get("labels", _NONE), image, "labels")
    image.platforms = [_fill(state, p, image, "platforms", i) for i, p in enumerate(spec.get("platforms", ()))]
    image.stage = _fill(state, spec.get("stage", ""), image, "stage")
    image.tags = [
        tag if FINGERPRINT in tag else _fill(state, tag, image, "tags", i) for i, tag in enumerate(spec.get("tags", ()))
    ]
    context = _fill(state, spec.get("context", "."), image, "context")
    dockerfile = _fill(state, spec.get("dockerfile", "Dockerfile"), image, "dockerfile")
    if context and dockerfile:
        image.source = _source(state, image.name, (context, dockerfile), sources)


def _fill(state: State, template: str, image: Image, key: str, item: str | int | None = None) -> str:
    """Render one templated setting of an image; text without braces is returned as it is."""
    if "{" not in template and "}}" not in template:
        return template
    path = ("targets", image.name, key) if key == "tags" else state.setting_path(image.name, key)
    return render_text(state, template, image.scope, path if item is None else (*path, item), image.id)


def _fill_mapping(state: State, mapping: Mapping[str, Any], image: Image, key: str) -> dict[str, str]:
    """Render a mapping of templates; one with no templates is shared as it is (it is never changed)."""
    if all(type(value) is str and "{" not in value and "}}" not in value for value in mapping.values()):
        return mapping  # type: ignore[return-value]
    return {name: _fill(state, as_text(value), image, key, name) for name, value in mapping.items()}


def _source(state: State, name: str, paths: tuple[str, str], sources: _Sources) -> Source | None:
    """The checked (context, Dockerfile) of an image (None, with problems, when they are not usable)."""
    if paths not in sources:
        context_path, dockerfile_path, problems = check_paths(state.root, *paths)
        source = Source(context_path, dockerfile_path) if context_path and dockerfile_path else None
        sources[paths] = (source, problems)
    source, problems = sources[paths]
    for setting, message in problems:
        state.problems.add(state.setting_path(name, setting), message)
    return source
