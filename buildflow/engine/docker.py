"""The docker command line, through python-on-whales: the only module that imports it.

A `Docker` speaks to one engine or builder: a docker context (every command goes to that context's engine) or a
buildx builder of the current context (builds go to it, other commands to the current engine). Failed commands
become EngineErrors, classified from the `ERROR:` line docker prints: whether trying again can help.
"""

from __future__ import annotations

import functools
import re
import shutil
import signal
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from buildflow.engine.base import EngineError

DEFAULT_TIMEOUT = 1800
LOG_TAIL_LINES = 30  # lines of a failed build's output kept with its error
_STEP_LINE = re.compile(r"^(#\d+ (\[|CACHED|ERROR)|\s*ERROR:)")  # a step opened, cached or failed; the build failed
TIMED_OUT = 124  # exit code of timeout(1)
KILLED = (-signal.SIGKILL, 128 + signal.SIGKILL)  # timeout -s KILL signals its own process group too
TERMINATED = (-signal.SIGTERM, 128 + signal.SIGTERM)
# Every docker command gets SIGTERM when buildflow dies, even by SIGKILL (Linux's parent-death signal, through
# util-linux's setpriv); `timeout` passes it on to the whole process group of the command (docker, its plugins).
ENDED_WITH_US = ["setpriv", "--pdeathsig", "TERM"] if shutil.which("setpriv") else []
_TRANSIENT = re.compile(
    r"connection refused|connection reset|broken pipe|i/o timeout|TLS handshake timeout|context deadline exceeded"
    r"|unexpected EOF|\b(500|502|503|504)\b|Service Unavailable|Bad Gateway|Gateway Timeout|Internal Server Error"
    r"|\b429\b|Too Many Requests|Cannot connect to the Docker daemon|server misbehaving|timed out|timeout"
    r"|failed commit on ref|code = Unavailable|error reading from server|transport is closing"
    r"|already exists",  # two runs exporting one image name at once: the second try updates it
    re.IGNORECASE,
)
_PERMANENT = re.compile(
    r"did not complete successfully|dockerfile parse error|unknown instruction|\b401\b|Unauthorized|\b403\b"
    r"|Forbidden|not found|no such file|failed to compute cache key|invalid reference format|denied",
    re.IGNORECASE,
)
_MISSING = re.compile(r"no such image|not found|manifest unknown", re.IGNORECASE)


def classify(lines: Sequence[str], return_code: int) -> EngineError:
    """The error a failed docker call means: its ERROR line, and whether trying again can help."""
    error_lines = [line.strip() for line in lines if line.lstrip().startswith("ERROR:")]
    message = (error_lines or [line.strip() for line in lines if line.strip()] or [f"exit code {return_code}"])[-1]
    message = message.removeprefix("ERROR: ")
    if return_code == TIMED_OUT:
        return EngineError(f"no answer within the time limit (killed): {message}", transient=True)
    transient = bool(_TRANSIENT.search(message)) and not _PERMANENT.search(message)
    return EngineError(message, transient=transient)


@dataclass(frozen=True)
class Ran:
    """How a command that may fail on its own terms ended (a test in a container): its exit code and output."""

    code: int
    stdout: str
    stderr: str


@dataclass
class Docker:
    """The docker CLI for one context (its engine) or buildx builder, each command ended after `timeout` seconds."""

    context: str = ""  # a docker context: every command goes to its engine
    builder: str = ""  # a buildx builder of the current context: builds go to it
    timeout: int = DEFAULT_TIMEOUT

    @functools.cached_property
    def client(self) -> Any:
        """The python-on-whales client, made on first use: a run that builds nothing never imports it."""
        from python_on_whales import DockerClient

        call = [*ENDED_WITH_US, "timeout", "-s", "TERM", str(self.timeout), "docker"]
        return DockerClient(client_call=call, context=self.context or None)

    @property
    def base(self) -> list[str]:
        """The docker command and its global options (the context), without the time limit."""
        return ["docker", *(["--context", self.context] if self.context else [])]

    def output(self, arguments: Sequence[str], *, missing_ok: bool = False) -> str:
        """What a docker command prints; with missing_ok, '' when it reports that nothing was found."""
        from python_on_whales import DockerException
        from python_on_whales.utils import run

        try:
            return str(run([*self.client.client_config.docker_cmd, *arguments]) or "").strip()
        except DockerException as error:
            failure = classify((error.stderr or "").splitlines(), error.return_code)
            if missing_ok and _MISSING.search(str(failure)):
                return ""
            raise failure from None

    def build(self, arguments: dict[str, Any], on_line: Callable[[str], None]) -> list[str]:
        """`docker buildx build` with python-on-whales' arguments, its output streamed to on_line; the lines that open,
        cache or fail a step (a large output is never held whole)."""
        from python_on_whales import DockerException

        steps: list[str] = []  # the lines that open, cache or fail a step: few, whatever the output's size
        tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        try:
            stream: Iterator[str] = self.client.buildx.build(**arguments, builder=self.builder or None)
            for raw in stream:
                line = raw.rstrip("\n")
                tail.append(line)
                if _STEP_LINE.match(line):
                    steps.append(line)
                on_line(line)
        except DockerException as error:
            failure = classify([*steps, *tail] or (error.stderr or "").splitlines(), error.return_code)
            failure.log_tail = tuple(tail)
            raise failure from None
        except UnicodeDecodeError:  # python-on-whales decodes a failed build's stderr strictly; ours is kept
            failure = classify([*steps, *tail], 1)
            failure.log_tail = tuple(tail)
            raise failure from None
        return steps

    def push(self, reference: str) -> None:
        """`docker push` of an image in this engine's store."""
        self._call(lambda: self.client.image.push(reference, quiet=True))

    def tag(self, source: str, reference: str) -> None:
        """`docker tag` in this engine's store."""
        self._call(lambda: self.client.image.tag(source, reference))

    def ran(self, arguments: Sequence[str], timeout: int) -> Ran:
        """A command killed after `timeout` seconds (SIGKILL), its exit code and output whatever they are."""
        import subprocess

        command = [*ENDED_WITH_US, "timeout", "-s", "KILL", str(timeout), *self.base, *arguments]
        ran = subprocess.run(command, capture_output=True, check=False)  # any bytes: python-on-whales decodes strictly
        return Ran(ran.returncode, _text(ran.stdout), _text(ran.stderr))

    def _call(self, call: Callable[[], object]) -> None:
        """A python-on-whales call whose failure becomes a classified EngineError."""
        from python_on_whales import DockerException

        try:
            call()
        except DockerException as error:
            raise classify((error.stderr or "").splitlines(), error.return_code) from None
        except UnicodeDecodeError:
            raise EngineError("docker failed, and its error output is not UTF-8", transient=False) from None


def _text(output: str | bytes | None) -> str:
    """Command output as text."""
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""
