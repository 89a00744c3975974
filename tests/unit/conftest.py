"""Unit tests read every pipeline file afresh: the document cache (tests/unit/test_speed.py tests it) stays off."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_document_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """No cache entries in the user's cache directory from the thousands of temporary pipeline files."""
    monkeypatch.setenv("BUILDFLOW_FILE_CACHE", "0")
