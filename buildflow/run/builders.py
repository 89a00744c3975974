"""Choosing the builders of a run: the --builder names, else the pipeline's `builders:`, else the current builder;
each one checked to exist and to answer before anything is built."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from buildflow.engine.builders import BuilderInfo, available, describe
from buildflow.errors import EngineUnavailable, UsageError, did_you_mean
from buildflow.model import BuilderSpec, Pipeline, Target
from buildflow.plan.planner import Plan

Describe = Callable[[str], BuilderInfo]
Available = Callable[[], list[str]]
_NUMBERED_ENGINE = re.compile(r"buildflow-(\d+)")  # the extra engines of scripts/engine.sh up --engines N


@dataclass(frozen=True)
class Builder:
    """A builder of a run: as named (jobs resolved) and as it answered."""

    spec: BuilderSpec
    info: BuilderInfo

    @property
    def name(self) -> str:
        """As the user named it ("" for the current builder)."""
        return self.spec.name


def builder_specs(pipeline: Pipeline | None, cli_names: Sequence[str], jobs: int) -> list[BuilderSpec]:
    """The builders asked for: --builder names (each with --jobs), else the file's (jobs 0: --jobs), else the
    current builder; a name given twice on the command line is a UsageError."""
    for index, name in enumerate(cli_names):
        if name in cli_names[:index]:
            raise UsageError(f"--builder {name} is given twice; name each builder once")
    if cli_names:
        return [BuilderSpec(name, jobs) for name in cli_names]
    if pipeline is not None and pipeline.builders:
        return [replace(spec, jobs=spec.jobs or jobs) for spec in pipeline.builders]
    return [BuilderSpec("", jobs)]


def check_names(specs: Sequence[BuilderSpec], here: Sequence[str]) -> None:
    """Every named builder is a docker context or buildx builder here, else a UsageError that lists them."""
    for spec in specs:
        if spec.name and spec.name not in here:
            listing = ", ".join(here) or "none (docker context ls and docker buildx ls list nothing)"
            raise UsageError(
                f"unknown builder '{spec.name}'; the builders here are: {listing}{did_you_mean(spec.name, here)}"
            )


def describe_builders(specs: Sequence[BuilderSpec], describe: Describe = describe) -> list[Builder]:
    """Each builder as it answers now (asked at the same time: a builder that does not answer may take seconds)."""
    if len(specs) == 1:
        return [Builder(specs[0], describe(specs[0].name))]
    with ThreadPoolExecutor(max_workers=min(len(specs), 8)) as pool:
        infos = list(pool.map(describe, [spec.name for spec in specs]))
    return [Builder(spec, info) for spec, info in zip(specs, infos, strict=True)]


def select_builders(
    pipeline: Pipeline | None,
    cli_names: Sequence[str],
    jobs: int,
    describe: Describe = describe,
    available: Available = available,
) -> list[Builder]:
    """The builders of a run, each one known here (else UsageError, exit 2) and answering (else
    EngineUnavailable, exit 1). `pipeline` None: no pipeline file (only --builder names or the current builder)."""
    specs = builder_specs(pipeline, cli_names, jobs)
    if any(spec.name for spec in specs):
        check_names(specs, available())
    chosen = describe_builders(specs, describe)
    for builder in chosen:
        if not builder.info.answers:
            raise EngineUnavailable(not_answering(builder.info))
    return chosen


def not_answering(info: BuilderInfo) -> str:
    """Why a builder cannot be used, and what to do: start it, or look at it."""
    name = info.name or info.resolved or "default"
    return (
        f"builder {name} does not answer ({info.error or 'no reason given'}): start it ({_how_to_start(name)}) "
        f"or check docker buildx inspect {name}"
    )


def _how_to_start(name: str) -> str:
    """The engine.sh command that starts an engine of this machine's set, or the rule for them."""
    numbered = _NUMBERED_ENGINE.fullmatch(name)
    if numbered:
        return f"scripts/engine.sh up --engines {numbered[1]}"
    if name == "buildflow-classic":
        return "scripts/engine.sh up --classic"
    if name == "default":
        return "scripts/engine.sh up"
    return "scripts/engine.sh up --engines N for buildflow-N"


EXPORTED_CACHES = ("registry", "local")  # cache types a builder must export itself (inline rides in the image)


def asks_exported_cache(plan: Plan) -> bool:
    """True when the file asks some target for a cache the builder must export (registry or local)."""
    return any(step.target.cache.written_at and step.target.cache.type in EXPORTED_CACHES for step in plan.steps)


def check_cache(plan: Plan, infos: Sequence[BuilderInfo], display: str) -> None:
    """A cache the file asks for that a builder of the run cannot export: a UsageError (exit 2), one line per
    field that asks for it, before anything is built. A cache buildflow chose itself falls back to inline."""
    unable = [info for info in infos if not info.registry_cache]
    if not unable or not asks_exported_cache(plan):
        return
    names = ", ".join(info.name or "the current builder" for info in unable)
    fields = sorted(
        {step.target.cache.written_at: step.target.cache.type for step in plan.steps if _exported(step.target)}.items()
    )
    raise UsageError(
        "\n".join(
            f"{display}: {field}: {kind} cache is asked for, but {names} (docker driver, classic image store) cannot "
            "export build cache; use cache: inline, or build on a builder with the containerd image store"
            for field, kind in fields
        )
    )


def _exported(target: Target) -> bool:
    """True when the file asks this target for a cache its builder must export."""
    return bool(target.cache.written_at) and target.cache.type in EXPORTED_CACHES


def asks_supply_checks(plan: Plan) -> bool:
    """True when some target asks for attestations or an OCI layout, which not every builder can give."""
    return any(step.target.attest or step.target.annotations or step.target.oci_dir for step in plan.steps)


def check_supply(plan: Plan, infos: Sequence[BuilderInfo], display: str, *, push: bool) -> None:
    """Attestations or annotations on a builder that cannot keep them (the docker driver on the classic image store:
    no attestations, and its push writes a manifest of its own), or an OCI layout of an image that lands in no
    engine's store (BuildKit pushes it): a UsageError (exit 2), one line per field, before anything is built."""
    classic = [info for info in infos if not info.multi_platform]
    pushing = [info for info in infos if not info.local_images] if push else []
    lines = []
    for step in plan.steps:
        field = f"{display}: targets.{step.target.name}"
        if step.target.attest and classic:
            lines.append(
                f"{field}.attest: {_names(classic)} (docker driver, classic image store) cannot attach attestations; "
                "remove attest:, or build on a builder with the containerd image store"
            )
        if step.target.annotations and classic:
            lines.append(
                f"{field}.annotations: {_names(classic)} (docker driver, classic image store) pushes a manifest of "
                "its own, without annotations; remove annotations:, or build on a builder with the containerd "
                "image store"
            )
        if step.target.oci_dir and pushing:
            lines.append(
                f"{field}.output: {_names(pushing)} pushes from BuildKit and keeps no image to write an OCI layout "
                "from; build with --no-push, or on a docker-driver builder"
            )
    if lines:
        raise UsageError("\n".join(dict.fromkeys(lines)))


def _names(infos: Sequence[BuilderInfo]) -> str:
    """The builders' names, as shown."""
    return ", ".join(info.name or "the current builder" for info in infos)
