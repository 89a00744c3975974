"""The HTML report from hand-made results: a node and a bar per target, coloured by status, phases from the run's
timestamps, the critical path, everything from users escaped and masked, and nothing loaded from the network."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from buildflow import log
from buildflow.output.html_report import html_report, write_html
from buildflow.output.report import report_document
from buildflow.output.runview import Row, RunView, critical_path, image_tests_view, run_view
from buildflow.output.svg import seconds, tick_step
from buildflow.plan.planner import Plan, make_plan
from buildflow.quality.summary import SizeSummary, WasteEntry
from buildflow.run.failures import Failure, FailureKind
from buildflow.run.imagetests import ImageTest, TestResult
from buildflow.run.outcome import Outcome, Phase, RunResult, Status
from tests.conftest import dockerfiles, load

PIPELINE = """\
    version: 1
    registry: localhost:5000/t
    targets:
      base: {tags: ["base:1"]}
      tools: {from: base, tags: ["tools:1"]}
      app:
        from: base
        matrix: {flavour: ["a&b", "plain"]}
        args: {FLAVOUR: "{flavour}"}
      docs: {from: app, depends_on: [tools]}
    """
T0 = 1_700_000_000.0
MARKER = "BF-MARKER <script>alert('owned')</script> & done"
SECRET = "hunter22-secret-value"
DIGEST = "sha256:" + "cd" * 32


@pytest.fixture(autouse=True)
def no_secrets() -> Iterator[None]:
    """Each test starts and ends with nothing to mask."""
    saved = list(log._secrets)
    log._secrets.clear()
    yield
    log._secrets[:] = saved


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    """base; tools and two app images on base; a docs image on each app image, after tools."""
    return make_plan(load(tmp_path, PIPELINE, dockerfiles(".")))


def _ran(outcome: Outcome, status: Status, ready: float, marks: list[tuple[str, float]], end: float) -> None:
    """An outcome that ran: ready, started at the first mark ('started'), its phases, finished."""
    outcome.status, outcome.ready, outcome.finished = status, T0 + ready, T0 + end
    outcome.started = T0 + marks[0][1]
    outcome.phases = [(phase, T0 + at) for phase, at in marks[1:]]
    outcome.digest = DIGEST if status != Status.FAILED else ""


def _result(plan: Plan) -> RunResult:
    """base built (built, tested, pushed), tools reused, app[flavour=a&b] failed with MARKER as its last line (its
    docs blocked), app[flavour=plain] built after waiting for a builder, and its docs reused."""
    outcomes = {step.target.id: Outcome(step.target) for step in plan.steps}
    _ran(outcomes["base"], Status.BUILT, 0, [("started", 0), ("building", 0.5), ("testing", 4), ("pushing", 5)], 6)
    _ran(outcomes["tools"], Status.REUSED, 6, [("started", 6)], 6.2)
    _ran(outcomes["app[flavour=a&b]"], Status.FAILED, 6, [("started", 6), ("building", 6.1)], 9)
    tail = ("compiling", f"token {SECRET}", "\x1b[31mred\x1b[0m", MARKER)
    outcomes["app[flavour=a&b]"].failure = Failure(
        FailureKind.BUILD, "RUN at Dockerfile:3 failed with exit code 3", tail, step="Dockerfile:3: RUN make"
    )
    _ran(outcomes["app[flavour=plain]"], Status.BUILT, 6, [("started", 7), ("building", 7.1), ("pushing", 8)], 8.5)
    outcomes["base"].size = _size()
    outcomes["docs[flavour=a&b]"].end(Status.BLOCKED, FailureKind.BLOCKED, "app[flavour=a&b] failed")
    _ran(outcomes["docs[flavour=plain]"], Status.REUSED, 8.5, [("started", 8.5)], 8.6)
    return RunResult(outcomes, 9.2, run_id="20261202T080531Z-abcd")


def _size() -> SizeSummary:
    """A 5 MB image adding 4 MB, 1 MB of which its own layers waste."""
    waste = WasteEntry("/tmp/<big>&.tar", 1_000_000, "deleted", 2, "RUN make <all>", 3, "RUN rm -rf /tmp", here=True)
    return SizeSummary("r", 5_000_000, 2_000_000, 4_000_000, 2, 1_000_000, 1_000_000, (), (waste,), 1)


def _count(page: str, pattern: str) -> int:
    """How many elements carry a class attribute beginning with `pattern`."""
    return len(re.findall(f'class="{pattern}', page))


# ---- phases and the critical path ---------------------------------------------------------------------------


def test_an_outcome_s_timeline_is_waiting_checking_then_each_phase_until_the_next(plan: Plan) -> None:
    outcome = Outcome(plan.steps[0].target)
    _ran(outcome, Status.BUILT, 1, [("started", 2), ("building", 2.5), ("testing", 4), ("pushing", 5)], 6)
    assert [(p.phase, p.start - T0, p.end - T0) for p in outcome.timeline()] == [
        ("waiting", 1, 2),
        ("checking", 2, 2.5),
        ("building", 2.5, 4),
        ("testing", 4, 5),
        ("pushing", 5, 6),
    ]


def test_phases_that_took_no_time_are_left_out_and_a_target_never_started_has_none(plan: Plan) -> None:
    outcome = Outcome(plan.steps[0].target)
    assert outcome.timeline() == []
    _ran(outcome, Status.BUILT, 2, [("started", 2), ("building", 2)], 3)
    assert [span.phase for span in outcome.timeline()] == ["building"]


def test_the_json_report_adds_each_target_s_phases(plan: Plan) -> None:
    targets = {target["id"]: target for target in report_document(plan, _result(plan))["targets"]}
    phases = targets["base"]["phases"]
    assert [phase["phase"] for phase in phases] == ["checking", "building", "testing", "pushing"]
    assert phases[0]["start"] == T0 and phases[-1]["end"] == T0 + 6
    assert (
        targets["docs[flavour=a&b]"]["phases"] == [] and "started" in targets["base"]
    )  # the fields that were there stay


def test_the_critical_path_is_the_heaviest_chain_ending_at_the_last_to_finish() -> None:
    rows = [
        Row("base", "BUILT", spans=(Phase("building", 0, 2),)),
        Row("slow", "BUILT", parents=(("base", "from"),), spans=(Phase("building", 2, 9),)),
        Row("fast", "BUILT", parents=(("base", "from"),), spans=(Phase("building", 2, 3),)),
        Row("app", "BUILT", parents=(("fast", "from"),), spans=(Phase("waiting", 3, 5), Phase("building", 5, 10))),
        Row("late", "BUILT", parents=(("fast", "from"), ("slow", "depends_on")), spans=(Phase("building", 9, 11),)),
    ]
    assert critical_path(rows) == ("base", "slow", "late")  # 2 + 7 + 2 beats 2 + 1 + 2
    assert critical_path(rows[:4]) == ("base", "fast", "app")  # app ends last; waiting is not work
    assert critical_path([Row("blocked", "BLOCKED")]) == ()


def test_the_view_times_from_the_first_moment_and_keeps_only_parents_in_the_selection(plan: Plan) -> None:
    view = run_view(plan, _result(plan))
    rows = {row.id: row for row in view.rows}
    assert view.origin == T0 and rows["base"].spans[0] == Phase("checking", 0, 0.5)
    assert rows["docs[flavour=plain]"].parents == (("app[flavour=plain]", "from"), ("tools", "depends_on"))
    assert view.critical == ("base", "app[flavour=a&b]")  # it finished last (9s)
    assert view.generations == [
        ["base"],
        ["tools", "app[flavour=a&b]", "app[flavour=plain]"],
        ["docs[flavour=a&b]", "docs[flavour=plain]"],
    ]


# ---- the page -----------------------------------------------------------------------------------------------


def test_a_node_and_a_bar_per_target_each_coloured_by_its_status(plan: Plan) -> None:
    page = html_report(run_view(plan, _result(plan)))
    assert _count(page, "node ") == len(plan.steps) == _count(page, "bar ")
    assert _count(page, "node status-failed") == 1 and _count(page, "bar status-failed") == 1
    assert _count(page, "node status-built") == 2 and _count(page, "node status-reused") == 2
    assert _count(page, "node status-blocked") == 1 and _count(page, "bar status-blocked empty") == 1
    assert _count(page, "span phase-") == 12  # base 4, tools 1, app[a&b] 2, app[plain] 4 (it waited), its docs 1


def test_the_critical_path_is_marked_in_the_dag_and_the_timeline(plan: Plan) -> None:
    page = html_report(run_view(plan, _result(plan)))
    assert _count(page, "node status-built critical") == 1 and _count(page, "node status-failed critical") == 1
    assert _count(page, "edge kind-from critical") == 1 and _count(page, 'critical-link"') == 1
    assert "critical path: base → app[flavour=a&amp;b] (9.0s of work)" in page


def test_a_failure_shows_its_step_and_last_lines_escaped(plan: Plan) -> None:
    page = html_report(run_view(plan, _result(plan)))
    assert page.count("<script>") == 1  # the page's own, at its end
    assert "BF-MARKER &lt;script&gt;alert(&#x27;owned&#x27;)&lt;/script&gt; &amp; done" in page
    assert "failed at Dockerfile:3: RUN make" in page and "\x1b" not in page and ">red<" not in page.replace(" ", "")
    assert "app[flavour=a&b]" not in page and "app[flavour=a&amp;b]" in page


def test_secrets_in_a_log_tail_are_masked(plan: Plan) -> None:
    log.hide([SECRET])
    page = html_report(run_view(plan, _result(plan)))
    assert SECRET not in page and "token ****" in page


def test_sizes_and_wasted_bytes_per_image(plan: Plan) -> None:
    page = html_report(run_view(plan, _result(plan)))
    assert 'id="sizes"' in page and "1 image measured, 1.0 MB wasted by their own layers" in page
    assert "<code>/tmp/&lt;big&gt;&amp;.tar</code> 1.0 MB: written by layer 2 <code>RUN make &lt;all&gt;</code>" in page


def test_the_page_loads_nothing(plan: Plan) -> None:
    page = html_report(run_view(plan, _result(plan)))
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page) and "@import" not in page
    assert re.findall(r"https?://[^\s\"'<]*", page) == ["http://www.w3.org/2000/svg"] * 2  # the SVG namespace
    assert "<style>" in page and "<script>" in page  # inlined


def test_the_headline_says_the_verdict_totals_and_release(plan: Plan) -> None:
    page = html_report(run_view(plan, _result(plan)))
    assert '<header class="run verdict-failed">' in page and "2 built, 2 reused, 1 failed, 1 blocked in 9.2s." in page
    assert "20261202T080531Z-abcd" in page and "nothing is released unless every selected target is built" in page


def test_a_release_has_no_timeline(plan: Plan, tmp_path: Path) -> None:
    outcomes = {step.target.id: Outcome(step.target, Status.REUSED, digest=DIGEST) for step in plan.steps}
    path = tmp_path / "out" / "release.html"
    write_html(path, run_view(plan, RunResult(outcomes, 0.3, released=True), "release"))
    page = path.read_text()
    assert "No timeline: a release builds nothing." in page and "<h1>buildflow release" in page
    assert "Release tags applied: 0 moved, 0 already in place." in page
    assert _count(page, "node status-reused") == len(plan.steps) and _count(page, "bar ") == 0


def test_image_tests_as_a_page(plan: Plan) -> None:
    passed = TestResult(ImageTest("true", "base"), "passed", 0, 1.5, started=T0 + 1)
    failed = TestResult(ImageTest("false", "base"), "failed", 1, 0.5, output=MARKER, reason="exit code 1", started=T0)
    found = ({"base": [passed], "tools": [failed]}, {"docs[flavour=plain]": "not built for its current inputs"})
    chosen = ["base", "tools", "app[flavour=plain]", "docs[flavour=plain]"]
    view = image_tests_view(plan, found, chosen)
    rows = {row.id: row for row in view.rows}
    assert [row.status for row in view.rows] == ["PASSED", "FAILED", "NO TESTS", "NOT RUN"]
    assert rows["base"].spans == (Phase("testing", 1, 2.5),) and rows["tools"].spans == (Phase("testing", 0, 0.5),)
    assert view.verdict == "failed" and view.totals == "1 passed, 1 failed, 1 no tests, 1 not run in 2.5s."
    page = html_report(view)
    assert _count(page, "node status-not-run") == 1 and "not built for its current inputs" in page
    assert "BF-MARKER &lt;script&gt;" in page and _count(page, "bar ") == 4


def test_round_ticks_and_readable_times() -> None:
    assert [tick_step(span) for span in (0.6, 9.2, 39, 600, 7200)] == [0.1, 1, 5, 100, 1000]
    assert [seconds(value) for value in (0.04, 0.4, 12.34, 125)] == ["40ms", "0.4s", "12.3s", "2m05s"]


def test_an_empty_run_still_makes_a_page() -> None:
    view = RunView("build", "succeeded", "p.yaml", "", "", 0.0, "no targets in 0.0s.", ())
    page = html_report(view)
    assert "No timeline: nothing was built or tested in this run." in page and _count(page, "node ") == 0
    json.dumps(page)  # plain text
