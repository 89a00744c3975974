"""Matrix targets: expansion, inherited axes, conditional parents, exclude/include, duplicates, limits."""

from __future__ import annotations

from pathlib import Path

from buildflow.pipeline.matrix import MAX_IMAGES_PER_TARGET
from tests.conftest import dockerfiles, load, one_problem, problems

FILES = dockerfiles(".")


def ids(pipeline: object) -> list[str]:
    return list(pipeline.targets)  # type: ignore[attr-defined]


def test_matrix_fans_out_and_children_inherit_axes(tmp_path: Path) -> None:
    pipeline = load(
        tmp_path,
        """\
        version: 1
        targets:
          framework: {matrix: {tf: ["1.8.0", "1.15.5"], device: [cpu, gpu]}, tags: ["tf:{tf}-{device}"]}
          app: {from: framework, tags: ["app:{tf}-{device}"]}
        """,
        FILES,
    )
    assert ids(pipeline) == [
        "framework[tf=1.8.0,device=cpu]",
        "framework[tf=1.8.0,device=gpu]",
        "framework[tf=1.15.5,device=cpu]",
        "framework[tf=1.15.5,device=gpu]",
        "app[tf=1.8.0,device=cpu]",
        "app[tf=1.8.0,device=gpu]",
        "app[tf=1.15.5,device=cpu]",
        "app[tf=1.15.5,device=gpu]",
    ]
    app = pipeline.targets["app[tf=1.15.5,device=gpu]"]
    assert [edge.parent for edge in app.parents] == ["framework[tf=1.15.5,device=gpu]"]


def test_numbers_and_booleans_become_text(tmp_path: Path) -> None:
    pipeline = load(tmp_path, 'version: 1\ntargets: {a: {matrix: {v: [1.10, 2, true]}, tags: ["a:{v}"]}}\n', FILES)
    assert ids(pipeline) == ["a[v=1.10]", "a[v=2]", "a[v=true]"]


def test_child_axes_multiply_inherited_ones(tmp_path: Path) -> None:
    pipeline = load(
        tmp_path,
        """\
        version: 1
        targets:
          base: {matrix: {os: [a, b]}, tags: ["base:{os}"]}
          app: {from: base, matrix: {py: ["3.10", "3.11"]}, tags: ["app:{os}-{py}"]}
        """,
        FILES,
    )
    assert ids(pipeline)[2:] == ["app[os=a,py=3.10]", "app[os=a,py=3.11]", "app[os=b,py=3.10]", "app[os=b,py=3.11]"]


def test_conditional_parents_and_exclude_on_inherited_axes(tmp_path: Path) -> None:
    pipeline = load(
        tmp_path,
        """\
        version: 1
        targets:
          base: {tags: ["base:1"]}
          cuda: {from: base, matrix: {cuda: ["9.0", "10.0"]}, tags: ["cuda:{cuda}"]}
          tf:
            from: [{target: base, when: {device: cpu}}, {target: cuda, when: {device: gpu}}]
            matrix:
              tf: ["1.8", "1.15"]
              device: [gpu, cpu]
              exclude: [{cuda: "10.0", tf: "1.8"}, {cuda: "9.0", tf: "1.15"}]
            tags: ["tf:{tf}-{device}"]
        """,
        FILES,
    )
    assert ids(pipeline)[3:] == [
        "tf[tf=1.8,device=cpu]",
        "tf[tf=1.15,device=cpu]",
        "tf[cuda=9.0,tf=1.8,device=gpu]",
        "tf[cuda=10.0,tf=1.15,device=gpu]",
    ]
    assert pipeline.targets["tf[tf=1.8,device=cpu]"].parents[0].parent == "base"


def test_include_adds_variables_to_matching_combinations(tmp_path: Path) -> None:
    pipeline = load(
        tmp_path,
        """\
        version: 1
        targets:
          tf: {matrix: {tf: ["1.8.0", "1.15.5"]}, tags: ["tf:{tf}"]}
          t2t:
            from: tf
            matrix: {include: [{tf: "1.8.0", t2t: "1.6"}, {tf: "1.15.5", t2t: "1.15"}]}
            tags: ["t2t:tf{tf}-t2t{t2t}"]
        """,
        FILES,
    )
    assert pipeline.targets["t2t[tf=1.15.5]"].tags == ("t2t:tf1.15.5-t2t1.15",)


def test_exclude_and_include_must_name_real_things(tmp_path: Path) -> None:
    lines = problems(
        tmp_path,
        """\
        version: 1
        targets:
          a:
            matrix: {tf: ["1"], exclude: [{tff: "1"}], include: [{tf: "2", x: "y"}]}
            tags: ["a:{tf}"]
        """,
        FILES,
    )
    assert any("matrix.exclude[0].tff: 'tff' is not a matrix axis of a — did you mean 'tf'?" in line for line in lines)
    assert any("matrix.include[0]: matches no combination; check its values" in line for line in lines)


def test_excluding_everything_is_a_problem(tmp_path: Path) -> None:
    line = one_problem(tmp_path, 'version: 1\ntargets: {a: {matrix: {v: ["1"], exclude: [{v: "1"}]}}}\n', FILES)
    assert "excludes every combination; nothing is left to build" in line


def test_repeated_values_give_duplicate_targets(tmp_path: Path) -> None:
    line = one_problem(tmp_path, 'version: 1\ntargets: {a: {matrix: {v: ["1.0", 1.0]}, tags: ["a:{v}"]}}\n', FILES)
    assert "targets.a.matrix: duplicate target a[v=1.0] after matrix expansion" in line


def test_an_axis_cannot_shadow_an_inherited_one(tmp_path: Path) -> None:
    line = one_problem(
        tmp_path,
        """\
        version: 1
        targets:
          a: {matrix: {v: ["1"]}, tags: ["a:{v}"]}
          b: {from: a, matrix: {v: ["2"]}, tags: ["b:{v}"]}
        """,
        FILES,
    )
    assert "targets.b.matrix.v: 'v' is already inherited from a; rename the axis" in line


def test_when_must_name_own_axes(tmp_path: Path) -> None:
    line = one_problem(
        tmp_path,
        """\
        version: 1
        targets:
          a: {tags: ["a:1"]}
          b: {from: [{target: a, when: {devise: gpu}}], matrix: {device: [gpu]}, tags: ["b:{device}"]}
        """,
        FILES,
    )
    assert "targets.b.from[0].when.devise: 'devise' is not a matrix axis of b — did you mean 'device'?" in line


def test_matrix_explosion_is_refused_before_expanding(tmp_path: Path) -> None:
    axes = ", ".join(f"a{i}: [{', '.join(str(v) for v in range(10))}]" for i in range(12))
    line = one_problem(tmp_path, f"version: 1\ntargets: {{x: {{matrix: {{{axes}}}}}}}\n", FILES)
    assert f"1000000000000 combinations; the limit is {MAX_IMAGES_PER_TARGET} per target" in line


def test_inherited_explosion_is_refused(tmp_path: Path) -> None:
    lines = problems(
        tmp_path,
        """\
        version: 1
        targets:
          a: {matrix: {x: [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]}, tags: ["a:{x}"]}
          b: {matrix: {y: [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]}, tags: ["b:{y}"]}
          c: {from: [a, b], matrix: {z: [0, 1]}, tags: ["c:{x}-{y}-{z}"]}
        """,
        FILES,
    )
    assert any(f"targets.c.matrix: expands to more than {MAX_IMAGES_PER_TARGET} images" in line for line in lines)
