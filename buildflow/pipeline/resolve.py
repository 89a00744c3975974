"""From a validated spec to a resolved Pipeline: defaults, matrix, variables, tags, contexts, edges, fingerprints."""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from buildflow import references
from buildflow.errors import FieldPath, Problem, did_you_mean, quoted
from buildflow.graph import cycle_paths, layers
from buildflow.model import (
    BASE_IMAGE_ARG,
    CachePolicy,
    Edge,
    EdgeKind,
    LintPolicy,
    Pipeline,
    RebuildPolicy,
    RetryPolicy,
    Secret,
    Target,
    TestPolicy,
)
from buildflow.pipeline import dockerfile as dockerfiles
from buildflow.pipeline import matrix
from buildflow.pipeline.contexts import check_paths
from buildflow.pipeline.dockerignore import IgnoreFileError
from buildflow.pipeline.fingerprint import ContextError, context_digest, file_digest, target_fingerprint
from buildflow.pipeline.inference import TagIndex, named_parents
from buildflow.pipeline.spec import PipelineSpec, RebuildSpec, RetrySpec, TargetSpec
from buildflow.pipeline.templates import MAX_RENDERED_TOTAL, Ambiguous, TemplateError, render
from buildflow.pipeline.variables import (
    BUILTIN_NAMES,
    MAX_VISIBLE_VARIABLES,
    as_text,
    date_stamp,
    git_variables,
    merge_scopes,
)
from buildflow.sizes import parse_size

_MERGED_MAPPINGS = ("args", "labels", "secrets")
_FINGERPRINT = "{fingerprint}"
_FROM, _AFTER = EdgeKind.FROM, EdgeKind.DEPENDS_ON
_Settings = tuple[str, tuple[Secret, ...], CachePolicy, bool, str, TestPolicy, LintPolicy, int]
_SETTING_KEYS = frozenset({"description", "secrets", "cache", "push", "network", "test", "lint", "size_budget"})

Scope = dict[str, "str | Ambiguous"]
BaseResolver = Callable[[Sequence[str]], Mapping[str, str]]  # external image names -> digests (those found)
_EMPTY: Any = ()  # placeholder until _render fills an image's settings
_NONE: Mapping[str, Any] = {}


class _LimitExceeded(Exception):
    """A pipeline-wide limit was passed: resolution stops at once (the problem is recorded)."""


class _TooManyImages(Exception):
    """A target expands past its limit (raised before its choices of parents fill the memory)."""


@dataclass(slots=True)
class _Budget:
    """What the images resolved so far add up to, against the pipeline-wide limits."""

    images: int = 0
    variables: int = 0
    edges: int = 0
    characters: int = 0


class _Parent(NamedTuple):
    """A declared parent of a target: `from:` (with its `when:`) or `depends_on:`."""

    name: str
    kind: EdgeKind
    when: Mapping[str, Any]


@dataclass(slots=True)
class _Source:
    """A context directory and its Dockerfile: checked once, hashed once, shared by every image using them."""

    context: Path
    dockerfile: Path
    digests: tuple[str, str] | None = None  # (Dockerfile, context), computed when first needed


@dataclass(slots=True)
class _Image:
    """A target or matrix combination while it is being resolved (settings filled in by _render)."""

    id: str
    name: str
    values: dict[str, str]
    scope: Scope
    edges: list[Edge]
    args: dict[str, str] = _EMPTY
    labels: dict[str, str] = _EMPTY
    tags: list[str] = _EMPTY
    platforms: list[str] = _EMPTY
    source: _Source | None = None
    stage: str = ""
    bases: list[str] = _EMPTY  # external images the Dockerfile names


class Resolver:
    """Resolves one validated pipeline spec, collecting every problem instead of stopping at the first."""

    def __init__(
        self,
        spec: PipelineSpec,
        *,
        file: Path,
        display: str,
        overrides: Mapping[str, str],
        registry: str | None,
        skip: Mapping[str, set[str]],
        uses_git: bool = True,
        resolve_bases: BaseResolver | None = None,
    ) -> None:
        self.spec = spec
        self.file = file
        self.display = display
        self.root = file.parent.resolve()
        self.overrides = overrides
        self.uses_git = uses_git
        self.resolve_bases = resolve_bases
        self.registry = (registry if registry is not None else spec.get("registry", "")).rstrip("/")
        self.skip = set(skip)
        self.broken_fields = skip
        self.raw: dict[str, TargetSpec] = spec["targets"]
        self.specs = {name: self._with_defaults(raw) for name, raw in self.raw.items() if name not in skip}
        self.parents: dict[str, list[_Parent]] = {}
        self.images: dict[str, list[_Image]] = {}
        self.by_id: dict[str, _Image] = {}
        self.tag_index = TagIndex()
        self.problems: list[Problem] = []
        self._reported: set[tuple[FieldPath, str]] = set()
        self._sources: dict[tuple[str, str], tuple[_Source | None, list[tuple[str, str]]]] = {}
        self._fingerprint_tags: dict[str, bool] = {}
        self._shared: dict[str, _Settings] = {}
        self._dockerfiles: dict[Path, dockerfiles.Dockerfile | dockerfiles.DockerfileError] = {}
        self._spent = _Budget()

    def problem(self, path: FieldPath, message: str) -> None:
        """Record a problem in the pipeline file, once per field and message."""
        if (path, message) not in self._reported:
            self._reported.add((path, message))
            self.problems.append(Problem(message, path, self.display))

    def field(self, name: str, key: str) -> FieldPath:
        """Where a target's setting is written: on the target, or under defaults."""
        written_on_target = key in self.raw[name] or key not in self.spec.get("defaults", {})
        return ("targets", name, key) if written_on_target else ("defaults", key)

    def resolve(self) -> Pipeline | None:
        """Resolve everything; None when problems were found (they are in self.problems)."""
        try:
            return self._resolve()
        except _LimitExceeded:
            return None

    def _resolve(self) -> Pipeline | None:
        """Resolve everything, raising _LimitExceeded as soon as a pipeline-wide limit is passed."""
        base_scope = self._base_scope()
        for name in self._template_order():
            self.images[name] = self._expand(name, base_scope)
        images = [image for name in self.specs for image in self.images.get(name, [])]
        for image in images:
            self._render(image)
        self._index_tags(images)
        for image in images:
            self._infer_edges(image)
        order = self._image_order(images)
        if self.problems:
            return None
        targets = self._finish(images, order)
        if self.problems:
            return None
        return Pipeline(
            self.file,
            self.root,
            self.registry,
            targets,
            order,
            _retry_policy(self.spec.get("retry", {})),
            _rebuild_policy(self.spec.get("rebuild", {})),
        )

    # ---- defaults and variables -------------------------------------------------------------------------------

    def _with_defaults(self, raw: TargetSpec) -> TargetSpec:
        """A target's settings over the pipeline defaults; mappings merge key by key."""
        defaults = self.spec.get("defaults", {})
        merged: dict[str, Any] = {**defaults, **raw}
        for key in _MERGED_MAPPINGS:
            if key in defaults and key in raw:
                merged[key] = {**defaults[key], **raw[key]}  # type: ignore[literal-required]
        return merged  # type: ignore[return-value]

    def _base_scope(self) -> Scope:
        """Built-ins and pipeline variables (with --var overrides): what every target sees."""
        scope: Scope = {"registry": self.registry, "date": date_stamp()}
        if self.uses_git:
            scope.update(git_variables(self.root))
        declared = self.spec.get("vars", {})
        for name, value in declared.items():
            if name in BUILTIN_NAMES:
                self.problem(("vars", name), f"'{name}' is a built-in variable; choose another name")
            else:
                scope[name] = self._render_text(as_text(value), scope, ("vars", name), "")
        for name, value in self.overrides.items():
            if name not in declared and name not in BUILTIN_NAMES:
                known = [*declared, *sorted(BUILTIN_NAMES - {"target", "fingerprint"})]
                message = f"not a pipeline variable{did_you_mean(name, known)}; declare it under vars:"
                self.problems.append(Problem(message, file=f"--var {name}"))
            scope[name] = value
        return scope

    # ---- the order of targets ---------------------------------------------------------------------------------

    def _template_order(self) -> list[str]:
        """Targets parents first; unknown parents and cycles become problems and block their descendants."""
        for name, spec in self.specs.items():
            self.parents[name] = self._declared_parents(name, spec)
        for name, fields in self.broken_fields.items():
            if name in self.raw and not fields & {"", "from", "depends_on"}:
                self._check_parent_names(name, self.raw[name])
        parent_names = {name: [p.name for p in parents] for name, parents in self.parents.items()}
        found, unplaced = layers(parent_names)
        for cycle in cycle_paths(parent_names, unplaced) if unplaced else []:
            key = "from" if "from" in self.raw[cycle[0]] else "depends_on"
            self.problem(
                ("targets", cycle[0], key), f"cycle: {' -> '.join([*cycle, cycle[0]])}; remove one of these edges"
            )
        return [name for layer in found for name in layer if name in self.specs]

    def _declared_parents(self, name: str, spec: TargetSpec) -> list[_Parent]:
        """The `from:` and `depends_on:` parents that exist; unknown names are problems."""
        found: list[_Parent] = []
        if "from" not in spec and "depends_on" not in spec:
            return found
        for key, kind in (("from", _FROM), ("depends_on", _AFTER)):
            entries = spec.get(key)
            if entries is None:
                continue
            for index, entry in enumerate(entries if isinstance(entries, list) else [entries]):
                parent, when = (entry, {}) if isinstance(entry, str) else (entry["target"], entry.get("when", {}))
                where = (key, index if isinstance(entries, list) else None)
                if self._parent_is_valid(name, parent, when, where):
                    found.append(_Parent(parent, kind, when))
        return found

    def _check_parent_names(self, name: str, spec: TargetSpec) -> None:
        """Report unknown parents of a target that has other problems (so one run shows them all)."""
        for key in ("from", "depends_on"):
            entries = spec.get(key, [])
            for index, entry in enumerate(entries if isinstance(entries, list) else [entries]):
                parent = entry if isinstance(entry, str) else entry["target"]
                self._known_parent(
                    name,
                    parent,
                    ("targets", name, key) if not isinstance(entries, list) else ("targets", name, key, index),
                )

    def _parent_is_valid(self, name: str, parent: str, when: Mapping[str, Any], where: tuple[str, int | None]) -> bool:
        """Check a parent entry: the target exists, is not the child itself, `when:` names own axes."""
        if parent in self.raw and parent != name and not when:
            return True
        key, index = where
        path: FieldPath = ("targets", name, key) if index is None else ("targets", name, key, index)
        if not self._known_parent(name, parent, path):
            return False
        self._check_when(name, when, path)
        return True

    def _known_parent(self, name: str, parent: str, path: FieldPath) -> bool:
        """True when a named parent is a valid target; unknown names and self-references are problems."""
        if parent == name:
            self.problem(path, f"cycle: {name} -> {name}; a target cannot be its own parent")
        elif parent not in self.raw:
            self.problem(path, f"unknown target '{parent}'{did_you_mean(parent, self.raw)}")
        else:
            return True
        self.skip.add(name)
        return False

    def _check_when(self, name: str, when: Mapping[str, Any], path: FieldPath) -> None:
        """`when:` may only name the target's own matrix axes."""
        axes = matrix.own_axes(self.specs[name].get("matrix", {})) if when else {}
        for axis in when:
            if axis not in axes:
                self.problem((*path, "when", axis), f"'{axis}' is not a matrix axis of {name}{_axis_hint(axis, axes)}")

    def _image_order(self, images: list[_Image]) -> list[list[str]]:
        """Generations of images over every edge, inferred ones included; cycles are problems."""
        parents = {image.id: [edge.parent for edge in image.edges] for image in images}
        found, unplaced = layers(parents)
        for cycle in cycle_paths(parents, unplaced) if unplaced else []:
            name = self.by_id[cycle[0]].name
            self.problem(
                ("targets", name),
                f"cycle through Dockerfile FROM lines: {' -> '.join([*cycle, cycle[0]])}; remove one of these edges",
            )
        return found

    # ---- matrix expansion ---------------------------------------------------------------------------------------

    def _expand(self, name: str, base_scope: Scope) -> list[_Image]:
        """All images of one target: its own matrix combined with every consistent choice of parents."""
        if name in self.skip:
            return []
        spec_matrix = self.specs[name].get("matrix", {})
        axes = matrix.own_axes(spec_matrix)
        if axes and not self._axes_are_valid(name, axes):
            return []
        images: list[_Image] = []
        included: set[int] = set()
        excluded = spec_matrix.get("exclude", ())
        all_axes = {*axes, *self._inherited_axes(name)} if spec_matrix else set()
        chosen: list[tuple[list[_Image], matrix.Values]] = []
        try:
            for combo in matrix.combinations(axes):
                chosen.extend(
                    choice
                    for choice in self._parent_choices(name, combo)
                    if not excluded or not any(_excludes(entry, choice[1], all_axes) for entry in excluded)
                )
                if len(chosen) > matrix.MAX_IMAGES_PER_TARGET:
                    raise _TooManyImages
        except _TooManyImages:
            self._too_many_images(name)
            return []
        if len(chosen) > 1 and self.parents[name]:
            position = {image_id: index for index, image_id in enumerate(self.by_id)}
            chosen.sort(key=lambda choice: [position[parent.id] for parent in choice[0]])
        for parents, values in chosen:
            images.append(self._new_image(name, parents, values, base_scope, (included, all_axes)))
        self._spend(name, images=len(images))
        if spec_matrix:
            self._check_matrix(name, spec_matrix, images, included, all_axes)
        return images

    def _axes_are_valid(self, name: str, axes: Mapping[str, list[str]]) -> bool:
        """Own axes must not repeat inherited axes or built-ins, and their product must stay under the limit."""
        inherited = self._inherited_axes(name)
        valid = True
        for axis in axes:
            if axis in inherited or axis in BUILTIN_NAMES:
                source = f"inherited from {inherited[axis]}" if axis in inherited else "a built-in variable"
                self.problem(("targets", name, "matrix", axis), f"'{axis}' is already {source}; rename the axis")
                valid = False
        count = matrix.combination_count(axes)
        if count > matrix.MAX_IMAGES_PER_TARGET:
            self.problem(
                ("targets", name, "matrix"),
                f"{count} combinations; the limit is "
                f"{matrix.MAX_IMAGES_PER_TARGET} per target: exclude combinations or split the target",
            )
            valid = False
        return valid

    def _inherited_axes(self, name: str) -> dict[str, str]:
        """Axes a target gets from its `from:` parents, with the parent each comes from."""
        inherited: dict[str, str] = {}
        for parent in self.parents[name]:
            if parent.kind == EdgeKind.FROM:
                for image in self.images.get(parent.name, []):
                    for axis in image.values:
                        inherited.setdefault(axis, parent.name)
        return inherited

    def _spend(self, name: str, *, images: int = 0, variables: int = 0, edges: int = 0) -> None:
        """Count what a target adds to the pipeline; past a pipeline-wide limit, record it and stop resolving."""
        spent = self._spent
        spent.images += images
        spent.variables += variables
        spent.edges += edges
        if spent.images > matrix.MAX_IMAGES_PER_PIPELINE:
            message = (
                f"expands to more than {matrix.MAX_IMAGES_PER_PIPELINE:,} images, the limit per pipeline: "
                "exclude combinations or split the pipeline"
            )
            self.problem(("targets",), message)
        elif spent.edges > matrix.MAX_EDGES_PER_PIPELINE:
            message = (
                f"the images have more than {matrix.MAX_EDGES_PER_PIPELINE:,} parents in all, the limit per "
                f"pipeline ({name} has {edges:,} per image): depend on fewer targets or split the pipeline"
            )
            self.problem(("targets", name), message)
        elif spent.variables > MAX_VISIBLE_VARIABLES:
            message = (
                f"the images see more than {MAX_VISIBLE_VARIABLES:,} variables in all, the limit per pipeline "
                f"({name} sees {variables:,}; variables flow down to every descendant): declare fewer variables"
            )
            self.problem(("targets", name), message)
        else:
            return
        raise _LimitExceeded

    def _too_many_images(self, name: str) -> None:
        """Record that a target expands past the per-target limit."""
        self.problem(
            ("targets", name, "matrix"),
            f"expands to more than {matrix.MAX_IMAGES_PER_TARGET} images; exclude combinations or split the target",
        )

    def _parent_choices(self, name: str, combo: matrix.Values) -> list[tuple[list[_Image], matrix.Values]]:
        """Each consistent choice of one image per applicable `from:` parent, with the merged axis values."""
        # Parents with unrelated axes multiply: past MAX_PARENT_CHOICES partial choices (which later parents could
        # only narrow in contrived pipelines) the target counts as over its limit, before the memory runs out.
        choices: list[tuple[list[_Image], matrix.Values]] = [([], {})]
        for parent in self.parents[name]:
            if parent.kind != EdgeKind.FROM or (parent.when and not matrix.when_matches(parent.when, combo)):
                continue
            narrowed: list[tuple[list[_Image], matrix.Values]] = []
            for chosen, values in choices:
                narrowed.extend(
                    ([*chosen, image], {**values, **image.values} if image.values else values)
                    for image in self.images.get(parent.name, [])
                    if not values or matrix.agrees(image.values, values)
                )
                if len(narrowed) > matrix.MAX_PARENT_CHOICES:
                    raise _TooManyImages
            choices = narrowed
        return [(chosen, {**values, **combo} if combo else values) for chosen, values in choices]

    def _new_image(
        self,
        name: str,
        parents: list[_Image],
        values: matrix.Values,
        base_scope: Scope,
        includes: tuple[set[int], set[str]],
    ) -> _Image:
        """One image with its edges and the variables it sees."""
        spec = self.specs[name]
        depends = [
            image
            for parent in self.parents[name]
            if parent.kind is _AFTER
            for image in self.images.get(parent.name, [])
            if not values or matrix.agrees(image.values, values)
        ]
        ancestors = [*parents, *depends] if depends else parents
        self._spend(name, edges=len(ancestors))
        if len(ancestors) == 1:
            scope = dict(ancestors[0].scope)
        else:
            scope = merge_scopes((p.id, p.scope) for p in ancestors) if ancestors else dict(base_scope)
        if "vars" in spec:
            self._apply_own_vars(name, scope)
        scope.update(values)
        if "include" in spec.get("matrix", {}):
            scope.update(self._include_vars(name, values, *includes))
        scope["target"] = name
        self._spend(name, variables=len(scope))
        edges = [Edge(p.id, _FROM) for p in parents] + [Edge(p.id, _AFTER) for p in depends]
        image = _Image(matrix.image_id(name, values), name, values, scope, edges)
        if image.id in self.by_id:
            self.problem(
                ("targets", name, "matrix"),
                f"duplicate target {image.id} after matrix expansion; remove the repeated value",
            )
        self.by_id[image.id] = image
        return image

    def _apply_own_vars(self, name: str, scope: Scope) -> None:
        """A target's own `vars:`, rendered against what it inherits."""
        rendered = {}
        for var, value in self.specs[name].get("vars", {}).items():
            path = ("targets", name, "vars", var)
            if var in BUILTIN_NAMES:
                self.problem(path, f"'{var}' is a built-in variable; choose another name")
            else:
                rendered[var] = self._render_text(as_text(value), scope, path, name)
        scope.update(rendered)

    def _include_vars(self, name: str, values: matrix.Values, matched: set[int], axes: set[str]) -> dict[str, str]:
        """Variables that `matrix.include` entries add to this combination."""
        extra: dict[str, str] = {}
        for index, entry in enumerate(self.specs[name].get("matrix", {}).get("include", [])):
            if matrix.entry_matches(entry, values, axes):
                matched.add(index)
                extra.update({key: as_text(value) for key, value in entry.items() if key not in axes})
        return extra

    def _check_matrix(
        self, name: str, spec_matrix: Mapping[str, Any], images: list[_Image], included: set[int], axes: set[str]
    ) -> None:
        """Exclude entries must name axes, include entries must match, and something must be left to build."""
        for index, entry in enumerate(spec_matrix.get("exclude", [])):
            for axis in set(entry) - axes:
                path = ("targets", name, "matrix", "exclude", index, axis)
                self.problem(path, f"'{axis}' is not a matrix axis of {name}{_axis_hint(axis, axes)}")
        for index, _entry in enumerate(spec_matrix.get("include", [])):
            if images and index not in included:
                self.problem(("targets", name, "matrix", "include", index), "matches no combination; check its values")
        if not images and spec_matrix.get("exclude"):
            self.problem(("targets", name, "matrix", "exclude"), "excludes every combination; nothing is left to build")

    # ---- rendering settings ---------------------------------------------------------------------------------------

    def _render_text(self, template: str, scope: Mapping[str, str | Ambiguous], path: FieldPath, image: str) -> str:
        """Render one template, recording a problem (and returning '') when it cannot be filled."""
        try:
            rendered = render(template, scope)
        except TemplateError as error:
            if error.name.startswith("git_") and error.name not in scope:
                hint = f": {self.root} is not in a git checkout; pass --var {error.name}=VALUE"
            elif "undefined" in str(error):
                hint = did_you_mean(error.name, [n for n, v in scope.items() if isinstance(v, str)])
            else:
                hint = ""
            once = (path, f"template variable {error.name}")  # one report per setting, not per matrix image
            if once not in self._reported:
                self._reported.add(once)
                where = f" in {quoted(template)}" + (f" (target {image})" if image else "")
                self.problem(path, f"{error}{where}{hint}")
            return ""
        if rendered is not template:
            self._spend_characters(path, len(rendered))
        return rendered

    def _spend_characters(self, path: FieldPath, count: int) -> None:
        """Count rendered characters; past MAX_RENDERED_TOTAL, record it and stop resolving."""
        self._spent.characters += count
        if self._spent.characters > MAX_RENDERED_TOTAL:
            message = (
                f"templates render more than {MAX_RENDERED_TOTAL:,} characters in all, the limit per pipeline; "
                "use shorter variables"
            )
            self.problem(path, message)
            raise _LimitExceeded

    def _fill(self, template: str, image: _Image, key: str, item: str | int | None = None) -> str:
        """Render one templated setting of an image; text without braces is returned as it is."""
        if "{" not in template and "}}" not in template:
            return template
        path = ("targets", image.name, key) if key == "tags" else self.field(image.name, key)
        return self._render_text(template, image.scope, path if item is None else (*path, item), image.id)

    def _render(self, image: _Image) -> None:
        """Fill every templated setting of an image and check its context and Dockerfile."""
        spec, fill = self.specs[image.name], self._fill
        image.args = self._fill_mapping(spec.get("args", _NONE), image, "args")
        image.labels = self._fill_mapping(spec.get("labels", _NONE), image, "labels")
        image.platforms = [fill(p, image, "platforms", i) for i, p in enumerate(spec.get("platforms", ()))]
        image.stage = fill(spec.get("stage", ""), image, "stage")
        image.tags = [
            tag if _FINGERPRINT in tag else fill(tag, image, "tags", i) for i, tag in enumerate(spec.get("tags", ()))
        ]
        context = fill(spec.get("context", "."), image, "context")
        dockerfile = fill(spec.get("dockerfile", "Dockerfile"), image, "dockerfile")
        if context and dockerfile:
            image.source = self._source(image.name, context, dockerfile)

    def _fill_mapping(self, mapping: Mapping[str, Any], image: _Image, key: str) -> dict[str, str]:
        """Render a mapping of templates; one with no templates is shared as it is (it is never changed)."""
        if all(type(value) is str and "{" not in value and "}}" not in value for value in mapping.values()):
            return mapping  # type: ignore[return-value]
        return {name: self._fill(as_text(value), image, key, name) for name, value in mapping.items()}

    def _source(self, name: str, context: str, dockerfile: str) -> _Source | None:
        """The checked context and Dockerfile of an image (None, with problems, when they are not usable)."""
        key = (context, dockerfile)
        if key not in self._sources:
            context_path, dockerfile_path, problems = check_paths(self.root, context, dockerfile)
            source = _Source(context_path, dockerfile_path) if context_path and dockerfile_path else None
            self._sources[key] = (source, problems)
        source, problems = self._sources[key]
        for setting, message in problems:
            self.problem(self.field(name, setting), message)
        return source

    # ---- tags and inferred edges ---------------------------------------------------------------------------

    def _index_tags(self, images: list[_Image]) -> None:
        """Qualify and check every tag, and index images by the references they publish."""
        for image in images:
            qualified = []
            for index, tag in enumerate(image.tags):
                if _FINGERPRINT in tag:
                    qualified.append(tag)
                elif tag:
                    written, pushed = self._qualified(image, index, tag)
                    if pushed is not None:
                        qualified.append(str(pushed))
                        self.tag_index.add(written, pushed, image.id)
            image.tags = qualified

    def _qualified(
        self, image: _Image, index: int, tag: str
    ) -> tuple[references.Reference, references.Reference | None]:
        """A tag as written and under the pipeline registry; None (with a problem) when it is invalid."""
        try:
            written = references.parse(tag)
            return written, references.qualify(written, self.registry)
        except ValueError as error:
            template = self.specs[image.name]["tags"][index]
            shown = f"'{tag}'" + (f" (from '{template}', target {image.id})" if template != tag else "")
            self.problem(("targets", image.name, "tags", index), f"{shown} is not a valid tag: {error}")
            return references.Reference("", "", "", ""), None

    def _infer_edges(self, image: _Image) -> None:
        """Add an edge for every Dockerfile FROM / COPY --from that names another target's image."""
        if image.source is None:
            return
        parsed = self._dockerfile(image.source.dockerfile)
        if isinstance(parsed, dockerfiles.DockerfileError):
            self._dockerfile_problem(image, parsed)
            return
        if self._only_declared_parent(image, parsed):
            return

        def lookup(text: str) -> list[str]:
            if text in self.images:
                return [other.id for other in self.images[text] if matrix.agrees(other.values, image.values)]
            return self.tag_index.owners(text)

        named, ambiguous, image.bases = named_parents(parsed, self._inference_args(image), image.id, lookup)
        uses = {edge.parent: edge for edge in named}
        declared = {edge.parent for edge in image.edges}
        image.edges = [
            edge._replace(reference=uses[edge.parent].reference, line=uses[edge.parent].line)
            if edge.parent in uses
            else edge
            for edge in image.edges
        ] + [edge for edge in named if edge.parent not in declared]
        for ambiguity in ambiguous:
            self.problem(("targets", image.name), ambiguity.message())

    @staticmethod
    def _only_declared_parent(image: _Image, parsed: dockerfiles.Dockerfile) -> bool:
        """True when every FROM is ${BASE_IMAGE}, which buildflow sets to the first `from:` parent."""
        has_from_parent = bool(image.edges) and image.edges[0].kind is _FROM
        return has_from_parent and BASE_IMAGE_ARG not in image.args and parsed.only_uses(BASE_IMAGE_ARG)

    def _dockerfile(self, path: Path) -> dockerfiles.Dockerfile | dockerfiles.DockerfileError:
        """A parsed Dockerfile (or why it cannot be parsed), read once per run."""
        if path not in self._dockerfiles:
            try:
                self._dockerfiles[path] = dockerfiles.read(path)
            except dockerfiles.DockerfileError as error:
                self._dockerfiles[path] = error
        return self._dockerfiles[path]

    def _inference_args(self, image: _Image) -> dict[str, str]:
        """Build args as the build will see them: BASE_IMAGE names the first `from:` parent."""
        primary = next((edge.parent for edge in image.edges if edge.kind == EdgeKind.FROM), None)
        if primary is None or BASE_IMAGE_ARG in image.args:
            return image.args
        return {**image.args, BASE_IMAGE_ARG: self.by_id[primary].name}

    def _dockerfile_problem(self, image: _Image, error: dockerfiles.DockerfileError) -> None:
        """A Dockerfile BuildKit would refuse, reported against the Dockerfile itself."""
        assert image.source is not None
        shown = os.path.normpath(Path(self.display).parent / image.source.dockerfile.relative_to(self.root))
        key: tuple[FieldPath, str] = (("dockerfile", shown), str(error))
        if key not in self._reported:
            self._reported.add(key)
            self.problems.append(
                Problem(f"{error} (target {image.name}); fix the Dockerfile", file=shown, line=error.line)
            )

    # ---- fingerprints and the final targets -------------------------------------------------------------------

    def _finish(self, images: list[_Image], order: list[list[str]]) -> dict[str, Target]:
        """Fingerprint every image in dependency order and freeze it into a Target (file order kept)."""
        fingerprints: dict[str, str] = {}
        targets: dict[str, Target] = {}
        digests = self._base_digests(images)
        for layer in order:
            for image_id in layer:
                image = self.by_id[image_id]
                bases = {name: digests.get(name, "") for name in image.bases} if image.bases else {}
                fingerprints[image_id] = self._fingerprint(image, [fingerprints[e.parent] for e in image.edges], bases)
                targets[image_id] = self._target(image, fingerprints[image_id], bases)
        self._check_duplicate_tags(targets)
        return {image.id: targets[image.id] for image in images}

    def _base_digests(self, images: list[_Image]) -> Mapping[str, str]:
        """The digest of every external base: pinned ones as written, the others as the resolver finds them."""
        names = {name for image in images for name in image.bases}
        pinned = {name: name.rpartition("@")[2] for name in names if "@sha256:" in name}
        unpinned = sorted(names - pinned.keys())
        follow = self.spec.get("rebuild", {}).get("follow_bases", True)
        found = self.resolve_bases(unpinned) if self.resolve_bases and follow and unpinned else {}
        return {**found, **pinned}

    def _fingerprint(self, image: _Image, parents: list[str], bases: Mapping[str, str]) -> str:
        """The content fingerprint of an image."""
        assert image.source is not None
        dockerfile, context = self._digests(image.source, image.name)
        return target_fingerprint(
            dockerfile=dockerfile,
            context=context,
            args=image.args,
            stage=image.stage,
            platforms=image.platforms,
            labels=image.labels,
            secret_ids=[secret.id for secret in self._settings(image.name)[1]],
            parents=parents,
            bases=bases,
        )

    def _digests(self, source: _Source, name: str) -> tuple[str, str]:
        """The Dockerfile and context digests of a source; an unreadable context file is a problem."""
        if source.digests is None:
            try:
                context = context_digest(source.context, source.dockerfile)
            except IgnoreFileError as error:
                self.problem(self.field(name, "context"), str(error))
                context = ""
            except ContextError as error:
                self.problem(self.field(name, "context"), f"{error}; fix its permissions or .dockerignore it")
                context = ""
            except RecursionError:
                message = "directories nested too deeply to read; .dockerignore the deepest ones"
                self.problem(self.field(name, "context"), message)
                context = ""
            source.digests = (file_digest(source.dockerfile), context)
        return source.digests

    def _target(self, image: _Image, fingerprint: str, bases: Mapping[str, str]) -> Target:
        """Freeze an image into a Target, filling tags that use {fingerprint}."""
        assert image.source is not None
        tags = tuple(image.tags)
        if self._uses_fingerprint(image.name):
            tags = tuple(
                self._fingerprint_tag(image, index, tag, fingerprint) if _FINGERPRINT in tag else tag
                for index, tag in enumerate(tags)
            )
        description, secrets, cache, push, network, tests, lint, size_budget = self._settings(image.name)
        return Target(
            id=image.id,
            name=image.name,
            matrix=image.values,
            description=description,
            context=image.source.context,
            dockerfile=image.source.dockerfile,
            stage=image.stage,
            args=image.args,
            labels=image.labels,
            tags=tags,
            platforms=tuple(image.platforms),
            secrets=secrets,
            cache=cache,
            push=push,
            network=network,
            tests=tests,
            parents=tuple(image.edges),
            variables={name: value for name, value in image.scope.items() if isinstance(value, str)},
            fingerprint=fingerprint,
            bases=bases,
            lint=lint,
            size_budget=size_budget,
        )

    def _uses_fingerprint(self, name: str) -> bool:
        """True when one of a target's tag templates uses {fingerprint}."""
        if name not in self._fingerprint_tags:
            self._fingerprint_tags[name] = any(_FINGERPRINT in tag for tag in self.specs[name].get("tags", ()))
        return self._fingerprint_tags[name]

    def _settings(self, name: str) -> _Settings:
        """Description, secrets, cache, push, network, tests, lint and size budget: shared by every target that
        sets none of them."""
        key = "" if _SETTING_KEYS.isdisjoint(self.raw[name]) else name
        if key not in self._shared:
            spec = self.specs[name]
            self._shared[key] = (
                spec.get("description", ""),
                Secret.all_from_spec(spec),
                CachePolicy.from_spec(spec, self.registry),
                spec.get("push", bool(self.registry)),
                spec.get("network", "default"),
                TestPolicy.from_spec(spec),
                LintPolicy.from_spec(spec, self.spec.get("defaults", {})),
                parse_size(spec["size_budget"]) if "size_budget" in spec else 0,
            )
        return self._shared[key]

    def _fingerprint_tag(self, image: _Image, index: int, tag: str, fingerprint: str) -> str:
        """Render and qualify a tag that uses {fingerprint} (the first 12 hex digits)."""
        scope = {**image.scope, "fingerprint": fingerprint[:12]}
        rendered = self._render_text(tag, scope, ("targets", image.name, "tags", index), image.id)
        reference = self._qualified(image, index, rendered)[1] if rendered else None
        return str(reference) if reference else ""

    def _check_duplicate_tags(self, targets: Mapping[str, Target]) -> None:
        """Two images may not publish the same tag."""
        owner: dict[str, str] = {}
        for target in targets.values():
            for index, tag in enumerate(target.tags):
                first = owner.setdefault(tag, target.id)
                if first != target.id:
                    axis = next(iter(target.matrix), "target")
                    self.problem(
                        ("targets", target.name, "tags", index),
                        f"{tag} is produced by both {first} "
                        f"and {target.id}; put the matrix variables in the tag, e.g. {{{axis}}}",
                    )


def _retry_policy(spec: RetrySpec) -> RetryPolicy:
    """The retry settings; delays may be written as text ("0.5") since YAML floats stay text."""
    default = RetryPolicy()
    return RetryPolicy(
        attempts=spec.get("attempts", default.attempts),
        initial_delay=float(spec.get("initial_delay", default.initial_delay)),
        max_delay=float(spec.get("max_delay", default.max_delay)),
    )


def _rebuild_policy(spec: RebuildSpec) -> RebuildPolicy:
    """The rebuild settings (max_age is checked by the schema)."""
    return RebuildPolicy(follow_bases=spec.get("follow_bases", True), max_age=spec.get("max_age", ""))


def _axis_hint(axis: str, axes: Collection[str]) -> str:
    """' — did you mean 'x'?', else the axes there are."""
    if not axes:
        return "; it has no matrix axes"
    return did_you_mean(axis, axes) or f"; its axes are {', '.join(sorted(axes))}"


def _excludes(entry: Mapping[str, Any], values: matrix.Values, axes: set[str]) -> bool:
    """True when an exclude entry names only axes and they all have its values."""
    return all(key in axes for key in entry) and matrix.entry_matches(entry, values, axes)
