"""Checking what registries answer: blobs against their digests, as a whole or as they stream; index entries."""

from __future__ import annotations

import email.utils
import hashlib
import io
import time
from collections.abc import Mapping
from typing import Any

from buildflow.engine.base import EngineError
from buildflow.engine.transport import Stream


def platform_digest(index: Mapping[str, Any], reference: str) -> str:
    """The digest of linux/amd64 in an index, or of its only image (attestation manifests left out)."""
    images = [
        entry
        for entry in index.get("manifests", [])
        if isinstance(entry, dict) and entry.get("platform", {}).get("os") != "unknown"
    ]
    for entry in images:
        platform = entry.get("platform", {})
        if platform.get("os") == "linux" and platform.get("architecture") == "amd64":
            return str(entry["digest"])
    if len(images) == 1:
        return str(images[0]["digest"])
    platforms = sorted(f"{e.get('platform', {}).get('os')}/{e.get('platform', {}).get('architecture')}" for e in images)
    available = ", ".join(platforms) or "none"
    raise EngineError(f"{reference} has no linux/amd64 image (it has {available})", transient=False)


def retry_after(value: str) -> float | None:
    """Seconds from a Retry-After header: a number of seconds or an HTTP date; None when absent or unreadable."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def digest_matches(digest: str, data: bytes) -> bool:
    """Whether data has a digest; True for algorithms hashlib does not know (nothing to check against)."""
    algorithm, _, hexdigest = digest.partition(":")
    try:
        return hashlib.new(algorithm, data).hexdigest() == hexdigest
    except ValueError:
        return True


class VerifiedStream(io.RawIOBase):
    """A blob download, read as it arrives, that raises EngineError at its end when it does not match its digest."""

    def __init__(self, response: Stream, digest: str, where: str) -> None:
        super().__init__()
        algorithm, _, self._expected = digest.partition(":")
        try:
            self._hash: Any = hashlib.new(algorithm)
        except ValueError:
            self._hash = None
        self._response, self._where, self._checked = response, where, False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        """Read the next bytes into buffer; at the end, check the digest of everything read."""
        try:
            count = self._response.readinto(buffer)
        except EngineError as error:
            raise EngineError(f"blob {self._where}: {error}", transient=error.transient) from None
        if count and self._hash is not None:
            self._hash.update(memoryview(buffer)[:count])
        elif not count and not self._checked:
            self._checked = True
            if self._hash is not None and self._hash.hexdigest() != self._expected:
                raise EngineError(f"blob {self._where}: its content does not match its digest", transient=False)
        return count

    def close(self) -> None:
        if not self.closed:
            self._response.close()
        super().close()
