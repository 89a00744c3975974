"""How a command ends badly on stderr: one line per problem, or with --log-format json one `error` event per problem
(`message`, `exit_code`), so that every line on stderr is JSON; a traceback only with --debug."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import click

from buildflow import log
from buildflow.cli.loading import state
from buildflow.errors import EXIT_INTERNAL, BuildflowError, PipelineError, format_path

_TRUE = ("1", "true", "t", "yes", "y", "on")  # what click reads as true in BUILDFLOW_DEBUG


def configure_early(argv: Sequence[str]) -> None:
    """Logging as the command line and environment ask, before click reads them: an error in the options themselves
    is then said in the format asked for (JSON too), with a traceback under --debug."""
    words = list(argv[: argv.index("--")] if "--" in argv else argv)
    debug = "--debug" in words or os.environ.get("BUILDFLOW_DEBUG", "").lower() in _TRUE
    log_format = os.environ.get("BUILDFLOW_LOG_FORMAT", "console")
    for index, word in enumerate(words):
        if word == "--log-format" and index + 1 < len(words):
            log_format = words[index + 1]
        elif word.startswith("--log-format="):
            log_format = word.partition("=")[2]
    state["debug"] = debug
    log.configure(level="debug" if debug else "info", log_format="json" if log_format == "json" else "console")


def say(message: str, exit_code: int, **fields: Any) -> None:
    """One line on stderr, or the `error` event of it; secrets masked either way."""
    if log.json_lines():
        log.event("error", "error", message=message, exit_code=exit_code, **fields)
    else:
        click.echo(log.masked(message), err=True)


def usage_error(error: click.ClickException, exit_code: int) -> None:
    """A command line click refused: click's usage lines, or one event of its message."""
    if not log.json_lines():
        error.show()
        return
    context = getattr(error, "ctx", None)
    command = context.command_path if context is not None else "buildflow"
    say(error.format_message(), exit_code, command=command, hint=f"see {command} --help")


def problems(error: BuildflowError) -> None:
    """A user error: one line (or event) per problem; a traceback only with --debug (in the last event, in JSON)."""
    lines = error.lines()
    details: list[dict[str, Any]] = [{} for _ in lines]
    if isinstance(error, PipelineError):
        details = [
            _problem_fields(problem.file, problem.line, format_path(problem.path)) for problem in error.ordered()
        ]
    for index, (line, fields) in enumerate(zip(lines, details, strict=True)):
        last = index == len(lines) - 1
        say(line, error.exit_code, **fields, **(_traceback_fields() if last else {}))
    if state["debug"] and not log.json_lines():
        print_traceback()


def internal_error(error: Exception) -> None:
    """A bug in buildflow: one line naming it, and how to see its traceback (or the traceback, under --debug)."""
    message = f"buildflow: internal error: {type(error).__name__}: {error}"
    hint = "rerun with --debug for a traceback, and please report it"
    if log.json_lines():
        say(message, EXIT_INTERNAL, **(_traceback_fields() or {"hint": hint}))
        return
    say(message, EXIT_INTERNAL)
    if state["debug"]:
        print_traceback()
    else:
        click.echo(hint, err=True)


def _problem_fields(file: str, line: int | None, field: str) -> dict[str, Any]:
    """Where a problem in a pipeline is, for machines: file, line and field, those that are known."""
    return {key: value for key, value in (("file", file), ("line", line), ("field", field)) if value}


def _traceback_fields() -> dict[str, str]:
    """{'traceback': ...} of the exception being handled, under --debug in JSON; else nothing."""
    if not (state["debug"] and log.json_lines()):
        return {}
    import traceback

    return {"traceback": traceback.format_exc()}


def print_traceback() -> None:
    """The traceback of the exception being handled, on stderr (traceback is imported only when it is needed)."""
    import traceback

    traceback.print_exc()
