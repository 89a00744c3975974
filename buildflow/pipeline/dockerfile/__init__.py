"""Dockerfiles as BuildKit reads and builds them, for edge inference, base tracking and fingerprints.

`reading` parses a Dockerfile once (BuildKit's own parser, then its instruction rules); `expansion` expands ARGs
in a word as BuildKit's shell lexer does; `resolution` says what a build of one stage, with given build args
and platforms, pulls in: which images, which frontend, and which FROM lines cannot be known offline.
"""

from __future__ import annotations

from buildflow.pipeline.dockerfile.expansion import Expansion, ExpansionError, expand_word
from buildflow.pipeline.dockerfile.reading import (
    INSTRUCTIONS,
    PLATFORM_ARGS,
    SYNTAX_ARG,
    Dockerfile,
    DockerfileError,
    ImageUse,
    Resolution,
    Stage,
    Unresolved,
    read,
)
from buildflow.pipeline.dockerfile.resolution import (
    expand,
    host_platform,
    image_uses,
    platform_args,
    resolve,
    triggers,
)

__all__ = [
    "INSTRUCTIONS",
    "PLATFORM_ARGS",
    "SYNTAX_ARG",
    "Dockerfile",
    "DockerfileError",
    "Expansion",
    "ExpansionError",
    "ImageUse",
    "Resolution",
    "Stage",
    "Unresolved",
    "expand",
    "expand_word",
    "host_platform",
    "image_uses",
    "platform_args",
    "read",
    "resolve",
    "triggers",
]
