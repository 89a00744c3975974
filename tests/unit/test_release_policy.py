"""The release policy: all (every tag or none) or per-target (each image whose ancestry was built), in the run,
the reports and the file."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from buildflow.output.ci_reports import summary_markdown, write_junit
from buildflow.output.report import report_document, summary_table
from buildflow.plan.planner import make_plan
from buildflow.run.dispatch import Scheduler
from buildflow.run.outcome import RunOptions, RunResult, TagState
from buildflow.run.release_policy import release_by_policy
from tests.conftest import dockerfiles, load, problems
from tests.fakes import FAST
from tests.unit.test_release import Tags
from tests.unit.test_scheduler import TREE


def run(tmp_path: Path, engine: Tags, policy: str) -> tuple[RunResult, object]:
    """Build the tree with --keep-going under a release policy (written in the file)."""
    text = TREE.replace("registry: localhost:5000/t\n", f"registry: localhost:5000/t\n    release: {policy}\n")
    pipeline = load(tmp_path, text, dockerfiles("."))
    plan = make_plan(pipeline)
    return Scheduler(plan, engine, RunOptions(retry=FAST, keep_going=True)).run(), plan


def moved(result: RunResult) -> set[str]:
    """The release tags that moved, without the registry."""
    return {move.tag.removeprefix("localhost:5000/t/") for move in result.tags if move.state == TagState.MOVED}


def test_per_target_moves_the_tags_of_every_image_whose_ancestry_was_built(tmp_path: Path) -> None:
    engine = Tags()
    engine.fail = {"cuda"}
    result, _ = run(tmp_path, engine, "per-target")
    assert moved(result) == {"base:1", "cpu:1", "other:1"}
    assert not any(tag.startswith(("localhost:5000/t/cuda", "localhost:5000/t/app")) for tag in engine.registry)
    assert result.released and not result.ok
    assert result.held["cuda"].startswith("failed: ")
    assert result.held["app"].startswith("blocked")
    assert result.outcomes["cpu"].released == ("localhost:5000/t/cpu:1",)
    assert result.outcomes["app"].released == ()


def test_all_moves_nothing_when_one_target_failed_and_says_why_each_was_held(tmp_path: Path) -> None:
    engine = Tags()
    engine.fail = {"cuda"}
    result, _ = run(tmp_path, engine, "all")
    assert result.tags == [] and not result.released
    assert not [tag for tag in engine.registry if tag.endswith(":1")]
    assert result.held["base"].startswith("release: all, and 2 of 5 targets were not built")
    assert set(result.held) == {"base", "cuda", "cpu", "app", "other"}


def test_per_target_with_nothing_failed_releases_everything_and_holds_nothing(tmp_path: Path) -> None:
    result, _ = run(tmp_path, Tags(), "per-target")
    assert result.ok and result.held == {}
    assert moved(result) == {"base:1", "cuda:1", "cpu:1", "app:1", "app:latest", "other:1"}


def test_a_per_target_release_that_fails_puts_back_its_whole_set(tmp_path: Path) -> None:
    engine = Tags(refuse=["localhost:5000/t/other:1"], deletes=True)
    engine.fail = {"cuda"}
    result, _ = run(tmp_path, engine, "per-target")
    assert result.release_error and not result.released
    states = {move.state for move in result.tags}
    assert TagState.MOVED not in states and TagState.LEFT not in states
    assert all(engine.registry.get(move.tag) == move.before for move in result.tags)  # every tag as it was


def test_the_reports_say_what_was_released_and_what_was_held_back(tmp_path: Path) -> None:
    engine = Tags()
    engine.fail = {"cuda"}
    result, plan = run(tmp_path, engine, "per-target")
    document = report_document(plan, result)  # type: ignore[arg-type]
    assert document["release_policy"] == "per-target"
    held = {entry["target"]: entry["reason"] for entry in document["held_back"]}
    assert set(held) == {"cuda", "app"} and "cuda" in held["app"]
    targets = {entry["id"]: entry for entry in document["targets"]}
    assert targets["cpu"]["tags"] == ["localhost:5000/t/cpu:1"] and targets["cpu"]["held_back"] is None
    assert targets["app"]["held_back"] == held["app"]
    json.dumps(document)
    table = summary_table(result)
    assert "Release tags applied to 3 targets (release: per-target); 2 held back." in table
    assert f"  app: {held['app']}" in table
    markdown = summary_markdown(plan, result)  # type: ignore[arg-type]
    assert "**Held back (release: per-target)" in markdown and f"- app: {held['app']}" in markdown
    assert "buildflow: failed" in markdown
    write_junit(tmp_path / "junit.xml", plan, result)  # type: ignore[arg-type]
    assert (
        "release tags held back" not in (tmp_path / "junit.xml").read_text()
    )  # app and cuda did not succeed: their failure says it all


def test_the_junit_of_a_held_back_image_that_was_built_says_why(tmp_path: Path) -> None:
    engine = Tags()
    engine.fail = {"cuda"}
    result, plan = run(tmp_path, engine, "all")
    write_junit(tmp_path / "junit.xml", plan, result)  # type: ignore[arg-type]
    xml = (tmp_path / "junit.xml").read_text()
    assert "release tags held back: release: all, and 2 of 5 targets were not built" in xml


def test_an_unknown_release_value_names_the_field(tmp_path: Path) -> None:
    text = textwrap.dedent(TREE).replace("registry: localhost:5000/t\n", "registry: localhost:5000/t\nrelease: some\n")
    found = problems(tmp_path, text, dockerfiles("."))
    assert len(found) == 1 and "release: 'some' is not one of all, per-target" in found[0]


def test_after_a_signal_per_target_moves_nothing_and_still_says_what_was_held(tmp_path: Path) -> None:
    engine = Tags()
    engine.fail = {"cuda"}
    pipeline = load(tmp_path, TREE, dockerfiles("."))
    result = Scheduler(make_plan(pipeline), engine, RunOptions(retry=FAST, keep_going=True, release=False)).run()
    assert result.tags == [] and result.release_skipped
    release_by_policy(
        result.outcomes, "per-target", (engine, engine), lambda *a, **k: None, result, interrupted="SIGTERM"
    )
    assert result.tags == [] and not result.released and engine.moves == []
    assert set(result.held) == {"base", "cuda", "cpu", "app", "other"} and result.policy == "per-target"
    assert result.held["cpu"] == "interrupted (SIGTERM) before the release"
