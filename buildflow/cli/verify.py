"""`buildflow verify`: rebuild images without cache and say whether each digest is reproduced."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from buildflow.cli.completion import complete_targets
from buildflow.cli.loading import buildx, load_plan, lookup_engine
from buildflow.cli.options import PipelineOptions, check_report_paths, output_file, pipeline_options
from buildflow.errors import EXIT_TARGET_FAILED, BuildflowError, UsageError

if TYPE_CHECKING:
    from buildflow.run.verify import Verdict


class NotReproduced(BuildflowError):
    """verify: some image was not reproduced (exit 1)."""

    exit_code = EXIT_TARGET_FAILED


@click.command(short_help="Rebuild images without cache and say whether each digest is reproduced.")
@click.argument("targets", nargs=-1, shell_complete=complete_targets)
@click.option("--strict", is_flag=True, help="Count images whose files differ only in their times as not reproduced.")
@output_file("--report", "FILE.json", "Write each image's verdict, both digests and the layers and files that differ.")
@pipeline_options
def verify(*, targets: Sequence[str], strict: bool, report_path: Path | None, options: PipelineOptions) -> None:
    """Rebuild the named images (none: every image) without cache, on the parent digests and SOURCE_DATE_EPOCH
    their build records name, into a local OCI layout: nothing is pushed and no tag moves. Say for each whether
    the registry's digest is reproduced, and if not, which layers and which files differ (content, mode, owner,
    added, removed; files that differ only in their times are counted). Exit code 0 when every image is
    reproduced (or, unless --strict, differs only in file times), 1 when one is not."""
    from buildflow.run.verify import verify as rebuild_all

    check_report_paths({"--report": report_path})
    engine = lookup_engine(buildx())
    plan = load_plan(options, bases=engine, only=targets)
    if not plan.pipeline.registry:
        raise UsageError(f"{options.file}: verify needs a registry: set registry: in the file or pass --registry")
    verdicts = rebuild_all(plan.pipeline, [step.target for step in plan.steps], engine)
    click.echo("\n".join(line for verdict in verdicts for line in _lines(verdict)))
    if report_path is not None:
        document = {"strict": strict, "images": [verdict.to_json() for verdict in verdicts]}
        report_path.write_text(json.dumps(document, indent=2) + "\n")
    failed = [verdict for verdict in verdicts if not verdict.passed(strict)]
    if failed:
        raise NotReproduced(f"buildflow: {len(failed)} of {len(verdicts)} images not reproduced")


def _lines(verdict: Verdict) -> list[str]:
    """A verdict in words: its first line, then each layer that differs and its files."""
    digest = verdict.digest[:19] + "…" if verdict.digest else "-"
    lines = [f"{verdict.target}: {verdict.status} ({digest}){': ' + verdict.message if verdict.message else ''}"]
    for layer in verdict.layers:
        times = f"; {layer.times_only} files differ only in their times" if layer.times_only else ""
        lines.append(f"  layer {layer.index} ({layer.instruction or 'unknown instruction'}){times}")
        lines += [f"    {change.path}: {change.change}" for change in layer.files]
        if layer.more_files:
            lines.append(f"    and {layer.more_files} more files")
    return lines
