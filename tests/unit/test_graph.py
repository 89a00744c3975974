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
    # BuildKit expands no ARG in RUN --mount from= (nor in COPY --from=): an ARG reaches them through a stage
    dockerfile = (
        "ARG BASE=localhost:5000/t2t/base:ubuntu16.04\nARG TOOL=x\nFROM ${TOOL} AS tool\n"
        "FROM ${BASE}\nRUN --mount=from=tool ls\n"
    )
    assert [edge[0] for edge in infer(tmp_path, dockerfile)] == ["base"]
    text = INFER.replace('app: {context: app, tags: ["app:1"]}', 'app: {context: app, args: {TOOL: "tool:1"}}')
    pipeline = load(tmp_path / "2", text, {**dockerfiles("base", "cuda", "tool"), "app/Dockerfile": dockerfile})
    assert [edge.parent for edge in pipeline.targets["app"].parents] == ["tool", "base"]


def test_an_arg_in_copy_from_or_mount_from_is_refused_as_buildkit_refuses_it(tmp_path: Path) -> None:
    for line, message in [
        ("RUN --mount=from=$TOOL ls", "'from' doesn't support variable expansion, define alias stage instead"),
        ("COPY --from=${TOOL} /a /a", "variable expansion is not supported for --from"),
    ]:
        lines = problems(
            tmp_path / str(len(line)),
            INFER,
            {**dockerfiles("base", "cuda", "tool"), "app/Dockerfile": f"ARG TOOL=tool:1\nFROM scratch\n{line}\n"},
        )
        assert len(lines) == 1 and message in lines[0] and "app/Dockerfile:3: " in lines[0], lines


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


def test_a_target_stage_the_dockerfile_does_not_have(tmp_path: Path) -> None:
    text = "version: 1\ntargets:\n  a: {context: a, stage: runtme}\n  b: {context: a, stage: Runtime}\n"
    line = one_problem(tmp_path, text, {"a/Dockerfile": "FROM x AS build\nFROM y AS runtime\n"})
    assert line == (
        f"{tmp_path / 'buildflow.yaml'}:3: targets.a.stage: no stage 'runtme' in {tmp_path / 'a' / 'Dockerfile'} "
        "(its stages: build, runtime) — did you mean 'runtime'?"
    )  # b names it in other letters: BuildKit finds stages whatever their case


def test_unresolved_from_lines_are_warned_once_per_dockerfile_line(tmp_path: Path) -> None:
    text = """\
        version: 1
        targets:
          a: {context: shared, matrix: {v: ["1", "2"]}, args: {V: "{v}"}}
          b: {context: shared}
        """
    dockerfile = "ARG IMAGE\nARG V\nFROM ${IMAGE}:$V AS base\nFROM base\n"
    pipeline = load(tmp_path, text, {"shared/Dockerfile": dockerfile})
    assert [target.bases for target in pipeline.targets.values()] == [{}, {}, {}]
    assert pipeline.warnings == (
        f"{tmp_path / 'shared' / 'Dockerfile'}:3: FROM ${{IMAGE}}:$V: ARG IMAGE has no default and no build arg sets "
        "it (target a); no parent or base is taken from this line: give the ARG a default or set it in the "
        "target's args",
    )


def test_onbuild_triggers_of_a_declared_parent_reach_the_child(tmp_path: Path) -> None:
    pipeline = load(
        tmp_path,
        """\
        version: 1
        registry: localhost:5000/t
        targets:
          assets: {context: assets, tags: ["assets:1"]}
          builder: {context: builder}
          app: {context: app, from: builder}
        """,
        {
            "assets/Dockerfile": "FROM scratch\n",
            "builder/Dockerfile": "FROM node:20\nONBUILD COPY --from=assets:1 /a /a\nONBUILD COPY --from=0 /b /b\n",
            "app/Dockerfile": "ARG BASE_IMAGE=builder\nFROM ${BASE_IMAGE}\n",
        },
    )
    assert [(e.parent, e.kind, e.instruction) for e in pipeline.targets["app"].parents] == [
        ("builder", EdgeKind.FROM, ""),
        ("assets", EdgeKind.INFERRED, "ONBUILD COPY --from"),
    ]  # --from=0 names the app's own first stage when the trigger runs there
    assert pipeline.targets["builder"].parents == () and dict(pipeline.targets["builder"].bases) == {"node:20": ""}
