"""One run at a time per pipeline and registry on a host: a scheduled run and a CI run never interleave."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import IO

from buildflow.errors import LockBusy

LOCK_DIR_ENV = "BUILDFLOW_LOCK_DIR"


def lock_path(registry: str, repositories: Iterable[str]) -> Path:
    """The lock file of a pipeline: named by its registry and the repositories it pushes to, so two
    checkouts of one pipeline (a CI workspace and a cron job's) share it."""
    key = "\n".join([registry or "local", *sorted(set(repositories))])
    directory = Path(os.environ.get(LOCK_DIR_ENV) or Path(tempfile.gettempdir()) / "buildflow-locks")
    return directory / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.lock"


class RunLock:
    """An exclusive lock on a file (flock), released when the process ends, however it ends."""

    def __init__(self, path: Path, *, wait: bool, describe: str, on_wait: Callable[[str], None]) -> None:
        self.path, self.wait, self.describe, self.on_wait = path, wait, describe, on_wait
        self.handle: IO[str] | None = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(handle)
            if not self.wait:
                handle.close()
                raise LockBusy(
                    f"another buildflow run holds the lock of {self.describe} ({holder}); "
                    "wait for it with --wait, or try again later"
                ) from None
            self.on_wait(holder)
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}))
        handle.flush()
        self.handle = handle
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self.handle is not None:
            self.handle.seek(0)
            self.handle.truncate()
            self.handle.close()  # closing releases the flock
            self.handle = None


def _holder(handle: IO[str]) -> str:
    """Who holds a lock, as its file says: 'pid 123, since 2026-11-29T03:17:00Z'."""
    handle.seek(0)
    try:
        holder = json.loads(handle.read() or "{}")
    except ValueError:
        holder = {}
    return f"pid {holder.get('pid', '?')}, since {holder.get('started', '?')}"
