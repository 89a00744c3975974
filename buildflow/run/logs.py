"""Each target's builder output in one run: kept whole in a file per target, its current step at hand for the live
view, and, when a build fails, the failing instruction and the last lines of its step, for every report.

BuildKit's plain progress numbers its steps: `#5 [2/3] RUN make` opens step 5, `#5 0.215 output…` are its lines,
`#5 ERROR: …` ends it in failure, and after the build a `Dockerfile:3` line names where the failing instruction is.
Lines are masked (log.masked) before they are written or kept, and decoded leniently (invalid UTF-8 is kept as
replacement characters): a 100 MB output is written to its file as it comes, and only the last lines are kept in
memory.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from buildflow import log
from buildflow.engine.base import EngineError
from buildflow.run.failures import TAIL_LINES, Failure, FailureKind

_KEPT = 400  # lines of each target's output kept in memory to find the failing step in
_KEPT_CHARACTERS = 16_384  # of each line kept in memory (its file has it whole)
_STEP = re.compile(r"^#(\d+) (\[[^\]]*\d+/\d+\] .*)$")  # #5 [2/3] RUN make
_LINE = re.compile(r"^#(\d+) (?:\d+\.\d+ )?(.*)$")  # #5 0.215 output, or #5 DONE 0.3s
_ERROR = re.compile(r"^#(\d+) ERROR: ")
_WHERE = re.compile(r"^(\S*Dockerfile\S*):(\d+)$")  # Dockerfile:3, after the build failed
_EXITED = re.compile(r'^failed to solve: process ".*" did not complete successfully: exit code: (\d+)$', re.DOTALL)
_NOISE = re.compile(r"^(DONE\b|CACHED\b|ERROR:)")


def new_run_id() -> str:
    """A name for one run, sortable by time: 20261202T081500Z-3f2a."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(2)


@dataclass(frozen=True)
class FailedStep:
    """The instruction a failed build stopped at (with its Dockerfile and line, when BuildKit said) and the last
    lines of its output."""

    instruction: str
    where: str  # Dockerfile:3, or ""
    lines: tuple[str, ...]

    @property
    def title(self) -> str:
        """'Dockerfile:3: [2/3] RUN make', or the instruction alone."""
        return f"{self.where}: {self.instruction}" if self.where else self.instruction


class RunLogs:
    """The builder output of every target of one run; thread-safe (each target's lines come from its thread)."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory  # None: nothing is written to files
        self._files: dict[str, IO[str]] = {}
        self._written: set[str] = set()  # targets with a file, open or closed
        self._kept: dict[str, deque[str]] = {}
        self._steps: dict[str, dict[str, str]] = {}  # target id -> step number -> its instruction
        self._lock = threading.Lock()

    def path(self, target_id: str) -> Path | None:
        """The file of a target's output (None without a directory, or when it wrote nothing)."""
        if self.directory is None or target_id not in self._written:
            return None
        return self.directory / _file_name(target_id)

    def write(self, target_id: str, line: str) -> None:
        """One line of a target's builder output: masked, to its file, to the kept tail, and as its current step."""
        line = log.masked(line.rstrip("\n"))
        with self._lock:
            self._kept.setdefault(target_id, deque(maxlen=_KEPT)).append(line[:_KEPT_CHARACTERS])
            if match := _STEP.match(line):
                steps = self._steps.setdefault(target_id, {})
                steps.pop(match[1], None)  # a step number seen again (the build retried) is the newest again
                steps[match[1]] = match[2]
            stream = self._file(target_id)
        if stream is not None:
            stream.write(line + "\n")
            stream.flush()

    def step(self, target_id: str) -> str:
        """The step a target's build is at now ('[3/7] RUN pip install …'), or ''."""
        with self._lock:  # asked by the live view's thread while the build writes
            steps = self._steps.get(target_id)
            return next(reversed(steps.values())) if steps else ""

    def failed_step(self, target_id: str) -> FailedStep | None:
        """The failing step of a target's build and its last lines, from the output kept; None when no step
        failed (the build never started, or failed outside a step)."""
        kept, steps = list(self._kept.get(target_id, ())), self._steps.get(target_id, {})
        errors = (match[1] for line in reversed(kept) if (match := _ERROR.match(line)))
        number = next((number for number in errors if number in steps), None)  # not a cache import's error
        if number is None:
            return None
        instruction = steps[number]
        lines = [m[2] for line in kept if (m := _LINE.match(line)) and m[1] == number and not _step_header(line)]
        output = [line for line in lines if not _NOISE.match(line)]
        where = next((f"{m[1]}:{m[2]}" for line in reversed(kept) if (m := _WHERE.match(line.strip()))), "")
        return FailedStep(instruction, where, tuple(output[-TAIL_LINES:]))

    def close(self) -> None:
        """Close every file."""
        with self._lock:
            for stream in self._files.values():
                stream.close()
            self._files.clear()

    def _file(self, target_id: str) -> IO[str] | None:
        """The open file of a target (opened on its first line); None without a directory or when it cannot be."""
        if self.directory is None:
            return None
        if target_id not in self._files:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                path = self.directory / _file_name(target_id)
                self._files[target_id] = path.open("a", encoding="utf-8", errors="replace")
                self._written.add(target_id)
            except OSError:
                return None
        return self._files[target_id]


def _step_header(line: str) -> bool:
    """True for the line that opens a step (its instruction, not its output)."""
    return _STEP.match(line) is not None


def _file_name(target_id: str) -> str:
    """A file name for a target id ('app[tf=1.8.0]' -> 'app[tf=1.8.0].log'; '/' would make a directory)."""
    return target_id.replace("/", "_") + ".log"


def build_failure(logs: RunLogs, target_id: str, error: EngineError) -> Failure:
    """A failed build: BuildKit's error, the failing instruction and the last lines of its step, and the file
    that holds the whole output."""
    step = logs.failed_step(target_id)
    path = logs.path(target_id)
    lines = step.lines if step else error.log_tail[-TAIL_LINES:]
    title = step.title if step else ""
    message = _short_message(str(error), step)
    return Failure(FailureKind.BUILD, message, lines, error.transient, title, str(path) if path else "")


def _short_message(message: str, step: FailedStep | None) -> str:
    """BuildKit's 'process "<the whole command>" did not complete successfully: exit code: 3' said in a line
    when the step is known (it names the command): 'RUN at Dockerfile:4 failed with exit code 3'."""
    exited = _EXITED.search(message)
    if step is None or exited is None:
        return message
    keyword = step.instruction.split("] ", 1)[-1].split(" ", 1)[0]
    where = f" at {step.where}" if step.where else ""
    return f"{keyword}{where} failed with exit code {exited[1]}"
