"""`validate`: COPY/ADD sources missing from the build context, with the Dockerfile and its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildflow.cli import main
from buildflow.pipeline.sources import missing_sources
from tests.conftest import load, write_pipeline

PIPELINE = """\
    version: 1
    targets:
      app: {context: app, args: {CONFIG: settings.toml}}
    """
DOCKERFILE = """\
    ARG DATA=data
    FROM scratch AS build
    COPY present.txt /
    COPY missing.txt ignored.log /
    ARG CONFIG
    COPY ${CONFIG} $DATA/ /etc/
    ARG DATA
    COPY ${DATA}/inside.txt /d/
    COPY $UNKNOWN /x
    COPY --from=build /present.txt /y
    ADD https://127.0.0.1:1/file /z
    COPY ["with space.txt", "/w"]
    COPY ./sub/../present.txt /p
    COPY *.md /docs/
    COPY lib/*.py /lib/
    COPY <<EOF /h
    hello
    EOF
    FROM scratch
    COPY --chown=1:1 nowhere/ /n/
    """
FILES = {
    "app/Dockerfile": DOCKERFILE,
    "app/present.txt": "x",
    "app/ignored.log": "x",
    "app/.dockerignore": "*.log\n",
    "app/data/inside.txt": "x",
    "app/with space.txt": "x",
    "app/lib/a.py": "x",
}


def lines(tmp_path: Path) -> list[str]:
    pipeline = load(tmp_path, PIPELINE, FILES)
    return [problem.render() for problem in missing_sources(pipeline, str(tmp_path / "buildflow.yaml"))]


def test_each_missing_source_is_reported_once_with_its_dockerfile_and_line(tmp_path: Path) -> None:
    found = lines(tmp_path)
    dockerfile = tmp_path / "app" / "Dockerfile"
    assert [line.split(": ", 1)[0] for line in found] == [
        f"{dockerfile}:4",
        f"{dockerfile}:4",
        f"{dockerfile}:6",
        f"{dockerfile}:14",
        f"{dockerfile}:20",
    ]
    sources = [line.split("'")[1] for line in found]
    assert sources == ["missing.txt", "ignored.log", "settings.toml", "*.md", "nowhere"]
    assert "is not in the build context" in found[0] and "(target app;" in found[0]


def test_args_are_expanded_as_the_build_sees_them_and_unknown_ones_are_left_alone(tmp_path: Path) -> None:
    # line 6: CONFIG comes from the target's args; $DATA is not declared in the stage yet: not checked.
    # line 8: the stage declares the global ARG DATA, so ${DATA}/inside.txt is data/inside.txt, which is there.
    found = lines(tmp_path)
    assert [line for line in found if ":6:" in line and "settings.toml" in line]
    assert not [line for line in found if ":8:" in line or ":9:" in line or ":11:" in line or ":12:" in line]


def validate(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(["validate", "-f", str(path)])
    captured = capsys.readouterr()
    return int(done.value.code or 0), captured.out, captured.err


def test_validate_exits_2_with_one_line_per_missing_source(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = validate(capsys, write_pipeline(tmp_path, PIPELINE, FILES))
    assert code == 2 and "valid:" not in out
    assert len(err.strip().splitlines()) == 5 and "Traceback" not in err
    assert err.startswith(str(tmp_path / "app" / "Dockerfile") + ":4: COPY/ADD source 'missing.txt'")


def test_validate_passes_when_every_source_is_there(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    files = {**FILES, "app/Dockerfile": "FROM scratch\nCOPY present.txt data/ lib/*.py /\n"}
    code, out, err = validate(capsys, write_pipeline(tmp_path, PIPELINE, files))
    assert code == 0, err
    assert "valid:" in out
