"""`buildflow builders`: the builders a run would use (or every one here), what each is and can do."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from buildflow.cli.loading import load
from buildflow.cli.options import PipelineOptions, builder_option, pipeline_options
from buildflow.errors import EngineUnavailable, UsageError

if TYPE_CHECKING:
    from buildflow.run.builders import Builder


@click.command(short_help="Show the builders a run would use: driver, versions, image store, platforms, abilities.")
@builder_option
@click.option(
    "--all",
    "every_one",
    is_flag=True,
    help="Every docker context and buildx builder on this machine, not only the pipeline's (no pipeline file needed).",
)
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
@pipeline_options
def builders(*, builder_names: Sequence[str], every_one: bool, output_format: str, options: PipelineOptions) -> None:
    """Show the builders a run would use, one row each: NAME, DRIVER, ENGINE (version), BUILDKIT (version),
    STORE (the engine's image store: containerd or classic), PLATFORMS, CAN (what it can do) and STATUS (ok, or
    does not answer: why). Exit code 1 if one does not answer.

    A builder is a docker context (docker context ls: a Docker engine, every command goes to it) or a buildx
    builder (docker buildx ls: docker-container, remote, kubernetes drivers). A run uses the --builder names,
    else the pipeline's builders:, else the current one. Nothing is started or changed.

    \b
    Examples:
      buildflow builders                             the pipeline's builders (./buildflow.yaml)
      buildflow builders --all                       every context and builder here, no pipeline needed
      buildflow builders --builder buildflow-2 --builder buildflow-classic
      buildflow builders --all --format json         for scripts

    What each capability means: docs/builders.md.
    """
    from buildflow.output.builders import builders_json, builders_table

    if every_one and builder_names:
        raise UsageError("--all shows every builder here; leave out --builder, or leave out --all")
    found = _every_builder() if every_one else _chosen(builder_names, options)
    click.echo(builders_json(found) if output_format == "json" else builders_table(found))
    silent = [builder.info.label for builder in found if not builder.info.answers]
    if silent:
        raise EngineUnavailable(
            f"{len(silent)} of {len(found)} builders do not answer: {', '.join(silent)}; "
            "start them (scripts/engine.sh up --engines N for buildflow-N) or check docker buildx inspect NAME"
        )


def _every_builder() -> list[Builder]:
    """Every docker context and buildx builder here, described."""
    from buildflow.engine.builders import available
    from buildflow.model import BuilderSpec
    from buildflow.run.builders import describe_builders

    return describe_builders([BuilderSpec(name) for name in available()])


def _chosen(names: Sequence[str], options: PipelineOptions) -> list[Builder]:
    """The builders a run would use: --builder names (no pipeline file read), else the pipeline's builders:, else
    the current one; an unknown name is a UsageError (exit 2)."""
    from buildflow.engine.builders import available
    from buildflow.run.builders import builder_specs, check_names, describe_builders

    specs = builder_specs(None if names else load(options), names, jobs=0)
    if any(spec.name for spec in specs):
        check_names(specs, available())
    return describe_builders(specs)
