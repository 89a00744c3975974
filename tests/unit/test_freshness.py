"""Up to date or not, and why: base digests in fingerprints, build records, reasons in words, --since, the lock."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from buildflow.errors import LockBusy, UsageError
from buildflow.plan.planner import make_plan
from buildflow.plan.since import changed_since
from buildflow.run.freshness import changes, plan_states
from buildflow.run.lock import RunLock, lock_path
from buildflow.run.naming import BuildOptions, build_request
from buildflow.run.records import build_record, decode, encode, inputs
from tests.conftest import load, write_pipeline
from tests.fakes import FakeEngine

EXTERNAL = """\
    version: 1
    registry: localhost:5000/t
    targets:
      base: {context: base}
      app: {context: app, from: base}
      other: {context: other}
    """
FILES = {
    "base/Dockerfile": "FROM ubuntu:22.04\nCOPY --from=localhost:5000/tools/x:1 /x /x\n",
    "app/Dockerfile": "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n",
    "other/Dockerfile": "FROM alpine@sha256:" + "a" * 64 + "\n",
}
DIGEST = "sha256:" + "1" * 64


def resolver(found: dict[str, str], asked: list[Sequence[str]]):  # type: ignore[no-untyped-def]
    """A base resolver that knows `found` and records what it was asked."""

    def resolve(names: Sequence[str]) -> dict[str, str]:
        asked.append(list(names))
        return {name: found[name] for name in names if name in found}

    return resolve


def test_external_bases_are_resolved_once_and_enter_the_fingerprint(tmp_path: Path) -> None:
    asked: list[Sequence[str]] = []
    found = {"ubuntu:22.04": DIGEST, "localhost:5000/tools/x:1": "sha256:" + "2" * 64}
    pipeline = load(tmp_path, EXTERNAL, FILES, resolve_bases=resolver(found, asked))
    assert asked == [["localhost:5000/tools/x:1", "ubuntu:22.04"]]  # the pinned alpine is not looked up
    assert pipeline.targets["base"].bases == found
    assert pipeline.targets["other"].bases == {"alpine@sha256:" + "a" * 64: "sha256:" + "a" * 64}
    assert pipeline.targets["app"].bases == {}  # its only FROM is its parent
    moved = load(tmp_path, EXTERNAL, FILES, resolve_bases=resolver({**found, "ubuntu:22.04": "sha256:" + "3" * 64}, []))
    assert moved.targets["base"].fingerprint != pipeline.targets["base"].fingerprint
    assert moved.targets["app"].fingerprint != pipeline.targets["app"].fingerprint
    assert moved.targets["other"].fingerprint == pipeline.targets["other"].fingerprint


def test_unresolved_bases_enter_the_fingerprint_by_name(tmp_path: Path) -> None:
    offline = load(tmp_path, EXTERNAL, FILES)
    assert offline.targets["base"].bases == {"ubuntu:22.04": "", "localhost:5000/tools/x:1": ""}
    resolved = load(tmp_path, EXTERNAL, FILES, resolve_bases=resolver({"ubuntu:22.04": DIGEST}, []))
    assert resolved.targets["base"].fingerprint != offline.targets["base"].fingerprint


def test_a_pipeline_that_does_not_follow_bases_never_asks(tmp_path: Path) -> None:
    asked: list[Sequence[str]] = []
    text = EXTERNAL.replace("targets:", "rebuild: {follow_bases: false, max_age: 12h}\n    targets:")
    pipeline = load(tmp_path, text, FILES, resolve_bases=resolver({"ubuntu:22.04": DIGEST}, asked))
    assert asked == [] and pipeline.rebuild.max_age_seconds == 12 * 3600


def test_builds_pin_resolved_bases_and_get_the_source_date_epoch(tmp_path: Path) -> None:
    pipeline = load(tmp_path, EXTERNAL, FILES, resolve_bases=resolver({"ubuntu:22.04": DIGEST}, []))
    request = build_request(
        pipeline.targets["base"], {}, registry="r", root=tmp_path, options=BuildOptions(), source_date_epoch="17"
    )
    assert request.build_contexts == {"ubuntu:22.04": f"docker-image://ubuntu@{DIGEST}"}
    assert request.args["SOURCE_DATE_EPOCH"] == "17"


def test_changes_say_what_differs_in_words(tmp_path: Path) -> None:
    pipeline = load(tmp_path, EXTERNAL, {**FILES, "app/train.py": "1", "app/old.py": "x"})
    before = inputs(pipeline.targets["app"], pipeline)
    write_pipeline(tmp_path, EXTERNAL.replace("from: base}", "from: base, args: {TF: '2'}}"), {"app/train.py": "2"})
    (tmp_path / "app" / "old.py").unlink()
    (tmp_path / "app" / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN true\n")
    after = load(tmp_path, EXTERNAL.replace("from: base}", "from: base, args: {TF: '2'}}"))
    assert changes(before, inputs(after.targets["app"], after)) == [
        "Dockerfile changed",
        "context file train.py changed",
        "context file old.py removed",
        "build arg TF added",
    ]


def test_moved_bases_and_many_files_are_summarised() -> None:
    before = {"dockerfile": "d", "dockerfile_digest": "1", "context": ".", "files": {}, "args": {}, "stage": ""}
    before |= {"platforms": [], "labels": {}, "secrets": [], "bases": {"ubuntu:22.04": "sha256:" + "a" * 64}}
    after = {**before, "files": {f"f{n}": "x" for n in range(5)}, "bases": {"ubuntu:22.04": "sha256:" + "b" * 64}}
    after["parents"] = before["parents"] = {}
    assert changes(before, after) == [
        "context file f0 added",
        "context file f1 added",
        "context file f2 added",
        "2 more context files changed",
        f"base ubuntu:22.04 moved sha256:{'a' * 12}… → sha256:{'b' * 12}…",
    ]


def test_records_round_trip_and_hold_no_secret_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKEN_VALUE", "s3cr3t-value")
    text = EXTERNAL.replace("other: {context: other}", "other: {context: other, secrets: {tok: {env: TOKEN_VALUE}}}")
    pipeline = load(tmp_path, text, FILES)
    record = build_record(pipeline.targets["other"], pipeline, digest=DIGEST, parent_digests={}, epoch="5")
    data = encode(record)
    assert decode(data) == record and b"s3cr3t-value" not in data and b"tok" in data
    assert decode(b"not json") is None and decode(b'{"version": 99, "digest": "x"}') is None


def test_status_propagates_a_parent_that_will_be_rebuilt(tmp_path: Path) -> None:
    from buildflow.run.dispatch import Scheduler
    from buildflow.run.outcome import RunOptions

    pipeline = load(tmp_path, EXTERNAL, FILES)
    engine = FakeEngine()
    Scheduler(make_plan(pipeline), engine, RunOptions()).run()
    states = plan_states(make_plan(pipeline), engine, max_age=None)
    assert {tid: state.digest is not None for tid, state in states.items()} == {
        "base": True,
        "app": True,
        "other": True,
    }
    forced = plan_states(make_plan(pipeline), engine, max_age=None, force=frozenset({"base"}))
    assert (forced["base"].why, forced["app"].why) == ("forced (--force)", "parent base will be rebuilt")
    assert forced["other"].digest is not None


def git(root: Path, *arguments: str) -> None:
    """Run git quietly in a test repository."""
    subprocess.run(["git", "-C", str(root), *arguments], check=True, capture_output=True)


def test_since_finds_the_targets_whose_inputs_changed(tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, EXTERNAL, FILES)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-q", "-m", "one")
    (tmp_path / "base" / "new.txt").write_text("new")
    from buildflow.pipeline.loader import load_pipeline

    reasons = changed_since("HEAD", load_pipeline(path), load_pipeline)
    assert set(reasons) == {"base", "app"} and reasons["base"] == "inputs changed since HEAD"  # app: via its parent
    plan = make_plan(load_pipeline(path), changed=reasons.keys())
    assert [step.target.id for step in plan.steps] == ["base", "app"]
    with pytest.raises(UsageError, match="--since nope: not a commit"):
        changed_since("nope", load_pipeline(path), load_pipeline)


def test_a_second_lock_waits_or_is_refused(tmp_path: Path) -> None:
    path = lock_path("localhost:5000/t", ["localhost:5000/t/b", "localhost:5000/t/a"])
    assert path == lock_path("localhost:5000/t", ["localhost:5000/t/a", "localhost:5000/t/b"])
    path = tmp_path / path.name
    with RunLock(path, wait=True, describe="p", on_wait=lambda holder: None):
        second = RunLock(path, wait=False, describe="p", on_wait=lambda holder: None)
        with pytest.raises(LockBusy, match=r"holds the lock of p \(pid \d+, since 20"), second:
            pass
        waiter = subprocess.Popen(
            ["flock", "-w", "30", str(path), "true"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        with pytest.raises(subprocess.TimeoutExpired):
            waiter.wait(timeout=0.5)  # another process cannot take it either
    assert waiter.wait(timeout=30) == 0  # released on exit


class _Counted(FakeEngine):
    """A fake engine counting registry lookups: records read and digests asked."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def get_record(self, reference: str) -> bytes | None:
        self.asked.append(reference)
        return super().get_record(reference)

    def manifest_digest(self, reference: str) -> str | None:
        self.asked.append(reference)
        return super().manifest_digest(reference)


def test_a_target_never_built_costs_one_request_and_an_unchanged_one_two(tmp_path: Path) -> None:
    from buildflow.run.dispatch import Scheduler
    from buildflow.run.outcome import RunOptions

    pipeline = load(tmp_path, EXTERNAL, FILES)
    engine = _Counted()
    never = plan_states(make_plan(pipeline), engine, max_age=None)
    assert all(state.digest is None for state in never.values()) and len(engine.asked) == 3
    Scheduler(make_plan(pipeline), engine, RunOptions()).run()
    engine.asked.clear()
    fresh = plan_states(make_plan(pipeline), engine, max_age=None)
    assert all(state.digest is not None for state in fresh.values()) and len(engine.asked) == 6
    assert {reference.rpartition(":")[2].split(".")[0] for reference in engine.asked} == {
        "bf-last",
        *(f"bf-{target.fingerprint[:24]}" for target in pipeline.targets.values()),
    }


def test_a_target_back_on_an_older_fingerprint_is_found_by_that_fingerprints_record(tmp_path: Path) -> None:
    from buildflow.run.dispatch import Scheduler
    from buildflow.run.outcome import RunOptions

    pipeline = load(tmp_path, EXTERNAL, FILES)
    engine = FakeEngine()
    Scheduler(make_plan(pipeline), engine, RunOptions()).run()
    changed = load(tmp_path, EXTERNAL, {**FILES, "other/Dockerfile": FILES["other/Dockerfile"] + "ENV A=1\n"})
    Scheduler(make_plan(changed), engine, RunOptions()).run()  # bf-last of other: the changed build
    back = plan_states(make_plan(load(tmp_path, EXTERNAL, FILES)), engine, max_age=None)
    assert back["other"].digest is not None and back["other"].why.startswith("up to date")
