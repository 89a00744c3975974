"""The live view of a run (--progress tty): running targets first with their current step, then failures, then the
rest as rows or, on a short terminal, as counts; testing and pushing said; never an error out of the view. And the
modes: plain logs every event, quiet only warnings and errors."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from buildflow.errors import EXIT_INVALID
from buildflow.model import Pipeline, Target
from buildflow.output.live import Board, Entry, layout
from buildflow.output.progress import Progress
from buildflow.run.failures import Failure, FailureKind
from buildflow.run.outcome import Outcome, Status
from tests.conftest import dockerfiles, load

DIGEST = "sha256:" + "d" * 64
NAMES = [f"t{number:02}" for number in range(40)]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    root = tmp_path_factory.mktemp("progress")
    text = "version: 1\nregistry: localhost:5000/p\ntargets:\n" + "".join(
        f"  {name}: {{context: {name}}}\n" for name in NAMES
    )
    return load(root, text, dockerfiles(*NAMES))


def targets(pipeline: Pipeline) -> Iterator[Target]:
    return iter(pipeline.targets[name] for name in NAMES)


def running(target: Target, started: float, **fields: Any) -> Outcome:
    return Outcome(target, Status.RUNNING, started=started, builder="default", **fields)


def failed(target: Target, message: str) -> Outcome:
    outcome = Outcome(target, Status.FAILED, started=1.0, finished=3.0, builder="default")
    outcome.failure = Failure(FailureKind.BUILD, message)
    return outcome


def finished(target: Target, status: Status) -> Outcome:
    return Outcome(target, status, digest=DIGEST, pushed=True, started=1.0, finished=2.0)


def a_big_run(pipeline: Pipeline) -> list[Outcome]:
    """40 targets: 3 running (started in the order 2, 0, 1), 1 failed, 12 built, 3 reused, 20 queued, 1 blocked;
    in the order of their queued events, the finished ones first."""
    each = targets(pipeline)
    outcomes = [finished(next(each), Status.BUILT) for _ in range(12)]
    outcomes += [finished(next(each), Status.REUSED) for _ in range(3)]
    outcomes += [running(next(each), started) for started in (30.0, 10.0, 20.0)]
    outcomes += [failed(next(each), "RUN at Dockerfile:4 failed with exit code 3\nsecond line")]
    outcomes += [Outcome(next(each)) for _ in range(20)]
    blocked = Outcome(next(each))
    blocked.end(Status.BLOCKED, FailureKind.PARENT, "parent t15 failed")
    return [*outcomes, blocked]


def view_of(outcomes: list[Outcome], **options: Any) -> Progress:
    view = Progress("tty", console=Console(width=100, height=20), **options)
    for outcome in outcomes:
        view("queued", outcome)
    return view


def drawn(renderable: Any, *, width: int = 100, height: int = 20) -> list[str]:
    console = Console(record=True, width=width, height=height)
    console.print(renderable)
    return [line.rstrip() for line in console.export_text().splitlines()]


def test_a_short_terminal_shows_the_running_targets_and_the_failures_and_counts_the_rest(pipeline: Pipeline) -> None:
    steps = {"t15": "[3/7] RUN pip install numpy", "t16": "[1/2] FROM busybox", "t17": ""}
    lines = drawn(view_of(a_big_run(pipeline), step=lambda target: steps[target]).board(), height=20)
    assert len(lines) == 6  # of 20
    assert lines[0].split() == ["TARGET", "STATUS", "BUILDER", "TIME", "DETAIL"]
    assert [line.split()[:2] for line in lines[1:5]] == [
        ["t16", "RUNNING"],  # started first
        ["t17", "RUNNING"],
        ["t15", "RUNNING"],
        ["t18", "FAILED"],
    ]
    assert lines[1].endswith("[1/2] FROM busybox")
    assert lines[2].endswith("starting")  # no step yet
    assert lines[3].endswith("[3/7] RUN pip install numpy")
    assert "2.0s" in lines[4] and lines[4].endswith("RUN at Dockerfile:4 failed with exit code 3")  # its first line
    assert lines[5] == "12 built · 3 reused · 20 queued · 1 blocked"


def test_a_tall_enough_terminal_shows_every_target_running_and_failed_ones_first(pipeline: Pipeline) -> None:
    outcomes = a_big_run(pipeline)[10:22]  # 2 built, 3 reused, 3 running, 1 failed, 3 queued
    lines = drawn(view_of(outcomes).board(), height=14)
    assert [line.split()[0] for line in lines[1:]] == [
        "t16",
        "t17",
        "t15",
        "t18",
        "t10",
        "t11",
        "t12",
        "t13",
        "t14",
        "t19",
        "t20",
        "t21",
    ]
    assert "sha256:dddddddddddd" in lines[5] and "QUEUED" in lines[-1]


def test_more_running_targets_than_lines_keep_the_oldest_and_count_the_others() -> None:
    entries = [Entry(f"r{n}", Status.RUNNING, started=float(n)) for n in range(10)]
    entries += [Entry("f", Status.FAILED, detail="boom"), Entry("q", Status.QUEUED)]
    rows, summary = layout(entries, height=6)
    assert [row.target for row in rows] == ["r0", "r1", "r2"]
    assert summary == "7 more running · 1 failed · 1 queued"
    assert len(drawn(Board(entries), height=6)) == 5  # header, 3 rows, the counts: the cursor's line is free
    assert drawn(Board(entries), height=2) == ["10 running · 1 failed · 1 queued"]


def test_the_current_step_is_cut_to_the_terminal_width(pipeline: Pipeline) -> None:
    outcome = running(pipeline.targets["t00"], time.time() - 5)
    step = "[3/7] RUN pip install " + "numpy " * 40
    (line,) = drawn(view_of([outcome], step=lambda target: step).board(), width=60)[1:]
    assert len(line) <= 60 and "[3/7] RUN pip install numpy" in line and line.endswith("…")


def test_testing_and_pushing_are_said(pipeline: Pipeline) -> None:
    each = targets(pipeline)
    tested, pushing, local, pushed = (running(next(each), 1.0, digest=DIGEST) for _ in range(4))
    pushed.pushed = True
    view = view_of([tested, pushing, pushed], step=lambda target: "[2/2] RUN make")
    view("testing", tested, tests=3)
    lines = drawn(view.board())
    assert lines[1].endswith("testing sha256:dddddddddddd (3 tests)")
    assert lines[2].endswith("pushing")
    assert lines[3].endswith("pushed sha256:dddddddddddd")
    no_push = view_of([local], pushes=False)  # --no-push: built, never pushing
    assert drawn(no_push.board())[1].endswith("built sha256:dddddddddddd")


def test_times_stay_short() -> None:
    from buildflow.output.live import duration

    assert [duration(seconds) for seconds in (0.04, 59.94, 65, 3599, 7380)] == [
        "0.0s",
        "59.9s",
        "1m05s",
        "59m59s",
        "2h03m",
    ]


def test_secrets_are_masked_in_the_view(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    from buildflow import log

    monkeypatch.setattr(log, "_secrets", [])
    log.hide(["hunter2-secret"])
    outcome = running(pipeline.targets["t00"], 1.0)
    text = "\n".join(drawn(view_of([outcome], step=lambda target: "[1/1] RUN echo hunter2-secret").board()))
    assert "hunter2-secret" not in text and "RUN echo ****" in text


def test_an_error_in_the_view_draws_a_line_and_stops_nothing(pipeline: Pipeline) -> None:
    def broken(target: str) -> str:
        raise RuntimeError("no step")

    view = view_of([running(pipeline.targets["t00"], 1.0)], step=broken)
    assert drawn(view.board()) == ["(the live view cannot be drawn: no step)"]
    wrong = Entry("t", Status.RUNNING, seconds="soon")  # type: ignore[arg-type]
    (line,) = drawn(Board([wrong]))
    assert line.startswith("(the live view cannot be drawn: ")


def test_a_console_that_cannot_print_turns_warnings_into_log_events(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    logged = record_events(monkeypatch)

    class Broken(Console):
        def print(self, *objects: Any, **options: Any) -> None:
            raise OSError("the terminal went away")

    view = Progress("tty", console=Broken(width=80, height=10))
    outcome = failed(pipeline.targets["t00"], "boom")
    with view:
        view("failed", outcome)
    assert logged == [("error", "target.failed")]


def test_events_from_many_threads_while_the_view_is_drawn(pipeline: Pipeline) -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=80, height=12)
    view = Progress("tty", console=console, step=lambda target: "[1/3] RUN make")
    outcomes = [running(target, 1.0) for target in targets(pipeline)]

    def events(mine: list[Outcome]) -> None:
        for _ in range(10):
            for outcome in mine:
                view("started", outcome)
                view("retrying", outcome, attempt=2, error="registry busy", wait=0.1)
                view("testing", outcome, tests=1)

    with view:
        workers = [threading.Thread(target=events, args=(outcomes[n::4],)) for n in range(4)]
        for worker in workers:
            worker.start()
        while any(worker.is_alive() for worker in workers):
            view.view.refresh()
            time.sleep(0.01)
        for worker in workers:
            worker.join()
    assert len(view.outcomes) == 40 and set(view.testing) == set(NAMES)


def test_plain_logs_every_event_quiet_only_warnings_and_errors(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    logged = record_events(monkeypatch)
    outcome, broken = running(pipeline.targets["t00"], 1.0), failed(pipeline.targets["t01"], "boom")
    for mode in ("plain", "quiet"):
        view = Progress(mode)
        with view:
            view("started", outcome)
            view("retrying", outcome, attempt=2, error="registry busy", wait=0.1)
            view("failed", broken)
    assert logged == [
        ("info", "target.started"),
        ("warning", "target.retrying"),
        ("error", "target.failed"),
        ("warning", "target.retrying"),
        ("error", "target.failed"),
    ]


def test_progress_takes_auto_tty_plain_quiet_and_the_old_live(tmp_path: Path) -> None:
    import click

    from buildflow.cli.build import ProgressChoice, _progress_view
    from buildflow.cli.options import PipelineOptions
    from buildflow.run.logs import RunLogs

    choice = ProgressChoice()
    assert [choice.convert(mode, None, None) for mode in ("auto", "tty", "plain", "quiet", "live")] == [
        "auto",
        "tty",
        "plain",
        "quiet",
        "tty",
    ]
    with pytest.raises(click.BadParameter):
        choice.convert("fancy", None, None)
    options = PipelineOptions(tmp_path / "buildflow.yaml", (), None, "console", False)
    logs = RunLogs(None)
    assert _progress_view("auto", options, logs, True)().mode == "plain"  # type: ignore[attr-defined]  # no terminal
    assert _progress_view("quiet", options, logs, True)().mode == "quiet"  # type: ignore[attr-defined]


def test_the_help_lists_the_modes_not_the_old_name(capsys: pytest.CaptureFixture[str]) -> None:
    from buildflow.cli import main

    with pytest.raises(SystemExit) as done:
        main(["build", "--progress", "fancy"])
    assert done.value.code == EXIT_INVALID
    assert "'fancy' is not one of 'auto', 'tty', 'plain', 'quiet'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["build", "--help"])
    assert "--progress [auto|tty|plain|quiet]" in capsys.readouterr().out


def record_events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    logged: list[tuple[str, str]] = []
    monkeypatch.setattr(
        "buildflow.output.progress.log.event", lambda level, name, **fields: logged.append((level, name))
    )
    return logged
