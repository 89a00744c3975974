"""`buildflow gc`: delete the content tags and build records no release tag, no recent run and no kept build uses."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from buildflow import log
from buildflow.cli.completion import complete_targets
from buildflow.cli.loading import buildx, load_plan, lookup_engine
from buildflow.cli.options import PipelineOptions, check_report_paths, output_file, pipeline_options
from buildflow.errors import RunFailed, UsageError
from buildflow.sizes import human

if TYPE_CHECKING:
    from buildflow.engine.catalog import RegistryCatalog
    from buildflow.run.cleanup import Build, Cleanup, Policy

_ENABLE = (
    "enable deletes in the registry (distribution: storage.delete.enabled: true, REGISTRY_STORAGE_DELETE_ENABLED=true)"
)


@click.command(short_help="Delete old content tags and build records from the registry (release tags stay).")
@click.argument("targets", nargs=-1, shell_complete=complete_targets)
@click.option(
    "--keep",
    type=int,
    default=1,
    show_default=True,
    metavar="N",
    help="Keep the N newest builds of each target (by their record's time, else their image's creation).",
)
@click.option(
    "--older-than",
    metavar="AGE",
    help="Also keep every build built within AGE (7d, 12h, 2w): only older ones go. Default: age keeps nothing.",
)
@click.option("--dry-run", is_flag=True, help="Delete nothing: say what would go and what it would free.")
@output_file("--report", "FILE.json", "Write what was deleted, what was kept and why, and the bytes freed here.")
@pipeline_options
def gc(
    *,
    targets: Sequence[str],
    keep: int,
    older_than: str | None,
    dry_run: bool,
    report_path: Path | None,
    options: PipelineOptions,
) -> None:
    """Delete the content tags (bf-FINGERPRINT) and build records (bf-FINGERPRINT.record) of the selected targets
    (none: every target) that nothing needs any more, through the registry's API.

    A build stays when it is what the pipeline's current inputs name (what the next build reuses), one of the
    --keep newest of its target, or built within --older-than. Whatever a release tag (any tag buildflow did not
    write) points at stays, with its record, and so does each bf-last.TARGET record and the image it names. A
    registry deletes a manifest with every tag on it, so a bf- tag whose digest a staying tag shares stays (only
    its record goes). The report says
    what went, what stayed and why, and the bytes freed: manifests, configs and layers that nothing kept in
    these repositories uses (the registry reclaims the space at its next garbage-collect). Exit code 1 when the
    registry refuses deletes (405 UNSUPPORTED).
    """
    from buildflow.engine.base import EngineError
    from buildflow.plan.planner import ids
    from buildflow.run.cleanup import Policy, collect
    from buildflow.run.session import run_lock

    _check(keep, older_than)
    check_report_paths({"--report": report_path})
    engine = buildx()
    the_plan = load_plan(options, targets, (), None, lookup_engine(engine))
    pipeline = the_plan.pipeline
    if not pipeline.registry:
        raise UsageError("buildflow gc: the pipeline has no registry: set registry: in the file or give --registry")
    selected = frozenset(ids(pipeline, targets)) if targets else None  # a target name: all its matrix images
    policy = Policy(keep=keep, age=older_than or "", selected=selected)
    with run_lock(the_plan, wait=True):
        try:
            result = collect(_catalog(), list(pipeline.targets.values()), pipeline.registry, policy, dry_run=dry_run)
        except EngineError as error:
            raise RunFailed(f"buildflow gc: {error}; nothing was deleted") from None
    if report_path is not None:
        report_path.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    if result.refused:
        raise RunFailed(f"buildflow gc: {result.refused}: {len(result.deleted)} manifests deleted; {_ENABLE}")
    if result.error:
        raise RunFailed(f"buildflow gc: {result.error}; {len(result.deleted)} manifests deleted, then gc stopped")
    click.echo("\n".join(render(result)))


def _check(keep: int, older_than: str | None) -> None:
    """--keep is 0 or more, --older-than an age like 7d: else one line naming the option (exit code 2)."""
    from buildflow.model import parse_age

    if keep < 0:
        raise UsageError(f"buildflow gc: --keep {keep}: give 0 or more (the newest builds of each target kept)")
    try:
        if older_than is not None:
            parse_age(older_than)
    except ValueError as error:
        raise UsageError(f"buildflow gc: --older-than {older_than}: {error}; use s, m, h, d or w") from None


def _catalog() -> RegistryCatalog:
    """The registry client of gc: each request that fails in a way that can pass is tried again, and logged."""
    from buildflow.engine.catalog import RegistryCatalog

    def retried(host: str, error: str, wait: float) -> None:
        log.event("debug", "registry.retrying", registry=host, error=error, wait=round(wait, 1))

    return RegistryCatalog(on_retry=retried)


def render(result: Cleanup) -> list[str]:
    """The report printed: the policy, each repository's builds (what went, what stayed and why), the bytes."""
    lines = [_policy_line(result.policy, result.dry_run)]
    for found in result.repositories:
        going = sum(1 for build in found.builds.values() if result.gone(build))
        verb = "would delete" if result.dry_run else "deleted"
        lines.append(f"{found.name}: {len(found.tags)} tags, {len(found.builds)} builds, {verb} {going}")
        lines += [f"  {_line(build, result)}" for build in sorted(found.builds.values(), key=_newest_first)]
    amount = human(result.freed)
    verb = "would free" if result.dry_run else "freed"
    lines.append(
        f"{len(result.going)} builds {'would go' if result.dry_run else 'went'}; {verb} {amount} "
        "(manifests, configs and layers nothing kept uses; the registry reclaims them at its next garbage-collect)"
    )
    return lines


def _policy_line(policy: Policy, dry_run: bool) -> str:
    """What this gc keeps."""
    age = f", every build used within {policy.age}" if policy.age else ""
    head = "dry run, nothing is deleted: " if dry_run else ""
    return (
        f"{head}keeping the current inputs and the {policy.keep} newest builds of each target{age}, "
        "whatever a release tag points at, and the bf-last.* records with their images"
    )


def _line(build: Build, result: Cleanup) -> str:
    """One build: its tags, its target and time, and what happened to them."""
    built = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(build.built_at)) if build.built_at else "time unknown"
    when = f"({build.target or 'no record'}, {built})"
    if not build.goes:
        return f"{'kept':<12} {' '.join(build.tags)} {when}: {build.why}"
    state = "would delete" if result.dry_run else ("deleted" if result.gone(build) else "not deleted")
    why = f": {build.why}" if build.why else ""
    return f"{state:<12} {' '.join(build.going)} {when}{why}"


def _newest_first(build: Build) -> tuple[str, float]:
    """Builds by target, newest first."""
    return build.target, -build.built_at
