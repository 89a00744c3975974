"""A run's builder output: kept per target, the failing step and its last lines found in BuildKit's plain
progress, secrets masked, long and undecodable output kept without harm; the failure shown in every report."""

from __future__ import annotations

from pathlib import Path

from buildflow import log
from buildflow.engine.base import EngineError
from buildflow.run.failures import LINE_CHARACTERS, TAIL_LINES, Failure, FailureKind
from buildflow.run.logs import RunLogs, build_failure

FAILED_BUILD = """\
#0 building with "default" instance using docker driver
#4 importing cache manifest from localhost:5000/p/buildcache:app
#4 ERROR: failed to configure registry cache importer: not found
#5 [stage-0 1/3] FROM localhost:5000/p/base@sha256:d2f7
#5 DONE 0.0s
#6 [stage-0 2/3] RUN echo prepared > /prepared.txt
#6 CACHED
#7 [stage-0 3/3] RUN make all
#7 0.070 compiling
#7 0.071 token hunter2-secret
#7 0.072 make: *** [all] Error 3
#7 ERROR: process "/bin/sh -c make all" did not complete successfully: exit code: 3
------
 > [stage-0 3/3] RUN make all:
0.070 compiling
------
Dockerfile:3
--------------------
ERROR: failed to solve: process "/bin/sh -c make all" did not complete successfully: exit code: 3
"""


def _fed(logs: RunLogs, target: str, text: str) -> RunLogs:
    for line in text.splitlines():
        logs.write(target, line)
    return logs


def test_the_failing_step_is_the_last_step_that_failed_not_a_cache_import(tmp_path: Path) -> None:
    logs = _fed(RunLogs(tmp_path), "app", FAILED_BUILD)
    step = logs.failed_step("app")
    assert step is not None
    assert step.title == "Dockerfile:3: [stage-0 3/3] RUN make all"
    assert step.lines == ("compiling", "token hunter2-secret", "make: *** [all] Error 3")


def test_a_build_failure_says_the_step_and_exit_code_in_one_line(tmp_path: Path) -> None:
    logs = _fed(RunLogs(tmp_path), "app", FAILED_BUILD)
    message = 'failed to solve: process "/bin/sh -c make all" did not complete successfully: exit code: 3'
    error = EngineError(message, transient=False)
    failure = build_failure(logs, "app", error)
    assert failure.message == "RUN at Dockerfile:3 failed with exit code 3"
    assert failure.step == "Dockerfile:3: [stage-0 3/3] RUN make all"
    assert failure.log == str(tmp_path / "app.log") and failure.kind == FailureKind.BUILD
    assert failure.details()[0] == "failed at Dockerfile:3: [stage-0 3/3] RUN make all"
    assert failure.details()[-1] == f"whole output: {tmp_path / 'app.log'}"


def test_without_a_failed_step_the_engine_error_and_its_tail_are_kept() -> None:
    logs = _fed(RunLogs(None), "app", "#1 [internal] load build definition from Dockerfile\n")
    message = "failed to read dockerfile: open Dockerfile: no such file or directory"
    error = EngineError(message, transient=False, log_tail=("a", "b"))
    failure = build_failure(logs, "app", error)
    assert failure.message == str(error) and failure.step == "" and failure.tail == ("a", "b")
    assert failure.log == ""  # no directory: no file


def test_secrets_are_masked_in_the_file_and_the_tail(tmp_path: Path) -> None:
    saved = list(log._secrets)
    log.hide(["hunter2-secret"])
    try:
        logs = _fed(RunLogs(tmp_path), "app", FAILED_BUILD)
        logs.close()
        step = logs.failed_step("app")
        assert step is not None and "token ****" in step.lines
        assert "hunter2" not in (tmp_path / "app.log").read_text()
    finally:
        log._secrets[:] = saved


def test_a_large_output_is_written_whole_and_only_its_tail_is_shown(tmp_path: Path) -> None:
    logs = RunLogs(tmp_path)
    logs.write("big", "#9 [2/2] RUN generate")
    for number in range(200_000):
        logs.write("big", f"#9 1.000 line {number} " + "x" * 40)
    logs.write("big", "#9 1.000 " + "y" * 3_000_000)  # one 3 MB line
    logs.write("big", "#9 ERROR: process did not complete successfully: exit code: 1")
    logs.close()
    step = logs.failed_step("big")
    assert step is not None and step.lines[-2].startswith("line 199999 ")
    failure = Failure(FailureKind.BUILD, "x", step.lines)
    assert len(failure.tail) == TAIL_LINES and len(failure.tail[-1]) < LINE_CHARACTERS + 40
    assert (tmp_path / "big.log").stat().st_size > 11_000_000  # every line, the long one whole


def test_invalid_utf8_decoded_with_replacement_is_kept(tmp_path: Path) -> None:
    line = b"#3 0.1 bad: \xff\xfe".decode(errors="replace")
    logs = _fed(RunLogs(tmp_path), "t", f"#3 [1/1] RUN x\n{line}\n#3 ERROR: exit code: 1\n")
    logs.close()
    step = logs.failed_step("t")
    assert step is not None and step.lines == ("bad: \ufffd\ufffd",)
    assert "bad: \ufffd\ufffd" in (tmp_path / "t.log").read_text()


def test_the_current_step_is_the_latest_started() -> None:
    logs = _fed(RunLogs(None), "t", "#5 [1/3] FROM x\n#6 [2/3] RUN pip install -r r.txt\n#6 1.0 Collecting\n")
    assert logs.step("t") == "[2/3] RUN pip install -r r.txt" and logs.step("other") == ""


def test_a_target_id_makes_one_file_name(tmp_path: Path) -> None:
    logs = _fed(RunLogs(tmp_path), "team/app[tf=1.8.0]", "hello\n")
    logs.close()
    assert logs.path("team/app[tf=1.8.0]") == tmp_path / "team_app[tf=1.8.0].log"
    assert logs.path("never-wrote") is None


def test_the_failed_event_carries_the_step_the_tail_and_the_file(tmp_path: Path) -> None:
    from buildflow.output.progress import event_fields
    from buildflow.run.outcome import Outcome, Status
    from tests.conftest import dockerfiles, load

    target = load(tmp_path, "version: 1\ntargets:\n  app: {}\n", dockerfiles(".")).targets["app"]
    outcome = Outcome(target, Status.FAILED)
    tail = ("one", "two")
    outcome.failure = Failure(FailureKind.BUILD, "RUN failed", tail, False, "Dockerfile:2: RUN x", "/l/app.log")
    fields = event_fields("failed", outcome, {})
    assert fields["error"] == "RUN failed" and fields["step"] == "Dockerfile:2: RUN x"
    assert fields["log_tail"] == "one\ntwo" and fields["log"] == "/l/app.log"
