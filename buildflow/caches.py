"""Where buildflow keeps what it could compute again (layer listings, lint reports): the user's cache directory."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache(name: str) -> Path:
    """$XDG_CACHE_HOME/buildflow/NAME, by default ~/.cache/buildflow/NAME (created by whoever writes to it)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "buildflow" / name
