"""Build contexts and Dockerfiles on disk: they must exist and stay inside the pipeline directory."""

from __future__ import annotations

import os
from pathlib import Path

Checked = tuple[Path | None, Path | None, list[tuple[str, str]]]


def check_paths(root: Path, context: str, dockerfile: str) -> Checked:
    """Real paths of a context and its Dockerfile, and (setting, message) problems; symlinks are followed."""
    real_context = Path(os.path.realpath(root / context))
    if not inside(real_context, root):
        return (
            None,
            None,
            [("context", f"'{context}' is outside the pipeline directory {root}; put the context under it")],
        )
    if not real_context.is_dir():
        what = "is not a directory" if real_context.exists() else "does not exist"
        return None, None, [("context", f"'{context}' {what} (relative to {root}); create it or fix the path")]
    real_dockerfile = Path(os.path.realpath(real_context / dockerfile))
    if not inside(real_dockerfile, real_context):
        return (
            None,
            None,
            [("dockerfile", f"'{dockerfile}' is outside the context '{context}'; move it into the context")],
        )
    if not real_dockerfile.is_file():
        return (
            None,
            None,
            [("dockerfile", f"'{dockerfile}' not found in context '{context}'; create it or set dockerfile:")],
        )
    return real_context, real_dockerfile, []


def inside(path: Path, root: Path) -> bool:
    """True when `path` is `root` or below it."""
    return path == root or root in path.parents
