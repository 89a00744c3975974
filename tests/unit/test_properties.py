"""Property tests: random DAGs plan in an order that respects every edge; corrupted files only ever fail cleanly."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from buildflow.errors import EXIT_INVALID, BuildflowError
from buildflow.pipeline.loader import load_pipeline
from buildflow.plan.planner import make_plan

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
    """A Dockerfile and a pipeline file (the document as JSON, or the text)."""
    (directory / "Dockerfile").write_text("FROM scratch\n")
    path = directory / "buildflow.yaml"
    path.write_text(text if text is not None else json.dumps(document))
    return path


@SETTINGS
@given(dags())
def test_random_dags_plan_in_an_order_that_respects_every_edge(targets: dict[str, dict[str, Any]]) -> None:
    """Every parent comes before its children, one generation further."""
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
    """Apply one deletion, insertion or swap of lines."""
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
    """A valid pipeline with a few random edits."""
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
    """A valid pipeline with random values for some settings of one target."""
    import yaml

    document = yaml.safe_load(VALID)
    document["targets"][target].update(values)
    fails_cleanly_or_loads(json.dumps(document))


# ---- arbitrary documents and bytes: a pipeline, or problems that each name the file --------------------------------

HOSTILE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WORDS = [
    "version",
    "targets",
    "registry",
    "vars",
    "defaults",
    "retry",
    "rebuild",
    "max_age",
    "context",
    "dockerfile",
    "from",
    "depends_on",
    "target",
    "when",
    "matrix",
    "include",
    "exclude",
    "tags",
    "args",
    "labels",
    "secrets",
    "env",
    "cache",
    "type",
    "test",
    "commands",
    "base",
    "app",
    "x-a",
]
keys = st.sampled_from(WORDS) | st.text(max_size=8)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["1", "base", "app", "base:1", "{v}", "{target}", "..", "/", ".", "7d", "localhost:5000/t"])
)
documents = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4), max_leaves=24
)
names = st.sampled_from(["base", "app", "cuda"])
values = (
    st.sampled_from(["1", "2", "a b", "x", "{v}", "{target}", "{fingerprint}", "{nope}", "}{", "{{", "${v}"]) | scalars
)
plausible_target = st.fixed_dictionaries(
    {},
    optional={
        "from": names | st.lists(names | st.fixed_dictionaries({"target": names, "when": documents}), max_size=3),
        "depends_on": names | st.lists(names, max_size=3),
        "matrix": st.dictionaries(st.sampled_from(["v", "w", "include", "exclude", "target"]), documents, max_size=3),
        "tags": st.lists(st.sampled_from(["{target}:{v}", "t:1", "T:1", "t:{fingerprint}", "{nope}", ":"]), max_size=3),
        "vars": st.dictionaries(st.sampled_from(["v", "w", "registry"]), values, max_size=2),
        "args": st.dictionaries(st.sampled_from(["A", "BASE_IMAGE"]), values, max_size=2),
        "context": st.sampled_from([".", "..", "/", "ctx", "Dockerfile", "\0"]),
        "dockerfile": st.sampled_from(["Dockerfile", "../Dockerfile", ".", "nope", "x" * 300]),
    },
)
targets = st.dictionaries(names | st.text(max_size=6), documents | plausible_target, max_size=4)
pipelines = st.fixed_dictionaries(
    {"version": st.just(1) | scalars, "targets": targets},
    optional={"vars": documents, "defaults": documents, "registry": scalars, "retry": documents, "rebuild": documents},
)


def serialised(document: object, style: str) -> tuple[bytes, str]:
    """A document as pipeline file content and the file name it gets: JSON, block YAML or flow YAML."""
    import yaml

    if style == "json":
        return json.dumps(document).encode(), "buildflow.json"
    text = yaml.safe_dump(document, default_flow_style=style == "flow", allow_unicode=True)
    return text.encode(), "buildflow.yaml"


def loads_or_names_the_file(content: bytes, name: str) -> None:
    """Loading gives a pipeline or BuildflowErrors whose every line starts with the file name; nothing else."""
    with tempfile.TemporaryDirectory() as directory:
        (Path(directory) / "Dockerfile").write_text("FROM scratch\n")
        path = Path(directory) / name
        path.write_bytes(content)
        try:
            load_pipeline(path, display=name)
        except BuildflowError as error:
            lines = error.lines()
            assert error.exit_code == EXIT_INVALID and lines
            assert all(line.startswith(f"{name}:") and "\n" not in line for line in lines), lines


@HOSTILE
@given(documents, st.sampled_from(["json", "block", "flow"]))
def test_arbitrary_documents_load_or_name_the_file(document: object, style: str) -> None:
    """Any JSON-like document, as JSON or YAML."""
    loads_or_names_the_file(*serialised(document, style))


@HOSTILE
@given(pipelines, st.sampled_from(["json", "block", "flow"]))
def test_pipeline_shaped_documents_load_or_name_the_file(document: dict[str, Any], style: str) -> None:
    """Documents with version and targets whose settings are plausible, or anything."""
    loads_or_names_the_file(*serialised(document, style))


prefixes = st.sampled_from([b"", b"version: 1\n", b'{"version": 1, ', b"\xef\xbb\xbf", b"\xff\xfe", b"- ", b"&a "])


@HOSTILE
@given(prefixes, st.binary(max_size=2048), st.sampled_from(["buildflow.yaml", "buildflow.json"]))
def test_arbitrary_bytes_load_or_name_the_file(prefix: bytes, junk: bytes, name: str) -> None:
    """Random bytes, some after a beginning that looks like a pipeline or a byte order mark."""
    loads_or_names_the_file(prefix + junk, name)


tokens = st.sampled_from(
    ["version: 1\n", "targets:\n", "  base:\n", "    from: base\n", "{", "}", "[", "]", ": ", ", ", "- ", "\n", "  ",
     "&a ", "*a", "<<: ", "!!str ", "!!python/none ", "'", '"', "\\u0000", "#", "---\n", "...\n", "%YAML 1.2\n", "?",
     "|\n", ">-\n", "\t", "~", "0x", "9" * 30, "{v}", "base:1"]
)  # fmt: skip


@HOSTILE
@given(st.lists(tokens, max_size=40), st.sampled_from(["buildflow.yaml", "buildflow.json"]))
def test_yaml_token_soup_loads_or_names_the_file(parts: list[str], name: str) -> None:
    """YAML and JSON punctuation, keys and tags strung together at random."""
    loads_or_names_the_file("".join(parts).encode(), name)
