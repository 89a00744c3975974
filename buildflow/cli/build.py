"""`buildflow build`: its options, the build session, the summary table and reports, and the exit code."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from buildflow.cli.completion import complete_targets
from buildflow.cli.loading import buildx, load_plan, lookup_engine
from buildflow.cli.options import (
    PipelineOptions,
    builder_option,
    check_age,
    check_report_paths,
    max_age_seconds,
    output_file,
    pipeline_options,
    rebuild_options,
    release_policy_option,
    selection_options,
    unwritable_directory,
    wait_option,
    with_release_policy,
)
from buildflow.cli.runs import run_counts, run_events, selection
from buildflow.errors import Interrupted, RunFailed, UsageError

Selection = tuple[Sequence[str], Sequence[str], str | None, Sequence[str]]  # TARGETs, --downstream, --since, --only
Reports = tuple[Path | None, Path | None, Path | None, Path | None]  # --report, --junit, --summary, --html

if TYPE_CHECKING:
    from buildflow.engine.buildx import BuildxEngine
    from buildflow.plan.planner import Plan
    from buildflow.run.logs import RunLogs
    from buildflow.run.naming import BuildOptions
    from buildflow.run.outcome import RunOptions, RunResult
    from buildflow.run.pool import BuilderUse
    from buildflow.run.session import EventsView, Interruption, Session


class ProgressChoice(click.Choice):  # type: ignore[type-arg]
    """--progress auto|tty|plain|quiet; live, the old name of tty, is still taken (deprecated, not listed)."""

    def __init__(self) -> None:
        super().__init__(["auto", "tty", "plain", "quiet"])

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> str:
        """The mode chosen, live read as tty."""
        return "tty" if value == "live" else str(super().convert(value, param, ctx))


@click.command(short_help="Build the selection in dependency order, push it, then tag the release.")
@selection_options
@click.option(
    "--only",
    "only",
    multiple=True,
    metavar="TARGET",
    shell_complete=complete_targets,
    help="Build exactly TARGET (all its images, or one image id such as 'app[tf=1.8.0]'; repeatable), no ancestor: "
    "its other parents must be in the registry already. Not with TARGET arguments, --downstream or --since.",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="How many builds run at once; a target starts as soon as its own parents are built.",
)
@builder_option
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
@click.option(
    "--no-release",
    is_flag=True,
    help="Build, push and record, but move no release tag (buildflow release moves them once all is built).",
)
@release_policy_option
@click.option("--no-cache", is_flag=True, help="Do not use cached build steps.")
@click.option(
    "--no-early-cutoff",
    is_flag=True,
    help="Rebuild the children of a parent whose inputs changed even when it rebuilds to the same digest.",
)
@click.option("--pull", is_flag=True, help="Always check the registry for newer external base images.")
@click.option(
    "--retries",
    type=click.IntRange(1, 20),
    metavar="N",
    help="Tries per engine or registry call for transient errors (default: the pipeline's, 3).",
)
@click.option(
    "--run-timeout",
    metavar="AGE",
    callback=check_age,
    help="Stop the whole run after AGE (90m, 2h): nothing new starts, the release is put back, exit code 1.",
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
    "--log-dir",
    type=click.Path(path_type=Path, file_okay=False),
    metavar="DIR",
    help="Keep each target's whole builder output in DIR/RUN_ID/TARGET.log (default: under ~/.cache/buildflow/logs; "
    "the report names each file). Keep it out of build contexts.",
)
@output_file("--report", "FILE.json", "Write every target's status, why, digest, tags, timings and cache hits here.")
@output_file("--junit", "FILE.xml", "Write a JUnit file, one testcase per target (GitLab, Jenkins, GitHub read it).")
@output_file(
    "--summary", "FILE.md", "Write a Markdown summary with the DAG (also appended to $GITHUB_STEP_SUMMARY if set)."
)
@output_file(
    "--html",
    "FILE.html",
    "Write one self-contained HTML page of the run: the DAG coloured by status, a timeline with the critical path, "
    "sizes and wasted bytes, each failure's last lines.",
)
@click.option(
    "--progress",
    type=ProgressChoice(),
    default="auto",
    show_default=True,
    help="tty: a live view of the running targets and their current steps, the failures, and counts of the rest; "
    "plain: one log line per change; quiet: warnings, errors and the summary only; auto: tty on a terminal with "
    "console logs, else plain.",
)
@click.option("--force", is_flag=True, help="Build every selected target, even those up to date in the registry.")
@click.option(
    "--force-target",
    "force_targets",
    multiple=True,
    metavar="TARGET",
    shell_complete=complete_targets,
    help="Build TARGET even if it is up to date (repeatable); children follow if its digest changes.",
)
@rebuild_options
@click.option(
    "--lint",
    "lint_mode",
    type=click.Choice(["off", "warn", "error"]),
    default="warn",
    show_default=True,
    help="Lint the Dockerfiles first (hadolint): show findings (warn), or fail before building (error).",
)
@wait_option
@pipeline_options
def build(
    *,
    targets: Sequence[str],
    downstream: Sequence[str],
    since: str | None,
    only: Sequence[str],
    jobs: int,
    builder_names: Sequence[str],
    keep_going: bool,
    push: bool,
    no_cache: bool,
    pull: bool,
    no_release: bool,
    release_policy: str | None,
    no_early_cutoff: bool,
    retries: int | None,
    timeout: int,
    run_timeout: str | None,
    log_dir: Path | None,
    report_path: Path | None,
    junit_path: Path | None,
    summary_path: Path | None,
    html_path: Path | None,
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

    A target whose image is in the registry for its inputs (or whose parents rebuilt to the same digests) is
    REUSED, its tags still applied. Each child builds FROM its parent's exact digest. Release tags move at the end:
    all or none, or (--release per-target) each image's whose ancestors and itself were built. DIR/RUN_ID/TARGET.log
    keeps each build's output."""
    from buildflow.run.naming import BuildOptions
    from buildflow.run.session import Interruption

    reports = checked_reports(report_path, junit_path, summary_path, html_path)
    engine, logs = _engine_and_logs(timeout, log_dir)
    wanted = (targets, downstream, since, only)
    with Interruption(engine, run_timeout=run_timeout or "") as interruption:
        the_plan = _plan_unless_interrupted(options, wanted, engine, (no_follow_bases, release_policy))
        choices = (builder_names, jobs, timeout), (lint_mode, wait, (progress, push))
        session = _session(the_plan, (engine, logs), options, *choices)
        run_options = _run_options(
            the_plan,
            jobs=jobs,
            builders=tuple(use.name for use in session.builders),
            keep_going=keep_going,
            build=BuildOptions(push, no_cache, pull),
            retries=retries,
            force=(force, force_targets),
            max_age=max_age,
            switches=(bool(only), not no_release, not no_early_cutoff),
        )
        _run_observed(the_plan, (engine, interruption), (run_options, session), options, (wanted, reports))


def _run_observed(
    plan: Plan,
    engine_and_interruption: tuple[BuildxEngine, Interruption],
    run_and_session: tuple[RunOptions, Session],
    options: PipelineOptions,
    wanted_and_reports: tuple[Selection, Reports],
) -> None:
    """Run the build between its run.started and run.finished events; show its result, write its reports, and raise
    the error of a build that did not build everything or tag the release."""
    from buildflow.run.session import run_build

    engine, interruption = engine_and_interruption
    run_options, session = run_and_session
    (targets, downstream, since, only), reports = wanted_and_reports
    chosen = selection(targets=targets, downstream=downstream, since=since, only=only)
    builders = list(run_options.builders)  # none: the current docker context's
    with run_events("build", session.run_id, plan, options, selection=chosen, builders=builders) as end:
        result = run_build(plan, engine, run_options, interruption=interruption, session=session)
        end.fields = run_counts(result)
        show_result(plan, result, reports)
        _exit_unless_done(result, interruption)


def _session(
    plan: Plan,
    engine_and_logs: tuple[BuildxEngine, tuple[str, RunLogs]],
    options: PipelineOptions,
    builders: tuple[Sequence[str], int, int],
    choices: tuple[str, bool, tuple[str, bool]],
) -> Session:
    """How the build runs: its builders (checked, with their caches), the lint mode, the lock, the progress view,
    and where each target's builder output goes."""
    from buildflow.run.session import Session

    engine, (run_id, logs) = engine_and_logs
    names, jobs, timeout = builders
    lint_mode, wait, (progress, push) = choices
    progress = "plain" if options.log_format == "json" and progress == "tty" else progress  # stderr all JSON
    uses = _builders_unless_interrupted(plan, names, jobs, timeout, logs)
    _check_cache(plan, uses, engine, str(options.file))
    _check_supply(plan, uses, engine, (str(options.file), push))
    return Session(lint_mode, wait, _progress_view(progress, options, logs, push), uses, logs, run_id)


def _progress_view(progress: str, options: PipelineOptions, logs: RunLogs, push: bool) -> EventsView:
    """The live view with each running target's current step (--progress tty, or auto on a terminal with console
    logs), else log lines (plain), or only warnings and errors (quiet)."""
    from buildflow.output.progress import Progress

    terminal = options.log_format == "console" and sys.stderr.isatty()
    mode = ("tty" if terminal else "plain") if progress == "auto" else progress
    return lambda: Progress(mode, step=logs.step, pushes=push)


def _plan_unless_interrupted(
    options: PipelineOptions, wanted: Selection, engine: BuildxEngine, bases_and_release: tuple[bool, str | None]
) -> Plan:
    """The plan of the selection (with --release over the file's release policy); a signal while it is made (base
    images are looked up) ends the command."""
    from buildflow.run.session import RunInterrupted

    (targets, downstream, since, only), (no_follow_bases, release_policy) = wanted, bases_and_release
    check_only(only, targets, downstream, since)
    try:
        bases = None if no_follow_bases else lookup_engine(engine)
        plan = load_plan(options, targets, downstream, since, bases, only=only)
        return with_release_policy(plan, release_policy)
    except RunInterrupted as stopped:
        raise Interrupted(f"buildflow: interrupted by {stopped}; nothing was built", stopped.number) from None


def _builders_unless_interrupted(
    plan: Plan, names: Sequence[str], jobs: int, timeout: int, logs: RunLogs
) -> list[BuilderUse]:
    """The builders named (--builder, else the file's builders:), each checked to be here (exit 2) and to answer
    (exit 1) before anything is built, with an engine each. None named: [] for the current builder, described
    before its first build only, so that a run that reuses everything never starts docker."""
    from buildflow.run.builders import select_builders
    from buildflow.run.pool import BuilderUse
    from buildflow.run.session import RunInterrupted

    if not names and not plan.pipeline.builders:
        return []
    try:
        chosen = select_builders(plan.pipeline, names, jobs)
    except RunInterrupted as stopped:
        raise Interrupted(f"buildflow: interrupted by {stopped}; nothing was built", stopped.number) from None
    return [BuilderUse(b.name, buildx(timeout, b.info, logs), b.info, b.spec.jobs, b.spec.platforms) for b in chosen]


def _engine_and_logs(timeout: int, log_dir: Path | None) -> tuple[BuildxEngine, tuple[str, RunLogs]]:
    """The current builder's engine, and the run's id and logs, which every builder's output goes to."""
    logs = run_logs(log_dir)
    return buildx(timeout, logs=logs[1]), logs


def run_logs(directory: Path | None) -> tuple[str, RunLogs]:
    """A new run's id and where its builder output goes (DIR/RUN_ID), checked writable before anything is built."""
    from buildflow.caches import user_cache
    from buildflow.run.logs import RunLogs, new_run_id

    run_id = new_run_id()
    problem = unwritable_directory(directory) if directory is not None else ""
    if problem:
        raise UsageError(f"--log-dir {directory}: {problem}; choose a directory that can be written")
    return run_id, RunLogs((directory or user_cache("logs")) / run_id)


def _check_cache(plan: Plan, uses: Sequence[BuilderUse], engine: BuildxEngine, display: str) -> None:
    """A build cache the file asks for that a builder cannot export stops the run before anything is built; the
    current builder is asked (docker) only when the file asks for such a cache."""
    from buildflow.run.builders import asks_exported_cache, check_cache

    if uses:
        check_cache(plan, [use.info for use in uses if use.info], display)
    elif asks_exported_cache(plan):
        check_cache(plan, [engine.info], display)


def _check_supply(plan: Plan, uses: Sequence[BuilderUse], engine: BuildxEngine, run: tuple[str, bool]) -> None:
    """Attestations or an OCI layout a builder cannot give stop the run before anything is built; the current
    builder is asked (docker) only when some target asks for them."""
    from buildflow.run.builders import asks_supply_checks, check_supply

    if asks_supply_checks(plan):
        infos = [use.info for use in uses if use.info] if uses else [engine.info]
        check_supply(plan, infos, run[0], push=run[1])


def _run_options(
    plan: Plan,
    *,
    jobs: int,
    builders: tuple[str, ...],
    keep_going: bool,
    build: BuildOptions,
    retries: int | None,
    force: tuple[bool, Sequence[str]],
    max_age: str | None,
    switches: tuple[bool, bool, bool],
) -> RunOptions:
    """How the run behaves, from the command line's choices."""
    import dataclasses

    from buildflow.caches import user_cache
    from buildflow.plan.planner import ids
    from buildflow.run.outcome import RunOptions

    return RunOptions(
        jobs=jobs,
        builders=builders,
        keep_going=keep_going,
        build=build,
        retry=dataclasses.replace(plan.pipeline.retry, attempts=retries) if retries else None,
        force=None if force[0] else frozenset(ids(plan.pipeline, force[1])),
        max_age=max_age_seconds(plan, max_age),
        source_date_epoch=run_epoch(plan.pipeline.root),
        epoch_given=os.environ.get("SOURCE_DATE_EPOCH", "").isdigit(),
        layer_cache=user_cache("layers"),
        only=switches[0],
        release=switches[1],
        early_cutoff=switches[2],
    )


def run_epoch(root: Path) -> str:
    """SOURCE_DATE_EPOCH for images built for the first time: $SOURCE_DATE_EPOCH, else the checkout's commit time,
    else 0, said in one line (a fixed epoch keeps digests reproducible, and the same through input changes that
    leave the image alone, which a time derived from the inputs would not)."""
    from buildflow import log
    from buildflow.pipeline.variables import source_date_epoch

    epoch = source_date_epoch(root)
    if not epoch:
        log.event("info", "epoch", source_date_epoch="0", why="no SOURCE_DATE_EPOCH and no git commit")
    return epoch or "0"


def check_only(only: Sequence[str], targets: Sequence[str], downstream: Sequence[str], since: str | None) -> None:
    """--only names every image to build: it takes no other selection (exit 2)."""
    others = [
        name
        for name, given in (("TARGET arguments", targets), ("--downstream", downstream), ("--since", since))
        if given
    ]
    if only and others:
        raise UsageError(f"--only cannot be combined with {' or '.join(others)}: it names exactly the images to build")


def checked_reports(report: Path | None, junit: Path | None, summary: Path | None, html: Path | None) -> Reports:
    """The report files asked for (--report, --junit, --summary, --html), each checked writable before anything is
    built or released (exit 2 naming it)."""
    check_report_paths({"--report": report, "--junit": junit, "--summary": summary, "--html": html})
    return report, junit, summary, html


def show_result(plan: Plan, result: RunResult, reports: Reports, command: str = "build") -> None:
    """The summary table on stdout; the JSON report, the JUnit file, the Markdown summary and the HTML page that
    were asked for; the GitHub step summary."""
    from buildflow.output.report import summary_table, write_report

    report_path, junit_path, summary_path, html_path = reports
    click.echo(summary_table(result))
    if report_path:
        write_report(report_path, plan, result)
    if html_path:
        from buildflow.output.html_report import write_html
        from buildflow.output.runview import run_view

        write_html(html_path, run_view(plan, result, command))
    if not (junit_path or summary_path or os.environ.get("GITHUB_STEP_SUMMARY")):
        return
    from buildflow.output.ci_reports import append_github_step_summary, write_junit, write_summary

    if junit_path:
        write_junit(junit_path, plan, result)
    if summary_path:
        write_summary(summary_path, plan, result)
    append_github_step_summary(plan, result)


def _exit_unless_done(result: RunResult, interruption: Interruption) -> None:
    """Raise the error of a run that a signal or --run-timeout ended, or that did not build every target or tag the
    release; the message says what is true of the release (and names the first failure)."""
    from buildflow.run.outcome import Status

    exit_if_interrupted(result, interruption)
    if not result.ok:
        failed = [outcome for outcome in result.outcomes.values() if not outcome.succeeded]
        first = next((outcome for outcome in failed if outcome.status == Status.FAILED), None)
        why = f": {first.target.id}: {first.error}" if first else ""
        raise RunFailed(
            f"buildflow: {len(failed)} of {len(result.outcomes)} targets not built{why}"
            if failed
            else f"buildflow: the release tags were not applied: {result.release_error}"
        )


def exit_if_interrupted(result: RunResult, interruption: Interruption) -> None:
    """Raise the error of a run that a signal or --run-timeout ended; the message says what is true of the release."""
    if not interruption.number:
        return
    reason = interruption.reason
    if result.released:
        message = f"buildflow: interrupted by {reason} after the release was complete"
    elif result.release_error:
        message = f"buildflow: interrupted by {reason}; the release: {result.release_error}"
    else:
        message = f"buildflow: interrupted by {reason}; nothing was released; a re-run reuses what finished"
    if interruption.timed_out:
        raise RunFailed(message.replace("interrupted by --run-timeout", "stopped by --run-timeout", 1))
    raise Interrupted(message, interruption.number)
