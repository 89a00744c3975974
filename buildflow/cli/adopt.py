"""The commands that write a pipeline from what a project already has: init (a tree of Dockerfiles) and
import bake (a bake file)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click
from click.core import ParameterSource

from buildflow import log
from buildflow.cli.loading import state
from buildflow.cli.options import PipelineOptions, pipeline_options
from buildflow.errors import UsageError

_CHOSEN = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
SHOWN_EDGES = 50  # edges listed on standard output; the file lists them all


@click.command(short_help="Write a buildflow.yaml for the Dockerfiles under a directory.")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False), default=Path("."), required=False)
@click.option("--force", is_flag=True, help="Overwrite the pipeline file if it exists.")
@pipeline_options
def init(*, directory: Path, force: bool, options: PipelineOptions) -> None:
    """Propose a pipeline for a tree of Dockerfiles and write it, commented, to DIRECTORY/buildflow.yaml (or -f).

    \b
    One target per Dockerfile (Dockerfile, NAME.Dockerfile, Dockerfile.NAME), named after its directory or file,
    its context the Dockerfile's directory. The edges are buildflow's inferred edges: a FROM, COPY --from or
    RUN --mount=from naming another target by name or by a tag (FROM team/base:1.0 tags the target base so).
    It says which edges need a registry and which FROM ${ARG} needs a from: it cannot infer. --registry sets
    where the images go. A Dockerfile that does not parse is skipped with a line naming it. The file is checked
    by loading it before it is written, and an existing one is replaced only with --force.
    """
    from buildflow.adopt.proposal import propose
    from buildflow.adopt.writing import refuse_overwrite, write

    _configure(options)
    if not directory.is_dir():
        raise UsageError(f"{directory}: no such directory")
    output = _chosen_file(directory / "buildflow.yaml")
    refuse_overwrite(output, force)
    proposal = propose(directory, str(directory), output, options.registry)
    for line in proposal.survey.skipped:
        _warn("init.skipped", line)
    for one in proposal.survey.found:
        for line in one.needs_from:
            _warn("init.needs_from", f"{line}: the ARG has no default; declare from: on {one.name}")
    for line in proposal.survey.needs_registry:
        _warn("init.needs_registry", line)
    for line in proposal.left_out:
        _warn("init.left_out", f"left out {line}")
    write(proposal.text, output)
    _summary(output, proposal.pipeline, len(proposal.survey.skipped))


@click.command("import", short_help="Write a buildflow.yaml equivalent to a docker buildx bake file.")
@click.argument("kind", type=click.Choice(["bake"]), metavar="KIND")
@click.argument("bake_file", metavar="FILE", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("names", nargs=-1, metavar="[TARGET]...")
@click.option("--force", is_flag=True, help="Overwrite the pipeline file if it exists.")
@pipeline_options
def import_pipeline(*, kind: str, bake_file: Path, names: Sequence[str], force: bool, options: PipelineOptions) -> None:
    """Import a bake file: write the equivalent pipeline beside it as buildflow.yaml (or -f; a .json name
    writes JSON).

    \b
    KIND is bake. FILE is the JSON that `docker buildx bake --print` prints, read as it is; any other bake file
    (HCL, JSON with variables or matrices, compose) is printed by `docker buildx bake -f FILE --print` in its
    directory first, the whole file unless TARGETs are named. Targets, contexts, Dockerfiles, args, labels, tags,
    platforms, cache-from/cache-to, secrets and outputs are mapped; `target:` contexts become from: edges; groups
    become selections (comments, and x-bake-groups). What has no equivalent is listed on stderr and in the file.
    The file is checked by loading it, and its DAG compared with bake's.
    """
    from buildflow.adopt.importing import import_file
    from buildflow.adopt.writing import refuse_overwrite, write

    _configure(options)
    output = _chosen_file(bake_file.parent / "buildflow.yaml")
    refuse_overwrite(output, force)
    result = import_file(bake_file, names, output, options.registry)
    for line in result.unmapped:
        _warn("import.not_carried_over", f"not carried over: {line}")
    for line in result.extra_edges:
        _warn("import.extra_edge", f"an edge bake does not have: {line}")
    write(result.text, output)
    if result.problems is not None:
        _warn("import.does_not_load", f"wrote {output}, which does not load yet:")
        raise result.problems
    assert result.pipeline is not None
    _summary(output, result.pipeline, 0, bake_edges=len(result.imported.edges), groups=len(result.imported.groups))


def _configure(options: PipelineOptions) -> None:
    """Logging as asked (--log-format, --debug)."""
    state["debug"] = options.debug
    log.configure(level="debug" if options.debug else "info", log_format=options.log_format)


def _chosen_file(default: Path) -> Path:
    """-f (or BUILDFLOW_FILE) when given, before or after the command; else `default`."""
    context: click.Context | None = click.get_current_context()
    while context is not None:
        if "file" in context.params and context.get_parameter_source("file") in _CHOSEN:
            return Path(context.params["file"])
        context = context.parent
    return default


def _warn(event: str, line: str) -> None:
    """One line on stderr (an event with --log-format json)."""
    if log.json_lines():
        log.event("warning", event, message=line)
    else:
        click.echo(log.masked(line), err=True)


def _summary(output: Path, pipeline: object, skipped: int, *, bake_edges: int = -1, groups: int = 0) -> None:
    """What was written: targets, edges (and bake's), groups; then what to run next."""
    from buildflow.model import EdgeKind, Pipeline

    assert isinstance(pipeline, Pipeline)
    edges = [(target, edge) for target in pipeline.targets.values() for edge in target.parents]
    inferred = sum(1 for _, edge in edges if edge.kind == EdgeKind.INFERRED)
    parts = [f"{len(pipeline.targets)} targets", f"{len(edges)} edges ({inferred} inferred from Dockerfiles)"]
    if bake_edges >= 0:
        parts.append(f"bake has {bake_edges}")
    if groups:
        parts.append(f"{groups} groups as selections")
    if skipped:
        parts.append(f"{skipped} Dockerfiles skipped")
    click.echo(f"wrote {output}: {', '.join(parts)}")
    shown = edges if bake_edges < 0 else []  # import: bake's own edges, the others said on stderr
    for target, edge in shown[:SHOWN_EDGES]:
        detail = f" ({edge.instruction} {edge.reference}, line {edge.line})" if edge.kind == EdgeKind.INFERRED else ""
        click.echo(f"  {target.id} <- {edge.parent}{detail}")
    if len(shown) > SHOWN_EDGES:
        click.echo(f"  ... and {len(shown) - SHOWN_EDGES} more: buildflow graph -f {output}")
    click.echo(f"next: buildflow plan --offline -f {output}")
