"""Retries of transient engine and registry errors: the one place tenacity is configured."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from buildflow.engine.base import (
    BuildRequest,
    BuildResult,
    Engine,
    EngineError,
    ImageLayers,
    TestRequest,
    TestRun,
)
from buildflow.model import RetryPolicy

Result = TypeVar("Result")
RETRY_AFTER_CAP = 300.0  # seconds: a Retry-After longer than this is not waited out
OnRetry = Callable[[str, int, EngineError, float], None]  # subject, failed attempt, error, seconds to wait


def is_transient(error: BaseException) -> bool:
    """Retry only what can go away on its own: refused or reset connections, timeouts, 5xx, 429, an engine
    that is not answering. A failing RUN, a Dockerfile syntax error, 401/403 or a missing image fail at once."""
    return isinstance(error, EngineError) and error.transient


class RetryingEngine:
    """An Engine that retries the transient failures of another, with exponential back-off and jitter."""

    def __init__(self, engine: Engine, policy: RetryPolicy, on_retry: OnRetry | None = None) -> None:
        import tenacity  # imported here, not at the first call, so that no build's timing pays for it

        self.tenacity = tenacity
        self.engine = engine
        self.policy = policy
        self.on_retry = on_retry or (lambda subject, attempt, error, wait: None)
        self.cancelled = threading.Event()

    def answers(self) -> bool:
        """Whether the engine answers now (asked once, not retried)."""
        return self.engine.answers()

    def cancel(self) -> None:
        """Stop: calls in flight are cancelled, waits between tries end, and nothing is tried again."""
        self.cancelled.set()
        self.engine.cancel()

    def build(self, request: BuildRequest) -> BuildResult:
        """Build, retrying transient failures."""
        return self._call(request.target_id, self.engine.build, request)

    def push(self, reference: str) -> str:
        """Push, retrying transient failures."""
        return self._call(reference, self.engine.push, reference)

    def manifest_digest(self, reference: str) -> str | None:
        """Look a reference up, retrying transient failures."""
        return self._call(reference, self.engine.manifest_digest, reference)

    def tag(self, source: str, references: Sequence[str]) -> None:
        """Tag in the registry, retrying transient failures."""
        self._call(source, self.engine.tag, source, references)

    def delete_tag(self, reference: str) -> bool:
        """Remove a tag, retrying transient failures."""
        return self._call(reference, self.engine.delete_tag, reference)

    def tag_local(self, source: str, references: Sequence[str]) -> None:
        """Tag locally, retrying transient failures."""
        self._call(source, self.engine.tag_local, source, references)

    def save_layout(self, reference: str, directory: Path) -> None:
        """Write an OCI layout of a local image, retrying transient failures."""
        self._call(reference, self.engine.save_layout, reference, directory)

    def local_digest(self, reference: str) -> str | None:
        """Look a local image up, retrying transient failures."""
        return self._call(reference, self.engine.local_digest, reference)

    def get_record(self, reference: str) -> bytes | None:
        """Read a build record, retrying transient failures."""
        return self._call(reference, self.engine.get_record, reference)

    def put_record(self, reference: str, data: bytes) -> None:
        """Store a build record, retrying transient failures."""
        self._call(reference, self.engine.put_record, reference, data)

    def run_test(self, request: TestRequest) -> TestRun:
        """Run a test; a failing test is a result, only engine failures are retried."""
        return self._call(request.image, self.engine.run_test, request)

    def has_gpus(self) -> bool:
        """Ask the engine whether it has GPUs, retrying transient failures."""
        return self._call("gpus", self.engine.has_gpus)

    def image_layers(self, reference: str) -> ImageLayers:
        """An image's layers and history, retrying transient failures."""
        return self._call(reference, self.engine.image_layers, reference)

    def layer_digests(self, reference: str) -> tuple[str, ...]:
        """An image's layer digests, retrying transient failures."""
        return self._call(reference, self.engine.layer_digests, reference)

    def blob(self, reference: str, digest: str) -> BinaryIO:
        """Open a blob stream, retrying transient failures to open it (not to read it: see attempt)."""
        return self._call(reference, self.engine.blob, reference, digest)

    def attempt(self, subject: str, function: Callable[[], Result]) -> Result:
        """Call `function` (several engine calls, say), trying it again as a whole on a transient failure."""
        return self._call(subject, function)

    def _call(self, subject: str, function: Callable[..., Result], *args: Any) -> Result:
        tenacity = self.tenacity
        backoff = tenacity.wait_exponential_jitter(
            multiplier=self.policy.initial_delay, jitter=self.policy.initial_delay, max=self.policy.max_delay
        )
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.policy.attempts) | tenacity.stop_when_event_set(self.cancelled),
            wait=lambda state: max(backoff(state), _asked_to_wait(state)),
            sleep=self.cancelled.wait,  # returns at once when cancelled
            retry=tenacity.retry_if_exception(is_transient),
            before_sleep=lambda state: self._report(subject, state),
            reraise=True,
        )
        result: Result = retrying(self._unless_cancelled, function, *args)
        return result

    def _unless_cancelled(self, function: Callable[..., Result], *args: Any) -> Result:
        """One try, unless the run was interrupted meanwhile."""
        if self.cancelled.is_set():
            raise EngineError("cancelled: the run was interrupted", transient=False)
        return function(*args)

    def _report(self, subject: str, state: Any) -> None:
        """Tell the caller a call failed and will be tried again."""
        error = state.outcome.exception()
        self.on_retry(subject, state.attempt_number, error, state.next_action.sleep if state.next_action else 0.0)


def _asked_to_wait(state: Any) -> float:
    """The wait a registry asked for (Retry-After) with the error that failed this try, at most RETRY_AFTER_CAP."""
    error = state.outcome.exception() if state.outcome else None
    asked = getattr(error, "retry_after", None) or 0.0
    return float(min(asked, RETRY_AFTER_CAP))
