"""CI steps on the fake engine: one job per image (build --only … --no-release), then one `release` job."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from buildflow.cli import main
from buildflow.errors import EXIT_INVALID, EXIT_LOCKED, EXIT_OK, EXIT_TARGET_FAILED, UsageError
from buildflow.model import Pipeline
from buildflow.output.report import report_document, summary_table
from buildflow.pipeline.loader import load_pipeline
from buildflow.plan.planner import make_plan, only_plan
from buildflow.run.dispatch import Scheduler
from buildflow.run.naming import content_reference, last_record_reference, record_reference
from buildflow.run.outcome import RunOptions, RunResult, Status
from buildflow.run.records import decode, encode
from buildflow.run.releasing import Releaser
from buildflow.run.session import run_lock
from tests.conftest import dockerfiles, load, write_pipeline
from tests.fakes import FAST
from tests.unit.test_release import OLD, Tags

CI = """\
    version: 1
    registry: localhost:5000/t
    targets:
      root: {tags: ["root:1"], test: ["root-check"]}
      lib: {from: root, matrix: {tf: ["1.8.0", "1.15.5"]}, args: {TF: "{tf}"}, tags: ["lib:{tf}"]}
      app: {from: lib, tags: ["app:{tf}", "app:{tf}-latest"]}
      side: {tags: ["side:1"]}
    """
JOBS = [["root", "side"], ["lib[tf=1.8.0]"], ["lib[tf=1.15.5]"], ["app"]]  # the DAG's order, one job each
LIB = "lib[tf=1.8.0]"
APP = "app[tf=1.15.5]"


def pipeline_of(tmp_path: Path) -> Pipeline:
    return load(tmp_path, CI, dockerfiles("."))


def job(pipeline: Pipeline, engine: Tags, names: Sequence[str], **options: object) -> RunResult:
    """One CI job: build --only NAMES --no-release."""
    run_options = RunOptions(retry=FAST, only=True, release=False, **options)  # type: ignore[arg-type]
    return Scheduler(only_plan(pipeline, names), engine, run_options).run()


def all_jobs(pipeline: Pipeline, engine: Tags) -> dict[str, str]:
    """Every build job in DAG order; the digest of each image."""
    digests: dict[str, str] = {}
    for names in JOBS:
        result = job(pipeline, engine, names)
        assert result.ok, {o.target.id: o.error for o in result.outcomes.values()}
        digests |= {target_id: outcome.digest for target_id, outcome in result.outcomes.items()}
    return digests


def release_of(pipeline: Pipeline, engine: Tags, names: Sequence[str] = ()) -> RunResult:
    return Releaser(make_plan(pipeline, names), engine, FAST).run()


def tagged(engine: Tags, pipeline: Pipeline) -> dict[str, str | None]:
    """Every release tag of the pipeline and the digest the registry holds for it."""
    tags = [tag for target in pipeline.targets.values() for tag in target.tags]
    return {tag: engine.registry.get(tag) for tag in tags}


# ---- build --only -------------------------------------------------------------------------------------------


def test_only_plans_exactly_the_named_images_in_dag_order(tmp_path: Path) -> None:
    pipeline = pipeline_of(tmp_path)
    assert [step.target.id for step in only_plan(pipeline, ["app", LIB]).steps] == [LIB, "app[tf=1.8.0]", APP]
    with pytest.raises(UsageError, match="unknown target 'ap'"):
        only_plan(pipeline, ["ap"])


def test_each_job_builds_exactly_its_images_on_parents_pinned_from_the_registry(tmp_path: Path) -> None:
    pipeline, engine = pipeline_of(tmp_path), Tags()
    digests: dict[str, str] = {}
    for names in JOBS:
        engine.log.clear()
        result = job(pipeline, engine, names)
        assert sorted(target for event, target in engine.log if event == "start") == sorted(result.outcomes)
        assert {outcome.status for outcome in result.outcomes.values()} == {Status.BUILT}
        digests |= {target_id: outcome.digest for target_id, outcome in result.outcomes.items()}
    for child, parent in [(LIB, "root"), ("app[tf=1.8.0]", LIB), (APP, "lib[tf=1.15.5]")]:
        repository = content_reference(pipeline.targets[parent], pipeline.registry).rpartition(":")[0]
        pinned = f"{repository}@{digests[parent]}"
        assert engine.requests[child].args["BASE_IMAGE"] == pinned
        assert engine.requests[child].build_contexts["lib" if "app" in child else "root"] == f"docker-image://{pinned}"
    assert engine.moves == []  # --no-release: no release tag moved, in any job


def test_a_job_whose_parent_is_not_built_fails_naming_the_parent_and_its_job(tmp_path: Path) -> None:
    pipeline, engine = pipeline_of(tmp_path), Tags()
    job(pipeline, engine, ["root"])
    result = job(pipeline, engine, ["app"], keep_going=True)
    reference = content_reference(pipeline.targets[LIB], pipeline.registry)
    assert result.outcomes["app[tf=1.8.0]"].status == Status.FAILED
    assert result.outcomes["app[tf=1.8.0]"].error == (
        f"parent {LIB} is not built ({reference} is not in the registry): build it first: "
        f"buildflow build --only '{LIB}'"
    )
    assert not any(target.startswith("app") for _, target in engine.log if _ == "start")
    assert not result.ok


def test_an_image_already_built_is_reused_by_its_job(tmp_path: Path) -> None:
    pipeline, engine = pipeline_of(tmp_path), Tags()
    all_jobs(pipeline, engine)
    again = job(pipeline, engine, [LIB])
    assert again.outcomes[LIB].status == Status.REUSED and again.ok


# ---- --no-release -------------------------------------------------------------------------------------------


def test_no_release_builds_pushes_and_records_but_moves_no_tag(tmp_path: Path) -> None:
    pipeline, engine = pipeline_of(tmp_path), Tags()
    result = Scheduler(make_plan(pipeline), engine, RunOptions(retry=FAST, release=False)).run()
    assert result.ok and not result.released and result.release_error == ""
    assert result.release_skipped == "release skipped (--no-release)"
    assert engine.moves == [] and set(tagged(engine, pipeline).values()) == {None}
    for target in pipeline.targets.values():
        assert decode(engine.records[record_reference(target, pipeline.registry)]) is not None
    document = report_document(make_plan(pipeline), result)
    assert document["status"] == "succeeded" and document["released"] is False and document["release_error"] == ""
    assert document["release_skipped"] == "release skipped (--no-release)"
    assert "Release tags not applied: release skipped (--no-release); buildflow release moves them." in summary_table(
        result
    )


# ---- release ------------------------------------------------------------------------------------------------


def test_release_with_every_image_ready_moves_every_tag_to_its_digest(tmp_path: Path) -> None:
    pipeline, engine = pipeline_of(tmp_path), Tags()
    digests = all_jobs(pipeline, engine)
    calls = len(engine.log)
    result = release_of(pipeline, engine)
    assert result.ok and result.released
    assert {outcome.status for outcome in result.outcomes.values()} == {Status.REUSED}
    for target_id, target in pipeline.targets.items():
        assert all(engine.registry[tag] == digests[target_id] for tag in target.tags), target_id
        assert result.outcomes[target_id].released == target.tags
    assert len(engine.log) == calls  # nothing built, nothing tested


def test_release_names_select_their_ancestors_and_move_only_their_tags(tmp_path: Path) -> None:
    pipeline, engine = pipeline_of(tmp_path), Tags()
    all_jobs(pipeline, engine)
    result = release_of(pipeline, engine, [APP])
    assert list(result.outcomes) == ["root", "lib[tf=1.15.5]", APP] and result.released
    assert {tag for tag, _ in engine.moves} == {
        f"localhost:5000/t/{tag}" for tag in ("root:1", "lib:1.15.5", "app:1.15.5", "app:1.15.5-latest")
    }


def test_release_with_images_not_ready_lists_each_problem_and_moves_nothing(tmp_path: Path) -> None:
    pipeline, engine = pipeline_of(tmp_path), Tags()
    all_jobs(pipeline, engine)
    del engine.registry[content_reference(pipeline.targets[APP], pipeline.registry)]
    where = record_reference(pipeline.targets[LIB], pipeline.registry)
    record = decode(engine.records[where])
    assert record is not None and record.tests
    engine.records[where] = encode(record.with_tests("0" * 24))  # tests other than the current ones passed
    result = release_of(pipeline, engine)
    assert not result.released and not result.ok and engine.moves == []
    problems = {o.target.id: o.error for o in result.outcomes.values() if o.status == Status.FAILED}
    reference = content_reference(pipeline.targets[APP], pipeline.registry)
    assert problems == {
        LIB: "its tests have not passed on this image (its build record has no pass of its current tests): "
        f"run buildflow build --only '{LIB}' to test it",
        APP: f"not built for its current inputs (no {reference} in the registry): run buildflow build --only '{APP}'",
    }
    assert result.outcomes["root"].status == Status.REUSED


def test_the_job_a_problem_names_makes_the_release_go_through(tmp_path: Path) -> None:
    pipeline, engine = pipeline_of(tmp_path), Tags()
    all_jobs(pipeline, engine)
    where = record_reference(pipeline.targets[LIB], pipeline.registry)
    record = decode(engine.records[where])
    assert record is not None
    for reference in (where, last_record_reference(pipeline.targets[LIB], pipeline.registry)):
        engine.records[reference] = encode(record.with_tests("0" * 24))  # as a build whose tests differed left them
    assert not release_of(pipeline, engine).released
    again = job(pipeline, engine, [LIB])  # reused, tested again, the pass recorded
    assert again.outcomes[LIB].status == Status.REUSED and again.outcomes[LIB].tests
    assert release_of(pipeline, engine).released


def test_release_refuses_records_of_another_image_and_children_of_an_older_parent(tmp_path: Path) -> None:
    pipeline, engine = pipeline_of(tmp_path), Tags()
    all_jobs(pipeline, engine)
    other = "sha256:" + "1" * 64
    for target_id, change in ((LIB, {"digest": other}), (APP, {"parent_digests": {"lib[tf=1.15.5]": other}})):
        where = record_reference(pipeline.targets[target_id], pipeline.registry)
        engine.records[where] = json.dumps({**json.loads(engine.records[where]), **change}).encode()
    result = release_of(pipeline, engine)
    assert engine.moves == [] and not result.released
    assert result.outcomes[LIB].error.startswith("not recorded for the image in the registry (its build record is of ")
    assert result.outcomes[APP].error.startswith(
        "built on an older image of its parent (built on lib[tf=1.15.5]@sha256:111111111111, which now is "
    )
    assert result.outcomes[APP].error.endswith(f"): run buildflow build --only '{APP}'")


# ---- the command line ---------------------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(argv))
    captured = capsys.readouterr()
    return int(done.value.code or 0), captured.out, captured.err


@pytest.fixture
def cli_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Tags:
    """The fake registry behind `build` and `release`; lock and caches in the test's directory."""
    engine = Tags()
    monkeypatch.setattr("buildflow.cli.build.buildx", lambda *args, **kwargs: engine)
    monkeypatch.setattr("buildflow.cli.release.buildx", lambda *args, **kwargs: engine)
    monkeypatch.setenv("BUILDFLOW_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    return engine


def build(capsys: pytest.CaptureFixture[str], path: Path, *argv: str) -> tuple[int, str, str]:
    return run(capsys, "build", "-f", str(path), "--lint", "off", "--progress", "plain", "--no-follow-bases", *argv)


def test_only_takes_no_other_selection(capsys: pytest.CaptureFixture[str], tmp_path: Path, cli_engine: Tags) -> None:
    path = write_pipeline(tmp_path / "p", CI, dockerfiles("."))  # reports outside the build context
    others = (("app", "TARGET arguments"), ("--downstream=lib", "--downstream"), ("--since=HEAD", "--since"))
    for other, named in others:
        code, out, err = build(capsys, path, "--only", "root", other)
        assert code == EXIT_INVALID and out == "" and cli_engine.requests == {}
        assert err == f"--only cannot be combined with {named}: it names exactly the images to build\n"


def test_cli_jobs_then_release(capsys: pytest.CaptureFixture[str], tmp_path: Path, cli_engine: Tags) -> None:
    path = write_pipeline(tmp_path / "p", CI, dockerfiles("."))  # reports outside the build context
    report = tmp_path / "out" / "job.json"
    for names in JOBS:
        only = [f"--only={name}" for name in names]
        code, _, err = build(capsys, path, *only, "--no-release", "--report", str(report))
        assert code == EXIT_OK, err
        document = json.loads(report.read_text())
        assert document["released"] is False and document["release_skipped"] == "release skipped (--no-release)"
        assert sorted(target["id"] for target in document["targets"]) == sorted(only_plan_ids(path, names))
    assert cli_engine.moves == []
    code, _, err = run(capsys, "release", "-f", str(path), "--report", str(tmp_path / "release.json"))
    assert code == EXIT_OK, err
    document = json.loads((tmp_path / "release.json").read_text())
    assert document["released"] is True and {t["status"] for t in document["targets"]} == {"REUSED"}
    assert all(cli_engine.registry[tag] == t["digest"] for t in document["targets"] for tag in t["tags"])
    assert len(cli_engine.moves) == 8  # root, side, two lib and four app tags


def only_plan_ids(path: Path, names: Sequence[str]) -> list[str]:
    return [step.target.id for step in only_plan(load_pipeline(path), names).steps]


def test_cli_job_with_a_missing_parent_exits_1_naming_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, cli_engine: Tags
) -> None:
    path = write_pipeline(tmp_path / "p", CI, dockerfiles("."))  # reports outside the build context
    code, out, err = build(capsys, path, "--only", "lib[tf=1.8.0]", "--no-release")
    assert code == EXIT_TARGET_FAILED
    line = err.splitlines()[-1]
    first = f"buildflow: 1 of 1 targets not built: {LIB}: parent root is not built (localhost:5000/t/root:bf-"
    assert line.startswith(first)
    assert line.endswith(" is not in the registry): build it first: buildflow build --only root")
    assert "build it first: buildflow build --only root" in out  # the summary table says it too


def test_cli_release_with_images_missing_exits_1_one_line_each(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, cli_engine: Tags
) -> None:
    path = write_pipeline(tmp_path / "p", CI, dockerfiles("."))  # reports outside the build context
    assert build(capsys, path, "--only", "root", "--only", "side", "--no-release")[0] == EXIT_OK
    code, out, err = run(capsys, "release", "-f", str(path), "app", "--junit", str(tmp_path / "r.xml"))
    assert code == EXIT_TARGET_FAILED and cli_engine.moves == []
    lines = err.splitlines()[-4:]
    assert [line.split(":", 1)[0] for line in lines] == [LIB, "lib[tf=1.15.5]", "app[tf=1.8.0]", APP]
    reference = content_reference(load_pipeline(path).targets[LIB], "localhost:5000/t")
    assert lines[0] == f"{LIB}: not built for its current inputs (no {reference} in the registry): " + (
        f"run buildflow build --only '{LIB}'"
    )
    assert "Release tags not applied" in out and 'failures="4"' in (tmp_path / "r.xml").read_text()


def test_cli_release_refuses_an_unwritable_report_before_anything(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, cli_engine: Tags
) -> None:
    path = write_pipeline(tmp_path / "p", CI, dockerfiles("."))  # reports outside the build context
    code, _, err = run(capsys, "release", "-f", str(path), "--report", "/proc/r.json")
    assert code == EXIT_INVALID and err.startswith("--report /proc/r.json: cannot be written")
    assert cli_engine.log == [] and cli_engine.moves == []


def test_a_signal_during_the_release_puts_every_moved_tag_back(tmp_path: Path) -> None:
    pipeline = pipeline_of(tmp_path)

    class Interrupted(Tags):
        """Its first tag copy lands, then SIGTERM comes."""

        def tag(self, source: str, references: Sequence[str]) -> None:
            super().tag(source, references)
            if releaser is not None and not releaser.interrupted:
                releaser.interrupt("SIGTERM")

    engine = Interrupted()
    releaser: Releaser | None = None
    all_jobs(pipeline, engine)
    old = {tag: OLD for target in pipeline.targets.values() for tag in target.tags}
    engine.registry.update(old)
    releaser = Releaser(make_plan(pipeline), engine, FAST)
    result = releaser.run()
    assert not result.released and "every tag is as it was before the release" in result.release_error
    assert tagged(engine, pipeline) == old


def test_a_signal_before_the_checks_releases_nothing(tmp_path: Path) -> None:
    pipeline, engine = pipeline_of(tmp_path), Tags()
    all_jobs(pipeline, engine)
    releaser = Releaser(make_plan(pipeline), engine, FAST)
    releaser.interrupt("SIGINT")
    result = releaser.run()
    assert engine.moves == [] and not result.released
    assert {outcome.status for outcome in result.outcomes.values()} == {Status.INTERRUPTED}
    assert result.outcomes["root"].error == "not released: interrupted (SIGINT)"


def test_cli_release_takes_turns_with_builds_of_the_pipeline(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, cli_engine: Tags
) -> None:
    path = write_pipeline(tmp_path / "p", CI, dockerfiles("."))
    with run_lock(make_plan(load_pipeline(path)), wait=False):
        code, _, err = run(capsys, "release", "-f", str(path), "--no-wait")
    assert code == EXIT_LOCKED and "another buildflow run holds the lock of " in err
    assert cli_engine.log == [] and cli_engine.moves == []
