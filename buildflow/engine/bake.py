"""`docker buildx bake --print`: a bake file (HCL, JSON or compose) as bake itself resolves it — variables,
functions, `inherits` and matrices applied — printed as JSON, nothing built."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from buildflow.engine.base import EngineError

PRINT_TIMEOUT = 900  # seconds: bake --print of 5,000 targets takes 15 to 35 s on the reference machines


def available() -> bool:
    """True when `docker buildx bake` can run here."""
    if shutil.which("docker") is None:
        return False
    try:
        found = subprocess.run(["docker", "buildx", "version"], capture_output=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return found.returncode == 0


def print_definition(file: Path, names: Sequence[str] = ()) -> dict[str, Any]:
    """What `docker buildx bake -f FILE --print [NAME...]` prints, run in the file's directory (where bake resolves
    the file's relative paths); EngineError with bake's ERROR line when it fails."""
    command = ["docker", "buildx", "bake", "-f", file.name, "--print", *names]
    try:
        ran = subprocess.run(
            command, cwd=file.parent, capture_output=True, check=False, timeout=PRINT_TIMEOUT, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise EngineError(f"docker buildx bake --print took more than {PRINT_TIMEOUT} s", transient=False) from None
    except OSError as error:
        raise EngineError(f"docker cannot run: {error.strerror or error}", transient=False) from None
    if ran.returncode != 0:
        raise EngineError(_error_line(ran.stderr.decode(errors="replace")), transient=False)
    try:
        printed: dict[str, Any] = json.loads(ran.stdout)
    except ValueError:
        raise EngineError("docker buildx bake --print printed something that is not JSON", transient=False) from None
    return printed


def _error_line(stderr: str) -> str:
    """Bake's ERROR line (the last line, if it printed none)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("ERROR:"):
            return line.removeprefix("ERROR:").strip()
    return lines[-1] if lines else "docker buildx bake --print failed"
