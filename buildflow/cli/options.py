"""The options commands share: the pipeline file and how to read it (before or after the command), the target
selection, when an up-to-date image is built anyway, the report files to write; the environment variable of every
option; and the checks of their values."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from buildflow.cli.completion import complete_targets
from buildflow.errors import UsageError

if TYPE_CHECKING:
    from buildflow.plan.planner import Plan

Command = Callable[..., None]  # a command's function, before click makes a command of it
ENV_PREFIX = "BUILDFLOW"


@dataclass(frozen=True)
class PipelineOptions:
    """The options every pipeline command takes."""

    file: Path
    variables: tuple[str, ...]
    registry: str | None
    log_format: str
    debug: bool
    sets: tuple[str, ...] = ()  # --set ID.FIELD=VALUE


_PIPELINE_OPTIONS = [
    click.option(
        "-f",
        "--file",
        "file",
        type=click.Path(path_type=Path, dir_okay=False),
        default=Path("buildflow.yaml"),
        show_default=True,
        envvar=f"{ENV_PREFIX}_FILE",
        help="Pipeline file.",
    ),
    click.option(
        "--var",
        "variables",
        multiple=True,
        metavar="NAME=VALUE",
        envvar=f"{ENV_PREFIX}_VAR",
        help="Override a pipeline variable or a built-in such as git_commit (repeatable; in the environment "
        "variable, separated by spaces).",
    ),
    click.option(
        "--set",
        "sets",
        multiple=True,
        metavar="ID.FIELD=VALUE",
        envvar=f"{ENV_PREFIX}_SET",
        help="Override a target's field for this run, checked like the file (repeatable; ID is a target or * for "
        "all): --set app.args.VERSION=2, --set '*.platforms=linux/amd64'. Lists are comma-separated.",
    ),
    click.option(
        "--registry",
        metavar="HOST[:PORT][/PATH]",
        envvar=f"{ENV_PREFIX}_REGISTRY",
        help="Registry for tags without one (overrides the file).",
    ),
    click.option(
        "--log-format",
        type=click.Choice(["console", "json"]),
        default="console",
        show_default=True,
        envvar=f"{ENV_PREFIX}_LOG_FORMAT",
        help="Log lines on stderr: readable, or JSON lines for machines (then every line on stderr is JSON).",
    ),
    click.option("--debug", is_flag=True, envvar=f"{ENV_PREFIX}_DEBUG", help="Debug logs, and a traceback for errors."),
]


def global_options(group: Command) -> Command:
    """Add the pipeline options to the group, to be given before the command too (buildflow -f x.yaml build);
    the commands read them there (pipeline_options)."""
    for option in reversed(_PIPELINE_OPTIONS):
        group = option(group)
    return group


def pipeline_options(command: Command) -> Command:
    """Add the pipeline options to a command; it receives them as one PipelineOptions `options`, each one as given
    after the command, else before it (global_options), else from its environment variable or default."""

    @functools.wraps(command)
    def with_options(
        *,
        file: Path,
        variables: Sequence[str],
        sets: Sequence[str],
        registry: str | None,
        log_format: str,
        debug: bool,
        **rest: object,
    ) -> None:
        """Call the command with its pipeline options in one PipelineOptions (wraps gives this the command's doc)."""
        given = {"file": file, "variables": variables, "registry": registry, "log_format": log_format, "debug": debug}
        merged = {name: given_value(name, value) for name, value in {**given, "sets": sets}.items()}
        merged["variables"], merged["sets"] = tuple(merged["variables"]), tuple(merged["sets"])
        command(options=PipelineOptions(**merged), **rest)

    for option in reversed(_PIPELINE_OPTIONS):
        with_options = option(with_options)
    return with_options


def given_value(name: str, value: Any, context: click.Context | None = None) -> Any:
    """A pipeline option's value in the running command: as given after the command, else as given before it, else
    from its environment variable or default (`value`); --var given in both places adds up, the later winning."""
    context = context or click.get_current_context(silent=True)
    parent = context.parent if context is not None else None
    if context is None or parent is None or parent.get_parameter_source(name) != ParameterSource.COMMANDLINE:
        return value
    before = parent.params[name]
    if context.get_parameter_source(name) != ParameterSource.COMMANDLINE:
        return before
    return (*before, *value) if name in ("variables", "sets") else value


def name_environment(group: click.Group) -> None:
    """Give every group option without one an environment variable, shown in --help: BUILDFLOW_OPTION (the pipeline
    options: BUILDFLOW_FILE, BUILDFLOW_LOG_FORMAT); a command's own get BUILDFLOW_COMMAND_OPTION when it is loaded
    (BUILDFLOW_BUILD_JOBS): the same flag can mean different things to two commands (--format, --jobs)."""
    for parameter in group.params:
        _name_variable(parameter, ENV_PREFIX)


def name_command_environment(name: str, command: click.Command) -> None:
    """A command's options' environment variables, BUILDFLOW_COMMAND_OPTION (when the command is loaded)."""
    for parameter in command.params:
        _name_variable(parameter, f"{ENV_PREFIX}_{name.upper().replace('-', '_')}")


def _name_variable(parameter: click.Parameter, prefix: str) -> None:
    """An option's environment variable, after its longest flag (--no-cache: PREFIX_NO_CACHE), shown in --help;
    arguments, and options that only act (--help, --version), have none."""
    if not isinstance(parameter, click.Option) or not parameter.expose_value or parameter.is_eager:
        return
    if parameter.envvar is None:
        flag = max((opt for opt in parameter.opts if opt.startswith("--")), key=len)
        parameter.envvar = f"{prefix}_{flag[2:].replace('-', '_').upper()}"
    parameter.show_envvar = True


def selection_options(command: Command) -> Command:
    """Target selection: names (with ancestors), --downstream names (with descendants), --since a commit."""
    command = click.option(
        "--since",
        metavar="GIT_REV",
        help="Only the targets whose inputs changed since this commit, and everything built on them.",
    )(command)
    command = click.option(
        "--downstream",
        "downstream",
        multiple=True,
        metavar="TARGET",
        shell_complete=complete_targets,
        help="Also select TARGET and every target built on it (repeatable).",
    )(command)
    return click.argument("targets", nargs=-1, shell_complete=complete_targets)(command)


def rebuild_options(command: Command) -> Command:
    """When an image that is up to date is built anyway: --max-age and --no-follow-bases."""
    command = click.option(
        "--no-follow-bases",
        is_flag=True,
        help="Do not resolve external bases (FROM ubuntu:22.04) to digests: a base that moved does not rebuild.",
    )(command)
    return click.option(
        "--max-age",
        metavar="AGE",
        callback=check_age,
        help="Rebuild images built longer ago than AGE (7d, 12h, 2w), even if nothing changed. "
        "Default: the pipeline's rebuild.max_age, or never.",
    )(command)


def builder_option(command: Command) -> Command:
    """--builder NAME (repeatable): the builders to use; the command receives them as `builder_names`."""
    return click.option(
        "--builder",
        "builder_names",
        multiple=True,
        metavar="NAME",
        help="A docker context or buildx builder; repeat to spread the run over several. "
        "Default: the pipeline's builders:, else the current one (see buildflow builders).",
    )(command)


def output_file(flag: str, metavar: str, help_text: str) -> Callable[[Command], Command]:
    """An option naming a report file to write; the command receives it as `<flag>_path`."""
    return click.option(
        flag, f"{flag[2:]}_path", type=click.Path(path_type=Path, dir_okay=False), metavar=metavar, help=help_text
    )


def release_policy_option(command: Command) -> Command:
    """--release all|per-target: the release policy of this run, over the pipeline's `release:`."""
    return click.option(
        "--release",
        "release_policy",
        type=click.Choice(["all", "per-target"]),
        default=None,
        help="Which release tags move: all (every image built, else none) or per-target (each image whose "
        "ancestors and itself were built). Default: the pipeline's release:, else all.",
    )(command)


def wait_option(command: Command) -> Command:
    """--wait/--no-wait: what a run does when another run of the same pipeline and registry holds the lock."""
    return click.option(
        "--wait/--no-wait",
        default=True,
        show_default=True,
        help="When another run of this pipeline and registry holds the lock: wait for it, or exit with code 4.",
    )(command)


def with_release_policy(plan: Plan, policy: str | None) -> Plan:
    """The plan with --release over the pipeline's release policy (as it is without --release)."""
    import dataclasses

    if policy is None or policy == plan.pipeline.release:
        return plan
    return dataclasses.replace(plan, pipeline=dataclasses.replace(plan.pipeline, release=policy))


def parse_vars(pairs: Sequence[str]) -> dict[str, str]:
    """NAME=VALUE pairs from --var."""
    parsed = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name:
            raise UsageError(f"--var {pair}: expected NAME=VALUE, e.g. --var tf=1.15.5")
        parsed[name] = value
    return parsed


def check_age(context: click.Context, parameter: click.Parameter, value: str | None) -> str | None:
    """--max-age must read like 7d."""
    from buildflow.model import parse_age

    try:
        if value is not None:
            parse_age(value)
    except ValueError as error:
        raise click.BadParameter(f"{error}; use s, m, h, d or w") from None
    return value


def max_age_seconds(plan: Plan, max_age: str | None) -> float | None:
    """--max-age, else the pipeline's rebuild.max_age, in seconds."""
    from buildflow.model import parse_age

    return parse_age(max_age) if max_age else plan.pipeline.rebuild.max_age_seconds


def check_report_paths(paths: Mapping[str, Path | None]) -> None:
    """Every report file asked for can be written (its directory made), before anything is built."""
    for flag, path in paths.items():
        problem = unwritable(path) if path is not None else ""
        if problem:
            raise UsageError(f"{flag} {path}: {problem}; choose a file that can be written")


def unwritable(path: Path) -> str:
    """Why a report cannot be written at `path` ('' when it can): checked by opening it to append, as late as
    possible before the run and without changing a file that is there."""
    if path.is_dir():
        return "is a directory"
    existed = path.exists()
    if existed and not path.is_file():
        return "is not a regular file"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a"):
            pass
    except OSError as error:
        return f"cannot be written ({error.strerror or error})"
    if not existed:
        path.unlink(missing_ok=True)
    return ""


def unwritable_directory(path: Path) -> str:
    """Why files cannot be written in a directory ('' when they can): made if missing, then a file tried there."""
    if path.exists() and not path.is_dir():
        return "is not a directory"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".buildflow-probe-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        return f"cannot be written ({error.strerror or error})"
    return ""
