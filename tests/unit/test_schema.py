"""Schema checks: unknown keys with suggestions, wrong types, enums, every problem in one run."""

from __future__ import annotations

import json
import typing
from pathlib import Path

import jsonschema_rs

from buildflow.pipeline.spec import PipelineSpec, TargetSpec, schema
from tests.conftest import dockerfiles, one_problem, problems


def test_schema_is_valid_draft_2020_12() -> None:
    meta = jsonschema_rs.validator_for(json.loads(json.dumps(schema()))).__class__
    assert meta is jsonschema_rs.Draft202012Validator


def test_schema_properties_match_the_typed_spec() -> None:
    target_keys = set(schema()["$defs"]["target"]["properties"])
    assert target_keys == set(typing.get_type_hints(TargetSpec))
    assert set(schema()["properties"]) == set(typing.get_type_hints(PipelineSpec))
    assert set(schema()["$defs"]["defaults"]["properties"]) <= target_keys


def test_unknown_key_suggests_the_closest(tmp_path: Path) -> None:
    line = one_problem(
        tmp_path,
        """\
        version: 1
        targets:
          base: {contxt: base}
        """,
    )
    assert line == f"{tmp_path}/buildflow.yaml:3: targets.base.contxt: unknown key — did you mean 'context'?"


def test_wrong_type_says_what_was_expected(tmp_path: Path) -> None:
    line = one_problem(
        tmp_path,
        """\
        version: 1
        targets:
          base:
            tags: base:1
        """,
        dockerfiles("."),
    )
    assert line.endswith(":4: targets.base.tags: expected a list of tag templates, got the string 'base:1'")


def test_enum_suggests_a_value(tmp_path: Path) -> None:
    line = one_problem(
        tmp_path,
        """\
        version: 1
        targets:
          base: {network: hots}
        """,
        dockerfiles("."),
    )
    assert "targets.base.network: 'hots' is not one of default, host, none — did you mean 'host'?" in line


def test_version_must_be_one(tmp_path: Path) -> None:
    line = one_problem(tmp_path, "version: 2\ntargets: {a: {}}\n")
    assert line.endswith(":1: version: unsupported version 2: this buildflow reads version 1")


def test_missing_targets(tmp_path: Path) -> None:
    assert one_problem(tmp_path, "version: 1\n").endswith(":1: missing required key 'targets'")


def test_target_names_are_checked(tmp_path: Path) -> None:
    line = one_problem(tmp_path, "version: 1\ntargets:\n  'my image': {}\n")
    assert ":3: targets[\"my image\"]: invalid name 'my image': a name of letters" in line


def test_several_problems_are_all_reported_in_file_order(tmp_path: Path) -> None:
    lines = problems(
        tmp_path,
        """\
        version: 1
        targets:
          base: {contxt: base}
          cuda: {from: bse, network: hots}
          app: {from: cuda, tags: "x"}
          other: {tags: ["Bad:tag"]}
        """,
        dockerfiles(".", "base"),
    )
    assert [line.split(": ", 2)[1] for line in lines] == [
        "targets.base.contxt",
        "targets.cuda.from",
        "targets.cuda.network",
        "targets.app.tags",
        "targets.other.tags[0]",
    ]
    assert "unknown target 'bse' — did you mean 'base'?" in lines[1]


def test_extension_keys_are_allowed_for_anchors(tmp_path: Path) -> None:
    from tests.conftest import load

    pipeline = load(
        tmp_path,
        """\
        version: 1
        x-common: &common {network: host}
        targets:
          base: {<<: *common, x-note: anything}
        """,
        dockerfiles("."),
    )
    assert pipeline.targets["base"].network == "host"
