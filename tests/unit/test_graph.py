"""The DAG: unknown parents, cycles as paths, inferred edges, generations, selection."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildflow.errors import UsageError
from buildflow.graph import layers
from buildflow.model import EdgeKind
from buildflow.plan.planner import make_plan
from tests.conftest import dockerfiles, load, one_problem, problems

FILES = dockerfiles(".")
TREE = """\
    version: 1
    targets:
      base: {tags: ["base:1"]}
      cuda: {from: base, tags: ["cuda:1"]}
      cpu: {from: base, tags: ["cpu:1"]}
      framework: {from: cuda, tags: ["framework:1"]}
      data: {tags: ["data:1"]}
      app: {from: framework, depends_on: data, tags: ["app:1"]}
    """


def test_unknown_parent_suggests_a_target(tmp_path: Path) -> None:
    line = one_problem(tmp_path, "version: 1\ntargets: {base: {}, cuda: {from: bsae}}\n", FILES)
    assert line.endswith(":2: targets.cuda.from: unknown target 'bsae' — did you mean 'base'?")


def test_cycles_are_printed_as_paths(tmp_path: Path) -> None:
    line = one_problem(
        tmp_path,
        """\
        version: 1
        targets:
          base: {from: cuda}
          cuda: {from: base}
          app: {from: cuda}
        """,
        FILES,
    )
    assert line.endswith(":3: targets.base.from: cycle: base -> cuda -> base; remove one of these edges")


def test_self_reference_is_a_cycle(tmp_path: Path) -> None:
    assert "cycle: a -> a" in one_problem(tmp_path, "version: 1\ntargets: {a: {depends_on: [a]}}\n", FILES)


def test_generations_and_order(tmp_path: Path) -> None:
    pipeline = load(tmp_path, TREE, FILES)
    assert pipeline.generations == [["base", "data"], ["cuda", "cpu"], ["framework"], ["app"]]
    kinds = {edge.parent: edge.kind for edge in pipeline.targets["app"].parents}
    assert kinds == {"framework": EdgeKind.FROM, "data": EdgeKind.DEPENDS_ON}


def test_plan_selects_ancestors_and_downstream(tmp_path: Path) -> None:
    pipeline = load(tmp_path, TREE, FILES)
    assert [s.target.id for s in make_plan(pipeline, ["framework"]).steps] == ["base", "cuda", "framework"]
    assert [s.target.id for s in make_plan(pipeline, [], ["cuda"]).steps] == ["cuda", "framework", "app"]
    both = make_plan(pipeline, ["cpu"], ["framework"]).steps
    assert [(s.order, s.generation, s.target.id) for s in both] == [
        (1, 0, "base"),
        (2, 1, "cpu"),
        (3, 2, "framework"),
        (4, 3, "app"),
    ]


def test_selection_by_matrix_image_or_target(tmp_path: Path) -> None:
    pipeline = load(tmp_path, 'version: 1\ntargets: {a: {matrix: {v: ["1", "2"]}, tags: ["a:{v}"]}}\n', FILES)
    assert [s.target.id for s in make_plan(pipeline, ["a[v=2]"]).steps] == ["a[v=2]"]
    assert len(make_plan(pipeline, ["a"]).steps) == 2


def test_unknown_selection_is_a_usage_error(tmp_path: Path) -> None:
    pipeline = load(tmp_path, TREE, FILES)
    with pytest.raises(UsageError, match="unknown target 'framwork' — did you mean 'framework'"):
        make_plan(pipeline, ["framwork"])


def test_layers_reports_what_it_cannot_place() -> None:
    found, unplaced = layers({"a": [], "b": ["a", "c"], "c": ["b"], "d": ["c"], "e": ["a"]})
    assert found == [["a"], ["e"]]
    assert unplaced == ["b", "c", "d"]


INFER = """\
    version: 1
    registry: localhost:5000/t2t
    targets:
      base: {context: base, tags: ["base:ubuntu16.04"]}
      cuda: {context: cuda, tags: ["cuda:9.0"]}
      tool: {context: tool, tags: ["tool:1"]}
      app: {context: app, tags: ["app:1"]}
    """


def infer(tmp_path: Path, app_dockerfile: str, **files: str) -> list[tuple[str, str, str]]:
    all_files = {**dockerfiles("base", "cuda", "tool"), "app/Dockerfile": app_dockerfile, **files}
    pipeline = load(tmp_path, INFER, all_files)
    return [(e.parent, str(e.kind), e.detail) for e in pipeline.targets["app"].parents]


def test_inferred_from_a_literal_tag_as_written_or_as_pushed(tmp_path: Path) -> None:
    assert infer(tmp_path, "FROM cuda:9.0\nCOPY --from=localhost:5000/t2t/tool:1 /x /x\n") == [
        ("cuda", "inferred", "cuda:9.0 (Dockerfile line 1)"),
        ("tool", "inferred", "localhost:5000/t2t/tool:1 (Dockerfile line 2)"),
    ]


def test_inferred_through_an_arg_default_and_a_build_arg(tmp_path: Path) -> None:
    dockerfile = "ARG BASE=localhost:5000/t2t/base:ubuntu16.04\nARG TOOL=x\nFROM ${BASE}\nRUN --mount=from=$TOOL ls\n"
    assert [edge[0] for edge in infer(tmp_path, dockerfile)] == ["base"]
    text = INFER.replace('app: {context: app, tags: ["app:1"]}', 'app: {context: app, args: {TOOL: "tool:1"}}')
    pipeline = load(tmp_path / "2", text, {**dockerfiles("base", "cuda", "tool"), "app/Dockerfile": dockerfile})
    assert [edge.parent for edge in pipeline.targets["app"].parents] == ["base", "tool"]


def test_inferred_from_a_target_name(tmp_path: Path) -> None:
    assert infer(tmp_path, "FROM base AS build\nFROM build\nCOPY --from=build /a /a\n")[0][0] == "base"


def test_stages_scratch_and_unknown_images_are_not_edges(tmp_path: Path) -> None:
    dockerfile = "FROM ubuntu:22.04 AS tool\nFROM scratch\nCOPY --from=tool /a /a\nCOPY --from=0 /b /b\n"
    assert infer(tmp_path, dockerfile) == []


def test_base_image_arg_points_at_the_declared_parent(tmp_path: Path) -> None:
    pipeline = load(
        tmp_path,
        """\
        version: 1
        targets:
          base: {context: base, tags: ["base:1"]}
          cuda: {context: base, tags: ["cuda:1"]}
          app: {context: app, from: cuda}
        """,
        {"base/Dockerfile": "FROM scratch\n", "app/Dockerfile": "ARG BASE_IMAGE=base\nFROM ${BASE_IMAGE}\n"},
    )
    assert [(e.parent, e.kind) for e in pipeline.targets["app"].parents] == [("cuda", EdgeKind.FROM)]


def test_cycles_through_inferred_edges(tmp_path: Path) -> None:
    line = one_problem(
        tmp_path,
        """\
        version: 1
        targets:
          a: {context: a, tags: ["a:1"]}
          b: {context: b, from: a, tags: ["b:1"]}
        """,
        {"a/Dockerfile": "FROM b:1\n", "b/Dockerfile": "FROM scratch\n"},
    )
    assert "cycle through Dockerfile FROM lines: a -> b -> a" in line


def test_ambiguous_target_name_in_a_dockerfile(tmp_path: Path) -> None:
    lines = problems(
        tmp_path,
        """\
        version: 1
        targets:
          tf: {context: tf, matrix: {v: ["1", "2"]}, tags: ["tf:{v}"]}
          app: {context: app}
        """,
        {"tf/Dockerfile": "FROM scratch\n", "app/Dockerfile": "FROM tf\n"},
    )
    assert any("FROM tf matches 2 images (tf[v=1], tf[v=2]); declare from: to pick one per image" in x for x in lines)


def test_dockerfile_errors_name_the_dockerfile_and_line(tmp_path: Path) -> None:
    lines = problems(tmp_path, "version: 1\ntargets: {a: {}}\n", {"Dockerfile": "FROM scratch\nRUNN x\n"})
    assert lines == [f"{tmp_path / 'Dockerfile'}:2: unknown instruction: RUNN (target a); fix the Dockerfile"]


def test_base_image_default_is_inferred_for_a_target_without_from(tmp_path: Path) -> None:
    pipeline = load(
        tmp_path,
        """\
        version: 1
        targets:
          base: {context: base, tags: ["base:1"]}
          app: {context: app}
        """,
        {"base/Dockerfile": "FROM scratch\n", "app/Dockerfile": "ARG BASE_IMAGE=base:1\nFROM ${BASE_IMAGE}\n"},
    )
    assert [(e.parent, e.kind) for e in pipeline.targets["app"].parents] == [("base", EdgeKind.INFERRED)]
