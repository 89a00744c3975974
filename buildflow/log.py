"""Logging: the one place structlog is configured; console lines on a terminal, JSON lines for machines."""

from __future__ import annotations

import sys
from typing import Any

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}  # the numbers of the logging module
_state: dict[str, Any] = {"level": _LEVELS["info"], "format": "console", "logger": None}


def configure(*, level: str = "info", log_format: str = "console") -> None:
    """Choose the level and format; structlog itself is set up on the first event that passes the level."""
    _state.update(level=_LEVELS[level], format=log_format, logger=None)


def enabled(level: str) -> bool:
    """True when events at `level` are shown."""
    return bool(_LEVELS[level] >= _state["level"])


def event(level: str, name: str, **fields: Any) -> None:
    """Log one event (name in dotted form, e.g. target.built) with key/value fields."""
    if enabled(level):
        getattr(_logger(), level)(name, **fields)


def _logger() -> Any:
    """The configured structlog logger, set up on first use (keeps start-up fast when nothing is logged)."""
    if _state["logger"] is None:
        import structlog

        renderer: Any = (
            structlog.processors.JSONRenderer()
            if _state["format"] == "json"
            else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        )
        structlog.configure(
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                renderer,
            ],
            wrapper_class=structlog.make_filtering_bound_logger(_state["level"]),
            logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
            cache_logger_on_first_use=True,
        )
        _state["logger"] = structlog.get_logger("buildflow")
    return _state["logger"]
