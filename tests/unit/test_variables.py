"""Variables and tags: defaults, scopes flowing down the DAG, built-ins, templates, the reference grammar."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import dockerfiles, load, one_problem, problems

HIERARCHY = """\
    version: 1
    registry: localhost:5000/t2t
    vars: {ubuntu: "16.04"}
    defaults: {network: host, args: {COMMON: "1"}, labels: {team: ml}}
    targets:
      base: {context: base, tags: ["base:ubuntu{ubuntu}"]}
      cuda: {context: cuda, from: base, vars: {cuda: "9.0"}, tags: ["cuda:{cuda}-ubuntu{ubuntu}"]}
      framework:
        context: framework
        from: cuda
        matrix: {tf: ["1.8.0", "1.15.5"]}
        args: {TF_VERSION: "{tf}"}
        labels: {tf: "{tf}"}
        tags: ["tensorflow:{tf}-cuda{cuda}"]
      app:
        context: app
        from: framework
        vars: {t2t: "1.6"}
        tags: ["t2t:tf{tf}-t2t{t2t}-cuda{cuda}", "t2t:{target}-{fingerprint}"]
    """
FILES = dockerfiles("base", "cuda", "framework", "app")


def test_variables_flow_down_to_every_descendant(tmp_path: Path) -> None:
    pipeline = load(tmp_path, HIERARCHY, FILES)
    app = pipeline.targets["app[tf=1.8.0]"]
    assert app.tags[0] == "localhost:5000/t2t/t2t:tf1.8.0-t2t1.6-cuda9.0"
    assert app.variables["ubuntu"] == "16.04" and app.variables["cuda"] == "9.0" and app.variables["tf"] == "1.8.0"


def test_fingerprint_variable_is_filled_in_tags(tmp_path: Path) -> None:
    app = load(tmp_path, HIERARCHY, FILES).targets["app[tf=1.15.5]"]
    assert app.tags[1] == f"localhost:5000/t2t/t2t:app-{app.fingerprint[:12]}"


def test_defaults_are_inherited_and_mappings_merge(tmp_path: Path) -> None:
    framework = load(tmp_path, HIERARCHY, FILES).targets["framework[tf=1.8.0]"]
    assert framework.network == "host"
    assert dict(framework.args) == {"COMMON": "1", "TF_VERSION": "1.8.0"}
    assert dict(framework.labels) == {"team": "ml", "tf": "1.8.0"}


def test_var_overrides_pipeline_variables(tmp_path: Path) -> None:
    pipeline = load(tmp_path, HIERARCHY, FILES, overrides={"ubuntu": "18.04"})
    assert pipeline.targets["base"].tags == ("localhost:5000/t2t/base:ubuntu18.04",)


def test_unknown_var_override_is_a_problem(tmp_path: Path) -> None:
    line = one_problem(tmp_path, HIERARCHY, FILES, overrides={"ubunt": "18.04"})
    assert line == "--var ubunt: not a pipeline variable — did you mean 'ubuntu'?; declare it under vars:"


def test_registry_override(tmp_path: Path) -> None:
    pipeline = load(tmp_path, HIERARCHY, FILES, registry="registry.example:443/ml")
    assert pipeline.targets["base"].tags == ("registry.example:443/ml/base:ubuntu16.04",)


def test_undefined_variable_names_target_template_and_suggestion(tmp_path: Path) -> None:
    text = HIERARCHY.replace("{t2t}-cuda", "{t2tt}-cuda")
    line = one_problem(tmp_path, text, FILES)
    assert (
        "targets.app.tags[0]: undefined variable 't2tt' in 't2t:tf{tf}-t2t{t2tt}-cuda{cuda}' (target app[tf=1.8.0])"
        in line
    )
    assert line.endswith("did you mean 't2t'?")


def test_a_variable_from_a_sibling_branch_is_undefined(tmp_path: Path) -> None:
    line = one_problem(
        tmp_path,
        """\
        version: 1
        targets:
          a: {vars: {only_a: "1"}, tags: ["a:1"]}
          b: {tags: ["b:{only_a}"]}
        """,
        dockerfiles("."),
    )
    assert "undefined variable 'only_a'" in line


def test_conflicting_parent_variables_are_ambiguous_only_when_used(tmp_path: Path) -> None:
    text = """\
        version: 1
        targets:
          a: {vars: {v: "1"}, tags: ["a:1"]}
          b: {vars: {v: "2"}, tags: ["b:1"]}
          c: {from: a, depends_on: b, tags: ["c:{v}"]}
        """
    line = one_problem(tmp_path, text, dockerfiles("."))
    assert "variable 'v' is ambiguous (a gives '1', b gives '2'); set it on this target" in line
    assert load(
        tmp_path / "fixed", text.replace('tags: ["c:{v}"]', 'vars: {v: "3"}, tags: ["c:{v}"]'), dockerfiles(".")
    ).targets["c"].tags == ("c:3",)


def test_builtin_names_cannot_be_redefined(tmp_path: Path) -> None:
    line = one_problem(tmp_path, "version: 1\nvars: {date: x}\ntargets: {a: {}}\n", dockerfiles("."))
    assert "vars.date: 'date' is a built-in variable; choose another name" in line


def test_git_variables_come_from_the_checkout(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    text = 'version: 1\ntargets: {a: {tags: ["a:{git_commit_short}", "a:{git_branch_slug}"]}}\n'
    path = tmp_path / "buildflow.yaml"
    path.write_text(text)
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    for command in (["init", "-q", "-b", "feature/x"], ["add", "."], ["commit", "-q", "-m", "m"]):
        subprocess.run(["git", *command], cwd=tmp_path, check=True, env=env)
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    from buildflow.pipeline.loader import load_pipeline

    assert load_pipeline(path).targets["a"].tags == (f"a:{commit[:12]}", "a:feature-x")


def test_git_variables_outside_a_checkout_say_how_to_set_them(tmp_path: Path) -> None:
    line = one_problem(tmp_path, 'version: 1\ntargets: {a: {tags: ["a:{git_commit}"]}}\n', dockerfiles("."))
    assert "is not in a git checkout; pass --var git_commit=VALUE" in line
    pipeline = load(
        tmp_path,
        'version: 1\ntargets: {a: {tags: ["a:{git_commit}"]}}\n',
        dockerfiles("."),
        overrides={"git_commit": "abc"},
    )
    assert pipeline.targets["a"].tags == ("a:abc",)


def test_date_follows_source_date_epoch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1532131200")
    pipeline = load(tmp_path, 'version: 1\ntargets: {a: {tags: ["a:{date}"]}}\n', dockerfiles("."))
    assert pipeline.targets["a"].tags == ("a:20180721",)


def test_shell_style_braces_are_left_alone(tmp_path: Path) -> None:
    pipeline = load(
        tmp_path,
        """\
        version: 1
        vars: {v: "1"}
        targets: {a: {args: {A: "${HOME}-{v}-{{literal}}"}, labels: {json: '{"k": 1}'}}}
        """,
        dockerfiles("."),
    )
    assert pipeline.targets["a"].args["A"] == "${HOME}-1-{literal}"
    assert pipeline.targets["a"].labels["json"] == '{"k": 1}'


@pytest.mark.parametrize(
    ("tag", "reason"),
    [
        ("Base:1", "repository names must be lowercase"),
        ("base:.1", "a tag is at most 128 letters"),
        ("base:", "an empty name or tag"),
        ("base@sha256:" + "a" * 64, "a tag cannot contain a digest"),
        ("base:" + "x" * 129, "a tag is at most 128 letters"),
    ],
)
def test_invalid_tags_are_problems(tmp_path: Path, tag: str, reason: str) -> None:
    line = one_problem(tmp_path, f'version: 1\ntargets: {{a: {{tags: ["{tag}"]}}}}\n', dockerfiles("."))
    assert f"targets.a.tags[0]: '{tag}' is not a valid tag: {reason}" in line


def test_a_tag_rendered_invalid_names_its_template(tmp_path: Path) -> None:
    line = one_problem(
        tmp_path,
        """\
        version: 1
        targets: {a: {matrix: {v: [A1]}, tags: ["a:{v}", "img-{v}:1"]}}
        """,
        dockerfiles("."),
    )
    assert (
        "'img-A1:1' (from 'img-{v}:1', target a[v=A1]) is not a valid tag: repository names must be lowercase" in line
    )


def test_tags_default_to_latest_and_keep_their_own_registry(tmp_path: Path) -> None:
    pipeline = load(
        tmp_path,
        """\
        version: 1
        registry: localhost:5000/team
        targets: {a: {tags: [app, "registry.example/other/app:1"]}}
        """,
        dockerfiles("."),
    )
    assert pipeline.targets["a"].tags == ("localhost:5000/team/app:latest", "registry.example/other/app:1")


def test_two_images_cannot_publish_one_tag(tmp_path: Path) -> None:
    line = one_problem(
        tmp_path,
        """\
        version: 1
        targets: {a: {matrix: {device: [cpu, gpu]}, tags: ["tensorflow:1.8"]}}
        """,
        dockerfiles("."),
    )
    assert (
        "tensorflow:1.8 is produced by both a[device=cpu] and a[device=gpu]; "
        "put the matrix variables in the tag, e.g. {device}"
    ) in line


def test_invalid_registry_is_a_problem(tmp_path: Path) -> None:
    assert problems(tmp_path, "version: 1\ntargets: {a: {}}\n", dockerfiles("."), registry="Bad Registry") == [
        "--registry: 'Bad Registry' is not a registry like localhost:5000/team"
    ]
