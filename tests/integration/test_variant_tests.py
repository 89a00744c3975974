"""Tests per variant, for real: a matrix whose test commands and env are templated with its matrix values, a test
that only one variant runs (`when:`), and a GPU test skipped with a note on this engine, which has no GPU."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import BASE, buildflow, make_project

pytestmark = pytest.mark.integration

TARGETS = """\
    base: {context: base, tags: ["base:1"]}
    framework:
      context: framework
      from: base
      matrix: {device: [cpu, gpu]}
      args: {DEVICE: "{device}"}
      tags: ["framework:{device}"]
      test:
        commands:
          - 'test "$(cat /device.txt)" = "{device}"'
          - 'test "$WANTED" = "{device}-build"'
          - {run: "echo cpu only; test {device} = cpu", when: {device: cpu}}
        env: {WANTED: "{device}-build"}
    app:
      context: app
      from: framework
      tags: ["app:{device}"]
      test:
        commands: [{run: "nvidia-smi", when: {device: gpu}}]
        gpus: all
    """
FRAMEWORK = """\
    ARG BASE_IMAGE=base
    FROM ${BASE_IMAGE}
    ARG DEVICE
    RUN echo "$DEVICE" > /device.txt
    """
APP = """\
    ARG BASE_IMAGE=framework
    FROM ${BASE_IMAGE}
    RUN echo app > /app.txt
    """


def test_a_matrix_builds_and_runs_the_tests_of_each_variant(tmp_path: Path) -> None:
    made = make_project(tmp_path, TARGETS, {"base": BASE, "framework": FRAMEWORK, "app": APP})
    result = made.build()
    assert result.returncode == 0, result.stdout + result.stderr
    targets = made.targets()
    ran = {
        target_id: [(test["command"], test["status"]) for test in target["tests"]]
        for target_id, target in targets.items()
    }
    assert ran["framework[device=cpu]"] == [
        ('test "$(cat /device.txt)" = "cpu"', "passed"),
        ('test "$WANTED" = "cpu-build"', "passed"),
        ("echo cpu only; test cpu = cpu", "passed"),
    ]
    assert ran["framework[device=gpu]"] == [
        ('test "$(cat /device.txt)" = "gpu"', "passed"),
        ('test "$WANTED" = "gpu-build"', "passed"),
    ]
    assert ran["app[device=cpu]"] == ran["framework[device=cpu]"]  # inherited, and its own has no cpu command
    assert ran["app[device=gpu]"] == [*ran["framework[device=gpu]"], ("nvidia-smi", "skipped")]
    gpu_test = targets["app[device=gpu]"]["tests"][-1]
    assert "needs GPUs (gpus: all) but the engine has no GPU runtime" in gpu_test["reason"]


def test_a_variant_whose_test_fails_fails_alone(tmp_path: Path) -> None:
    targets = TARGETS.replace("test {device} = cpu", "test {device} = gpu")
    made = make_project(tmp_path, targets, {"base": BASE, "framework": FRAMEWORK, "app": APP})
    result = made.build("--keep-going")
    assert result.returncode == 1, result.stdout + result.stderr
    statuses = {target_id: target["status"] for target_id, target in made.targets().items()}
    assert statuses["framework[device=cpu]"] == "FAILED" and statuses["app[device=cpu]"] == "BLOCKED"
    assert statuses["framework[device=gpu]"] == "BUILT" and statuses["app[device=gpu]"] == "BUILT"
    failure = made.targets()["framework[device=cpu]"]["error"]
    assert "test `echo cpu only; test cpu = gpu` failed" in failure


def test_when_naming_an_axis_the_target_has_not_exits_2(tmp_path: Path) -> None:
    made = make_project(tmp_path, TARGETS.replace("when: {device: cpu}", "when: {arch: cpu}"), {"base": BASE})
    result = buildflow("validate", cwd=made.root)
    assert result.returncode == 2
    assert "targets.framework.test.commands[2].when.arch: 'arch' is not a matrix axis of framework" in result.stderr
    assert "Traceback" not in result.stderr
