"""Builders: the docker contexts and buildx builders a run can build on, and what each of them can do."""

from __future__ import annotations

from dataclasses import dataclass

DOCKER_DRIVER = "docker"
CONTAINERD_STORE, CLASSIC_STORE = "containerd", "classic"


@dataclass(frozen=True)
class BuilderInfo:
    """One builder as it answers now: its driver, versions, image store and platforms, or why it does not answer."""

    name: str  # as the user names it: a docker context or a buildx builder ("" for the current one)
    context: str = ""  # the docker context whose engine it is (docker driver), "" for the current context
    builder: str = ""  # the buildx builder to build with (other drivers), "" for the context's own
    driver: str = DOCKER_DRIVER  # docker, docker-container, remote, kubernetes
    answers: bool = True
    error: str = ""  # why it does not answer
    engine_version: str = ""
    buildkit_version: str = ""
    image_store: str = CONTAINERD_STORE  # containerd or classic for the docker driver; "" for the others
    platforms: tuple[str, ...] = ()

    @property
    def local_images(self) -> bool:
        """Images it builds land in an engine's image store, where tests run and children build on them by name."""
        return self.driver == DOCKER_DRIVER

    @property
    def registry_cache(self) -> bool:
        """It can export build cache to a registry (the docker driver only with the containerd store)."""
        return self.driver != DOCKER_DRIVER or self.image_store == CONTAINERD_STORE

    @property
    def same_digest(self) -> bool:
        """The digest it builds is the one the registry holds after the push (not so with the classic store,
        whose push compresses the layers again)."""
        return self.driver != DOCKER_DRIVER or self.image_store == CONTAINERD_STORE

    @property
    def multi_platform(self) -> bool:
        """It builds images for several platforms in one build."""
        return self.driver != DOCKER_DRIVER or self.image_store == CONTAINERD_STORE

    @property
    def capabilities(self) -> tuple[str, ...]:
        """What it can do, in words, for `buildflow builders`."""
        found = {
            "registry cache": self.registry_cache,
            "push from BuildKit": True,
            "local image hand-off": self.local_images,
            "multi-platform": self.multi_platform,
        }
        return tuple(name for name, present in found.items() if present)
