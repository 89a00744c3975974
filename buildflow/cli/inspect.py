"""The commands that look and build nothing: validate, plan, status, graph, schema."""

from __future__ import annotations

import json
from collections.abc import Sequence

import click

from buildflow.cli.loading import buildx, load_plan, lookup_engine
from buildflow.cli.options import PipelineOptions, max_age_seconds, pipeline_options, rebuild_options, selection_options
from buildflow.errors import EXIT_TARGET_FAILED, BuildflowError, UsageError


class WouldBuild(BuildflowError):
    """status --exit-code: a build would build something (exit 1)."""

    exit_code = EXIT_TARGET_FAILED


@click.command(short_help="Check a pipeline file and report every problem in it.")
@pipeline_options
def validate(*, options: PipelineOptions) -> None:
    """Check a pipeline file and report every problem in it (exit 2 if any), and every COPY/ADD source missing
    from its build context (Dockerfile and line)."""
    from buildflow.errors import PipelineError
    from buildflow.output.render import validation_summary
    from buildflow.pipeline.sources import missing_sources

    the_plan = load_plan(options)
    missing = missing_sources(the_plan.pipeline, str(options.file))
    if missing:
        raise PipelineError(missing)
    click.echo(f"{options.file}: valid: {validation_summary(the_plan)}")


@click.command(short_help="Show the order, generations, parents, tags, fingerprints and what would be rebuilt.")
@selection_options
@rebuild_options
@click.option("--offline", is_flag=True, help="Do not ask registries: no base digests, no up-to-date check.")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
@pipeline_options
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

    engine = None if offline else lookup_engine(buildx())
    the_plan = load_plan(options, targets, downstream, since, None if no_follow_bases else engine)
    states = None
    if engine is not None:
        from buildflow.run.freshness import plan_states

        states = plan_states(the_plan, engine, max_age=max_age_seconds(the_plan, max_age))
    click.echo(plan_json(the_plan, states) if output_format == "json" else plan_table(the_plan, states))


@click.command(short_help="Say for every target whether it is up to date, and if not, why.")
@selection_options
@rebuild_options
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option(
    "--exit-code",
    is_flag=True,
    help="Exit with code 1 when anything would be built (or the registry cannot be asked), 0 when all is up to date.",
)
@pipeline_options
def status(
    *,
    targets: Sequence[str],
    downstream: Sequence[str],
    since: str | None,
    max_age: str | None,
    no_follow_bases: bool,
    output_format: str,
    exit_code: bool,
    options: PipelineOptions,
) -> None:
    """Say for every target whether its image in the registry is up to date, and if not, why:
    'Dockerfile changed', 'context file src/train.py changed', 'base ubuntu:22.04 moved ...',
    'parent cuda will be rebuilt', 'older than max-age 7d'. Builds nothing.

    The previous inputs come from the build records buildflow keeps beside each image in the registry,
    so this works on a fresh CI runner. With --exit-code, like git diff --exit-code: exit code 1 when a build
    would build anything (buildflow status --exit-code || buildflow build).
    """
    from buildflow.output.render import status_json, status_table
    from buildflow.run.freshness import plan_states

    engine = lookup_engine(buildx())
    the_plan = load_plan(options, targets, downstream, since, None if no_follow_bases else engine)
    if not the_plan.pipeline.registry:
        raise UsageError(f"{options.file}: status needs a registry: set registry: in the file or pass --registry")
    states = plan_states(the_plan, engine, max_age=max_age_seconds(the_plan, max_age))
    click.echo(status_json(the_plan, states) if output_format == "json" else status_table(the_plan, states))
    stale = [state for state in states.values() if state.digest is None]
    if exit_code and stale:
        unasked = sum(1 for state in stale if state.error is not None)
        why = f" ({unasked} because the registry could not be asked)" if unasked else ""
        raise WouldBuild(f"buildflow: {len(stale)} of {len(states)} images would be built{why}")


@click.command(short_help="Draw the DAG as text, Graphviz DOT or Mermaid.")
@selection_options
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "dot", "mermaid"]),
    default="text",
    show_default=True,
    help="text for a terminal, dot for Graphviz, mermaid for Markdown.",
)
@pipeline_options
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
    click.echo(draw(load_plan(options, targets, downstream, since)))


@click.command(short_help="Print the JSON Schema of pipeline files.")
def schema() -> None:
    """Print the JSON Schema of pipeline files (for editors: yaml-language-server, VS Code, JetBrains)."""
    from buildflow.pipeline.spec import schema as load_schema

    click.echo(json.dumps(load_schema(), indent=2))
