"""The pipeline files init and import write: the commented YAML reads back, with buildflow's own reader, as exactly
the JSON document that is checked before writing, whatever the values hold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from buildflow.adopt.writing import Draft, DraftTarget, render
from buildflow.pipeline.source import read_document

TRICKY = [
    "1.10",
    "010",
    "1e3",
    "0x1F",
    ".inf",
    "true",
    "null",
    "yes",
    "On",
    "~",
    "",
    " padded ",
    "a: b",
    "# not a comment",
    "-dash",
    "@at",
    "{brace}",
    "[list]",
    "quote'\"",
    "tab\there",
    "new\nline",
    "ünïcode",
    "localhost:5000/x/y:1",
    "!tag",
    "&anchor",
    "*alias",
    "|",
    ">",
    "%",
]


def read_back(tmp_path: Path, draft: Draft) -> tuple[Any, Any]:
    """The YAML and the JSON rendering of a draft, each read as buildflow reads a pipeline file."""
    (tmp_path / "p.yaml").write_text(render(draft))
    (tmp_path / "p.json").write_text(render(draft, json_file=True))
    yaml_data = read_document(tmp_path / "p.yaml", "p.yaml")[1]
    json_data = read_document(tmp_path / "p.json", "p.json")[1]
    json_data.pop("x-notes", None)
    return yaml_data, json_data


def test_tricky_values_and_keys_read_back_unchanged(tmp_path: Path) -> None:
    fields: dict[str, Any] = {"context": "1.10", "args": {key or "k": key for key in TRICKY}, "tags": TRICKY}
    fields |= {"push": True, "description": "x: y # z"}
    header = ["a comment: with # marks", "", "a note with a\nnew line: version: 2"]
    draft = Draft(header=header, registry="localhost:5000/t", extensions={"x-g": {"on": ["a"]}})
    draft.targets = {name: DraftTarget(fields, [f"about {name}"], ["from: PARENT  # hint"]) for name in ("on", "a.b")}
    draft.targets["empty"] = DraftTarget()
    yaml_data, json_data = read_back(tmp_path, draft)
    assert yaml_data == json_data
    assert yaml_data["targets"]["on"]["args"]["1.10"] == "1.10" and yaml_data["targets"]["empty"] == {}


def test_every_scalar_string_is_written_as_a_plain_or_quoted_word_on_its_line(tmp_path: Path) -> None:
    draft = Draft(targets={"t": DraftTarget({f"x-{index}": value for index, value in enumerate(TRICKY)})})
    yaml_data, json_data = read_back(tmp_path, draft)
    assert yaml_data == json_data
    assert render(draft).count("\n") == 3 + len(TRICKY)  # version, targets:, t:, one line per value


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=12).filter(lambda key: "\x00" not in key and key.isprintable()),
        st.text(max_size=20).filter(lambda value: value.isprintable()),
        max_size=5,
    )
)
def test_any_printable_text_reads_back(values: dict[str, str]) -> None:
    import tempfile

    draft = Draft(targets={"t": DraftTarget({"description": next(iter(values.values()), "x"), "labels": values})})
    draft.targets["t"].fields |= {f"x-{index}": value for index, value in enumerate(values.values())}
    with tempfile.TemporaryDirectory() as directory:
        yaml_data, json_data = read_back(Path(directory), draft)
    assert yaml_data == json_data
