"""Property tests: random DAGs plan in an order that respects every edge; corrupted files only ever fail cleanly."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from buildflow.errors import EXIT_INVALID, BuildflowError
from buildflow.loader import load_pipeline
from buildflow.planner import make_plan

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def dags(draw: st.DrawFn) -> dict[str, dict[str, Any]]:
    """Targets with random parents among earlier ones, declared in a random order."""
    count = draw(st.integers(min_value=1, max_value=25))
    targets: dict[str, dict[str, Any]] = {}
    for index in range(count):
        parents = draw(st.lists(st.integers(0, index - 1), max_size=3, unique=True)) if index else []
        spec: dict[str, Any] = {"tags": [f"t{index}:1"]}
        split = draw(st.integers(0, len(parents)))
        if parents[:split]:
            spec["from"] = [f"t{p}" for p in parents[:split]]
        if parents[split:]:
            spec["depends_on"] = [f"t{p}" for p in parents[split:]]
        targets[f"t{index}"] = spec
    order = draw(st.permutations(list(targets)))
    return {name: targets[name] for name in order}


def write(directory: Path, document: object, text: str | None = None) -> Path:
    (directory / "Dockerfile").write_text("FROM scratch\n")
    path = directory / "buildflow.yaml"
    path.write_text(text if text is not None else json.dumps(document))
    return path


@SETTINGS
@given(dags())
def test_random_dags_plan_in_an_order_that_respects_every_edge(targets: dict[str, dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        pipeline = load_pipeline(write(Path(directory), {"version": 1, "targets": targets}))
    steps = make_plan(pipeline).steps
    position = {step.target.id: step.order for step in steps}
    generation = {step.target.id: step.generation for step in steps}
    assert sorted(position) == sorted(targets)
    for step in steps:
        parents = [edge.parent for edge in step.target.parents]
        declared = [*targets[step.target.id].get("from", []), *targets[step.target.id].get("depends_on", [])]
        assert sorted(parents) == sorted(declared)
        assert all(position[parent] < step.order for parent in parents)
        assert generation[step.target.id] == (1 + max(generation[p] for p in parents) if parents else 0)


VALID = """\
version: 1
registry: localhost:5000/t2t
vars: {ubuntu: "16.04"}
defaults: {network: host, platforms: [linux/amd64]}
targets:
  base: {tags: ["base:ubuntu{ubuntu}"], args: {A: "1"}}
  cuda: {from: base, vars: {cuda: "9.0"}, tags: ["cuda:{cuda}"]}
  tf:
    from: [{target: cuda, when: {device: gpu}}, {target: base, when: {device: cpu}}]
    matrix: {tf: ["1.8.0", "1.15.5"], device: [cpu, gpu], exclude: [{tf: "1.8.0", device: cpu}]}
    tags: ["tf:{tf}-{device}"]
  app: {from: tf, depends_on: [base], matrix: {include: [{tf: "1.8.0", t: "1"}]}, tags: ["app:{tf}-{device}-{t}"]}
"""


def fails_cleanly_or_loads(text: str) -> None:
    """A pipeline either loads or raises a BuildflowError that exits 2; nothing else may escape."""
    with tempfile.TemporaryDirectory() as directory:
        path = write(Path(directory), None, text)
        try:
            load_pipeline(path)
        except BuildflowError as error:
            assert error.exit_code == EXIT_INVALID
            assert error.lines() and all("\n" not in line and line for line in error.lines())


mutations = st.one_of(
    st.tuples(st.just("delete"), st.integers(0, len(VALID)), st.integers(1, 40)),
    st.tuples(st.just("insert"), st.integers(0, len(VALID)), st.text(max_size=12)),
    st.tuples(
        st.just("insert"),
        st.integers(0, len(VALID)),
        st.sampled_from(
            ["{", "}", "[", "]", ":", "- ", "&a ", "*a", "<<: ", "\t", "'", '"', "\n  ", "!!binary ", "~", "{x}", "%"]
        ),
    ),
    st.tuples(st.just("swap"), st.integers(0, 12), st.integers(0, 12)),
)


def mutate(text: str, mutation: tuple[str, int, Any]) -> str:
    kind, where, what = mutation
    if kind == "delete":
        return text[:where] + text[where + what :]
    if kind == "insert":
        return text[:where] + str(what) + text[where:]
    lines = text.splitlines(keepends=True)
    first, second = where % len(lines), what % len(lines)
    lines[first], lines[second] = lines[second], lines[first]
    return "".join(lines)


@SETTINGS
@given(st.lists(mutations, min_size=1, max_size=4))
def test_random_corruptions_fail_cleanly(changes: list[tuple[str, int, Any]]) -> None:
    text = VALID
    for change in changes:
        text = mutate(text, change)
    fails_cleanly_or_loads(text)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
fields = st.sampled_from(
    [
        "context",
        "dockerfile",
        "stage",
        "from",
        "depends_on",
        "args",
        "vars",
        "tags",
        "platforms",
        "labels",
        "secrets",
        "cache",
        "push",
        "network",
        "test",
        "matrix",
        "description",
        "when",
    ]
)


@SETTINGS
@given(st.dictionaries(fields, json_values, min_size=1, max_size=3), st.sampled_from(["base", "tf", "app"]))
def test_random_field_values_fail_cleanly(values: dict[str, Any], target: str) -> None:
    import yaml

    document = yaml.safe_load(VALID)
    document["targets"][target].update(values)
    fails_cleanly_or_loads(json.dumps(document))
