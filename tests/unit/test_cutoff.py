"""Early cutoff: a parent rebuilt to the same digest leaves its children reused, predicted by status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from buildflow.plan.planner import make_plan
from buildflow.run.cutoff import own_inputs, predicted
from buildflow.run.dispatch import Scheduler
from buildflow.run.freshness import plan_states
from buildflow.run.naming import record_reference
from buildflow.run.outcome import RunOptions, Status
from buildflow.run.records import BuildRecord
from tests.conftest import load
from tests.fakes import FakeEngine

PIPELINE = """\
    version: 1
    registry: localhost:5000/t
    targets:
      root: {context: root}
      app: {context: app, from: root}
      leaf: {context: leaf, from: app}
    """
FILES = {
    "root/Dockerfile": "FROM scratch\nCOPY x /x\n",
    "root/x": "x",
    "app/Dockerfile": "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n",
    "leaf/Dockerfile": "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n",
}
A, B = "sha256:" + "a" * 64, "sha256:" + "b" * 64


def built_once(tmp_path: Path) -> FakeEngine:
    """The pipeline built into a fake registry (the fake builds each target to a digest of its id)."""
    engine = FakeEngine()
    result = Scheduler(make_plan(load(tmp_path, PIPELINE, FILES)), engine, RunOptions()).run()
    assert {outcome.status for outcome in result.outcomes.values()} == {Status.BUILT}
    return engine


def test_a_parent_rebuilt_to_the_same_digest_leaves_its_descendants_reused(tmp_path: Path) -> None:
    engine = built_once(tmp_path)
    (tmp_path / "root" / "Dockerfile").write_text("# a comment\nFROM scratch\nCOPY x /x\n")
    pipeline = load(tmp_path, PIPELINE)
    states = plan_states(make_plan(pipeline), engine, max_age=None)
    assert states["root"].why == "Dockerfile changed"
    assert states["app"].why == "parent root changed; reused if parent root keeps its digest"
    assert states["leaf"].why == "parent app changed; reused if parent app keeps its digest"
    result = Scheduler(make_plan(pipeline), engine, RunOptions()).run()
    outcomes = result.outcomes
    assert [outcomes[name].status for name in ("root", "app", "leaf")] == [Status.BUILT, Status.REUSED, Status.REUSED]
    assert (outcomes["app"].why, outcomes["leaf"].why) == (
        "parent root rebuilt, same digest",
        "parent app reused, same digest",
    )
    app = pipeline.targets["app"]
    record = json.loads(engine.records[record_reference(app, pipeline.registry)])
    assert record["cutoff"]["why"] == "parent root rebuilt, same digest"
    assert record["inputs"]["fingerprint"] == app.fingerprint and record["cutoff"]["from"] != app.fingerprint
    assert any(references == (outcomes["app"].reference,) for _, references in engine.tags)
    after = plan_states(make_plan(pipeline), engine, max_age=None)
    assert all(state.digest is not None for state in after.values())  # status agrees with what the run did
    assert after["app"].why.startswith("up to date (parent root rebuilt, same digest; built ")


def test_without_early_cutoff_the_children_are_built(tmp_path: Path) -> None:
    engine = built_once(tmp_path)
    (tmp_path / "root" / "Dockerfile").write_text("# another comment\nFROM scratch\nCOPY x /x\n")
    result = Scheduler(make_plan(load(tmp_path, PIPELINE)), engine, RunOptions(early_cutoff=False)).run()
    assert {outcome.status for outcome in result.outcomes.values()} == {Status.BUILT}


def test_a_change_of_its_own_inputs_is_no_cutoff(tmp_path: Path) -> None:
    engine = built_once(tmp_path)
    (tmp_path / "root" / "Dockerfile").write_text("# comment\nFROM scratch\nCOPY x /x\n")
    (tmp_path / "app" / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN true\n")
    pipeline = load(tmp_path, PIPELINE)
    states = plan_states(make_plan(pipeline), engine, max_age=None)
    assert states["app"].cutoff is None and states["app"].why == "Dockerfile changed; parent root changed"
    result = Scheduler(make_plan(pipeline), engine, RunOptions()).run()
    assert result.outcomes["app"].status == Status.BUILT


def record(parents: dict[str, str]) -> BuildRecord:
    """A latest build's record made on these parent digests."""
    return BuildRecord("t", B, "", 0.0, "0", parents, "", {"fingerprint": "f", "parents": {}, "args": {}})


def test_status_predicts_from_the_parents_it_knows() -> None:
    previous = record({"p": A, "q": A})
    assert predicted(previous, [("p", A), ("q", A)], "why") == (B, "parents rebuilt elsewhere, same digest")
    assert predicted(previous, [("p", None), ("q", A)], "why") == (
        None,
        "why; reused if parent p keeps its digest",
    )
    assert predicted(previous, [("p", None), ("q", B)], "why") == (None, "why; parent q has a new digest")
    assert own_inputs(previous.inputs) == {"args": {}}


def test_outside_git_without_source_date_epoch_the_epoch_is_0(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from buildflow.cli.build import run_epoch

    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # no repository above tmp_path
    assert run_epoch(tmp_path) == "0"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert run_epoch(tmp_path) == "1700000000"
