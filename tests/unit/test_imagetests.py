"""Which tests a target's image must pass, and how the scheduler runs them (fake engine: scheduling only;
tests/integration/test_image_tests.py runs them in real containers)."""

from __future__ import annotations

from pathlib import Path

from buildflow.engine.base import TestRequest, TestRun
from buildflow.plan.planner import make_plan
from buildflow.run.dispatch import Scheduler
from buildflow.run.imagetests import ImageTest, failure, image_tests, run_tests, summary
from buildflow.run.outcome import RunOptions, Status
from tests.conftest import dockerfiles, load
from tests.fakes import FAST, FakeEngine

PIPELINE = """\
    version: 1
    registry: localhost:5000/t
    targets:
      base: {test: ["base-check"]}
      framework: {from: base, test: {commands: ["framework-check"], env: {MODE: fast}, timeout: 9}}
      app: {from: framework, test: ["app-check"]}
      lone: {from: framework, test: {commands: ["lone-check"], inherit: false}}
      below_lone: {from: lone}
      tools: {test: ["tools-check"]}
      copier: {context: copier}
      built_on_tools: {context: on_tools}
      after: {depends_on: [app]}
    """
FILES = {
    **dockerfiles(".", "copier", "on_tools"),
    "copier/Dockerfile": "FROM scratch\nCOPY --from=tools /x /x\n",
    "on_tools/Dockerfile": "FROM tools\n",
}


def commands(tests: tuple[ImageTest, ...]) -> list[tuple[str, str]]:
    return [(test.command, test.origin) for test in tests]


def test_children_inherit_the_tests_of_the_images_they_are_built_on(tmp_path: Path) -> None:
    pipeline = load(tmp_path, PIPELINE, FILES)
    assert commands(image_tests(pipeline, "app")) == [
        ("base-check", "base"),
        ("framework-check", "framework"),
        ("app-check", "app"),
    ]
    inherited = image_tests(pipeline, "app")[1]
    assert (inherited.env, inherited.timeout) == ({"MODE": "fast"}, 9)  # the declaring target's settings


def test_inherit_false_stops_inheritance_for_the_target_and_below(tmp_path: Path) -> None:
    pipeline = load(tmp_path, PIPELINE, FILES)
    assert commands(image_tests(pipeline, "lone")) == [("lone-check", "lone")]
    assert commands(image_tests(pipeline, "below_lone")) == [("lone-check", "lone")]


def test_only_from_edges_pass_tests_on(tmp_path: Path) -> None:
    pipeline = load(tmp_path, PIPELINE, FILES)
    assert image_tests(pipeline, "copier") == ()  # COPY --from=tools: not built on tools
    assert image_tests(pipeline, "after") == ()  # depends_on: order only
    assert commands(image_tests(pipeline, "built_on_tools")) == [("tools-check", "tools")]  # inferred FROM tools


class Scripted:
    """An engine whose test commands exit with the code their command names ('exit 3'), or time out."""

    def __init__(self) -> None:
        self.requests: list[TestRequest] = []

    def run_test(self, request: TestRequest) -> TestRun:
        self.requests.append(request)
        if request.command == "hang":
            return TestRun(-9, "partial", request.timeout, timed_out=True)
        code = int(request.command.split()[-1]) if request.command.startswith("exit") else 0
        return TestRun(code, "line one\nlast words\n", 0.1)

    def has_gpus(self) -> bool:
        return False

    def manifest_digest(self, reference: str) -> str | None:
        return None

    def local_digest(self, reference: str) -> str | None:
        return None


def test_results_failures_and_gpu_skips(tmp_path: Path) -> None:
    engine = Scripted()
    tests = (
        ImageTest("exit 0", "app"),
        ImageTest("nvidia-smi", "app", gpus="all"),
        ImageTest("exit 3", "base"),
        ImageTest("hang", "app", timeout=5),
    )
    results = run_tests(engine, "img", tests)
    assert [r.status for r in results] == ["passed", "skipped", "failed", "failed"]
    assert [r.command for r in engine.requests] == ["exit 0", "exit 3", "hang"]  # the GPU test never ran
    assert results[1].reason == "needs GPUs (gpus: all) but the engine has no GPU runtime"
    assert results[3].reason == "no result within 5s (timeout); the container was removed"
    assert summary(results) == "tests 1/3 passed, 1 skipped"
    error = failure("app", results)
    assert error is not None and not error.transient
    assert str(error) == "test `exit 3` (inherited from base) failed, exit code 3: last words; 1 more failed"


def test_a_failing_test_fails_its_target_blocks_its_children_and_releases_nothing(tmp_path: Path) -> None:
    text = """\
        version: 1
        registry: localhost:5000/t
        targets:
          base: {tags: ["base:1"], test: ["true"]}
          bad: {from: base, tags: ["bad:1"], test: ["false"]}
          child: {from: bad, tags: ["child:1"]}
          fine: {from: base, tags: ["fine:1"]}
        """
    engine = FakeEngine()
    plan = make_plan(load(tmp_path, text, dockerfiles(".")), (), ())
    result = Scheduler(plan, engine, RunOptions(retry=FAST, keep_going=True)).run()
    statuses = {target_id: outcome.status for target_id, outcome in result.outcomes.items()}
    assert statuses == {"base": Status.BUILT, "bad": Status.FAILED, "child": Status.BLOCKED, "fine": Status.BUILT}
    assert not any("bad" in reference for reference in engine.pushed)  # tested before pushing
    assert engine.tags == [] and not result.released
    fine_tests = [line for kind, line in engine.log if kind == "test" and "/fine:" in line]
    assert len(fine_tests) == 1 and fine_tests[0].endswith(" true")  # base's test, inherited


def test_buildflow_test_reports_an_engine_failure_as_a_line_not_a_crash(tmp_path: Path) -> None:
    from buildflow.engine.base import EngineError
    from buildflow.run.testing import run_target_tests as _test_built

    class Unreachable(Scripted):
        def manifest_digest(self, reference: str) -> str | None:
            raise EngineError("localhost:5000: connection refused", transient=True)

    pipeline = load(tmp_path, PIPELINE, FILES)
    assert _test_built(Unreachable(), pipeline, "app", True) == "localhost:5000: connection refused"
    assert _test_built(Unreachable(), pipeline, "after", True) == []  # no tests: nothing to ask


def test_the_live_table_says_when_a_target_is_being_tested(tmp_path: Path) -> None:
    from rich.console import Console

    from buildflow.output.progress import Progress
    from buildflow.run.outcome import Outcome

    pipeline = load(tmp_path, PIPELINE, FILES)
    outcome = Outcome(pipeline.targets["app"], Status.RUNNING, digest="sha256:" + "a" * 64, started=1.0)
    view = Progress()
    view("testing", outcome, tests=3)

    def shown() -> str:
        console = Console(width=200, record=True)
        console.print(view.board())
        return console.export_text()

    assert "testing sha256:aaaaaaaaaaaa" in shown()
    view("tested", outcome, tests=3, passed=3)
    assert "testing" not in shown()
