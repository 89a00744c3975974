"""The last stage: digests of external bases, fingerprints, and images frozen into Targets."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from buildflow.errors import format_path
from buildflow.model import Target
from buildflow.pipeline.dockerignore import IgnoreFileError
from buildflow.pipeline.fingerprint import ContextError, context_digest, file_digest, target_fingerprint
from buildflow.pipeline.resolve.edges import qualify
from buildflow.pipeline.resolve.problems import Problems
from buildflow.pipeline.resolve.render import FINGERPRINT, render_text
from buildflow.pipeline.resolve.settings import SETTING_KEYS, Settings, Supply, target_settings
from buildflow.pipeline.resolve.state import Image, Source, State

BaseResolver = Callable[[Sequence[str]], Mapping[str, str]]  # external image names -> digests (those found)


def base_digests(state: State, images: list[Image], resolve_bases: BaseResolver | None) -> Mapping[str, str]:
    """The digest of every external base: pinned ones as written, the others as `resolve_bases` finds them."""
    names = {name for image in images for name in image.bases}
    pinned = {name: name.rpartition("@")[2] for name in names if "@sha256:" in name}
    unpinned = sorted(names - pinned.keys())
    follow = state.spec.get("rebuild", {}).get("follow_bases", True)
    found = resolve_bases(unpinned) if resolve_bases and follow and unpinned else {}
    return {**found, **pinned}


def freeze_images(
    state: State, images: list[Image], order: list[list[str]], digests: Mapping[str, str]
) -> dict[str, Target]:
    """Fingerprint every image in dependency order and freeze it into a Target (file order kept)."""
    targets = _Freezer(state, digests).targets(order)
    _check_duplicate_tags(state.problems, targets)
    return {image.id: targets[image.id] for image in images}


class _Freezer:
    """Freezes images into Targets, sharing what the images of a target (or targets alike) have in common."""

    def __init__(self, state: State, digests: Mapping[str, str]) -> None:
        """Nothing frozen yet; `digests` are those of the external bases."""
        self.state = state
        self.digests = digests
        self.fingerprints: dict[str, str] = {}
        self.shared: dict[str, Settings] = {}  # by target name, '' for the targets that set none
        self.fingerprint_tags: dict[str, bool] = {}  # by target name

    def targets(self, order: list[list[str]]) -> dict[str, Target]:
        """Every image as a Target, parents first."""
        targets: dict[str, Target] = {}
        for layer in order:
            for image_id in layer:
                image = self.state.by_id[image_id]
                bases = {name: self.digests.get(name, "") for name in image.bases} if image.bases else {}
                settings = self._settings(image.name)
                fingerprint = self._fingerprint(image, bases, settings)
                self.fingerprints[image_id] = fingerprint
                targets[image_id] = self._target(image, fingerprint, bases, settings)
        return targets

    def _settings(self, name: str) -> Settings:
        """A target's settings: one object for every target that sets none of them."""
        key = "" if SETTING_KEYS.isdisjoint(self.state.raw[name]) else name
        if key not in self.shared:
            state = self.state
            cache_field = format_path(state.setting_path(name, "cache"))
            self.shared[key] = target_settings(
                state.specs[name], state.registry, state.spec.get("defaults", {}), cache_field
            )
        return self.shared[key]

    def _fingerprint(self, image: Image, bases: Mapping[str, str], settings: Settings) -> str:
        """The content fingerprint of an image (its parents are fingerprinted before it)."""
        assert image.source is not None
        dockerfile, context = _digests(self.state, image.source, image.name)
        return target_fingerprint(
            dockerfile=dockerfile,
            context=context,
            args=image.args,
            stage=image.stage,
            platforms=image.platforms,
            labels=image.labels,
            secret_ids=[secret.id for secret in settings.secrets],
            parents=[self.fingerprints[edge.parent] for edge in image.edges],
            bases=bases,
            artifact=artifact_inputs(settings.supply),
        )

    def _target(self, image: Image, fingerprint: str, bases: Mapping[str, str], settings: Settings) -> Target:
        """Freeze an image into a Target, filling tags that use {fingerprint}."""
        assert image.source is not None
        tags = tuple(image.tags)
        if self._uses_fingerprint(image.name):
            tags = tuple(
                _fingerprint_tag(self.state, image, index, tag, fingerprint) if FINGERPRINT in tag else tag
                for index, tag in enumerate(tags)
            )
        return Target(
            id=image.id,
            name=image.name,
            matrix=image.values,
            description=settings.description,
            context=image.source.context,
            dockerfile=image.source.dockerfile,
            stage=image.stage,
            args=image.args,
            labels=image.labels,
            tags=tags,
            platforms=tuple(image.platforms),
            secrets=settings.secrets,
            cache=settings.cache,
            push=settings.push,
            network=settings.network,
            tests=settings.tests if image.tests is None else image.tests,
            parents=tuple(image.edges),
            variables={name: value for name, value in image.scope.items() if isinstance(value, str)},
            fingerprint=fingerprint,
            bases=bases,
            lint=settings.lint,
            size_budget=settings.size_budget,
            attest=settings.supply.attest,
            ssh=settings.supply.ssh,
            annotations=settings.supply.annotations,
            oci_dir=self.state.root / settings.supply.oci_dir if settings.supply.oci_dir else None,
        )

    def _uses_fingerprint(self, name: str) -> bool:
        """True when one of a target's tag templates uses {fingerprint}."""
        if name not in self.fingerprint_tags:
            self.fingerprint_tags[name] = any(FINGERPRINT in tag for tag in self.state.specs[name].get("tags", ()))
        return self.fingerprint_tags[name]


def _digests(state: State, source: Source, name: str) -> tuple[str, str]:
    """The Dockerfile and context digests of a source; an unreadable context file is a problem."""
    if source.digests is None:
        try:
            context = context_digest(source.context, source.dockerfile)
        except IgnoreFileError as error:
            state.problems.add(state.setting_path(name, "context"), str(error))
            context = ""
        except ContextError as error:
            state.problems.add(state.setting_path(name, "context"), f"{error}; fix its permissions or .dockerignore it")
            context = ""
        except RecursionError:
            message = "directories nested too deeply to read; .dockerignore the deepest ones"
            state.problems.add(state.setting_path(name, "context"), message)
            context = ""
        source.digests = (file_digest(source.dockerfile), context)
    return source.digests


def _fingerprint_tag(state: State, image: Image, index: int, tag: str, fingerprint: str) -> str:
    """Render and qualify a tag that uses {fingerprint} (the first 12 hex digits)."""
    scope = {**image.scope, "fingerprint": fingerprint[:12]}
    rendered = render_text(state, tag, scope, ("targets", image.name, "tags", index), image.id)
    reference = qualify(state, image, index, rendered)[1] if rendered else None
    return str(reference) if reference else ""


def _check_duplicate_tags(problems: Problems, targets: Mapping[str, Target]) -> None:
    """Two images may not publish the same tag."""
    owner: dict[str, str] = {}
    for target in targets.values():
        for index, tag in enumerate(target.tags):
            first = owner.setdefault(tag, target.id)
            if first != target.id:
                axis = next(iter(target.matrix), "target")
                problems.add(
                    ("targets", target.name, "tags", index),
                    f"{tag} is produced by both {first} "
                    f"and {target.id}; put the matrix variables in the tag, e.g. {{{axis}}}",
                )


def artifact_inputs(supply: Supply) -> tuple[tuple[str, ...], ...]:
    """What changes the pushed artifact beyond the image's content: the attestations and annotations asked for
    (SSH forwarding changes no input buildflow can see, and the OCI layout is a copy)."""
    found: list[tuple[str, ...]] = []
    if supply.attest:
        found.append(("attest", supply.attest.sbom, supply.attest.provenance))
    if supply.annotations:
        found.append(("annotations", *(f"{key}={value}" for key, value in sorted(supply.annotations.items()))))
    return tuple(found)
