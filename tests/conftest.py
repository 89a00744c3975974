"""Shared test helpers: pipelines written from inline text into temporary directories."""

from __future__ import annotations

import http.server
import os
import socketserver
import subprocess
import textwrap
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest

from buildflow.errors import PipelineError
from buildflow.model import Pipeline
from buildflow.pipeline.loader import load_pipeline

REPO = Path(__file__).resolve().parent.parent
Server = TypeVar("Server", bound=socketserver.BaseServer)


@contextmanager
def serving(server: Server) -> Iterator[Server]:
    """A test server answering in a thread until the block ends, then closed."""
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """A test server's request handler that logs nothing and answers in one call."""

    def log_message(self, format: str, *args: object) -> None:
        return

    def _answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        """Send a status, headers (Content-Length included) and the body, which a HEAD answer leaves out."""
        self.send_response(status)
        for key, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def run_make(*argv: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run make as a user would, even when pytest runs under make: no inherited MAKEFLAGS, no directory lines."""
    outer = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"}
    environment = {name: value for name, value in os.environ.items() if name not in outer}
    return subprocess.run(
        ["make", "--no-print-directory", *argv], cwd=cwd, capture_output=True, text=True, check=check, env=environment
    )


def write_pipeline(root: Path, text: str, files: Mapping[str, str] | None = None, name: str = "buildflow.yaml") -> Path:
    """Write a pipeline file and its files (path -> content); every context named `*/Dockerfile` is created."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / name
    path.write_text(textwrap.dedent(text))
    for relative, content in (files or {}).items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(content))
    return path


def dockerfiles(*contexts: str, body: str = "FROM scratch\n") -> dict[str, str]:
    """A Dockerfile for each context."""
    return {f"{context}/Dockerfile": body for context in contexts}


def load(root: Path, text: str, files: Mapping[str, str] | None = None, **options: object) -> Pipeline:
    """Write and load a pipeline."""
    return load_pipeline(write_pipeline(root, text, files), **options)  # type: ignore[arg-type]


def problems(root: Path, text: str, files: Mapping[str, str] | None = None, **options: object) -> list[str]:
    """The rendered problem lines of a pipeline that must fail to load."""
    with pytest.raises(PipelineError) as caught:
        load(root, text, files, **options)
    return caught.value.lines()


def one_problem(root: Path, text: str, files: Mapping[str, str] | None = None, **options: object) -> str:
    """The single problem line of a pipeline that must fail to load."""
    lines = problems(root, text, files, **options)
    assert len(lines) == 1, lines
    return lines[0]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Integration tests (real engine and registry) run after every unit test, and those that kill the
    engine on purpose after every other."""
    items.sort(
        key=lambda item: (
            item.get_closest_marker("integration") is not None,
            item.get_closest_marker("disruptive") is not None,
        )
    )
