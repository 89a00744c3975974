"""What every part of a run shares: the plan, the options, the engines, each target's outcome, and the stop flag."""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from buildflow.model import Pipeline, Target
from buildflow.plan.planner import Plan
from buildflow.run.logs import RunLogs
from buildflow.run.outcome import Events, Outcome, RunOptions
from buildflow.run.pool import Pool

if TYPE_CHECKING:
    from buildflow.engine.retrying import RetryingEngine
    from buildflow.quality.layers import LayerCache
    from buildflow.run.freshness import Assessment
    from buildflow.run.imagetests import ImageTest


@dataclass
class RunState:
    """The shared state of one run; each target's outcome is written only by the thread that runs it."""

    plan: Plan
    options: RunOptions
    pool: Pool  # the builders: builds, pushes and tests, retried with the run's policy, cancelled on a signal
    lookups: RetryingEngine  # registry lookups: at most three tries (when the registry cannot say, build)
    publisher: RetryingEngine  # records and release tags: cancelled on a signal
    restorer: RetryingEngine  # puts release tags back after a failed or interrupted release: never cancelled
    events: Events
    outcomes: dict[str, Outcome]
    by_reference: dict[str, Outcome] = field(default_factory=dict)  # for retry events, by what was retried
    assessments: dict[str, Future[Assessment]] = field(default_factory=dict)
    tests: dict[str, tuple[ImageTest, ...]] = field(default_factory=dict)  # each target's tests, inherited ones too
    push_locks: dict[str, threading.Lock] = field(default_factory=dict)
    done: dict[str, threading.Event] = field(default_factory=dict)  # set when a target's life ends, by target id
    handed: queue.SimpleQueue[tuple[str, str | None]] = field(default_factory=queue.SimpleQueue)  # (target, where)
    logs: RunLogs = field(default_factory=lambda: RunLogs(None))  # each target's builder output
    interrupted: str = ""  # the signal that interrupted the run, if one did
    stopping: bool = False
    _layer_cache: LayerCache | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def pipeline(self) -> Pipeline:
        """The pipeline the plan was made of."""
        return self.plan.pipeline

    def forced(self, target_id: str) -> bool:
        """True for a target built even when up to date (--force, --force-target)."""
        return self.options.force is None or target_id in self.options.force

    def layer_cache(self) -> LayerCache:
        """Layer listings by digest: kept in RunOptions.layer_cache, or in memory for this run only."""
        with self._lock:
            if self._layer_cache is None:
                from buildflow.quality.layers import LayerCache

                self._layer_cache = LayerCache(directory=self.options.layer_cache)
            return self._layer_cache

    def hand_on(self, target_id: str, builder: str | None) -> None:
        """Tell the dispatcher that children may start on a target's image: from the registry (builder None), or
        from the image store of one builder, only for children placed there."""
        self.handed.put((target_id, builder))

    def pushes(self, target: Target) -> bool:
        """True for a target pushed to the registry in this run (so its build record is there to check)."""
        return self.options.build.push and target.push
