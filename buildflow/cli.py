"""The command line: the only place that turns exceptions into exit codes and output formats."""

from __future__ import annotations

import dataclasses
import functools
import gc
import json
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import click

from buildflow import __version__, log
from buildflow.errors import EXIT_INTERNAL, EXIT_INVALID, BuildflowError, RunFailed, UsageError

_EPILOG = """\b
Exit codes:
  0  success
  1  a target was not built, the release was not tagged, or no engine answers
  2  invalid pipeline file or command line: one line per problem
  3  internal error in buildflow (rerun with --debug and report it)
"""

_state = {"debug": False}


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
    epilog=_EPILOG,
    invoke_without_command=True,
)
@click.version_option(__version__, "--version", prog_name="buildflow")
@click.pass_context
def cli(context: click.Context) -> None:
    """Build whole hierarchies of Docker images as one DAG.

    \b
    Describe your images once in buildflow.yaml (base -> cuda -> framework -> app),
    check and inspect the hierarchy, then build it:
      buildflow validate                       check the file, report every problem
      buildflow plan                           order, generations, parents, tags, fingerprints
      buildflow plan app                       app and everything it is built on
      buildflow plan --downstream base         base and everything built on it
      buildflow graph --format mermaid         the DAG for a README or a merge request
      buildflow build --keep-going             build, push, then tag the release (all or nothing)
      buildflow schema > pipeline.schema.json  JSON Schema for editors

    The file format is in docs/pipeline-format.md, building in docs/building.md.
    """
    if context.invoked_subcommand is None:
        click.echo(context.get_help())


@dataclass(frozen=True)
class PipelineOptions:
    """The options every pipeline command takes."""

    file: Path
    variables: tuple[str, ...]
    registry: str | None
    log_format: str
    debug: bool


_PIPELINE_OPTIONS = [
    click.option(
        "-f",
        "--file",
        "file",
        type=click.Path(path_type=Path, dir_okay=False),
        default=Path("buildflow.yaml"),
        show_default=True,
        help="Pipeline file.",
    ),
    click.option(
        "--var",
        "variables",
        multiple=True,
        metavar="NAME=VALUE",
        help="Override a pipeline variable or a built-in such as git_commit (repeatable).",
    ),
    click.option(
        "--registry", metavar="HOST[:PORT][/PATH]", help="Registry for tags without one (overrides the file)."
    ),
    click.option(
        "--log-format",
        type=click.Choice(["console", "json"]),
        default="console",
        show_default=True,
        envvar="BUILDFLOW_LOG_FORMAT",
        help="Log lines on stderr: readable, or JSON lines for machines.",
    ),
    click.option("--debug", is_flag=True, help="Debug logs, and a traceback for errors."),
]


def _pipeline_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the pipeline options to a command; it receives them as one PipelineOptions `options`."""

    @functools.wraps(command)
    def with_options(
        *, file: Path, variables: Sequence[str], registry: str | None, log_format: str, debug: bool, **rest: Any
    ) -> Any:
        return command(options=PipelineOptions(file, tuple(variables), registry, log_format, debug), **rest)

    for option in reversed(_PIPELINE_OPTIONS):
        with_options = option(with_options)
    return with_options


def _selection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Target selection: names (with ancestors) and --downstream names (with descendants)."""
    command = click.option(
        "--downstream",
        "downstream",
        multiple=True,
        metavar="TARGET",
        help="Also select TARGET and every target built on it (repeatable).",
    )(command)
    return click.argument("targets", nargs=-1)(command)


def _load(options: PipelineOptions) -> Any:
    """Configure logging and load the pipeline named on the command line."""
    _state["debug"] = options.debug
    log.configure(level="debug" if options.debug else "info", log_format=options.log_format)
    from buildflow.loader import load_pipeline

    with _collector_paused():
        pipeline = load_pipeline(
            options.file, overrides=_parse_vars(options.variables), registry=options.registry, display=str(options.file)
        )
    log.event("debug", "pipeline.loaded", file=str(options.file), targets=len(pipeline.targets))
    return pipeline


def _plan(options: PipelineOptions, targets: Sequence[str] = (), downstream: Sequence[str] = ()) -> Any:
    """Load the pipeline and plan the selected targets."""
    from buildflow.planner import make_plan

    return make_plan(_load(options), targets, downstream)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Keep the cyclic garbage collector out of loading a pipeline in this short-lived process.

    Resolution allocates many small objects and leaves no reference cycles behind; scanning them cost about
    15% of a 5,000-target plan. The collector is paused meanwhile, and what was allocated is frozen (exempt
    from later scans; reference counting still frees it) before the collector resumes.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def _parse_vars(pairs: Sequence[str]) -> dict[str, str]:
    """NAME=VALUE pairs from --var."""
    parsed = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name:
            raise UsageError(f"--var {pair}: expected NAME=VALUE, e.g. --var tf=1.15.5")
        parsed[name] = value
    return parsed


@cli.command(short_help="Check a pipeline file and report every problem in it.")
@_pipeline_options
def validate(*, options: PipelineOptions) -> None:
    """Check a pipeline file and report every problem in it (exit 2 if any)."""
    from buildflow.render import validation_summary

    click.echo(f"{options.file}: valid: {validation_summary(_plan(options))}")


@cli.command(short_help="Show the order, generations, parents, tags and fingerprints.")
@_selection_options
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
@_pipeline_options
def plan(*, targets: Sequence[str], downstream: Sequence[str], output_format: str, options: PipelineOptions) -> None:
    """Show what would be built: order, generation, parents, fingerprint and tags.

    With TARGET names, only those targets and their ancestors; a name selects every matrix image of a
    target, an id like 'app[tf=1.8.0]' selects one.
    """
    from buildflow.render import plan_json, plan_table

    the_plan = _plan(options, targets, downstream)
    click.echo(plan_json(the_plan) if output_format == "json" else plan_table(the_plan))


@cli.command(short_help="Draw the DAG as text, Graphviz DOT or Mermaid.")
@_selection_options
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "dot", "mermaid"]),
    default="text",
    show_default=True,
    help="text for a terminal, dot for Graphviz, mermaid for Markdown.",
)
@_pipeline_options
def graph(*, targets: Sequence[str], downstream: Sequence[str], output_format: str, options: PipelineOptions) -> None:
    """Draw the DAG; inferred edges (from Dockerfile FROM lines) are marked."""
    from buildflow.render import graph_dot, graph_mermaid, graph_text

    draw = {"text": graph_text, "dot": graph_dot, "mermaid": graph_mermaid}[output_format]
    click.echo(draw(_plan(options, targets, downstream)))


@cli.command(short_help="Build the selection in dependency order, push it, then tag the release.")
@_selection_options
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="How many builds run at once; a target starts as soon as its own parents are built.",
)
@click.option(
    "--keep-going",
    is_flag=True,
    help="After a failure, still build every target that does not depend on it (default: stop starting new).",
)
@click.option(
    "--push/--no-push",
    default=True,
    show_default=True,
    help="Push to the registry, or keep images in the local image store (children still build on them).",
)
@click.option("--no-cache", is_flag=True, help="Do not use cached build steps.")
@click.option("--pull", is_flag=True, help="Always check the registry for newer external base images.")
@click.option(
    "--retries",
    type=click.IntRange(1, 20),
    metavar="N",
    help="Tries per engine or registry call for transient errors (default: the pipeline's, 3).",
)
@click.option(
    "--timeout",
    type=click.IntRange(10, 86400),
    default=1800,
    show_default=True,
    metavar="SECONDS",
    help="The longest any one engine call may take before it is killed (and retried).",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE.json",
    help="Write every target's status, digest, tags, timings, attempts and cache hits here.",
)
@click.option(
    "--progress",
    type=click.Choice(["auto", "live", "plain"]),
    default="auto",
    show_default=True,
    help="A live table (auto: on a terminal with console logs) or one log line per change.",
)
@_pipeline_options
def build(
    *,
    targets: Sequence[str],
    downstream: Sequence[str],
    jobs: int,
    keep_going: bool,
    push: bool,
    no_cache: bool,
    pull: bool,
    retries: int | None,
    timeout: int,
    report_path: Path | None,
    progress: str,
    options: PipelineOptions,
) -> None:
    """Build the selected targets (and their ancestors) with buildx, in dependency order.

    Each child builds FROM the exact digest its parent produced in this run. Images are pushed under a
    content tag (bf-FINGERPRINT) as they finish; the pipeline's own tags are applied, registry side, only
    after every selected target was built, so a failed run never leaves half a release tagged.
    """
    from buildflow.engine.base import BuildOptions
    from buildflow.engine.buildx import BuildxEngine
    from buildflow.progress import Progress
    from buildflow.report import summary_table, write_report
    from buildflow.scheduler import RunOptions, Scheduler

    the_plan = _plan(options, targets, downstream)
    engine = BuildxEngine(timeout=timeout, on_output=_builder_output if log.enabled("debug") else None)
    engine.check()
    retry = dataclasses.replace(the_plan.pipeline.retry, attempts=retries) if retries else None
    run_options = RunOptions(jobs=jobs, keep_going=keep_going, build=BuildOptions(push, no_cache, pull), retry=retry)
    live = progress == "live" or (progress == "auto" and options.log_format == "console" and sys.stderr.isatty())
    with Progress(live=live) as view:
        result = Scheduler(the_plan, engine, run_options, events=view).run()
    click.echo(summary_table(result))
    if report_path:
        write_report(report_path, the_plan, result)
    if not result.ok:
        failed = sum(1 for outcome in result.outcomes.values() if outcome.status != "BUILT")
        raise RunFailed(
            f"buildflow: {failed} of {len(result.outcomes)} targets not built"
            if failed
            else "buildflow: the release tags were not applied"
        )


def _builder_output(target: str, line: str) -> None:
    """Builder output, at debug level."""
    log.event("debug", "build.output", target=target, line=line)


@cli.command(short_help="Print the JSON Schema of pipeline files.")
def schema() -> None:
    """Print the JSON Schema of pipeline files (for editors: yaml-language-server, VS Code, JetBrains)."""
    from buildflow.spec import schema as load_schema

    click.echo(json.dumps(load_schema(), indent=2))


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Run the CLI and exit with a documented code."""
    try:
        cli.main(args=argv, prog_name="buildflow", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.exceptions.Abort:
        click.echo("buildflow: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(EXIT_INVALID if error.exit_code == 2 else error.exit_code)
    except BuildflowError as error:
        _report(error)
        sys.exit(error.exit_code)
    except Exception as error:
        click.echo(f"buildflow: internal error: {type(error).__name__}: {error}", err=True)
        if _state["debug"]:
            traceback.print_exc()
        else:
            click.echo("rerun with --debug for a traceback, and please report it", err=True)
        sys.exit(EXIT_INTERNAL)
    sys.exit(0)


def _report(error: BuildflowError) -> None:
    """Print a user error: one line per problem, a traceback only with --debug."""
    for line in error.lines():
        click.echo(line, err=True)
    if _state["debug"]:
        traceback.print_exc()
