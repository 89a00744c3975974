"""The checks that build nothing: lint the Dockerfiles, run the image tests of images already built."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from buildflow import log
from buildflow.cli.loading import buildx, load_plan, lookup_engine
from buildflow.cli.options import (
    PipelineOptions,
    check_report_paths,
    output_file,
    pipeline_options,
    selection_options,
)
from buildflow.cli.runs import image_test_counts, run_events, selection
from buildflow.errors import RunFailed

if TYPE_CHECKING:
    from buildflow.plan.planner import Plan
    from buildflow.run.imagetests import TestResult


@click.command(short_help="Lint the selected targets' Dockerfiles with hadolint; exit 1 on findings.")
@selection_options
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
@pipeline_options
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

    the_plan = load_plan(options, targets, downstream, since)
    requests = requests_for(step.target for step in the_plan.steps)
    findings = run_lint(requests, cache=user_cache("lint"))
    root = the_plan.pipeline.root
    if output_format == "json":
        click.echo(json.dumps(to_json(findings, root), indent=2))
    else:
        click.echo(render(findings, root, dockerfiles=len({request.dockerfile for request in requests})))
    if findings:
        raise RunFailed(f"buildflow: {len(findings)} Dockerfile lint findings")


@click.command("test", short_help="Run the image tests of built targets, without building.")
@selection_options
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="How many targets are tested at once.",
)
@click.option("--push/--no-push", default=True, show_default=True, help="Test the registry's images, or local ones.")
@output_file("--report", "FILE.json", "Write every test's result, exit code and output here.")
@output_file("--junit", "FILE.xml", "Write a JUnit file, one testcase per test.")
@output_file(
    "--html", "FILE.html", "Write one self-contained HTML page: the DAG coloured by result, a timeline, each failure."
)
@pipeline_options
def test_images(
    *,
    targets: Sequence[str],
    downstream: Sequence[str],
    since: str | None,
    jobs: int,
    push: bool,
    report_path: Path | None,
    junit_path: Path | None,
    html_path: Path | None,
    options: PipelineOptions,
) -> None:
    """Run the `test:` commands of the selected targets (their own and inherited ones) in containers of the
    images already built for their current inputs (content tag bf-FINGERPRINT), as `build` does after building.

    Names select exactly those targets (all matrix images of a name); with none, every target. A target's tests
    run one after the other, `--jobs` targets at a time. Exit code 1 when a test fails or an image is not built yet.
    """
    from buildflow.run.logs import new_run_id
    from buildflow.run.testing import chosen_ids, run_selected_tests

    reports = (report_path, junit_path, html_path)
    check_report_paths({"--report": report_path, "--junit": junit_path, "--html": html_path})
    engine, run_id = lookup_engine(buildx()), new_run_id()
    the_plan = load_plan(options, (), downstream, since, engine)
    chosen = selection(targets=targets, downstream=downstream, since=since)
    with run_events("test", run_id, the_plan, options, selection=chosen) as end:
        results, problems = run_selected_tests(the_plan, engine, targets, push=push, jobs=jobs)
        end.fields = image_test_counts(results, problems)
        _show_tests(results, problems)
        _write_test_reports(the_plan, (results, problems, chosen_ids(the_plan, targets)), run_id, reports)
        failed = sum(1 for found in results.values() for result in found if not result.passed)
        if failed or problems:
            targets_text = "1 target" if len(problems) == 1 else f"{len(problems)} targets"
            raise RunFailed(f"buildflow: {failed} tests failed; the tests of {targets_text} could not run")


def _show_tests(results: Mapping[str, Sequence[TestResult]], problems: Mapping[str, str]) -> None:
    """One line per test (target, command, result, time), then one per target that could not be tested."""
    from buildflow.output.render import aligned

    rows = [
        (target_id, r.test.command, r.test.origin, r.status.upper(), f"{r.seconds:.1f}s", r.reason or "-")
        for target_id, found in results.items()
        for r in found
    ]
    rows += [(target_id, "-", "-", "NOT RUN", "-", problem) for target_id, problem in problems.items()]
    header = ("TARGET", "TEST", "DECLARED BY", "RESULT", "TIME", "DETAIL")
    click.echo(log.masked("\n".join(aligned(header, rows))) if rows else "no tests")


def _write_test_reports(
    plan: Plan,
    found: tuple[Mapping[str, Sequence[TestResult]], Mapping[str, str], Sequence[str]],
    run_id: str,
    reports: tuple[Path | None, Path | None, Path | None],
) -> None:
    """The JSON report, JUnit file and HTML page of `buildflow test` (the results, and why some targets were not
    tested; the HTML page shows every image chosen), as asked for."""
    results, problems, chosen = found
    report, junit, page = reports
    if report:
        from buildflow.output.report import write_image_tests_report

        write_image_tests_report(report, plan, results, problems, run_id)
    if junit:
        from buildflow.output.ci_reports import write_test_junit

        write_test_junit(junit, plan, results, run_id)
    if page:
        from buildflow.output.html_report import write_html
        from buildflow.output.runview import image_tests_view

        write_html(page, image_tests_view(plan, (results, problems), chosen, run_id))
