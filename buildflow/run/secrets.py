"""The values of a pipeline's build secrets, read where the build will read them, so that they can be masked."""

from __future__ import annotations

import os
from pathlib import Path

from buildflow.model import Pipeline, Target

LARGEST_SECRET_FILE = 1_000_000  # bytes; a larger secret file is not read to be masked


def secret_values(pipeline: Pipeline) -> set[str]:
    """Every value a build of the pipeline would be given as a secret: environment variables and file contents."""
    values: set[str] = set()
    for target in pipeline.targets.values():
        for secret in target.secrets:
            value = os.environ.get(secret.location) if secret.source == "env" else _file(pipeline, secret.location)
            if value:
                values.add(value)
    return values


def _file(pipeline: Pipeline, location: str) -> str | None:
    """A secret file's text (None when it cannot be read, or is too large to be worth masking)."""
    path = pipeline.root / location
    try:
        if path.stat().st_size > LARGEST_SECRET_FILE:
            return None
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def missing_secret(target: Target, root: Path) -> str:
    """Why a declared secret of the target has no value to hand to the build ('' when all have one; the value
    itself is never read)."""
    for secret in target.secrets:
        if secret.source == "env" and secret.location not in os.environ:
            return f"secret {secret.id}: environment variable {secret.location} is not set"
        if secret.source == "file" and not (root / secret.location).is_file():
            return f"secret {secret.id}: file {secret.location} not found (relative to {root})"
    return ""
