"""The command line's conventions: global options before or after the command, an environment variable for every
option, JSON on stderr with --log-format json, NO_COLOR and FORCE_COLOR, status --exit-code."""

from __future__ import annotations

import io
import json
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest

from buildflow import log
from buildflow.cli import main
from buildflow.cli.app import cli
from buildflow.cli.runs import run_events
from buildflow.errors import RunFailed
from buildflow.run.freshness import Assessment
from tests.conftest import dockerfiles, write_pipeline

GOOD = """\
    version: 1
    registry: localhost:5000/demo
    vars: {release: "1"}
    targets:
      base: {context: base, tags: ["base:{release}"]}
      app: {context: app, from: base, matrix: {tf: ["1.8.0", "1.15.5"]}, tags: ["app:{release}-{tf}"]}
    """


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(argv))
    captured = capsys.readouterr()
    return int(done.value.code or 0), captured.out, captured.err


def events(err: str) -> list[dict[str, Any]]:
    """Every line of stderr as JSON (fails on a line that is not)."""
    return [json.loads(line) for line in err.splitlines()]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in (
        "BUILDFLOW_FILE",
        "BUILDFLOW_LOG_FORMAT",
        "BUILDFLOW_DEBUG",
        "BUILDFLOW_VAR",
        "NO_COLOR",
        "FORCE_COLOR",
    ):
        monkeypatch.delenv(name, raising=False)
    yield
    log.configure()


@pytest.fixture
def good(tmp_path: Path) -> Path:
    return write_pipeline(tmp_path, GOOD, dockerfiles("base", "app"))


# ---- global options -------------------------------------------------------------------------------------------


def test_the_pipeline_options_go_before_the_command_too(capsys: pytest.CaptureFixture[str], good: Path) -> None:
    code, out, err = run(capsys, "-f", str(good), "--var", "release=2", "plan", "--offline", "--format", "json")
    assert code == 0 and err == ""
    assert json.loads(out)["targets"][0]["tags"] == ["localhost:5000/demo/base:2"]
    code, _, err = run(capsys, "--debug", "validate", "-f", str(good))
    assert code == 0 and "pipeline.loaded" in err


def test_after_the_command_wins_and_vars_add_up(capsys: pytest.CaptureFixture[str], good: Path) -> None:
    code, _, _ = run(capsys, "-f", str(good.parent / "missing.yaml"), "validate", "-f", str(good))
    assert code == 0
    argv = ["--var", "release=2", "--registry", "r.example/x", "plan", "--offline", "--format", "json"]
    code, out, _ = run(capsys, *argv, "-f", str(good), "--var", "release=3", "--registry", "localhost:5000/y")
    assert json.loads(out)["targets"][0]["tags"] == ["localhost:5000/y/base:3"]


def test_debug_before_the_command_shows_a_traceback(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, "version: 1\ntargets: {b: {from: c}}\n")
    code, _, err = run(capsys, "--debug", "validate", "-f", str(path))
    assert code == 2 and "Traceback" in err and "unknown target 'c'" in err


# ---- environment variables ------------------------------------------------------------------------------------


def every_option() -> list[tuple[str, click.Option]]:
    """(command name, option) for the group's options and every command's."""
    found = [("", option) for option in cli.params if isinstance(option, click.Option)]
    for name, command in cli.commands.items():
        found += [(name, option) for option in command.params if isinstance(option, click.Option)]
    return [(name, option) for name, option in found if option.expose_value]


def test_every_option_has_an_environment_variable_shown_in_help() -> None:
    pipeline = {
        "file": "FILE",
        "variables": "VAR",
        "sets": "SET",
        "registry": "REGISTRY",
        "log_format": "LOG_FORMAT",
        "debug": "DEBUG",
    }
    for command, option in every_option():
        assert option.show_envvar, (command, option.name)
        if option.name in pipeline:
            assert option.envvar == f"BUILDFLOW_{pipeline[option.name]}"
        else:
            longest = max((flag for flag in option.opts if flag.startswith("--")), key=len)
            assert option.envvar == f"BUILDFLOW_{command.upper()}_{longest[2:].replace('-', '_').upper()}"
    names = [(command, option.envvar) for command, option in every_option()]
    assert len(names) == len(set(names))
    help_text = cli.commands["build"].get_help(click.Context(cli.commands["build"], info_name="build"))
    assert "BUILDFLOW_BUILD_JOBS" in help_text and "BUILDFLOW_FILE" in help_text


def test_environment_variables_are_read_and_the_command_line_wins(
    capsys: pytest.CaptureFixture[str], good: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUILDFLOW_FILE", str(good))
    monkeypatch.setenv("BUILDFLOW_PLAN_FORMAT", "json")
    monkeypatch.setenv("BUILDFLOW_VAR", "release=7")
    code, out, _ = run(capsys, "plan", "--offline")
    assert code == 0 and json.loads(out)["targets"][0]["tags"] == ["localhost:5000/demo/base:7"]
    code, out, _ = run(capsys, "--var", "release=8", "plan", "--offline", "--format", "table")
    assert code == 0 and "base:8" in out and not out.startswith("{")
    monkeypatch.setenv("BUILDFLOW_FILE", str(good.parent / "missing.yaml"))
    assert run(capsys, "-f", str(good), "validate")[0] == 0
    assert run(capsys, "validate")[0] == 2


def test_the_old_log_format_variable_still_works(
    capsys: pytest.CaptureFixture[str], good: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUILDFLOW_LOG_FORMAT", "json")
    code, _, err = run(capsys, "validate", "-f", str(good), "--debug")
    assert code == 0 and events(err)[0]["event"] == "pipeline.loaded"


def test_a_bad_value_in_an_environment_variable_names_it(
    capsys: pytest.CaptureFixture[str], good: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUILDFLOW_PLAN_FORMAT", "yaml")
    code, _, err = run(capsys, "plan", "--offline", "-f", str(good))
    assert code == 2 and "BUILDFLOW_PLAN_FORMAT" in err and "'yaml' is not one of 'table', 'json'" in err


# ---- JSON on stderr -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["plan", "--offline", "--format", "yaml"], 2, "Invalid value for '--format'"),
        (["build", "--jbos", "3"], 2, "No such option '--jbos'. Did you mean '--jobs'?"),
        (["no-such-command"], 2, "No such command 'no-such-command'."),
        (["plan", "--offline", "ap"], 2, "unknown target 'ap' — did you mean 'app'?"),
        (["plan", "--offline", "--var", "novalue"], 2, "--var novalue: expected NAME=VALUE"),
    ],
)
def test_errors_are_json_events_with_the_same_one_line_message(
    capsys: pytest.CaptureFixture[str], good: Path, argv: list[str], code: int, message: str
) -> None:
    for where in (["--log-format", "json", *argv, "-f", str(good)], [*argv, "-f", str(good), "--log-format=json"]):
        exit_code, out, err = run(capsys, *where)
        (error,) = events(err)
        assert exit_code == code and out == ""
        assert error["event"] == "error" and error["level"] == "error" and error["exit_code"] == code
        assert message in error["message"] and "\n" not in error["message"]


def test_each_problem_of_a_pipeline_is_an_event_saying_where(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write_pipeline(tmp_path, "version: 1\ntargets:\n  a: {contxt: x}\n  b: {from: c}\n")
    code, _, err = run(capsys, "--log-format", "json", "plan", "-f", str(path))
    found = events(err)
    assert code == 2 and [event["message"] for event in found] == [
        f"{path}:3: targets.a.contxt: unknown key — did you mean 'context'?",
        f"{path}:4: targets.b.from: unknown target 'c'",
    ]
    assert (found[1]["file"], found[1]["line"], found[1]["field"]) == (str(path), 4, "targets.b.from")
    assert "traceback" not in found[-1]
    code, _, err = run(capsys, "--log-format", "json", "--debug", "plan", "-f", str(path))
    assert "Traceback" in events(err)[-1]["traceback"]


def test_an_internal_error_is_an_event_with_a_hint_or_its_traceback(
    capsys: pytest.CaptureFixture[str], good: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("buildflow.pipeline.loader.load_pipeline", broken)
    code, _, err = run(capsys, "--log-format", "json", "plan", "--offline", "-f", str(good))
    (error,) = events(err)
    assert code == 3 and error["message"] == "buildflow: internal error: RuntimeError: boom"
    assert error["exit_code"] == 3 and "rerun with --debug" in error["hint"]
    code, _, err = run(capsys, "--log-format", "json", "--debug", "plan", "--offline", "-f", str(good))
    assert "RuntimeError: boom" in events(err)[-1]["traceback"]


def test_ctrl_c_is_an_event_without_a_blank_line(
    capsys: pytest.CaptureFixture[str], good: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("buildflow.pipeline.loader.load_pipeline", interrupted)
    code, _, err = run(capsys, "--log-format", "json", "graph", "-f", str(good))
    assert code == 130 and events(err) == [{**events(err)[0], "message": "buildflow: interrupted", "exit_code": 130}]
    code, _, err = run(capsys, "graph", "-f", str(good))
    assert code == 130 and err == "\nbuildflow: interrupted\n"  # click's blank line ends a terminal's ^C


def test_python_warnings_are_events_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    log.configure(log_format="json")
    warnings.showwarning("old API", DeprecationWarning, "lib.py", 3)
    import logging

    handler = logging.lastResort  # what takes a library's records when no handler is set up (pytest sets some)
    assert handler is not None
    handler.handle(logging.LogRecord("somelib", logging.WARNING, "x.py", 1, "careful %s", ("now",), None))
    found = events(capsys.readouterr().err)
    assert [(e["event"], e["message"]) for e in found] == [("python.warning", "old API"), ("python.log", "careful now")]
    assert found[0]["category"] == "DeprecationWarning" and found[0]["where"] == "lib.py:3"
    log.configure()
    assert warnings.showwarning.__module__ == "warnings"


def test_run_events_frame_a_run_with_its_exit_code(capsys: pytest.CaptureFixture[str], good: Path) -> None:
    from buildflow.cli.loading import load_plan
    from buildflow.cli.options import PipelineOptions

    options = PipelineOptions(good, (), None, "json", False)
    plan = load_plan(options)
    with run_events("build", "RUN-1", plan, options, builders=[]) as end:
        end.fields = {"counts": {"BUILT": 3}}
    with pytest.raises(RunFailed), run_events("build", "RUN-2", plan, options) as end:
        raise RunFailed("no")
    with pytest.raises(ValueError), run_events("test", "RUN-3", plan, options):
        raise ValueError
    found = [event for event in events(capsys.readouterr().err) if event["event"].startswith("run.")]
    assert [(e["event"], e["run_id"]) for e in found[:2]] == [("run.started", "RUN-1"), ("run.finished", "RUN-1")]
    assert found[0]["targets"] == ["base", "app[tf=1.8.0]", "app[tf=1.15.5]"] and found[0]["file"] == str(good)
    assert found[1]["counts"] == {"BUILT": 3} and found[1]["exit_code"] == 0 and found[1]["seconds"] >= 0
    assert [e["exit_code"] for e in found if e["event"] == "run.finished"] == [0, 1, 3]


# ---- colour ---------------------------------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("environment", "on_a_terminal", "elsewhere"),
    [
        ({}, True, False),
        ({"NO_COLOR": "1"}, False, False),
        ({"FORCE_COLOR": "1"}, True, True),
        ({"NO_COLOR": "1", "FORCE_COLOR": "1"}, False, False),
        ({"NO_COLOR": "", "FORCE_COLOR": ""}, True, False),
    ],
)
def test_no_color_and_force_color(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], on_a_terminal: bool, elsewhere: bool
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert log.coloured(_Terminal()) is on_a_terminal and log.coloured(io.StringIO()) is elsewhere
    if "" in environment.values():
        return  # rich reads FORCE_COLOR="" as "not a terminal"; the convention is to ignore an empty one
    from rich.console import Console  # the live view's: rich reads both variables itself

    terminal = Console(file=_Terminal(), color_system="standard")
    assert (terminal.is_terminal and not terminal.no_color) is on_a_terminal
    pipe = Console(file=io.StringIO(), color_system="standard")
    assert (pipe.is_terminal and not pipe.no_color) is elsewhere


def test_log_lines_have_colour_only_when_asked(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    log.configure()
    log.event("warning", "something.happened", detail="x")
    assert "\x1b[" in capsys.readouterr().err
    monkeypatch.setenv("NO_COLOR", "1")
    log.configure()
    log.event("warning", "something.happened", detail="x")
    assert not re.search("\x1b\\[", capsys.readouterr().err)


def test_click_is_told_the_colour_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(cli, "main", lambda **kwargs: seen.update(kwargs))
    for environment, colour in (({}, None), ({"NO_COLOR": "1"}, False), ({"FORCE_COLOR": "1"}, True)):
        for name in ("NO_COLOR", "FORCE_COLOR"):
            monkeypatch.delenv(name, raising=False)
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        with pytest.raises(SystemExit):
            main(["schema"])
        assert seen["color"] is colour


# ---- status --exit-code ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("digests", "code"), [(["sha256:a", "sha256:b", "sha256:c"], 0), (["sha256:a", None, None], 1)]
)
def test_status_exit_code(
    capsys: pytest.CaptureFixture[str],
    good: Path,
    monkeypatch: pytest.MonkeyPatch,
    digests: list[str | None],
    code: int,
) -> None:
    def states(plan: Any, engine: object, **kwargs: object) -> dict[str, Assessment]:
        return {step.target.id: Assessment(d, "why") for step, d in zip(plan.steps, digests, strict=True)}

    monkeypatch.setattr("buildflow.run.freshness.plan_states", states)
    monkeypatch.setattr("buildflow.cli.inspect.lookup_engine", lambda engine: None)
    argv = ["status", "--no-follow-bases", "-f", str(good)]
    assert run(capsys, *argv)[0] == 0
    exit_code, out, err = run(capsys, *argv, "--exit-code")
    assert exit_code == code and "TARGET" in out
    assert err == ("" if code == 0 else "buildflow: 2 of 3 images would be built\n")
