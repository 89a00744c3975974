"""Dockerfile reading with BuildKit's parser, and ARG expansion as BuildKit does it."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildflow.pipeline.dockerfile import DockerfileError, expand, image_uses, read


def uses(tmp_path: Path, text: str, **args: str) -> list[tuple[str, int, str]]:
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    return [(use.instruction, use.line, name) for use, name in image_uses(read(path), args)]


def test_from_copy_and_mount_uses(tmp_path: Path) -> None:
    text = (
        "# syntax=docker/dockerfile:1\nARG BASE=a:1\nFROM ${BASE} AS build\n"
        "RUN --mount=type=bind,from=b:2,target=/b \\\n    ls\n"
        "FROM c:3\nCOPY --from=build /x /x\nCOPY --from=d:4 --chown=1 /y /y\n"
    )
    assert uses(tmp_path, text) == [
        ("FROM", 3, "a:1"),
        ("RUN --mount", 4, "b:2"),
        ("FROM", 6, "c:3"),
        ("COPY --from", 8, "d:4"),
    ]
    assert uses(tmp_path, text, BASE="z:9")[0] == ("FROM", 3, "z:9")


def test_args_after_the_first_from_do_not_reach_from_lines(tmp_path: Path) -> None:
    assert uses(tmp_path, "FROM scratch\nARG LATE=x\nFROM ${LATE}\n") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${A}", "1"),
        ("$A", "1"),
        ("x-${A}-y", "x-1-y"),
        ("${MISSING:-d}", "d"),
        ("${A:+alt}", "alt"),
        ("${MISSING:+alt}", ""),
        ("\\$A", "$A"),
        ("${MISSING}", None),
        ("$MISSING", None),
        ("${EMPTY:-d}", "d"),
    ],
)
def test_expand(text: str, expected: str | None) -> None:
    assert expand(text, {"A": "1", "EMPTY": ""}) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FROM a\nRUNN x\n", "unknown instruction: RUNN"),
        ("# only a comment\n", "file with no instructions"),
        ("RUN x\n", "no FROM instruction"),
        ("FROM a b\n", "FROM takes an image and an optional 'AS name'"),
        ("FROM a\nRUN <<EOF\nx\n", "unterminated heredoc"),
    ],
)
def test_errors_buildkit_would_give(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    with pytest.raises(DockerfileError, match=message):
        read(path)
