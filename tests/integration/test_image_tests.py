"""Tests inside built images, for real: passing, failing (blocks descendants, moves no tag), inherited,
opted out, timed out, GPU requests on an engine without GPUs, `buildflow test`, and retesting a reused image."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import pytest

from tests.integration.conftest import BASE, Project, buildflow, child, make_project, registry_digest

pytestmark = pytest.mark.integration

TARGETS = """\
    base:
      context: base
      tags: ["base:1"]
      test: ["test -f /base.txt", "echo base checked"]
    mid:
      context: mid
      from: base
      tags: ["mid:1"]
      test:
        commands: ['test "$GREETING" = hello']
        env: {GREETING: hello}
    leaf: {context: leaf, from: mid, tags: ["leaf:1"]}
    alone:
      context: alone
      from: base
      tags: ["alone:1"]
      test: {commands: ["true"], inherit: false}
    gpu:
      context: gpu
      from: base
      tags: ["gpu:1"]
      test: {commands: ["nvidia-smi"], gpus: all, inherit: false}
    bad:
      context: bad
      from: base
      tags: ["bad:1"]
      test: ["echo boom >&2; exit 3"]
    after_bad: {context: after_bad, from: bad, tags: ["after_bad:1"]}
    slow:
      context: slow
      from: base
      tags: ["slow:1"]
      test: {commands: ["sleep 600"], timeout: 2, inherit: false}
    """
CONTEXTS = ("mid", "leaf", "alone", "gpu", "bad", "after_bad", "slow")


def ran_tests(project: Project, target: str) -> list[tuple[str, str, str]]:
    """(command, declared_by, status) of every test a target ran, from the JSON report."""
    return [(t["command"], t["declared_by"], t["status"]) for t in project.targets()[target]["tests"]]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The pipeline above, built once with --keep-going and a JUnit file."""
    root = tmp_path_factory.mktemp("image-tests")
    parents = {"mid": "base", "leaf": "mid", "alone": "base", "gpu": "base", "bad": "base", "after_bad": "bad"}
    dockerfiles = {"base": BASE, **{name: child(name, parents.get(name, "base")) for name in CONTEXTS}}
    project = make_project(root, TARGETS, dockerfiles)
    result = project.build("--keep-going", "--junit", str(root / "junit.xml"))
    assert result.returncode == 1, result.stdout + result.stderr
    return project


def test_passing_tests_run_in_the_built_image(built: Project) -> None:
    targets = built.targets()
    assert targets["base"]["status"] == "BUILT"
    assert ran_tests(built, "base") == [
        ("test -f /base.txt", "base", "passed"),
        ("echo base checked", "base", "passed"),
    ]
    assert "base checked" in targets["base"]["tests"][1]["output"]


def test_children_inherit_their_ancestors_tests_with_their_settings(built: Project) -> None:
    assert [(command, origin) for command, origin, _ in ran_tests(built, "leaf")] == [
        ("test -f /base.txt", "base"),
        ("echo base checked", "base"),
        ('test "$GREETING" = hello', "mid"),
    ]
    assert {status for _, _, status in ran_tests(built, "leaf")} == {"passed"}


def test_inherit_false_runs_only_the_targets_own_tests(built: Project) -> None:
    assert ran_tests(built, "alone") == [("true", "alone", "passed")]


def test_a_failing_test_fails_the_target_blocks_its_children_and_moves_no_tag(built: Project) -> None:
    targets = built.targets()
    assert targets["bad"]["status"] == "FAILED"
    assert targets["bad"]["error"] == "test `echo boom >&2; exit 3` failed, exit code 3: boom"
    assert targets["after_bad"]["status"] == "BLOCKED"
    assert built.report()["released"] is False
    assert registry_digest(built.ref("bad:1")) is None
    assert registry_digest(built.ref("base:1")) is None  # nothing is released when one target fails
    assert targets["bad"]["pushed"] is False  # tested before it is pushed: the failing image never leaves


def test_a_test_over_its_timeout_is_killed_and_fails(built: Project) -> None:
    slow = built.targets()["slow"]
    assert slow["status"] == "FAILED"
    assert "no result within 2s (timeout)" in slow["error"]


def test_a_gpu_test_is_skipped_with_a_reason_on_an_engine_without_gpus(built: Project) -> None:
    gpu = built.targets()["gpu"]
    assert gpu["status"] == "BUILT"
    assert gpu["tests"][0]["status"] == "skipped"
    assert gpu["tests"][0]["reason"] == "needs GPUs (gpus: all) but the engine has no GPU runtime"


def test_the_junit_file_has_a_testcase_per_image_test(built: Project) -> None:
    suite = ElementTree.parse(built.root / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    cases = {(case.get("classname"), case.get("name")): case for case in suite.iter("testcase")}
    failed = cases[("bad", "echo boom >&2; exit 3")].find("failure")
    assert failed is not None and failed.get("message") == "exit code 3" and "boom" in (failed.text or "")
    assert cases[("gpu", "nvidia-smi")].find("skipped") is not None
    assert cases[("leaf", "test -f /base.txt")].find("system-out") is not None  # "inherited from base"


def test_buildflow_test_runs_the_tests_of_built_images_without_building(built: Project) -> None:
    result = buildflow("test", "leaf", "alone", "--report", "tests.json", cwd=built.root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASSED" in result.stdout and "BUILD" not in result.stdout
    missing = buildflow("test", "bad", cwd=built.root)
    assert missing.returncode == 1
    assert "NOT RUN" in missing.stdout and "not built for its current inputs: run buildflow build bad" in missing.stdout


def test_a_reused_image_is_tested_again_only_when_its_tests_change(tmp_path: Path) -> None:
    project = make_project(tmp_path, 'base: {context: base, tags: ["base:1"], test: ["true"]}\n', {"base": BASE})
    assert project.build().returncode == 0
    assert project.build().returncode == 0
    assert project.targets()["base"]["status"] == "REUSED" and project.targets()["base"]["tests"] == []
    pipeline = tmp_path / "buildflow.yaml"
    pipeline.write_text(pipeline.read_text().replace('test: ["true"]', 'test: ["false"]'))
    result = project.build()
    assert result.returncode == 1, result.stdout + result.stderr
    base = project.targets()["base"]
    assert (base["status"], base["tests"][0]["status"]) == ("FAILED", "failed")
    assert "its tests changed since it was built" in (base["why"] or "")


def test_no_test_container_is_left_behind(built: Project) -> None:
    """Passing, failing and killed (timed-out) tests all leave no container."""
    import subprocess

    left = subprocess.run(
        ["docker", "ps", "--all", "--quiet", "--filter", "name=buildflow-test-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert left == ""
