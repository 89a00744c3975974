"""Tests inside built images: which commands a target's image must pass (its own and its ancestors'), and
running them in a container before the image is pushed, released or built upon."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from buildflow.engine.base import Tester, TestRequest
from buildflow.model import Pipeline, Target
from buildflow.references import pinned
from buildflow.run.failures import Failure, FailureKind
from buildflow.run.naming import content_reference

OUTPUT_LINES = 20  # lines of a test's output kept for reports


class ImageTester(Tester, Protocol):
    """What testing built images needs of an engine: finding the image of a fingerprint, and running tests."""

    def manifest_digest(self, reference: str) -> str | None:
        """The digest a registry holds for a reference, or None."""
        ...

    def local_digest(self, reference: str) -> str | None:
        """The id of an image in the local image store, or None."""
        ...


@dataclass(frozen=True)
class ImageTest:
    """One command to run in a container of an image, with the settings of the target that declares it."""

    command: str
    origin: str  # the target id whose `test:` declares it
    env: Mapping[str, str] = field(default_factory=dict)
    timeout: int = 300
    network: str = "none"
    gpus: str = ""

    def request(self, image: str) -> TestRequest:
        """The engine request that runs this test in `image`."""
        return TestRequest(image, self.command, dict(self.env), self.timeout, self.network, self.gpus)


@dataclass(frozen=True)
class TestResult:
    """How one test went: passed, failed or skipped, with its exit code and the end of its output."""

    __test__ = False  # not a pytest test class

    test: ImageTest
    status: str
    exit_code: int | None = None
    seconds: float = 0.0
    output: str = ""
    reason: str = ""
    started: float = 0.0  # when it started, seconds since the epoch (0: it did not run)

    @property
    def passed(self) -> bool:
        """True unless the test failed (a skipped test does not fail its target)."""
        return self.status != "failed"

    def to_json(self) -> dict[str, Any]:
        """One test in the JSON report."""
        return {
            "command": self.test.command,
            "declared_by": self.test.origin,
            "status": self.status,
            "exit_code": self.exit_code,
            "seconds": round(self.seconds, 3),
            "reason": self.reason or None,
            "output": self.output or None,
        }


def own_tests(target: Target) -> list[ImageTest]:
    """The tests a target declares itself."""
    policy = target.tests
    env = dict(policy.env or {})
    return [
        ImageTest(command, target.id, env, policy.timeout, policy.network, policy.gpus) for command in policy.commands
    ]


def image_tests(
    pipeline: Pipeline, target_id: str, _memo: dict[str, tuple[ImageTest, ...]] | None = None
) -> tuple[ImageTest, ...]:
    """A target's tests: those of the images it is built on (unless it sets `inherit: false`), then its own."""
    memo = {} if _memo is None else _memo
    if target_id not in memo:
        target = pipeline.targets[target_id]
        inherited: list[ImageTest] = []
        if target.tests.inherit:
            for edge in target.parents:
                if edge.lineage and edge.parent in pipeline.targets:
                    inherited += image_tests(pipeline, edge.parent, memo)
        unique = {(test.origin, test.command): test for test in [*inherited, *own_tests(target)]}
        memo[target_id] = tuple(unique.values())
    return memo[target_id]


def image_tests_key(tests: tuple[ImageTest, ...]) -> str:
    """A digest of a set of tests and their settings: a reused image is tested again when it changes."""
    text = json.dumps(
        [[t.command, t.origin, sorted(t.env.items()), t.timeout, t.network, t.gpus] for t in tests], sort_keys=True
    )
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def run_tests(engine: Tester, image: str, tests: tuple[ImageTest, ...]) -> list[TestResult]:
    """Run every test in a fresh container of `image`, one after the other; engine failures raise EngineError."""
    results = []
    gpus: bool | None = None
    for test in tests:
        if test.gpus:
            gpus = engine.has_gpus() if gpus is None else gpus
            if not gpus:
                reason = f"needs GPUs (gpus: {test.gpus}) but the engine has no GPU runtime"
                results.append(TestResult(test, "skipped", reason=reason))
                continue
        started = time.time()
        run = engine.run_test(test.request(image))
        if run.timed_out:
            status, reason = "failed", f"no result within {test.timeout}s (timeout); the container was removed"
        else:
            status, reason = ("passed", "") if run.exit_code == 0 else ("failed", f"exit code {run.exit_code}")
        results.append(TestResult(test, status, run.exit_code, run.seconds, _tail(run.output), reason, started))
    return results


def failure(target_id: str, results: list[TestResult]) -> Failure | None:
    """The failure of a target whose test failed: the first failed command, why, and its last line."""
    failed = [result for result in results if not result.passed]
    if not failed:
        return None
    first = failed[0]
    last_line = next((line for line in reversed(first.output.splitlines()) if line.strip()), "")
    inherited = f" (inherited from {first.test.origin})" if first.test.origin != target_id else ""
    more = f"; {len(failed) - 1} more failed" if len(failed) > 1 else ""
    detail = f": {last_line.strip()}" if last_line else ""
    message = f"test `{first.test.command}`{inherited} failed, {first.reason}{detail}{more}"
    return Failure(FailureKind.TEST, message, tuple(first.output.splitlines()), step=f"test `{first.test.command}`")


def summary(results: list[TestResult]) -> str:
    """'tests 3/3 passed', 'tests 2/3 passed, 1 skipped' ('' when there were none)."""
    if not results:
        return ""
    passed = sum(1 for result in results if result.status == "passed")
    skipped = sum(1 for result in results if result.status == "skipped")
    counted = len(results) - skipped
    return f"tests {passed}/{counted} passed" + (f", {skipped} skipped" if skipped else "")


def _tail(output: str) -> str:
    """The last OUTPUT_LINES lines of a test's output."""
    return "\n".join(output.splitlines()[-OUTPUT_LINES:])


def built_image(engine: ImageTester, pipeline: Pipeline, target: Target, *, push: bool) -> str | None:
    """The image of a target's current fingerprint: in the registry (by digest) or in the local store; None when
    it was not built."""
    reference = content_reference(target, pipeline.registry)
    if push and target.push:
        digest = engine.manifest_digest(reference)
        return pinned(reference, digest) if digest else None
    return reference if engine.local_digest(reference) else None
