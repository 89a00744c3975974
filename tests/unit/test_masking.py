"""Secret values never leave buildflow: masked in log lines (JSON and console), reports and the console."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from buildflow import log
from buildflow.run.secrets import secret_values
from tests.conftest import dockerfiles, load


@pytest.fixture(autouse=True)
def no_secrets() -> Iterator[None]:
    """Each test starts and ends with nothing to mask."""
    log.hide([])
    saved = list(log._secrets)
    log._secrets.clear()
    yield
    log._secrets[:] = saved


def test_a_secret_is_masked_as_is_escaped_and_line_by_line() -> None:
    log.hide(['s3cr3t"value', "line-one\nline-two", "abc"])
    assert log.masked('token=s3cr3t"value') == "token=****"
    assert log.masked(json.dumps({"v": 's3cr3t"value'})) == '{"v": "****"}'
    assert log.masked("&lt;s3cr3t&quot;value") == "&lt;****"
    assert log.masked("printed: line-two") == "printed: ****"
    assert log.masked("abc is too short to mask") == "abc is too short to mask"


def test_log_events_are_masked_in_every_field(capsys: pytest.CaptureFixture[str]) -> None:
    log.configure(level="debug", log_format="json")
    log.hide(["hunter22-value"])
    log.event("debug", "build.output", target="app", line="the token is hunter22-value", more=["hunter22-value"])
    line = json.loads(capsys.readouterr().err)
    assert line["line"] == "the token is ****" and line["more"] == ["****"]
    log.configure()


def test_the_values_of_a_pipelines_secrets_are_read_where_the_build_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BF_TOKEN", "from-the-environment")
    (tmp_path / "key.txt").write_text("from-a-file\n")
    pipeline = load(
        tmp_path,
        """\
        version: 1
        targets:
          base: {secrets: {tok: {env: BF_TOKEN}, key: {file: key.txt}, gone: {env: BF_UNSET}}}
        """,
        dockerfiles("."),
    )
    assert secret_values(pipeline) == {"from-the-environment", "from-a-file\n"}
