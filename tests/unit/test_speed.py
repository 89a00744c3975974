"""What makes small runs start fast and large plans quick: libyaml's nodes built directly, the document cache,
commands imported when used, and orjson's JSON text. Each is checked for giving the same results as before."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from buildflow.cli.app import cli
from buildflow.cli.commands import COMMANDS
from buildflow.errors import PipelineError
from buildflow.output import jsontext
from buildflow.pipeline import documents, loader
from buildflow.pipeline.loader import load_pipeline
from buildflow.pipeline.source import _yaml_loader, read_document
from buildflow.pipeline.yamlnodes import NotPlain, plain_value

PIPELINE = """\
version: 1
registry: localhost:5000/speed
defaults: {context: ctx}
targets:
  base: {args: {N: "1"}}
  app: {from: base, tags: [app:1]}
"""


def both_ways(text: str) -> tuple[Any, Any]:
    """The document built from libyaml's nodes directly, and by PyYAML's constructor from the same text."""
    fast_loader, slow_loader = _yaml_loader()(text), _yaml_loader()(text)
    try:
        return plain_value(fast_loader.get_single_node()), slow_loader.get_single_data()
    finally:
        fast_loader.dispose()
        slow_loader.dispose()


scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.text(max_size=12))
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.text(max_size=8), values, max_size=5))
def test_plain_nodes_build_what_pyyaml_builds(document: dict[str, Any]) -> None:
    for flow in (False, True):
        fast, slow = both_ways(yaml.safe_dump(document, default_flow_style=flow, allow_unicode=True))
        assert fast == slow


@pytest.mark.parametrize(
    "text",
    [
        "a: 1.10\nb: 012\nc: 0o17\nd: 0x1F\ne: TRUE\nf: ~\ng: yes\nh: '1'\n",
        "a: &x {b: [1, 2]}\nc: *x\n",
        "1: one\n0x10: sixteen\n",
        "a: !!str 5\nb: !!int '7'\nc: !!null x\n",
    ],
)
def test_core_schema_scalars_anchors_and_tags_match(text: str) -> None:
    fast, slow = both_ways(text)
    assert fast == slow


@pytest.mark.parametrize(
    "text",
    [
        "base: &b {x: 1}\nother: {<<: *b, y: 2}\n",  # merge key
        "a: !!binary aGk=\n",  # a tag PyYAML reports
        "a: 1\na: 2\n",  # repeated key
        "? [a]\n: 1\n",  # a key that is a list
        "a: !!bool yes\n",  # a boolean spelling only PyYAML's constructor decides
    ],
)
def test_what_is_not_plain_goes_to_pyyaml(text: str) -> None:
    node_loader = _yaml_loader()(text)
    try:
        with pytest.raises(NotPlain):
            plain_value(node_loader.get_single_node())
    finally:
        node_loader.dispose()


def test_merge_keys_still_merge_and_repeated_keys_still_name_both_lines(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text("base: &b {x: 1}\nother: {<<: *b, y: 2}\n")
    assert read_document(tmp_path / "m.yaml", "m.yaml")[1] == {"base": {"x": 1}, "other": {"x": 1, "y": 2}}
    (tmp_path / "d.yaml").write_text("a: 1\nb: 2\na: 3\n")
    with pytest.raises(PipelineError) as caught:
        read_document(tmp_path / "d.yaml", "d.yaml")
    assert caught.value.lines() == ["d.yaml:3: duplicate key 'a' (first at line 1); keep one"]


@pytest.fixture
def cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A pipeline file, with the document cache on in a cache directory of its own."""
    monkeypatch.setenv("BUILDFLOW_FILE_CACHE", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM scratch\n")
    path = tmp_path / "buildflow.yaml"
    path.write_text(PIPELINE)
    return path


def refuse_schema_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on, checking a document against the schema fails the test."""

    def refused(data: Any) -> list[Any]:
        raise AssertionError("the schema was checked again")

    monkeypatch.setattr(loader, "schema_problems", refused)


def test_a_file_read_before_skips_parsing_and_the_schema(cached: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_pipeline(cached)
    refuse_schema_checks(monkeypatch)
    again = load_pipeline(cached)
    assert again.targets == first.targets
    assert [t.fingerprint for t in again.targets.values()] == [t.fingerprint for t in first.targets.values()]


def test_a_changed_file_is_read_and_checked_again(cached: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    load_pipeline(cached)
    cached.write_text(PIPELINE.replace('N: "1"', 'N: "2"'))
    refuse_schema_checks(monkeypatch)
    with pytest.raises(AssertionError, match="checked again"):
        load_pipeline(cached)


def test_a_file_with_problems_is_never_kept(cached: Path) -> None:
    cached.write_text(PIPELINE.replace("tags: [app:1]", "tags: app:1"))
    for _ in range(2):
        with pytest.raises(PipelineError, match="tags"):
            load_pipeline(cached)
    assert not (cached.parent / "cache" / "buildflow" / "documents").exists()


def test_a_damaged_entry_means_reading_the_file(cached: Path) -> None:
    first = load_pipeline(cached)
    [entry] = (cached.parent / "cache" / "buildflow" / "documents").iterdir()
    entry.write_bytes(b"\x00garbage")
    assert load_pipeline(cached).targets == first.targets


def test_the_cache_can_be_turned_off(cached: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUILDFLOW_FILE_CACHE", "off")
    load_pipeline(cached)
    assert not (cached.parent / "cache").exists()
    assert documents.checked(cached, PIPELINE) == (b"", None)


def test_every_command_is_found_under_its_own_name() -> None:
    assert sorted(cli.list_commands(None)) == sorted(COMMANDS)  # type: ignore[arg-type]
    for name in COMMANDS:
        assert cli.commands[name].name == name


def test_validate_imports_neither_the_engine_nor_the_build_machinery(cached: Path) -> None:
    probe = (
        "import sys\nfrom buildflow.cli import main\ntry:\n    main(['validate', '-f', sys.argv[1]])\n"
        "except SystemExit as done:\n    assert done.code == 0, done.code\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    environment = {**os.environ, "BUILDFLOW_FILE_CACHE": "0"}
    result = subprocess.run(
        [sys.executable, "-c", probe, str(cached)], capture_output=True, text=True, env=environment, check=True
    )
    loaded = set(result.stdout.split("\n")[-2].split())
    assert "buildflow.pipeline.loader" in loaded
    heavy = {
        "python_on_whales",
        "structlog",
        "rich",
        "tenacity",
        "networkx",
        "buildflow.cli.build",
        "buildflow.run.session",
    }
    assert not heavy & loaded


def test_json_text_is_the_standard_librarys_indented_json() -> None:
    document = {"a": [1, {"b": None, "c": True}], "empty": {}, "none": [], "text": 'quote " and ünïcode', "n": -3}
    assert jsontext.dumps(document) == json.dumps(document, indent=2, ensure_ascii=False)
    assert json.loads(jsontext.dumps(document, indent=False)) == document


def test_json_text_takes_what_orjson_refuses() -> None:
    document = {"big": 2**70, "list": [2**65]}
    assert json.loads(jsontext.dumps(document)) == document


class _Recorder:
    """A registry client's requests, recorded and answered from a table of (method, path) -> (status, body)."""

    def __init__(self, answers: dict[tuple[str, str], tuple[int, bytes]]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, str, Any]] = []

    def __call__(self, method: str, ref: Any, path: str, headers: Any, body: Any = None, **_: Any) -> Any:
        self.asked.append((method, path, body))
        status, answer = self.answers.get((method, path), (404, b""))
        return status, {}, answer


def test_a_small_record_is_read_back_in_one_request(monkeypatch: pytest.MonkeyPatch) -> None:
    from buildflow.engine.registry import RegistryClient

    client, record, kind = RegistryClient(), b'{"digest": "sha256:ab"}', "application/vnd.test+json"
    puts = _Recorder({})
    monkeypatch.setattr(client, "_request", puts)
    monkeypatch.setattr(client, "_upload_blob", lambda *arguments, **options: None)
    client.put_artifact("localhost:5000/a/b:1.record", record, kind)
    [(_, _, stored)] = puts.asked
    config = json.loads(stored)["config"]
    assert base64.b64decode(config["data"]) == record
    blob = ("GET", f"blobs/{config['digest']}")
    for descriptor, requests in (
        (config, 1),
        ({key: value for key, value in config.items() if key != "data"}, 2),  # stored before, or too large
        ({**config, "data": base64.b64encode(b"{}").decode()}, 2),  # embedded data that is not the blob
    ):
        gets = _Recorder(
            {("GET", "manifests/1.record"): (200, json.dumps({"config": descriptor}).encode()), blob: (200, record)}
        )
        monkeypatch.setattr(client, "_request", gets)
        assert client.get_artifact("localhost:5000/a/b:1.record", kind) == record
        assert len(gets.asked) == requests


def test_set_overrides_are_checked_against_the_schema_even_on_a_file_read_before(
    cached: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_pipeline(cached)
    refuse_schema_checks(monkeypatch)
    with pytest.raises(AssertionError, match="checked again"):
        load_pipeline(cached, sets=["app.tags=app:2"])
