"""What every pipeline command starts with: logging as asked, the pipeline loaded and planned (with --since), the
engines it asks; the warnings loading gives."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from buildflow import log
from buildflow.cli.options import PipelineOptions, parse_vars

if TYPE_CHECKING:
    from buildflow.engine.base import Engine, Registry
    from buildflow.engine.builders import BuilderInfo
    from buildflow.engine.buildx import BuildxEngine
    from buildflow.engine.retrying import RetryingEngine
    from buildflow.model import Pipeline
    from buildflow.plan.planner import Plan
    from buildflow.run.logs import RunLogs

state = {"debug": False}  # --debug of the running command: errors are shown with their traceback


def load(options: PipelineOptions, engine: Registry | None = None, file: Path | None = None) -> Pipeline:
    """Configure logging and load the pipeline named on the command line.

    With an engine, external base images are resolved to their current digests through it.
    """
    state["debug"] = options.debug
    log.configure(level="debug" if options.debug else "info", log_format=options.log_format)
    from buildflow.pipeline.loader import load_pipeline

    resolver = None
    if engine is not None:
        from buildflow.run.freshness import base_resolver

        resolver = base_resolver(engine, _base_not_found)
    with collector_paused():
        pipeline = load_pipeline(
            file or options.file,
            overrides=parse_vars(options.variables),
            registry=options.registry,
            display=str(file or options.file),
            resolve_bases=resolver,
            sets=options.sets,
        )
    from buildflow.run.secrets import secret_values

    log.hide(secret_values(pipeline))  # before any line could show them: build output, errors, reports
    log.event("debug", "pipeline.loaded", file=str(options.file), targets=len(pipeline.targets))
    return pipeline


def load_plan(
    options: PipelineOptions,
    targets: Sequence[str] = (),
    downstream: Sequence[str] = (),
    since: str | None = None,
    bases: Registry | None = None,
    *,
    only: Sequence[str] = (),
) -> Plan:
    """Load the pipeline and plan the selected targets (only those changed since a commit, with --since; exactly
    the images named by `only`, with --only).

    With an engine as `bases`, external base images are resolved to digests through it.
    """
    from buildflow.plan.planner import make_plan, only_plan

    pipeline = load(options, bases)
    for line in pipeline.warnings:  # once: not for the copies --since loads
        log.event("warning", "dockerfile.unresolved", problem=line)
    _warn_of_secret_like_names(pipeline, str(options.file))
    if only:
        return only_plan(pipeline, only)
    if not since:
        return make_plan(pipeline, targets, downstream)
    from buildflow.plan.since import changed_since

    offline = load(options) if bases is not None else pipeline
    changed = changed_since(since, offline, lambda old_file: load(options, file=old_file))
    for target_id, why in changed.items():
        log.event("debug", "since.changed", target=target_id, why=why)
    return make_plan(pipeline, targets, downstream, changed=changed.keys())


def _warn_of_secret_like_names(pipeline: Pipeline, display: str) -> None:
    """A build arg or test env named like a secret (HF_TOKEN) is warned about, pointing to secrets:."""
    from buildflow.quality.secret_names import suspicious_names

    for line in suspicious_names(pipeline, display=display):
        log.event("warning", "pipeline.secret_like_name", problem=line)


def _base_not_found(name: str, reason: str) -> None:
    """A base image that could not be resolved: it enters fingerprints by name only."""
    log.event("warning", "base.unresolved", base=name, reason=reason, effect="a move of this base goes unnoticed")


def lookup_engine(engine: Engine) -> RetryingEngine:
    """An engine whose registry lookups are retried like a build's."""
    from buildflow.engine.retrying import RetryingEngine
    from buildflow.model import RetryPolicy

    return RetryingEngine(engine, RetryPolicy())


PUSH_FROM = "BUILDFLOW_PUSH_FROM"  # "buildkit": the docker driver pushes from BuildKit too (bench/build_tree.py)


def buildx(timeout: int = 1800, info: BuilderInfo | None = None, logs: RunLogs | None = None) -> BuildxEngine:
    """The buildx engine of a builder, the current one by default (nothing is started until it is used); its
    builder output goes to the run's logs, when given, and to the debug log."""
    from buildflow.engine.buildx import BuildxEngine

    engine = BuildxEngine(
        timeout=timeout,
        info=info,
        push_from_buildkit=os.environ.get(PUSH_FROM) == "buildkit",
        on_output=_builder_output,
        on_request_retry=_request_retried,
    )
    if logs is not None:
        send_output_to(engine, logs)
    return engine


def send_output_to(engine: BuildxEngine, logs: RunLogs) -> None:
    """Keep an engine's builder output in the run's logs (one file per target), and in the debug log."""

    def output(target: str, line: str) -> None:
        logs.write(target, line)
        _builder_output(target, line)

    engine.on_output = output


def _request_retried(host: str, error: str, wait: float) -> None:
    """One registry request tried again after a failure that can pass (before its call's own retries)."""
    log.event("debug", "registry.retrying", registry=host, error=error, wait=round(wait, 1))


def _builder_output(target: str, line: str) -> None:
    """Builder output, at debug level (checked per line: --debug takes effect after the engine is made)."""
    log.event("debug", "build.output", target=target, line=line)


@contextmanager
def collector_paused() -> Iterator[None]:
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
