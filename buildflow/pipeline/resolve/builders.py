"""The checks of `builders:`: each builder named once, and every target platform built by some builder."""

from __future__ import annotations

from collections.abc import Sequence

from buildflow.pipeline.resolve.state import Image, State

# Platforms BuildKit reads as the same one: the default variant of arm64 and of amd64.
_DEFAULT_VARIANTS = {"linux/arm64/v8": "linux/arm64", "linux/amd64/v1": "linux/amd64"}


def check_builders(state: State, images: Sequence[Image]) -> None:
    """Record a builder named twice, and a target platform no builder has when every builder lists its own."""
    declared = state.spec.get("builders", [])
    first: dict[str, int] = {}
    for index, builder in enumerate(declared):
        name = builder["name"]
        if name in first:
            state.problems.add(
                ("builders", index, "name"),
                f"builder '{name}' is named twice (first as builders[{first[name]}]); name each builder once",
            )
        first.setdefault(name, index)
    if declared and all(builder.get("platforms") for builder in declared):
        written = list(dict.fromkeys(platform for builder in declared for platform in builder.get("platforms", ())))
        offered, listing = {_normal(platform) for platform in written}, ", ".join(written)
        for image in images:
            _check_platforms(state, image, offered, listing)


def _check_platforms(state: State, image: Image, offered: set[str], listing: str) -> None:
    """A problem for each platform of the image that no builder offers."""
    for index, platform in enumerate(image.platforms):
        if _normal(platform) not in offered:
            state.problems.add(
                (*state.setting_path(image.name, "platforms"), index),
                f"no builder builds '{platform}' (the builders list {listing}); add it to a builder's platforms: "
                "(one without platforms: builds any)",
            )


def _normal(platform: str) -> str:
    """A platform as BuildKit compares it: linux/arm64/v8 is linux/arm64."""
    return _DEFAULT_VARIANTS.get(platform, platform)
