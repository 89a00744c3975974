"""Tests per variant: commands and env values templated with matrix values and variables, `when:` per command,
and `when:` naming an axis the target has not."""

from __future__ import annotations

from pathlib import Path

from buildflow.run.imagetests import image_tests
from tests.conftest import dockerfiles, load, one_problem

MATRIX = """\
    version: 1
    registry: localhost:5000/t
    vars: {suite: smoke}
    targets:
      base: {test: ["echo base"]}
      framework:
        from: base
        matrix: {device: [cpu, gpu], tf: ["1.8", "1.15"]}
        test:
          commands:
            - "run-{suite} --device {device} --tf {tf}"
            - {run: "import-check {tf}", when: {device: cpu}}
            - {run: "pip-check {tf}", when: {device: gpu, tf: ["1.8", "1.15"]}}
          env: {DEVICE: "{device}", FIXED: "x"}
          timeout: 30
      app:
        from: framework
        test: [{run: "app-on-gpu", when: {device: gpu}}, "app {device}"]
    """


def own(pipeline: object, target_id: str) -> tuple[list[str], dict[str, str]]:
    target = pipeline.targets[target_id]  # type: ignore[attr-defined]
    return list(target.tests.commands), dict(target.tests.env or {})


def test_commands_and_env_are_filled_per_variant_and_when_chooses_the_commands(tmp_path: Path) -> None:
    pipeline = load(tmp_path, MATRIX, dockerfiles("."))
    commands, env = own(pipeline, "framework[device=cpu,tf=1.8]")
    assert commands == ["run-smoke --device cpu --tf 1.8", "import-check 1.8"]
    assert env == {"DEVICE": "cpu", "FIXED": "x"}
    commands, env = own(pipeline, "framework[device=gpu,tf=1.15]")
    assert commands == ["run-smoke --device gpu --tf 1.15", "pip-check 1.15"]
    assert env == {"DEVICE": "gpu", "FIXED": "x"}
    assert pipeline.targets["framework[device=gpu,tf=1.15]"].tests.timeout == 30


def test_inherited_axes_count_and_children_inherit_their_parents_variant_tests(tmp_path: Path) -> None:
    pipeline = load(tmp_path, MATRIX, dockerfiles("."))
    gpu = "app[device=gpu,tf=1.8]"
    assert own(pipeline, gpu)[0] == ["app-on-gpu", "app gpu"]
    assert own(pipeline, "app[device=cpu,tf=1.8]")[0] == ["app cpu"]
    inherited = [(test.command, test.origin) for test in image_tests(pipeline, gpu)]
    assert inherited == [
        ("echo base", "base"),
        ("run-smoke --device gpu --tf 1.8", "framework[device=gpu,tf=1.8]"),
        ("pip-check 1.8", "framework[device=gpu,tf=1.8]"),
        ("app-on-gpu", gpu),
        ("app gpu", gpu),
    ]


def test_a_target_without_templates_keeps_its_tests_as_written(tmp_path: Path) -> None:
    pipeline = load(tmp_path, MATRIX, dockerfiles("."))
    assert own(pipeline, "base") == (["echo base"], {})


def test_when_naming_an_axis_the_target_has_not_names_the_field(tmp_path: Path) -> None:
    text = MATRIX.replace("when: {device: cpu}", "when: {devise: cpu}")
    line = one_problem(tmp_path, text, dockerfiles("."))
    assert "targets.framework.test.commands[1].when.devise: 'devise' is not a matrix axis of framework" in line
    assert "did you mean 'device'?" in line


def test_when_on_a_target_without_a_matrix_is_a_problem(tmp_path: Path) -> None:
    text = MATRIX.replace('base: {test: ["echo base"]}', 'base: {test: [{run: "x", when: {device: gpu}}]}')
    line = one_problem(tmp_path, text, dockerfiles("."))
    assert "targets.base.test[0].when.device: 'device' is not a matrix axis of base; it has no matrix axes" in line


def test_an_undefined_variable_in_a_test_names_the_command(tmp_path: Path) -> None:
    line = one_problem(tmp_path, MATRIX.replace("{suite}", "{suit}"), dockerfiles("."))
    assert "targets.framework.test.commands[0]: undefined variable 'suit'" in line
    assert "did you mean 'suite'?" in line


def test_a_command_mapping_needs_run(tmp_path: Path) -> None:
    text = MATRIX.replace('{run: "app-on-gpu", when: {device: gpu}}', "{when: {device: gpu}}")
    assert "missing required key 'run'" in one_problem(tmp_path, text, dockerfiles("."))
