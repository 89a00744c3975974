"""Logging: the one place structlog is configured; console lines on a terminal, JSON lines for machines."""

from __future__ import annotations

import html
import json
import os
import sys
from collections.abc import Iterable
from typing import Any

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}  # the numbers of the logging module
_state: dict[str, Any] = {"level": _LEVELS["info"], "format": "console", "logger": None}
MASK = "****"
SHORTEST_SECRET = 4  # shorter values are not masked: they would hide too much that is not secret
_secrets: list[str] = []  # longest first, so that a secret containing another is masked whole


def hide(values: Iterable[str]) -> None:
    """Mask these secret values (and their JSON- and XML-escaped forms, and each line of them) in every log line
    and in whatever masked() is given: reports, summaries, the console."""
    found = set(_secrets)
    for value in values:
        for part in {value, *value.splitlines()}:
            if len(part.strip()) >= SHORTEST_SECRET:
                found |= {part, json.dumps(part)[1:-1], html.escape(part, quote=True)}
    _secrets[:] = sorted(found, key=len, reverse=True)


def masked(text: str) -> str:
    """Text with every secret value replaced by ****."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _masked_fields(logger: object, name: str, fields: dict[str, Any]) -> dict[str, Any]:
    """A structlog processor: every text in an event masked, before it is rendered."""
    return {key: _masked_value(value) for key, value in fields.items()} if _secrets else fields


def _masked_value(value: Any) -> Any:
    """A field's value with secrets masked, in texts, lists and mappings."""
    if isinstance(value, str):
        return masked(value)
    if isinstance(value, list | tuple):
        return [_masked_value(item) for item in value]
    if isinstance(value, dict):
        return {key: _masked_value(item) for key, item in value.items()}
    return value


def configure(*, level: str = "info", log_format: str = "console") -> None:
    """Choose the level and format; structlog itself is set up on the first event that passes the level. In JSON,
    Python's warnings and the log records of libraries become events too: every line on stderr is JSON."""
    _state.update(level=_LEVELS[level], format=log_format, logger=None)
    if log_format == "json" or "python" in _state:
        _capture_python_output(log_format == "json")


def json_lines() -> bool:
    """True when events are JSON lines (--log-format json)."""
    return bool(_state["format"] == "json")


def colour_choice() -> bool | None:
    """What the environment says of colour: NO_COLOR (set, not empty) none, FORCE_COLOR (set, not empty) always,
    even when not on a terminal (NO_COLOR wins when both are set); None when neither is set."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return None


def coloured(stream: Any) -> bool:
    """True when what is written to `stream` may have colours: as NO_COLOR and FORCE_COLOR say, else on a terminal."""
    choice = colour_choice()
    if choice is not None:
        return choice
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


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
            else structlog.dev.ConsoleRenderer(colors=coloured(sys.stderr))
        )
        structlog.configure(
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                _masked_fields,
                renderer,
            ],
            wrapper_class=structlog.make_filtering_bound_logger(_state["level"]),
            logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
            cache_logger_on_first_use=True,
        )
        _state["logger"] = structlog.get_logger("buildflow")
    return _state["logger"]


def _capture_python_output(capture: bool) -> None:
    """Python's warnings, and the records of libraries' loggers that no handler takes, as events (not as text); or,
    with `capture` false, as Python writes them again."""
    import logging
    import warnings

    class Events(logging.Handler):
        """A record of the logging module as an event."""

        def emit(self, record: logging.LogRecord) -> None:
            level = "error" if record.levelno >= logging.ERROR else "warning"
            event(level, "python.log", logger=record.name, message=record.getMessage())

    python = _state.setdefault("python", (warnings.showwarning, logging.lastResort))
    warnings.showwarning, logging.lastResort = (_show_warning, Events(logging.WARNING)) if capture else python


def _show_warning(  # noqa: PLR0917  # the signature of warnings.showwarning
    message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    """A Python warning as an event (warnings.showwarning)."""
    event("warning", "python.warning", message=str(message), category=category.__name__, where=f"{filename}:{lineno}")


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
