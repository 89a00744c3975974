"""Reading pipeline files: syntax errors with lines, YAML 1.2 scalars, duplicate keys, hostile input."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildflow.errors import PipelineError
from buildflow.pipeline.source import MAX_FILE_BYTES, line_finder, read_document


def read(tmp_path: Path, content: str | bytes, name: str = "p.yaml") -> object:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return read_document(path, name)[1]


def error(tmp_path: Path, content: str | bytes, name: str = "p.yaml") -> str:
    with pytest.raises(PipelineError) as caught:
        read(tmp_path, content, name)
    [line] = caught.value.lines()
    return line


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    line = error(tmp_path, "version: 1\ntargets:\n  base: {context: [a\n")
    assert line.startswith("p.yaml:4: YAML syntax:")


def test_duplicate_keys_are_refused_with_both_lines(tmp_path: Path) -> None:
    line = error(tmp_path, "version: 1\ntargets:\n  a: {}\n  a: {}\n")
    assert line == "p.yaml:4: duplicate key 'a' (first at line 3); keep one"


def test_duplicate_keys_in_json_are_refused_too(tmp_path: Path) -> None:
    line = error(tmp_path, '{"version": 1,\n "version": 1}', name="p.json")
    assert "duplicate key 'version'" in line and line.startswith("p.json:2:")


def test_yaml_core_schema_keeps_versions_as_written(tmp_path: Path) -> None:
    data = read(tmp_path, "v: [1.10, 1.8, yes, on, 012, 0x1f, 1:20, 2018-07-21, true, ~]\n")
    assert data == {"v": ["1.10", "1.8", "yes", "on", 12, 31, "1:20", "2018-07-21", True, None]}


def test_merge_keys_do_not_count_as_duplicates(tmp_path: Path) -> None:
    data = read(tmp_path, "x-d: &d {context: a, network: host}\nt: {<<: *d, context: b}\n")
    assert data == {"x-d": {"context": "a", "network": "host"}, "t": {"context": "b", "network": "host"}}


def test_billion_laughs_is_refused(tmp_path: Path) -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for level in "bcdefg":
        previous = chr(ord(level) - 1)
        lines.append(f"{level}: &{level} [" + ", ".join([f"*{previous}"] * 10) + "]")
    assert "aliases expand to more than" in error(tmp_path, "\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "the file is empty"),
        (b"\x00\x01binary", "binary data"),
        (b"version: 1\n\xff\xfe\n", "p.yaml:2: not UTF-8 text"),
        (b"- a\n- b\n", "the top level must be a mapping"),
        (b"a: 1\n---\nb: 2\n", "expected a single document"),
        (b"[" * 5000, "exceeded maximum nesting depth"),
        (b"a: \x07\n", "not YAML text"),
        (b"? [a]\n: 1\n", "keys must be plain text"),
    ],
)
def test_hostile_files_give_one_line(tmp_path: Path, content: bytes, expected: str) -> None:
    assert expected in error(tmp_path, content)


def test_huge_files_are_refused_before_parsing(tmp_path: Path) -> None:
    assert "larger than 8 MiB" in error(tmp_path, b"#" * (MAX_FILE_BYTES + 1))


def test_missing_file_says_how_to_name_one(tmp_path: Path) -> None:
    with pytest.raises(PipelineError) as caught:
        read_document(tmp_path / "nope.yaml", "nope.yaml")
    assert caught.value.lines() == [
        "nope.yaml: no such file; pass the pipeline with -f PATH (default ./buildflow.yaml)"
    ]


def test_json_documents_are_read_directly(tmp_path: Path) -> None:
    assert read(tmp_path, '{"version": 1, "targets": {"a": {"tags": ["x:1"]}}}', "p.json") == {
        "version": 1,
        "targets": {"a": {"tags": ["x:1"]}},
    }


def test_line_finder_points_at_keys_and_items(tmp_path: Path) -> None:
    text = "version: 1\ntargets:\n  base:\n    tags:\n      - a\n      - b\n"
    find = line_finder(text)
    assert find(("targets", "base")) == 3
    assert find(("targets", "base", "tags", 1)) == 6
    assert find(("targets", "missing", "x")) == 2
    assert find(()) == 1
