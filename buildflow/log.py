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
        structlog = _import_structlog()

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


def _import_structlog() -> Any:
    """structlog, imported without its rich tracebacks: buildflow logs no exceptions, and loading rich's
    traceback renderer (with pygments and asyncio) doubled the import, a tenth of a no-op run."""
    if "rich" in sys.modules:
        import structlog
    else:
        sys.modules["rich"] = None  # type: ignore[assignment]  # "import rich" fails: structlog goes without
        try:
            import structlog
        finally:
            del sys.modules["rich"]
    return structlog
