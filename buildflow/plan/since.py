"""--since REV: the targets whose inputs changed since a git commit, found by comparing fingerprints."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from buildflow.errors import BuildflowError, UsageError
from buildflow.model import Pipeline


def changed_since(revision: str, pipeline: Pipeline, load: Callable[[Path], Pipeline]) -> Mapping[str, str]:
    """The targets whose fingerprint (bases by name) differs at `revision`: id -> why.

    The repository at `revision` is unpacked with `git archive` and the pipeline file loaded from there,
    so every input counts (Dockerfiles, context files, .dockerignore, args, the pipeline file itself).
    """
    top = _git(pipeline.root, "rev-parse", "--show-toplevel").decode().strip()
    relative = pipeline.file.resolve().relative_to(top)
    archive = _git(Path(top), "archive", "--format=tar", _commit(pipeline.root, revision))
    with tempfile.TemporaryDirectory(prefix="buildflow-since-") as directory:
        _unpack(archive, Path(directory))
        old_file = Path(directory) / relative
        if not old_file.is_file():
            return dict.fromkeys(pipeline.targets, f"the pipeline file is new since {revision}")
        try:
            before = load(old_file).targets
        except BuildflowError:
            return dict.fromkeys(pipeline.targets, f"the pipeline was invalid at {revision}")
    return {
        target_id: "new since " + revision if target_id not in before else "inputs changed since " + revision
        for target_id, target in pipeline.targets.items()
        if target_id not in before or before[target_id].fingerprint != target.fingerprint
    }


def _unpack(archive: bytes, directory: Path) -> None:
    """Unpack a `git archive` tar (tar(1): this Python's tarfile may lack extraction filters)."""
    result = subprocess.run(["tar", "-x", "-C", str(directory)], input=archive, capture_output=True, check=False)
    if result.returncode != 0:
        raise UsageError(f"--since: cannot unpack the archive: {result.stderr.decode(errors='replace').strip()}")


def _commit(root: Path, revision: str) -> str:
    """The commit a revision names, or a usage error that says so."""
    try:
        return _git(root, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}").decode().strip()
    except UsageError:
        raise UsageError(
            f"--since {revision}: not a commit in {root}; fetch it (git fetch --depth=...) or name another"
        ) from None


def _git(root: Path, *arguments: str) -> bytes:
    """The output of a git command run in `root`; a usage error when it fails."""
    try:
        result = subprocess.run(["git", "-C", str(root), *arguments], capture_output=True, check=False, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise UsageError(f"--since needs git: {error}") from None
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip().splitlines()
        raise UsageError(f"--since: git {arguments[0]} failed in {root}: {(message or ['?'])[-1]}")
    return result.stdout
