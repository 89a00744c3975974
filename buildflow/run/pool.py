"""The builders of a run as a pool: each ready target is placed on a builder with a free slot, the registry is the
exchange between them, and a builder that stops answering leaves the pool."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from buildflow.engine.base import Engine
from buildflow.engine.builders import BuilderInfo
from buildflow.engine.retrying import RetryingEngine
from buildflow.model import Target


@dataclass(frozen=True)
class BuilderUse:
    """A builder a run is given: its name, its engine, what it can do, how many builds it runs at once."""

    name: str
    engine: Engine
    info: BuilderInfo | None  # None: asked of the engine when first needed (the current builder)
    jobs: int
    platforms: tuple[str, ...] = ()


@dataclass
class PoolBuilder:
    """One builder of a run: its engine (with the run's retries), what it can do, its slots, whether it answers."""

    name: str  # "" for the current builder
    engine: RetryingEngine
    known: BuilderInfo | None  # what it can do, when already asked; else asked of its engine on first use
    jobs: int
    platforms: tuple[str, ...] = ()  # what it builds natively, as the pipeline declares
    running: int = 0
    alive: bool = True
    cache_noted: bool = False  # the log said it gets inline cache instead of registry cache

    @property
    def info(self) -> BuilderInfo:
        """What it can do: as described when the run was set up, else as its engine finds out (once, lazily, so
        that a run that builds nothing never asks docker)."""
        if self.known is None:
            self.known = getattr(self.engine.engine, "info", None) or BuilderInfo(self.name)
        return self.known

    @property
    def free(self) -> bool:
        """True when it answers and has a free slot."""
        return self.alive and self.running < self.jobs

    @property
    def shown(self) -> str:
        """Its name in reports: the current builder is 'default'."""
        return self.name or "default"


class Pool:
    """Places targets on builders: where a parent was built, else where platforms are native, else the least loaded."""

    def __init__(self, builders: Sequence[PoolBuilder]) -> None:
        self.builders = list(builders)

    @property
    def alive(self) -> list[PoolBuilder]:
        """The builders that still answer."""
        return [builder for builder in self.builders if builder.alive]

    def place(
        self, target: Target, parents_built_on: Mapping[str, str], avoid: frozenset[str], must: str | None = None
    ) -> PoolBuilder | None:
        """The builder to build `target` on now, or None when every builder it may use is busy (or gone).

        A builder that builds the target's platforms natively is waited for rather than passed over; among the
        others, the one that built the target's first parent comes first (its layers are there), then the least
        loaded. `avoid` names builders this target already failed on; `must` the builder whose image store holds a
        parent it builds on (not pushed yet).
        """
        if must is not None:
            home = [builder for builder in self.alive if builder.name == must]
            return home[0] if home and home[0].free else None
        usable = [builder for builder in self.alive if builder.name not in avoid] or self.alive
        native = [builder for builder in usable if _native(builder, target)]
        candidates = [builder for builder in (native or usable) if builder.free]
        if not candidates:
            return None
        parent = next(
            (parents_built_on[edge.parent] for edge in target.parents if edge.parent in parents_built_on), None
        )
        home = [builder for builder in candidates if builder.name == parent]
        return home[0] if home else min(candidates, key=lambda builder: builder.running / builder.jobs)


def _native(builder: PoolBuilder, target: Target) -> bool:
    """True when the builder declares every platform the target asks for."""
    return bool(target.platforms and builder.platforms) and set(target.platforms) <= set(builder.platforms)
