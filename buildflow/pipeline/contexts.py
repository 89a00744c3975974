"""Build contexts and Dockerfiles on disk: they must exist and stay inside the pipeline directory."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from buildflow.errors import quoted

Checked = tuple[Path | None, Path | None, list[tuple[str, str]]]


class _Unusable(Exception):
    """A path that cannot be a context or Dockerfile: (setting, message)."""

    def __init__(self, setting: str, message: str) -> None:
        """The setting at fault and what to say about it."""
        super().__init__(message)
        self.setting = setting
        self.message = message


def check_paths(root: Path, context: str, dockerfile: str) -> Checked:
    """Real paths of a context and its Dockerfile, and (setting, message) problems; symlinks are followed."""
    try:
        real_context = _real_context(root, context)
        return real_context, _real_dockerfile(real_context, context, dockerfile), []
    except _Unusable as unusable:
        return None, None, [(unusable.setting, unusable.message)]


def _real_context(root: Path, context: str) -> Path:
    """The context directory with symlinks resolved; it must be a directory under the pipeline's."""
    real_context = _realpath("context", root, context)
    if not inside(real_context, root):
        raise _Unusable(
            "context", f"{quoted(context)} is outside the pipeline directory {root}; put the context under it"
        )
    if not _is("context", real_context, context, Path.is_dir):
        what = "is not a directory" if _is("context", real_context, context, Path.exists) else "does not exist"
        raise _Unusable("context", f"{quoted(context)} {what} (relative to {root}); create it or fix the path")
    return real_context


def _real_dockerfile(real_context: Path, context: str, dockerfile: str) -> Path:
    """The Dockerfile with symlinks resolved; it must be a file in the context."""
    real_dockerfile = _realpath("dockerfile", real_context, dockerfile)
    if not inside(real_dockerfile, real_context):
        raise _Unusable(
            "dockerfile", f"{quoted(dockerfile)} is outside the context {quoted(context)}; move it into the context"
        )
    if not _is("dockerfile", real_dockerfile, dockerfile, Path.is_file):
        if _is("dockerfile", real_dockerfile, dockerfile, Path.is_dir):
            raise _Unusable(
                "dockerfile", f"{quoted(dockerfile)} is a directory in context {quoted(context)}; name the file"
            )
        raise _Unusable(
            "dockerfile", f"{quoted(dockerfile)} not found in context {quoted(context)}; create it or set dockerfile:"
        )
    return real_dockerfile


def _realpath(setting: str, base: Path, written: str) -> Path:
    """`base / written` with symlinks resolved; a path the system cannot take is a problem."""
    if "\0" in written:
        raise _Unusable(setting, f"{quoted(written)} contains a NUL character; fix the path")
    try:
        return Path(os.path.realpath(base / written))
    except (OSError, ValueError) as error:
        raise _Unusable(
            setting, f"{quoted(written)} cannot be used as a path ({_reason(error)}); fix the path"
        ) from None


def _is(setting: str, path: Path, written: str, test: Callable[[Path], bool]) -> bool:
    """Apply Path.is_dir / is_file / exists; errors such as a name too long are problems."""
    try:
        return test(path)
    except (OSError, ValueError) as error:
        raise _Unusable(
            setting, f"{quoted(written)} cannot be used as a path ({_reason(error)}); fix the path"
        ) from None


def _reason(error: Exception) -> str:
    """A short reason from an OS error: 'File name too long'."""
    return (error.strerror if isinstance(error, OSError) else None) or str(error)


def inside(path: Path, root: Path) -> bool:
    """True when `path` is `root` or below it."""
    return path == root or root in path.parents
