"""Seeing a real build: under a terminal, the live view shows the running target with its current step while it
runs; --progress quiet logs no target's info events, only its errors, and the summary."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import uuid
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.integration.conftest import BASE, child, make_project

pytestmark = pytest.mark.integration

SLOW = """\
    base: {context: base}
    slow: {context: slow, from: base}
    """
QUIET = """\
    base: {context: base}
    mid: {context: mid, from: base}
    broken: {context: broken, from: base}
    """
_ERASED = re.compile(r"\x1b\[2K")  # a line of the view erased before it is drawn again
_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")  # cursor moves, colours


def test_the_live_view_shows_the_running_target_s_current_step(tmp_path: Path) -> None:
    nonce = uuid.uuid4().hex  # new to the engine's cache: the sleep runs
    slow = f"ARG BASE_IMAGE=parent\nFROM ${{BASE_IMAGE}}\nRUN echo {nonce} > /nonce\nRUN sleep 4\n"
    project = make_project(tmp_path, SLOW, {"base": BASE, "slow": slow})
    code, output = in_a_terminal(["build", "--progress", "tty", "--lint", "off"], cwd=project.root)
    assert code == 0, output
    lines = _CONTROL.sub("", _ERASED.sub("\n", output)).splitlines()
    shown = [line for line in lines if line.split()[:2] == ["slow", "RUNNING"]]
    assert any("RUN sleep 4" in line for line in shown), output
    assert "target.started" not in output  # the view instead of log lines
    assert any(line.split()[:2] == ["slow", "BUILT"] for line in lines)  # the summary, after the view


def test_quiet_shows_no_target_events_but_errors_and_the_summary(tmp_path: Path) -> None:
    broken = "ARG BASE_IMAGE=parent\nFROM ${BASE_IMAGE}\nRUN exit 3\n"
    project = make_project(tmp_path, QUIET, {"base": BASE, "mid": child("mid", "base"), "broken": broken})
    result = project.build("--progress", "quiet", "--keep-going", "--lint", "off")
    assert result.returncode == 1, result.stderr
    events = re.findall(r"\btarget\.[a-z_]+", result.stderr)
    assert events == ["target.failed"], result.stderr
    assert "RUN at Dockerfile:3 failed with exit code 3" in result.stderr
    assert {name: target["status"] for name, target in project.targets().items()} == {
        "base": "BUILT",
        "mid": "BUILT",
        "broken": "FAILED",
    }
    assert "mid" in result.stdout and "BUILT" in result.stdout  # the summary


def in_a_terminal(arguments: list[str], *, cwd: Path, columns: int = 120, rows: int = 30) -> tuple[int, str]:
    """Run buildflow under a pseudo-terminal of that size: its exit code and everything the terminal got."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    env = {**os.environ, "PYTHONPATH": str(REPO), "TERM": "xterm-256color", "COLUMNS": str(columns)}
    env.pop("NO_COLOR", None)
    command = [sys.executable, "-m", "buildflow", *arguments]
    process = subprocess.Popen(command, cwd=cwd, stdin=follower, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    output = bytearray()
    try:
        while select.select([leader], [], [], 600)[0]:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: every end of the terminal closed
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(leader)
    return process.wait(timeout=60), output.decode(errors="replace")
