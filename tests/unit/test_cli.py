"""The command line: exit codes, one line per problem, formats, help that teaches."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from buildflow.cli import main
from tests.conftest import REPO, dockerfiles, write_pipeline

GOOD = """\
    version: 1
    registry: localhost:5000/demo
    targets:
      base: {context: base, tags: ["base:1"]}
      cuda: {context: cuda, from: base, tags: ["cuda:1"]}
      app: {context: app, from: cuda, tags: ["app:1"]}
    """
FILES = {**dockerfiles("base", "cuda"), "app/Dockerfile": "FROM cuda:1\nCOPY --from=base:1 /a /a\n"}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(argv))
    captured = capsys.readouterr()
    return int(done.value.code or 0), captured.out, captured.err


@pytest.fixture
def good(tmp_path: Path) -> Path:
    return write_pipeline(tmp_path, GOOD, FILES)


def test_validate_ok(capsys: pytest.CaptureFixture[str], good: Path) -> None:
    code, out, err = run(capsys, "validate", "-f", str(good))
    assert code == 0 and err == ""
    assert out == f"{good}: valid: 3 images of 3 targets in 3 generations, 3 edges (1 inferred from Dockerfiles)\n"


def test_default_file_is_buildflow_yaml_in_the_current_directory(
    capsys: pytest.CaptureFixture[str], good: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(good.parent)
    assert run(capsys, "validate")[0] == 0
    monkeypatch.chdir(good.parent / "base")
    code, _, err = run(capsys, "validate")
    assert (
        code == 2 and err == "buildflow.yaml: no such file; pass the pipeline with -f PATH (default ./buildflow.yaml)\n"
    )


def test_invalid_pipeline_exits_2_with_one_line_per_problem(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, "version: 1\ntargets:\n  a: {contxt: x}\n  b: {from: c}\n")
    code, out, err = run(capsys, "plan", "-f", str(path))
    assert code == 2 and out == ""
    assert err.splitlines() == [
        f"{path}:3: targets.a.contxt: unknown key — did you mean 'context'?",
        f"{path}:4: targets.b.from: unknown target 'c'",
    ]
    assert "Traceback" not in err


def test_debug_adds_a_traceback(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, "version: 1\ntargets: {b: {from: c}}\n")
    code, _, err = run(capsys, "validate", "-f", str(path), "--debug")
    assert code == 2 and "Traceback" in err and "unknown target 'c'" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], good: Path) -> None:
    assert run(capsys, "plan", "-f", str(good), "--format", "yaml")[0] == 2
    code, _, err = run(capsys, "plan", "-f", str(good), "ap")
    assert code == 2 and err == "unknown target 'ap' — did you mean 'app'?\n"
    code, _, err = run(capsys, "plan", "-f", str(good), "--var", "novalue")
    assert code == 2 and "--var novalue: expected NAME=VALUE" in err
    assert run(capsys, "no-such-command")[0] == 2


def test_internal_errors_exit_3_without_a_traceback(
    capsys: pytest.CaptureFixture[str], good: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("buildflow.pipeline.loader.load_pipeline", broken)
    code, _, err = run(capsys, "plan", "--offline", "-f", str(good))
    assert code == 3
    assert err.splitlines() == [
        "buildflow: internal error: RuntimeError: boom",
        "rerun with --debug for a traceback, and please report it",
    ]


def test_plan_table(capsys: pytest.CaptureFixture[str], good: Path) -> None:
    code, out, _ = run(capsys, "plan", "--offline", "-f", str(good))
    lines = out.splitlines()
    assert code == 0
    assert lines[0].split() == ["#", "GEN", "TARGET", "PARENTS", "FINGERPRINT", "TAGS"]
    assert lines[3].split()[:5] == ["3", "2", "app", "cuda,", "base"]
    assert "(inferred)" in lines[3] and lines[3].endswith("localhost:5000/demo/app:1")
    assert "3 images of 3 targets in 3 generations" in out


def test_plan_json(capsys: pytest.CaptureFixture[str], good: Path) -> None:
    code, out, _ = run(capsys, "plan", "--offline", "-f", str(good), "--format", "json", "cuda")
    document = json.loads(out)
    assert code == 0 and [t["id"] for t in document["targets"]] == ["base", "cuda"]
    cuda = document["targets"][1]
    assert cuda["parents"] == [{"id": "base", "kind": "from", "detail": ""}]
    assert cuda["context"] == "cuda" and cuda["dockerfile"] == "cuda/Dockerfile" and len(cuda["fingerprint"]) == 64
    assert cuda["tags"] == ["localhost:5000/demo/cuda:1"] and cuda["generation"] == 1 and cuda["order"] == 2


def test_graph_formats(capsys: pytest.CaptureFixture[str], good: Path) -> None:
    assert run(capsys, "graph", "-f", str(good))[1] == (
        "base\n├── cuda\n│   └── app\n└── app (inferred) (drawn under cuda)\n"
    )
    dot = run(capsys, "graph", "-f", str(good), "--format", "dot")[1]
    assert '"cuda" -> "app";' in dot and '"base" -> "app" [style=dashed, label="inferred"];' in dot
    mermaid = run(capsys, "graph", "-f", str(good), "--format", "mermaid", "--downstream", "cuda")[1]
    assert mermaid.splitlines() == ["flowchart TD", '  n0["cuda"]', '  n1["app"]', "  n0 --> n1"]


def test_schema_prints_the_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "schema")
    assert code == 0 and json.loads(out)["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_help_teaches_and_documents_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for text in (
        "buildflow plan --downstream base",
        "Exit codes:",
        "2  invalid pipeline file",
        "`buildflow docs` lists it",
    ):
        assert text in out
    assert "--downstream TARGET" in run(capsys, "plan", "--help")[1]
    code, out, _ = run(capsys)
    assert code == 0 and "Exit codes:" in out


def test_json_logs_on_request(capsys: pytest.CaptureFixture[str], good: Path) -> None:
    code, _, err = run(capsys, "validate", "-f", str(good), "--debug", "--log-format", "json")
    event = json.loads(err.splitlines()[0])
    assert code == 0 and event["event"] == "pipeline.loaded" and event["level"] == "debug" and event["targets"] == 3


@pytest.mark.parametrize("entry", [["-m", "buildflow"], ["-c", "from buildflow.cli import main; main()"]])
def test_real_entry_points(good: Path, entry: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, *entry, "plan", "--offline", "-f", str(good), "app"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "3 images of 3 targets" in result.stdout


@pytest.mark.parametrize(
    ("where", "problem"),
    [
        ("/proc/buildflow-report.json", "cannot be written"),
        ("/dev/full", "is not a regular file"),
    ],
)
def test_a_report_that_cannot_be_written_is_refused_before_anything_builds(
    capsys: pytest.CaptureFixture[str], good: Path, where: str, problem: str
) -> None:
    code, out, err = run(capsys, "build", "-f", str(good), "--registry", "localhost:9/none", "--report", where)
    assert code == 2 and out == ""
    assert err.startswith(f"--report {where}: {problem}") and err.endswith("; choose a file that can be written\n")
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("command", ["build", "release", "test"])
def test_an_html_report_that_cannot_be_written_is_refused_before_anything_runs(
    capsys: pytest.CaptureFixture[str], good: Path, command: str
) -> None:
    """--html on a path that cannot be written: exit 2 naming it, before any engine or registry is asked."""
    where = "/proc/buildflow-report.html"
    code, out, err = run(capsys, command, "-f", str(good), "--registry", "localhost:9/none", "--html", where)
    assert code == 2 and out == ""
    assert err.startswith(f"--html {where}: cannot be written")
    assert err.endswith("; choose a file that can be written\n") and len(err.splitlines()) == 1


def test_a_report_that_is_a_directory_is_refused(capsys: pytest.CaptureFixture[str], good: Path) -> None:
    code, _, err = run(capsys, "build", "-f", str(good), "--report", str(good.parent))
    assert code == 2 and "is a directory" in err


def test_a_report_in_a_new_directory_is_accepted_and_nothing_is_left_behind(tmp_path: Path) -> None:
    from buildflow.cli.options import unwritable

    report = tmp_path / "new" / "dir" / "report.json"
    assert unwritable(report) == "" and not report.exists() and report.parent.is_dir()


@pytest.mark.parametrize("value", ["é", "ß", "x²"])
def test_a_tag_that_is_not_ascii_after_variables_is_refused_by_validate(
    capsys: pytest.CaptureFixture[str], good: Path, value: str
) -> None:
    text = good.read_text().replace('tags: ["base:1"]', 'tags: ["base:{release}"]')
    good.write_text("vars: {release: '1'}\n" + text)
    code, _, err = run(capsys, "validate", "-f", str(good), "--var", f"release={value}")
    assert code == 2
    assert f"targets.base.tags[0]: 'localhost:5000/demo/base:{value}'" in err or f"'base:{value}'" in err
    assert "all ASCII" in err and len(err.splitlines()) == 1


def test_validate_warns_of_from_lines_it_cannot_resolve(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, "version: 1\ntargets:\n  a: {}\n", {"Dockerfile": "ARG IMAGE\nFROM $IMAGE\n"})
    code, out, err = run(capsys, "validate", "-f", str(path))
    assert code == 0 and out.endswith(
        "valid: 1 image of 1 target in 1 generation, 0 edges (0 inferred from Dockerfiles)\n"
    )
    assert "dockerfile.unresolved" in err and "Dockerfile:2: FROM $IMAGE: ARG IMAGE has no default" in err
    code, out, _ = run(capsys, "plan", "--offline", "--format", "json", "-f", str(path))
    assert json.loads(out)["warnings"] == [
        f"{tmp_path / 'Dockerfile'}:2: " + err.split("Dockerfile:2: ", 1)[1].split('"')[0]
    ]
