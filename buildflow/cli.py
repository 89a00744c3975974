"""The command line: the only place that turns exceptions into exit codes and output formats."""

from __future__ import annotations

import dataclasses
import functools
import gc
import json
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import click

from buildflow import __version__, log
from buildflow.errors import EXIT_INTERNAL, EXIT_INVALID, BuildflowError, Interrupted, RunFailed, UsageError

_EPILOG = """\b
Exit codes:
  0  success
  1  a target was not built, the release was not tagged, or no engine answers
  2  invalid pipeline file or command line: one line per problem
  3  internal error in buildflow (rerun with --debug and report it)
  4  another run of the same pipeline and registry holds the lock (build --no-wait)
  130, 143  build interrupted by SIGINT or SIGTERM (the report is still written, nothing is released)
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
      buildflow status                         what is up to date in the registry, and why not
      buildflow graph --format mermaid         the DAG for a README or a merge request
      buildflow build --keep-going             build what changed, push, then tag the release
      buildflow build --since origin/main      only what changed since a commit, and its children
      buildflow build --max-age 7d             nightly: also rebuild images older than a week
      buildflow build --lint=error             fail on Dockerfile lint findings before building
      buildflow lint                           hadolint on every Dockerfile, file:line per finding
      buildflow test app                       run app's image tests (and inherited ones) again
      buildflow schema > pipeline.schema.json  JSON Schema for editors

    The file format is in docs/pipeline-format.md, building in docs/building.md, tests, lint and sizes in
    docs/quality.md.
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
        help="Also select TARGET and every target built on it (repeatable).",
    )(command)
    return click.argument("targets", nargs=-1)(command)


def _load(options: PipelineOptions, engine: Any = None, file: Path | None = None) -> Any:
    """Configure logging and load the pipeline named on the command line.

    With an engine, external base images are resolved to their current digests through it.
    """
    _state["debug"] = options.debug
    log.configure(level="debug" if options.debug else "info", log_format=options.log_format)
    from buildflow.pipeline.loader import load_pipeline

    resolver = None
    if engine is not None:
        from buildflow.run.freshness import base_resolver

        resolver = base_resolver(engine, _base_not_found)
    with _collector_paused():
        pipeline = load_pipeline(
            file or options.file,
            overrides=_parse_vars(options.variables),
            registry=options.registry,
            display=str(file or options.file),
            resolve_bases=resolver,
        )
    log.event("debug", "pipeline.loaded", file=str(options.file), targets=len(pipeline.targets))
    return pipeline


def _warn_of_secret_like_names(pipeline: Any, display: str) -> None:
    """A build arg or test env named like a secret (HF_TOKEN) is warned about, pointing to secrets:."""
    from buildflow.quality.secret_names import suspicious_names

    for line in suspicious_names(pipeline, display=display):
        log.event("warning", "pipeline.secret_like_name", problem=line)


def _base_not_found(name: str, reason: str) -> None:
    """A base image that could not be resolved: it enters fingerprints by name only."""
    log.event("warning", "base.unresolved", base=name, reason=reason, effect="a move of this base goes unnoticed")


def _plan(
    options: PipelineOptions,
    targets: Sequence[str] = (),
    downstream: Sequence[str] = (),
    since: str | None = None,
    bases: Any = None,
) -> Any:
    """Load the pipeline and plan the selected targets (only those changed since a commit, with --since).

    With an engine as `bases`, external base images are resolved to digests through it.
    """
    from buildflow.plan.planner import make_plan

    pipeline = _load(options, bases)
    _warn_of_secret_like_names(pipeline, str(options.file))  # once: not for the copies --since loads
    if not since:
        return make_plan(pipeline, targets, downstream)
    from buildflow.plan.since import changed_since

    offline = _load(options) if bases is not None else pipeline
    changed = changed_since(since, offline, lambda old_file: _load(options, file=old_file))
    for target_id, why in changed.items():
        log.event("debug", "since.changed", target=target_id, why=why)
    return make_plan(pipeline, targets, downstream, changed=changed.keys())


def _lookup_engine(engine: Any) -> Any:
    """An engine whose registry lookups are retried like a build's."""
    from buildflow.engine.retrying import RetryingEngine
    from buildflow.model import RetryPolicy

    return RetryingEngine(engine, RetryPolicy())


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
    from buildflow.output.render import validation_summary

    click.echo(f"{options.file}: valid: {validation_summary(_plan(options))}")


def _rebuild_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """When an image that is up to date is built anyway: --max-age and --no-follow-bases."""
    command = click.option(
        "--no-follow-bases",
        is_flag=True,
        help="Do not resolve external bases (FROM ubuntu:22.04) to digests: a base that moved does not rebuild.",
    )(command)
    return click.option(
        "--max-age",
        metavar="AGE",
        callback=_check_age,
        help="Rebuild images built longer ago than AGE (7d, 12h, 2w), even if nothing changed. "
        "Default: the pipeline's rebuild.max_age, or never.",
    )(command)


def _check_age(context: click.Context, parameter: click.Parameter, value: str | None) -> str | None:
    """--max-age must read like 7d."""
    from buildflow.model import parse_age

    try:
        if value is not None:
            parse_age(value)
    except ValueError as error:
        raise click.BadParameter(f"{error}; use s, m, h, d or w") from None
    return value


def _max_age(the_plan: Any, max_age: str | None) -> float | None:
    """--max-age, else the pipeline's rebuild.max_age, in seconds."""
    from buildflow.model import parse_age

    return parse_age(max_age) if max_age else the_plan.pipeline.rebuild.max_age_seconds


@cli.command(short_help="Show the order, generations, parents, tags, fingerprints and what would be rebuilt.")
@_selection_options
@_rebuild_options
@click.option("--offline", is_flag=True, help="Do not ask registries: no base digests, no up-to-date check.")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
@_pipeline_options
def plan(
    *,
    targets: Sequence[str],
    downstream: Sequence[str],
    since: str | None,
    max_age: str | None,
    no_follow_bases: bool,
    offline: bool,
    output_format: str,
    options: PipelineOptions,
) -> None:
    """Show what would be built: order, generation, parents, fingerprint, tags, and whether each target
    is up to date in the registry or why it would be built (unless --offline).

    With TARGET names, only those targets and their ancestors; a name selects every matrix image of a
    target, an id like 'app[tf=1.8.0]' selects one.
    """
    from buildflow.output.render import plan_json, plan_table

    engine = None if offline else _lookup_engine(_buildx())
    the_plan = _plan(options, targets, downstream, since, None if no_follow_bases else engine)
    states = None
    if engine is not None:
        from buildflow.run.freshness import plan_states

        states = plan_states(the_plan, engine, max_age=_max_age(the_plan, max_age))
    click.echo(plan_json(the_plan, states) if output_format == "json" else plan_table(the_plan, states))


@cli.command(short_help="Say for every target whether it is up to date, and if not, why.")
@_selection_options
@_rebuild_options
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
@_pipeline_options
def status(
    *,
    targets: Sequence[str],
    downstream: Sequence[str],
    since: str | None,
    max_age: str | None,
    no_follow_bases: bool,
    output_format: str,
    options: PipelineOptions,
) -> None:
    """Say for every target whether its image in the registry is up to date, and if not, why:
    'Dockerfile changed', 'context file src/train.py changed', 'base ubuntu:22.04 moved ...',
    'parent cuda will be rebuilt', 'older than max-age 7d'. Builds nothing.

    The previous inputs come from the build records buildflow keeps beside each image in the registry,
    so this works on a fresh CI runner.
    """
    from buildflow.output.render import status_json, status_table
    from buildflow.run.freshness import plan_states

    engine = _lookup_engine(_buildx())
    the_plan = _plan(options, targets, downstream, since, None if no_follow_bases else engine)
    if not the_plan.pipeline.registry:
        raise UsageError(f"{options.file}: status needs a registry: set registry: in the file or pass --registry")
    states = plan_states(the_plan, engine, max_age=_max_age(the_plan, max_age))
    click.echo(status_json(the_plan, states) if output_format == "json" else status_table(the_plan, states))


def _buildx(timeout: int = 1800) -> Any:
    """The buildx engine (nothing is started until it is used)."""
    from buildflow.engine.buildx import BuildxEngine

    return BuildxEngine(timeout=timeout, on_output=_builder_output)


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
def graph(
    *,
    targets: Sequence[str],
    downstream: Sequence[str],
    since: str | None,
    output_format: str,
    options: PipelineOptions,
) -> None:
    """Draw the DAG; inferred edges (from Dockerfile FROM lines) are marked."""
    from buildflow.output.render import graph_dot, graph_mermaid, graph_text

    draw = {"text": graph_text, "dot": graph_dot, "mermaid": graph_mermaid}[output_format]
    click.echo(draw(_plan(options, targets, downstream, since)))


def _output_file(flag: str, metavar: str, help_text: str) -> Callable[..., Any]:
    """An option naming a report file to write; the command receives it as `<flag>_path`."""
    return click.option(
        flag, f"{flag[2:]}_path", type=click.Path(path_type=Path, dir_okay=False), metavar=metavar, help=help_text
    )


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
@_output_file("--report", "FILE.json", "Write every target's status, why, digest, tags, timings and cache hits here.")
@_output_file("--junit", "FILE.xml", "Write a JUnit file, one testcase per target (GitLab, Jenkins, GitHub read it).")
@_output_file(
    "--summary", "FILE.md", "Write a Markdown summary with the DAG (also appended to $GITHUB_STEP_SUMMARY if set)."
)
@click.option(
    "--progress",
    type=click.Choice(["auto", "live", "plain"]),
    default="auto",
    show_default=True,
    help="A live table (auto: on a terminal with console logs) or one log line per change.",
)
@click.option("--force", is_flag=True, help="Build every selected target, even those up to date in the registry.")
@click.option(
    "--force-target",
    "force_targets",
    multiple=True,
    metavar="TARGET",
    help="Build TARGET even if it is up to date (repeatable); children follow if its digest changes.",
)
@_rebuild_options
@click.option(
    "--lint",
    "lint_mode",
    type=click.Choice(["off", "warn", "error"]),
    default="warn",
    show_default=True,
    help="Lint the Dockerfiles first (hadolint): show findings (warn), or fail before building (error).",
)
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="When another run of this pipeline and registry holds the lock: wait for it, or exit with code 4.",
)
@_pipeline_options
def build(
    *,
    targets: Sequence[str],
    downstream: Sequence[str],
    since: str | None,
    jobs: int,
    keep_going: bool,
    push: bool,
    no_cache: bool,
    pull: bool,
    retries: int | None,
    timeout: int,
    report_path: Path | None,
    junit_path: Path | None,
    summary_path: Path | None,
    progress: str,
    force: bool,
    force_targets: Sequence[str],
    max_age: str | None,
    no_follow_bases: bool,
    lint_mode: str,
    wait: bool,
    options: PipelineOptions,
) -> None:
    """Build the selected targets (and their ancestors) with buildx, in dependency order.

    A target whose image is already in the registry under its fingerprint, with a build record that is
    young enough, is REUSED: nothing is built, its children build on it and its tags are still applied.
    Each child builds FROM the exact digest its parent has. Images are pushed under a content tag
    (bf-FINGERPRINT) as they finish; the pipeline's own tags are applied, registry side, only after every
    selected target was built or reused, so a failed run never leaves half a release tagged.
    """
    from buildflow.caches import user_cache
    from buildflow.pipeline.variables import source_date_epoch
    from buildflow.plan.planner import ids
    from buildflow.run.naming import BuildOptions
    from buildflow.run.outcome import RunOptions

    engine = _buildx(timeout)
    the_plan = _plan(options, targets, downstream, since, None if no_follow_bases else _lookup_engine(engine))
    retry = dataclasses.replace(the_plan.pipeline.retry, attempts=retries) if retries else None
    run_options = RunOptions(
        jobs=jobs,
        keep_going=keep_going,
        build=BuildOptions(push, no_cache, pull),
        retry=retry,
        force=None if force else frozenset(ids(the_plan.pipeline, force_targets)),
        max_age=_max_age(the_plan, max_age),
        source_date_epoch=source_date_epoch(the_plan.pipeline.root),
        layer_cache=user_cache("layers"),
    )
    live = progress == "live" or (progress == "auto" and options.log_format == "console" and sys.stderr.isatty())
    findings = _lint_before_build(the_plan, lint_mode)
    with _run_lock(the_plan, wait):
        result, interrupted = _run(the_plan, engine, run_options, live)
    result.lint = tuple(findings)
    _write_reports(the_plan, result, report_path, junit_path, summary_path)
    if interrupted:
        name = signal.Signals(interrupted).name
        raise Interrupted(
            f"buildflow: interrupted by {name}; nothing was released; a re-run reuses what finished", interrupted
        )
    if not result.ok:
        failed = sum(1 for outcome in result.outcomes.values() if not outcome.succeeded)
        raise RunFailed(
            f"buildflow: {failed} of {len(result.outcomes)} targets not built"
            if failed
            else "buildflow: the release tags were not applied"
        )


def _lint_before_build(the_plan: Any, mode: str) -> list[Any]:
    """Lint the plan's Dockerfiles: findings are logged as warnings; with --lint=error any finding, or a hadolint
    that cannot run, stops the run before anything is built (with --lint=warn, the latter is only a warning)."""
    if mode == "off":
        return []
    from buildflow.caches import user_cache
    from buildflow.quality.lint import LintUnavailable, lint, requests_for

    try:
        findings = lint(requests_for(step.target for step in the_plan.steps), cache=user_cache("lint"))
    except LintUnavailable as error:
        if mode == "error":
            raise
        log.event("warning", "lint.unavailable", error=str(error), effect="the Dockerfiles were not linted")
        return []
    root = the_plan.pipeline.root
    for finding in findings:
        log.event("warning", "lint.finding", finding=finding.text(root))
    if findings and mode == "error":
        raise RunFailed(
            f"buildflow: {len(findings)} Dockerfile lint findings (--lint=error); nothing was built. "
            "Fix them, or ignore a rule with lint: {ignore: [CODE]} in the pipeline"
        )
    return list(findings)


def _run(the_plan: Any, engine: Any, run_options: Any, live: bool) -> tuple[Any, int]:
    """Run the scheduler with progress on stderr and the summary table on stdout; SIGINT and SIGTERM
    interrupt it cleanly. The result, and the number of the signal that interrupted it (0 if none)."""
    from buildflow.output.progress import Progress
    from buildflow.output.report import summary_table
    from buildflow.run.dispatch import Scheduler

    received: list[int] = []
    with Progress(live=live) as view:
        scheduler = Scheduler(the_plan, engine, run_options, events=view)

        def interrupt(number: int, frame: object) -> None:
            received.append(number)
            scheduler.interrupt(signal.Signals(number).name)

        previous = {number: signal.signal(number, interrupt) for number in (signal.SIGINT, signal.SIGTERM)}
        try:
            result = scheduler.run()
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
    click.echo(summary_table(result))
    return result, received[0] if received else 0


def _run_lock(the_plan: Any, wait: bool) -> Any:
    """The lock of this pipeline and registry on this host."""
    from buildflow.run.lock import RunLock, lock_path
    from buildflow.run.naming import repository

    pipeline = the_plan.pipeline
    path = lock_path(pipeline.registry, (repository(target, pipeline.registry) for target in pipeline.targets.values()))
    describe = f"{pipeline.file} on {pipeline.registry or 'the local image store'}"
    return RunLock(path, wait=wait, describe=describe, on_wait=lambda holder: _waiting(describe, holder))


def _waiting(describe: str, holder: str) -> None:
    """Say that this run waits for another."""
    log.event("warning", "lock.waiting", pipeline=describe, holder=holder, hint="--no-wait exits instead (code 4)")


def _write_reports(
    the_plan: Any, result: Any, report_path: Path | None, junit_path: Path | None, summary_path: Path | None
) -> None:
    """The JSON report, the JUnit file and the Markdown summary that were asked for; the GitHub step summary."""
    from buildflow.output.report import write_report

    if report_path:
        write_report(report_path, the_plan, result)
    if not (junit_path or summary_path or os.environ.get("GITHUB_STEP_SUMMARY")):
        return
    from buildflow.output.ci_reports import append_github_step_summary, write_junit, write_summary

    if junit_path:
        write_junit(junit_path, the_plan, result)
    if summary_path:
        write_summary(summary_path, the_plan, result)
    append_github_step_summary(the_plan, result)


def _builder_output(target: str, line: str) -> None:
    """Builder output, at debug level (checked per line: --debug takes effect after the engine is made)."""
    log.event("debug", "build.output", target=target, line=line)


@cli.command(short_help="Lint the selected targets' Dockerfiles with hadolint; exit 1 on findings.")
@_selection_options
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
@_pipeline_options
def lint(
    *,
    targets: Sequence[str],
    downstream: Sequence[str],
    since: str | None,
    output_format: str,
    options: PipelineOptions,
) -> None:
    """Check every selected Dockerfile for hygiene with hadolint (pinned versions, apt-get update with install,
    --no-install-recommends, caches cleaned in the same layer, no latest base) and for a .dockerignore (BF001).

    Findings below a target's `lint.threshold` (default info) and the rules in `lint.ignore` are left out;
    `# hadolint ignore=DL3008` above an instruction works too. Exit code 1 when anything is found.
    """
    from buildflow.caches import user_cache
    from buildflow.quality.lint import lint as run_lint
    from buildflow.quality.lint import render, requests_for, to_json

    the_plan = _plan(options, targets, downstream, since)
    requests = requests_for(step.target for step in the_plan.steps)
    findings = run_lint(requests, cache=user_cache("lint"))
    root = the_plan.pipeline.root
    if output_format == "json":
        click.echo(json.dumps(to_json(findings, root), indent=2))
    else:
        click.echo(render(findings, root, dockerfiles=len({request.dockerfile for request in requests})))
    if findings:
        raise RunFailed(f"buildflow: {len(findings)} Dockerfile lint findings")


@cli.command("test", short_help="Run the image tests of built targets, without building.")
@_selection_options
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="How many targets are tested at once.",
)
@click.option("--push/--no-push", default=True, show_default=True, help="Test the registry's images, or local ones.")
@_output_file("--report", "FILE.json", "Write every test's result, exit code and output here.")
@_output_file("--junit", "FILE.xml", "Write a JUnit file, one testcase per test.")
@_pipeline_options
def test_images(
    *,
    targets: Sequence[str],
    downstream: Sequence[str],
    since: str | None,
    jobs: int,
    push: bool,
    report_path: Path | None,
    junit_path: Path | None,
    options: PipelineOptions,
) -> None:
    """Run the `test:` commands of the selected targets (their own and inherited ones) in containers of the
    images already built for their current inputs (content tag bf-FINGERPRINT), as `build` does after building.

    Names select exactly those targets (all matrix images of a name); with none, every target. A target's tests
    run one after the other, `--jobs` targets at a time. Exit code 1 when a test fails or an image is not built yet.
    """
    from buildflow.plan.planner import ids

    engine = _lookup_engine(_buildx())
    the_plan = _plan(options, (), downstream, since, engine)
    pipeline = the_plan.pipeline
    chosen = ids(pipeline, targets) if targets else [step.target.id for step in the_plan.steps]
    results: dict[str, Any] = {}
    problems: dict[str, str] = {}
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="test") as pool:
        outcomes = list(pool.map(lambda target_id: _test_built(engine, pipeline, target_id, push), chosen))
    for target_id, outcome in zip(chosen, outcomes, strict=True):
        if isinstance(outcome, str):
            problems[target_id] = outcome
        elif outcome:
            results[target_id] = outcome
    _show_tests(results, problems)
    _write_test_reports(the_plan, results, problems, report_path, junit_path)
    failed = sum(1 for found in results.values() for result in found if not result.passed)
    if failed or problems:
        targets_text = "1 target" if len(problems) == 1 else f"{len(problems)} targets"
        raise RunFailed(f"buildflow: {failed} tests failed; the tests of {targets_text} could not run")


def _test_built(engine: Any, pipeline: Any, target_id: str, push: bool) -> list[Any] | str:
    """The results of a target's tests on its built image, or why they could not run."""
    from buildflow.engine.base import EngineError
    from buildflow.run.imagetests import built_image, image_tests, run_tests

    tests = image_tests(pipeline, target_id)
    if not tests:
        return []
    try:
        image = built_image(engine, pipeline, pipeline.targets[target_id], push=push)
        if image is None:
            return f"not built for its current inputs: run buildflow build {target_id}"
        return run_tests(engine, image, tests)
    except EngineError as error:
        return str(error)


def _show_tests(results: dict[str, Any], problems: dict[str, str]) -> None:
    """One line per test (target, command, result, time), then one per target that could not be tested."""
    from buildflow.output.render import aligned

    rows = [
        (target_id, r.test.command, r.test.origin, r.status.upper(), f"{r.seconds:.1f}s", r.reason or "-")
        for target_id, found in results.items()
        for r in found
    ]
    rows += [(target_id, "-", "-", "NOT RUN", "-", problem) for target_id, problem in problems.items()]
    header = ("TARGET", "TEST", "DECLARED BY", "RESULT", "TIME", "DETAIL")
    click.echo("\n".join(aligned(header, rows)) if rows else "no tests")


def _write_test_reports(
    the_plan: Any, results: dict[str, Any], problems: dict[str, str], report: Path | None, junit: Path | None
) -> None:
    """The JSON report and JUnit file of `buildflow test`, as asked for."""
    if report:
        document = {
            "pipeline": str(the_plan.pipeline.file),
            "targets": [
                {"id": target_id, "tests": [r.to_json() for r in found]} for target_id, found in results.items()
            ],
            "not_run": problems,
        }
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(document, indent=2) + "\n")
    if junit:
        from buildflow.output.ci_reports import write_test_junit

        write_test_junit(junit, the_plan, results)


@cli.command(short_help="Print the JSON Schema of pipeline files.")
def schema() -> None:
    """Print the JSON Schema of pipeline files (for editors: yaml-language-server, VS Code, JetBrains)."""
    from buildflow.pipeline.spec import schema as load_schema

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
