"""Choosing the builders of a run (run/builders.py), `build --builder` and `buildflow builders`: with fake docker
answers taken from this machine (tests/unit/test_builders.py)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from buildflow.engine.builders import BuilderInfo, describe
from buildflow.errors import EXIT_INVALID, EXIT_TARGET_FAILED, EngineUnavailable, UsageError
from buildflow.model import BuilderSpec
from buildflow.run.builders import Builder, builder_specs, select_builders
from buildflow.run.outcome import RunOptions
from tests.conftest import REPO, dockerfiles, load, write_pipeline
from tests.unit.test_builders import DOWN, FakeDocker
from tests.unit.test_cli import FILES, GOOD, run

HERE = ["bf-down", "buildflow-2", "buildflow-classic", "default", "bf-container"]
WITH_BUILDERS = """\
    version: 1
    builders:
      - {name: buildflow-2, jobs: 2}
      - {name: buildflow-classic, platforms: [linux/amd64]}
    targets:
      base: {}
    """


def fake_describe(name: str) -> BuilderInfo:
    """describe() over the machine's recorded answers."""
    return describe(name, FakeDocker())


def never(*arguments: object) -> list[str]:
    """An available() that must not be asked."""
    raise AssertionError("available() was asked")


def test_the_command_line_names_win_each_with_jobs(tmp_path: Path) -> None:
    """--builder names, in their order, each running --jobs builds; the file's builders: are not used."""
    pipeline = load(tmp_path, WITH_BUILDERS, dockerfiles("."))
    chosen = select_builders(pipeline, ["buildflow-classic", "default"], 3, fake_describe, lambda: HERE)
    assert [builder.spec for builder in chosen] == [BuilderSpec("buildflow-classic", 3), BuilderSpec("default", 3)]
    assert [builder.info.image_store for builder in chosen] == ["classic", "containerd"]


def test_the_files_builders_take_jobs_from_the_command_line_when_they_give_none(tmp_path: Path) -> None:
    """builders: in the file; a builder without jobs runs --jobs builds; platforms are kept."""
    pipeline = load(tmp_path, WITH_BUILDERS, dockerfiles("."))
    chosen = select_builders(pipeline, [], 5, fake_describe, lambda: HERE)
    assert [builder.spec for builder in chosen] == [
        BuilderSpec("buildflow-2", 2),
        BuilderSpec("buildflow-classic", 5, ("linux/amd64",)),
    ]
    assert all(isinstance(builder, Builder) and builder.info.answers for builder in chosen)


def test_without_names_the_current_builder(tmp_path: Path) -> None:
    """No --builder, no builders:: the current builder, and nothing is listed."""
    pipeline = load(tmp_path, "version: 1\ntargets: {base: {}}\n", dockerfiles("."))
    [chosen] = select_builders(pipeline, [], 4, fake_describe, never)
    assert chosen.spec == BuilderSpec("", 4) and chosen.info.resolved == "default"
    assert builder_specs(None, [], 4) == [BuilderSpec("", 4)]


def test_an_unknown_name_lists_the_builders_here() -> None:
    """Exit 2, the builders that are here, and the closest one."""
    with pytest.raises(UsageError) as caught:
        select_builders(None, ["buildflow-4", "default"], 4, fake_describe, lambda: HERE)
    assert caught.value.exit_code == EXIT_INVALID
    assert str(caught.value) == (
        "unknown builder 'buildflow-4'; the builders here are: bf-down, buildflow-2, buildflow-classic, default, "
        "bf-container — did you mean 'buildflow-2'?"
    )
    with pytest.raises(UsageError, match=r"^unknown builder 'x'; the builders here are: default$"):
        select_builders(None, ["x"], 4, fake_describe, lambda: ["default"])


def test_a_builder_named_twice_on_the_command_line() -> None:
    """Exit 2 before anything is described."""
    with pytest.raises(UsageError) as caught:
        select_builders(None, ["buildflow-2", "default", "buildflow-2"], 4, never, never)  # type: ignore[arg-type]
    assert caught.value.exit_code == EXIT_INVALID
    assert str(caught.value) == "--builder buildflow-2 is given twice; name each builder once"


@pytest.mark.parametrize(
    ("name", "reason", "start"),
    [
        ("bf-down", DOWN, "scripts/engine.sh up --engines N for buildflow-N"),
        ("bf-container", "inactive; buildflow starts no builder", "scripts/engine.sh up --engines N for buildflow-N"),
    ],
)
def test_a_builder_that_does_not_answer(name: str, reason: str, start: str) -> None:
    """Exit 1, why, and what to do."""
    with pytest.raises(EngineUnavailable) as caught:
        select_builders(None, ["default", name], 4, fake_describe, lambda: HERE)
    assert caught.value.exit_code == EXIT_TARGET_FAILED
    assert str(caught.value) == (
        f"builder {name} does not answer ({reason}): start it ({start}) or check docker buildx inspect {name}"
    )


def test_an_engine_of_this_machine_says_how_to_start_it() -> None:
    """buildflow-N and buildflow-classic are started by scripts/engine.sh; the message says how."""
    down = {
        name: BuilderInfo(name, context=name, answers=False, error="down")
        for name in ("buildflow-3", "buildflow-classic")
    }
    for name, start in (("buildflow-3", "--engines 3"), ("buildflow-classic", "--classic")):
        with pytest.raises(EngineUnavailable, match=rf"start it \(scripts/engine.sh up {start}\) or check"):
            select_builders(None, [name], 4, down.__getitem__, lambda: list(down))


# ---- the command line ------------------------------------------------------------------------------------------


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch) -> FakeDocker:
    """Every docker command answered from the machine's recorded outputs."""
    docker = FakeDocker()

    def output(self: object, arguments: Sequence[str], *, missing_ok: bool = False) -> str:
        return docker(getattr(self, "context", ""), arguments)

    monkeypatch.setattr("buildflow.engine.docker.Docker.output", output)
    return docker


def test_builders_all_needs_no_pipeline_file(
    capsys: pytest.CaptureFixture[str], machine: FakeDocker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every context and builder here, one row each; exit 1 because two do not answer, named on stderr."""
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "builders", "--all")
    lines = out.splitlines()
    assert code == EXIT_TARGET_FAILED
    assert lines[0].split() == ["NAME", "DRIVER", "ENGINE", "BUILDKIT", "STORE", "PLATFORMS", "CAN", "STATUS"]
    rows = {line.split()[0]: line for line in lines[1:6]}
    assert list(rows) == HERE
    assert rows["buildflow-classic"].split("  ")[0] == "buildflow-classic"
    assert "classic" in rows["buildflow-classic"] and "linux/386" in rows["buildflow-classic"]
    assert rows["buildflow-classic"].split()[-7:] == ["push", "from", "BuildKit,", "local", "image", "hand-off", "ok"]
    assert rows["bf-down"].endswith(f"does not answer: {DOWN}")
    assert rows["bf-container"].endswith("does not answer: inactive; buildflow starts no builder")
    assert err.startswith("2 of 5 builders do not answer: bf-down, bf-container; start them")
    assert len(err.splitlines()) == 1
    code, out, err = run(capsys, "builders", "--all", "--builder", "default")
    assert code == EXIT_INVALID and out == "" and err.startswith("--all shows every builder here; leave out --builder")


def test_builders_without_all_needs_the_pipeline_file(
    capsys: pytest.CaptureFixture[str], machine: FakeDocker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pipeline's builders are the default: no ./buildflow.yaml is exit 2, as for every pipeline command."""
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "builders")
    assert code == EXIT_INVALID and out == "" and "buildflow.yaml: no such file" in err


def test_builders_of_the_pipeline_as_json(
    capsys: pytest.CaptureFixture[str], machine: FakeDocker, tmp_path: Path
) -> None:
    """The file's builders: with their jobs (null: --jobs), platforms and capabilities."""
    path = write_pipeline(tmp_path, WITH_BUILDERS, dockerfiles("."))
    code, out, err = run(capsys, "builders", "-f", str(path), "--format", "json")
    assert code == 0 and err == ""
    found = json.loads(out)
    assert [(b["name"], b["jobs"], b["image_store"], b["status"]) for b in found] == [
        ("buildflow-2", 2, "containerd", "ok"),
        ("buildflow-classic", None, "classic", "ok"),
    ]
    assert found[1]["declared_platforms"] == ["linux/amd64"] and "registry cache" not in found[1]["capabilities"]


def test_builders_of_a_pipeline_without_builders_is_the_current_one(
    capsys: pytest.CaptureFixture[str], machine: FakeDocker, tmp_path: Path
) -> None:
    """No builders: in the file: the current builder, shown under its own name."""
    path = write_pipeline(tmp_path, GOOD, FILES)
    code, out, _ = run(capsys, "builders", "-f", str(path))
    assert code == 0 and out.splitlines()[1].startswith("default (current)  docker  26.1.5+dfsg1")


def test_builders_with_an_unknown_name(capsys: pytest.CaptureFixture[str], machine: FakeDocker) -> None:
    """--builder names need no pipeline file; an unknown one is exit 2 with the list."""
    code, out, err = run(capsys, "builders", "--builder", "buildflow-22")
    assert code == EXIT_INVALID and out == ""
    assert err.startswith("unknown builder 'buildflow-22'; the builders here are: bf-down, buildflow-2,")


def test_build_refuses_bad_builders_before_anything_builds(
    capsys: pytest.CaptureFixture[str], machine: FakeDocker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unknown or repeated names exit 2, a builder that does not answer exits 1, and nothing is run."""
    monkeypatch.setattr("buildflow.run.session.run_build", never)
    path = str(write_pipeline(tmp_path, GOOD, FILES))
    common = ("build", "-f", path, "--no-follow-bases")
    code, _, err = run(capsys, *common, "--builder", "nosuch")
    assert code == EXIT_INVALID and err.startswith("unknown builder 'nosuch'; the builders here are:")
    code, _, err = run(capsys, *common, "--builder", "default", "--builder", "default")
    assert code == EXIT_INVALID and err == "--builder default is given twice; name each builder once\n"
    code, _, err = run(capsys, *common, "--builder", "default", "--builder", "bf-down")
    assert code == EXIT_TARGET_FAILED and err.startswith(f"builder bf-down does not answer ({DOWN}): start it")


def test_build_passes_the_chosen_builders_on(
    capsys: pytest.CaptureFixture[str], machine: FakeDocker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The names reach RunOptions.builders: the file's, or --builder's; none named: () and docker is not asked."""
    seen: list[tuple[str, ...]] = []

    def run_build(plan: object, engine: object, options: RunOptions, **rest: object) -> None:
        seen.append(options.builders)
        raise UsageError("stopped by the test")

    monkeypatch.setattr("buildflow.run.session.run_build", run_build)
    with_builders = write_pipeline(tmp_path / "a", WITH_BUILDERS, dockerfiles("."))
    without = write_pipeline(tmp_path / "b", GOOD, FILES)
    for path, flags in ((with_builders, ()), (with_builders, ("--builder", "default"))):
        assert run(capsys, "build", "-f", str(path), "--no-follow-bases", *flags)[0] == EXIT_INVALID
    asked = len(machine.asked)
    assert run(capsys, "build", "-f", str(without), "--no-follow-bases")[0] == EXIT_INVALID
    assert seen == [("buildflow-2", "buildflow-classic"), ("default",), ()]
    assert len(machine.asked) == asked  # the current builder is checked before its first build only


def test_the_builder_flag_teaches(capsys: pytest.CaptureFixture[str]) -> None:
    """build --help and builders --help say what a builder is and what the default is, with examples."""
    code, out, _ = run(capsys, "build", "--help")
    assert code == 0 and "--builder NAME" in out and "repeat to spread the run over several" in " ".join(out.split())
    code, out, _ = run(capsys, "builders", "--help")
    assert code == 0 and "buildflow builders --all" in out and "docs/builders.md" in out
    code, out, _ = run(capsys, "--help")
    assert "buildflow builders --all" in out


def test_the_documents_name_the_command() -> None:
    """README's table of commands and docs/builders.md."""
    assert "| `buildflow builders" in (REPO / "README.md").read_text()
    text = (REPO / "docs" / "builders.md").read_text()
    assert "## The pool" in text and "--builder" in text and "builders:" in text
