"""`buildflow release`: move the release tags of images built job by job, once every one is checked, all or nothing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from buildflow.cli.build import checked_reports, exit_if_interrupted, show_result
from buildflow.cli.completion import complete_targets
from buildflow.cli.loading import buildx, load_plan, lookup_engine
from buildflow.cli.options import (
    PipelineOptions,
    output_file,
    pipeline_options,
    release_policy_option,
    wait_option,
    with_release_policy,
)
from buildflow.cli.runs import run_counts, run_events, selection
from buildflow.errors import Interrupted, RunFailed

if TYPE_CHECKING:
    from buildflow.engine.buildx import BuildxEngine
    from buildflow.plan.planner import Plan
    from buildflow.run.outcome import RunResult
    from buildflow.run.session import Interruption


@click.command(
    short_help="Move the release tags of images built earlier (build --only … --no-release), all or nothing."
)
@click.argument("targets", nargs=-1, shell_complete=complete_targets)
@click.option(
    "--retries",
    type=click.IntRange(1, 20),
    metavar="N",
    help="Tries per registry call for transient errors (default: the pipeline's, 3).",
)
@click.option(
    "--no-follow-bases",
    is_flag=True,
    help="Do not resolve external bases to digests: give it when the builds were given it (fingerprints differ).",
)
@output_file("--report", "FILE.json", "Write every target's status, digest, release tags and problem here.")
@output_file("--junit", "FILE.xml", "Write a JUnit file, one testcase per target.")
@output_file(
    "--summary", "FILE.md", "Write a Markdown summary with the DAG (also appended to $GITHUB_STEP_SUMMARY if set)."
)
@output_file(
    "--html", "FILE.html", "Write one self-contained HTML page: the DAG coloured by status, each image's problem."
)
@release_policy_option
@wait_option
@pipeline_options
def release(
    *,
    targets: Sequence[str],
    retries: int | None,
    no_follow_bases: bool,
    report_path: Path | None,
    junit_path: Path | None,
    summary_path: Path | None,
    html_path: Path | None,
    release_policy: str | None,
    wait: bool,
    options: PipelineOptions,
) -> None:
    """Move the release tags of the selected targets (and their ancestors; none: every target), built earlier, for
    instance one CI job per image with `buildflow build --only ID --no-release`. Nothing is built.

    Every image is first checked in the registry: its content tag (bf-FINGERPRINT of its current inputs), a build
    record of that digest, its image tests passed on it, and built on its parents' images. If one is not ready,
    exit code 1 with one line per image and the command that makes it, and no tag moves. Else every release tag
    moves as at the end of `build`: all or nothing, put back on a failure or a signal.
    """
    import dataclasses

    from buildflow.output.progress import Progress
    from buildflow.run.logs import new_run_id
    from buildflow.run.releasing import release_built
    from buildflow.run.session import Interruption

    reports = checked_reports(report_path, junit_path, summary_path, html_path)
    engine, run_id = buildx(), new_run_id()
    with Interruption(engine) as interruption:
        the_plan = with_release_policy(
            _plan_unless_interrupted(options, targets, engine, no_follow_bases), release_policy
        )
        retry = dataclasses.replace(the_plan.pipeline.retry, attempts=retries) if retries else None
        with run_events("release", run_id, the_plan, options, selection=selection(targets=targets)) as end:
            with Progress() as events:
                result = release_built(
                    the_plan, engine, retry=retry, wait=wait, interruption=interruption, events=events
                )
            result.run_id = run_id
            end.fields = run_counts(result)
            show_result(the_plan, result, reports, "release")
            _exit_unless_released(result, interruption)


def _plan_unless_interrupted(
    options: PipelineOptions, targets: Sequence[str], engine: BuildxEngine, no_follow_bases: bool
) -> Plan:
    """The plan of the selection, bases resolved as build resolves them; a signal meanwhile ends the command."""
    from buildflow.run.session import RunInterrupted

    try:
        return load_plan(options, targets, (), None, None if no_follow_bases else lookup_engine(engine))
    except RunInterrupted as stopped:
        raise Interrupted(f"buildflow: interrupted by {stopped}; nothing was released", stopped.number) from None


def _exit_unless_released(result: RunResult, interruption: Interruption) -> None:
    """Raise the error of a release that a signal stopped, that found images not ready (one line each), or whose
    tags could not all move (every tag moved was put back)."""
    exit_if_interrupted(result, interruption)
    problems = [
        f"{outcome.target.id}: {outcome.error}" for outcome in result.outcomes.values() if not outcome.succeeded
    ]
    if problems:
        raise RunFailed("\n".join(problems))
    if result.release_error:
        raise RunFailed(f"buildflow: the release tags were not applied: {result.release_error}")
