"""buildflow ci github|gitlab|make: valid against the official schemas, the DAG as needs and prerequisites,
deterministic, checked with --check, within the CI systems' limits, ids named and quoted safely."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from buildflow.cli import main
from buildflow.output.ci import job_keys, quoted, readable_key, selected_edges
from buildflow.pipeline.loader import load_pipeline
from buildflow.plan.planner import Plan, make_plan
from tests.conftest import REPO, run_make

PIPELINES = [
    "pipelines/t2t/buildflow.yaml",
    "pipelines/recommenders/buildflow.yaml",
    "examples/quickstart/buildflow.yaml",
]
GITHUB_JOB_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
MAKE_RULE = re.compile(r"^([A-Za-z0-9_-]+):([^#]*)## (.*)$")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(argv))
    captured = capsys.readouterr()
    return int(done.value.code or 0), captured.out, captured.err


def generate(capsys: pytest.CaptureFixture[str], kind: str, file: str | Path, *args: str) -> str:
    code, out, err = run(capsys, "ci", kind, "-f", str(file), *args)
    assert code == 0, err
    return out


def tree_pipeline(root: Path, count: int) -> Path:
    """A 4-ary tree of `count` targets sharing one context, as bench/plan_scale.py generates it."""
    targets: dict[str, Any] = {}
    for index in range(count):
        target: dict[str, Any] = {"args": {"N": str(index)}, "tags": [f"t{index}:latest"]}
        if index:
            target["from"] = f"t{(index - 1) // 4}"
        targets[f"t{index}"] = target
    (root / "ctx").mkdir(parents=True, exist_ok=True)
    (root / "ctx" / "Dockerfile").write_text("ARG BASE_IMAGE=scratch\nFROM ${BASE_IMAGE}\nARG N\nLABEL n=${N}\n")
    document = {"version": 1, "registry": "localhost:5000/tree", "defaults": {"context": "ctx"}, "targets": targets}
    path = root / "buildflow.json"
    path.write_text(json.dumps(document))
    return path


def matrix_pipeline(root: Path, images: int, extra: str = "") -> Path:
    """A pipeline of one matrix target of `images` images, and whatever `extra` adds."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "ctx").mkdir(exist_ok=True)
    (root / "ctx" / "Dockerfile").write_text("FROM scratch\n")
    values = ", ".join(f'"{n}"' for n in range(images))
    path = root / "buildflow.yaml"
    path.write_text(
        "version: 1\nregistry: localhost:5000/m\ndefaults: {context: ctx}\ntargets:\n"
        f'  wide: {{matrix: {{n: [{values}]}}, tags: ["wide:{{n}}"]}}\n{extra}'
    )
    return path


@pytest.fixture(autouse=True)
def in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands run at the repository root, where CI runs them, with relative pipeline paths."""
    monkeypatch.chdir(REPO)


def plan_of(file: str | Path) -> Plan:
    return make_plan(load_pipeline(Path(file)))


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tree_pipeline(tmp_path_factory.mktemp("tree"), 100)


def all_pipelines(tree: Path) -> list[str]:
    return [*PIPELINES, str(tree)]


def load(text: str) -> dict[Any, Any]:
    document = yaml.safe_load(text)
    assert isinstance(document, dict)
    return document


# ---- schemas --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "schema"), [("github", "vendor.github-workflows"), ("gitlab", "vendor.gitlab-ci")])
def test_every_output_validates_against_the_official_schema(
    capsys: pytest.CaptureFixture[str], tree: Path, tmp_path: Path, kind: str, schema: str
) -> None:
    """The workflows and child pipelines of every shipped pipeline and a 100-image tree, in both shards (and for
    GitHub every trigger), pass check-jsonschema's vendored SchemaStore schema, offline."""
    if not CHECK_JSONSCHEMA.exists():
        pytest.skip("check-jsonschema is not installed (pip install -e '.[dev]')")
    variants = [["--shard", "target"], ["--shard", "generation"]]
    if kind == "github":
        variants.append(["--trigger", "push", "--trigger", "schedule", "--trigger", "workflow_call"])
    files = []
    for index, file in enumerate(all_pipelines(tree)):
        for number, args in enumerate(variants):
            path = tmp_path / f"{index}-{number}.yml"
            path.write_text(generate(capsys, kind, file, *args))
            files.append(str(path))
    done = subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", schema, *files], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


# ---- the DAG as needs and prerequisites ---------------------------------------------------------------------------


def github_edges(workflow: dict[Any, Any]) -> tuple[set[tuple[str, str]], dict[str, Any]]:
    """(parent id, child id) for every `needs:` between build jobs, and the build jobs by key."""
    jobs = dict(workflow["jobs"])
    release = jobs.pop("release")
    assert release["needs"] == list(jobs)
    ids = {key: job["name"] for key, job in jobs.items()}
    edges = {(ids[parent], ids[key]) for key, job in jobs.items() for parent in job.get("needs", [])}
    return edges, jobs


def test_github_needs_are_the_plans_edges(capsys: pytest.CaptureFixture[str], tree: Path) -> None:
    """Each build job needs exactly the jobs of its image's parents; the release job needs every build job."""
    for file in all_pipelines(tree):
        workflow = load(generate(capsys, "github", file))
        edges, jobs = github_edges(workflow)
        plan = plan_of(file)
        assert edges == selected_edges(plan), file
        assert [job["name"] for job in jobs.values()] == [step.target.id for step in plan.steps]
        assert all(GITHUB_JOB_ID.match(key) for key in workflow["jobs"])


def gitlab_builds(pipeline: dict[Any, Any]) -> dict[str, Any]:
    return {name[len("build:") :]: job for name, job in pipeline.items() if name.startswith("build:")}


def test_gitlab_needs_are_the_plans_edges(capsys: pytest.CaptureFixture[str], tree: Path) -> None:
    """Each build job needs exactly its parents' jobs; the release job, in .post, needs every build job when they
    fit GitLab's limit of 50 and otherwise waits for them as the last stage."""
    for file in all_pipelines(tree):
        pipeline = load(generate(capsys, "gitlab", file))
        builds = gitlab_builds(pipeline)
        edges = {(need[len("build:") :], child) for child, job in builds.items() for need in job["needs"]}
        plan = plan_of(file)
        assert edges == selected_edges(plan), file
        assert list(builds) == [step.target.id for step in plan.steps]
        release = pipeline["release"]
        assert release["stage"] == ".post" and release["resource_group"] == "buildflow-release"
        if len(builds) <= 50:
            assert release["needs"] == [f"build:{image}" for image in builds]
        else:
            assert "needs" not in release
        for job in builds.values():
            assert job["stage"] == "build" and job["artifacts"]["reports"]["junit"].endswith(".xml")


def make_rules(text: str) -> dict[str, tuple[list[str], str]]:
    """target -> (prerequisites, help text) of the rules with a ## help comment."""
    rules = {}
    for line in text.splitlines():
        match = MAKE_RULE.match(line)
        if match:
            rules[match[1]] = (match[2].split(), match[3])
    return rules


def test_makefile_prerequisites_are_the_plans_edges(capsys: pytest.CaptureFixture[str], tree: Path) -> None:
    """Each image's make target depends on its parents' targets; `all` on every image, `release` on all."""
    for file in all_pipelines(tree):
        text = generate(capsys, "make", file)
        rules = make_rules(text)
        images = {name: rule for name, rule in rules.items() if name not in {"help", "all", "release"}}
        ids = {name: help_text for name, (_, help_text) in images.items()}
        edges = {(ids[parent], ids[name]) for name, (parents, _) in images.items() for parent in parents}
        assert edges == selected_edges(plan_of(file)), file
        assert rules["release"][0] == ["all"]
        joined = text.replace("\\\n", "")
        all_line = next(line for line in joined.splitlines() if line.startswith("all: ") and "##" not in line)
        assert all_line.split()[1:] == list(images)


def test_generation_shard_needs_the_previous_generation(capsys: pytest.CaptureFixture[str], tree: Path) -> None:
    """--shard generation: one job per generation building all its images, needing only the generation before."""
    for file in all_pipelines(tree):
        plan = plan_of(file)
        generations: dict[int, list[str]] = {}
        for step in plan.steps:
            generations.setdefault(step.generation, []).append(step.target.id)
        jobs = dict(load(generate(capsys, "github", file, "--shard", "generation"))["jobs"])
        release = jobs.pop("release")
        assert list(jobs) == [f"generation-{number}" for number in generations]
        assert release["needs"] == list(jobs)
        for index, (key, job) in enumerate(jobs.items()):
            assert job.get("needs", []) == ([list(jobs)[index - 1]] if index else [])
            build = next(step["run"] for step in job["steps"] if step.get("name") == "Build")
            words = shlex.split(build)
            assert [words[i + 1] for i, word in enumerate(words) if word == "--only"] == generations[int(key[11:])]
        gitlab = load(generate(capsys, "gitlab", file, "--shard", "generation"))
        assert all(len(job["needs"]) <= 1 for job in gitlab_builds(gitlab).values())


# ---- the jobs' commands -------------------------------------------------------------------------------------------


def test_github_jobs_set_up_the_engine_build_one_image_and_upload_their_reports(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every build job sets up as examples/scheduled does, builds exactly its image without releasing, and uploads
    its reports under a name of its own; the workflow queues runs instead of cancelling them."""
    workflow = load(generate(capsys, "github", "pipelines/t2t/buildflow.yaml"))
    assert workflow["concurrency"]["cancel-in-progress"] is False
    assert "${{ github.workflow }}" in workflow["concurrency"]["group"]
    assert "${{ github.ref }}" in workflow["concurrency"]["group"]
    triggers = workflow["on"] if "on" in workflow else workflow[True]
    assert list(triggers) == ["workflow_call"]
    artifacts = []
    for key, job in workflow["jobs"].items():
        uses = [step.get("uses", "").partition("@")[0] for step in job["steps"]]
        assert uses[:2] == ["actions/checkout", "actions/setup-python"]
        buildx = next(step for step in job["steps"] if step.get("uses", "").startswith("docker/setup-buildx-action"))
        assert buildx["with"] == {"driver": "docker"}
        upload = job["steps"][-1]
        assert upload["uses"].startswith("actions/upload-artifact") and upload["if"] == "always()"
        artifacts.append(upload["with"]["name"])
        command = shlex.split(job["steps"][-2]["run"])
        if key == "release":
            assert command[:4] == ["buildflow", "release", "-f", "pipelines/t2t/buildflow.yaml"]
            assert "--report" in command and "--summary" in command
        else:
            assert command[:6] == ["buildflow", "build", "-f", "pipelines/t2t/buildflow.yaml", "--only", job["name"]]
            assert command[6:] == ["--no-release", "--report", f"reports/{key}.json", "--junit", f"reports/{key}.xml"]
    assert len(set(artifacts)) == len(artifacts)


def test_github_triggers(capsys: pytest.CaptureFixture[str]) -> None:
    """push runs on the branch, schedule nightly, both also by hand; the command in the header names them."""
    text = generate(
        capsys, "github", "examples/quickstart/buildflow.yaml", "--trigger", "push", "--trigger", "schedule"
    )
    workflow = load(text)
    triggers = workflow["on"] if "on" in workflow else workflow[True]
    assert triggers == {"push": {"branches": ["main"]}, "schedule": [{"cron": "17 3 * * *"}], "workflow_dispatch": None}
    assert text.splitlines()[0] == (
        "# Written by buildflow ci github -f examples/quickstart/buildflow.yaml --trigger push --trigger schedule; "
        "do not edit: regenerate, or check with --check"
    )
    other = load(generate(capsys, "github", "examples/quickstart/buildflow.yaml", "--trigger", "push", "--branch", "x"))
    assert (other["on"] if "on" in other else other[True])["push"] == {"branches": ["x"]}


def test_the_header_names_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    """The first line is the command that wrote the file, selection and --var included."""
    for kind in ("github", "gitlab", "make"):
        text = generate(capsys, kind, "pipelines/t2t/buildflow.yaml", "t2t", "--var", "ubuntu=18.04")
        assert text.splitlines()[0] == (
            f"# Written by buildflow ci {kind} -f pipelines/t2t/buildflow.yaml --var ubuntu=18.04 t2t; "
            "do not edit: regenerate, or check with --check"
        )


def test_var_and_registry_reach_every_command_and_a_partial_release_names_its_images(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Jobs see the pipeline the file was written from: --var and --registry are passed on; a release of part of
    the pipeline names exactly the selected images."""
    file = "examples/quickstart/buildflow.yaml"
    pipeline = load(generate(capsys, "gitlab", file, "app", "--var", "release=1.0", "--registry", "r.example:5000"))
    for name, job in pipeline.items():
        if name.startswith("build:") or name == "release":
            words = shlex.split(job["script"][0])
            assert words[4:8] == ["--var", "release=1.0", "--registry", "r.example:5000"], name
    release = shlex.split(pipeline["release"]["script"][0])
    assert release[8:11] == ["base", "tools[flavour=small]", "app"] and release[11] == "--report"
    whole = load(generate(capsys, "gitlab", file))
    assert shlex.split(whole["release"]["script"][0])[4] == "--report"


def test_ids_are_quoted_for_the_shell_and_for_make(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """An id with a quote and a dollar sign reaches buildflow as it is, from a GitHub step and from make."""
    path = matrix_pipeline(tmp_path, 0)
    path.write_text(
        "version: 1\nregistry: localhost:5000/m\ndefaults: {context: ctx}\ntargets:\n"
        '  odd:\n    matrix: {v: ["it\'s", "$HOME", "a#b%c"]}\n    args: {V: "{v}"}\n    tags: ["odd:{fingerprint}"]\n'
    )
    ids = [step.target.id for step in plan_of(path).steps]
    assert ids == ["odd[v=it's]", "odd[v=$HOME]", "odd[v=a#b%c]"]
    jobs = load(generate(capsys, "github", path))["jobs"]
    built = [shlex.split(job["steps"][-2]["run"])[5] for key, job in jobs.items() if key != "release"]
    assert built == ids
    makefile = tmp_path / "buildflow.mk"
    makefile.write_text(generate(capsys, "make", path))
    done = run_make("-n", "-f", str(makefile), "all")
    assert [shlex.split(line)[5] for line in done.stdout.splitlines()] == ids


# ---- determinism and --check --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["github", "gitlab", "make"])
def test_output_is_deterministic(capsys: pytest.CaptureFixture[str], kind: str) -> None:
    """The same pipeline gives the same bytes, run after run."""
    first = generate(capsys, kind, "pipelines/t2t/buildflow.yaml")
    assert generate(capsys, kind, "pipelines/t2t/buildflow.yaml") == first
    assert first.endswith("\n") and not first.endswith("\n\n")


@pytest.mark.parametrize("kind", ["github", "gitlab", "make"])
def test_check_passes_on_a_fresh_file_and_fails_on_a_changed_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, kind: str
) -> None:
    """-o writes the file, --check exits 0 on it, and 1 with one line naming the file and the command to
    regenerate it once it changed or when it is missing."""
    path = tmp_path / "out" / "ci.yml"
    file = "examples/quickstart/buildflow.yaml"
    assert run(capsys, "ci", kind, "-f", file, "-o", str(path))[0] == 0
    assert path.read_text() == generate(capsys, kind, file)
    assert run(capsys, "ci", kind, "-f", file, "--check", str(path)) == (0, "", "")
    path.write_text(path.read_text().replace("base", "bass", 1))
    code, out, err = run(capsys, "ci", kind, "-f", file, "--check", str(path))
    assert code == 1 and out == ""
    assert err == f"{path}: out of date; regenerate it with: buildflow ci {kind} -f {file} -o {path}\n"
    path.unlink()
    code, _, err = run(capsys, "ci", kind, "-f", file, "--check", str(path))
    assert code == 1 and err.startswith(f"{path}: missing; regenerate it with: ")


def test_examples_buildflow_mk_is_up_to_date(capsys: pytest.CaptureFixture[str]) -> None:
    """examples/buildflow.mk is what `buildflow ci make` writes for examples/quickstart."""
    code, _, err = run(
        capsys, "ci", "make", "-f", "examples/quickstart/buildflow.yaml", "--check", "examples/buildflow.mk"
    )
    assert code == 0, err


# ---- limits and bad input -----------------------------------------------------------------------------------------


def test_github_job_limit(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """256 images and the release are 257 jobs, over GitHub's 256: exit 2 naming the limit and --shard generation,
    which fits; 255 images fit."""
    path = matrix_pipeline(tmp_path / "over", 256)
    code, out, err = run(capsys, "ci", "github", "-f", str(path))
    assert code == 2 and out == ""
    assert err == (
        "ci github: 257 jobs (256 builds and the release) over GitHub's limit of 256 jobs per workflow run "
        "(https://docs.github.com/en/actions/reference/limits); --shard generation fits (2 jobs)\n"
    )
    assert len(load(generate(capsys, "github", path, "--shard", "generation"))["jobs"]) == 2
    assert len(load(generate(capsys, "github", matrix_pipeline(tmp_path / "fits", 255)))["jobs"]) == 256


def test_gitlab_needs_limit(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A job that needs 51 jobs is over GitLab's 50: exit 2 naming the limit and --shard generation; 50 fit."""
    over = matrix_pipeline(tmp_path / "over", 51, '  fan: {depends_on: [wide], tags: ["fan:1"]}\n')
    code, out, err = run(capsys, "ci", "gitlab", "-f", str(over))
    assert code == 2 and out == ""
    assert err == (
        "ci gitlab: build:fan needs 51 jobs (its parents), over GitLab's default limit of 50 needs per job "
        "(https://docs.gitlab.com/ci/yaml/#needs); --shard generation fits: each job needs only the previous "
        "generation's\n"
    )
    pipeline = load(generate(capsys, "gitlab", over, "--shard", "generation"))
    assert pipeline["build:generation-1"]["needs"] == ["build:generation-0"]
    fits = matrix_pipeline(tmp_path / "fits", 50, '  fan: {depends_on: [wide], tags: ["fan:1"]}\n')
    assert len(load(generate(capsys, "gitlab", fits))["build:fan"]["needs"]) == 50


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ci", "jenkins"], "Error: Invalid value for 'KIND': 'jenkins' is not one of 'github', 'gitlab', 'make'."),
        (["ci", "github", "--shard", "image"], "is not one of 'target', 'generation'."),
        (["ci", "github", "--trigger", "cron"], "is not one of 'workflow_call', 'push', 'schedule'."),
        (["ci", "github", "ap"], "unknown target 'ap' — did you mean 'app'?"),
        (["ci", "gitlab", "--trigger", "push"], "ci gitlab: --trigger and --branch are for ci github"),
        (["ci", "make", "--install", "buildflow==0.6.0"], "ci make: --install is for ci github and ci gitlab"),
        (["ci", "make", "-o", "a.mk", "--check", "a.mk"], "ci: -o writes and --check compares: choose one"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, *argv, "-f", "examples/quickstart/buildflow.yaml")
    assert code == 2 and out == ""
    assert len([line for line in err.splitlines() if message in line]) == 1, err


def test_nothing_selected_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--since a commit after which nothing changed selects nothing: there is nothing to write."""
    path = matrix_pipeline(tmp_path, 2)
    monkeypatch.chdir(tmp_path)
    for command in (
        ["init", "--quiet"],
        ["add", "."],
        ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "a"],
    ):
        subprocess.run(["git", *command], cwd=tmp_path, check=True)
    code, out, err = run(capsys, "ci", "github", "-f", path.name, "--since", "HEAD")
    assert (code, out) == (2, "") and err == "buildflow.yaml: no image is selected: nothing to write\n"


# ---- names --------------------------------------------------------------------------------------------------------


def test_job_keys_are_readable() -> None:
    assert readable_key("tf[tf=1.8.0,device=gpu]") == "tf--tf-1-8-0--device-gpu"
    assert job_keys(["base", "cuda[cuda=9.0]"]) == {"base": "base", "cuda[cuda=9.0]": "cuda--cuda-9-0"}


TRICKY = [
    "a[v=1.0]",
    "a[v=1-0]",  # the same readable key as a[v=1.0]
    "A[v=1.0]",  # the same but for case
    "release",  # the release job's name
    "all",
    "7zip",  # starts with a digit
    "x" * 120 + "[v=1]",  # too long
    "odd[v=it's$HOME#%:/]",
    "t.b[os=linux/amd64]",
    "a[v=1.0]-" + "0" * 8,  # looks like a hashed key
]


def test_job_keys_are_unique_valid_and_stable() -> None:
    """Tricky ids get valid, unique keys (case ignored); a hash only where needed; the same key for an id
    whatever the order of the others."""
    keys = job_keys(TRICKY)
    assert len({key.lower() for key in keys.values()}) == len(TRICKY)
    assert all(GITHUB_JOB_ID.match(key) and len(key) <= 100 for key in keys.values())
    assert keys["7zip"] == "_7zip"
    assert keys["t.b[os=linux/amd64]"] == "t-b--os-linux-amd64"
    assert keys["release"].startswith("release-") and keys["all"].startswith("all-")
    assert keys["a[v=1.0]"].startswith("a--v-1-0-") and keys["a[v=1-0]"].startswith("a--v-1-0-")
    assert job_keys(list(reversed(TRICKY))) == keys
    assert job_keys(["a[v=1.0]"]) == {"a[v=1.0]": "a--v-1-0"}


@pytest.mark.parametrize("text", ["plain", "it's", "$HOME", "a'b'c", "'", "tf[tf=1.8.0,device=gpu]"])
def test_quoted_is_one_shell_word(text: str) -> None:
    assert shlex.split(quoted(text)) == [text]
    assert quoted(text).startswith("'")


# ---- make as the engine -------------------------------------------------------------------------------------------


@pytest.mark.skipif(not shutil.which("make"), reason="make is not installed")
@pytest.mark.parametrize(("file", "goal"), [("examples/quickstart/buildflow.yaml", "bundle"), (None, "t21")])
def test_make_runs_the_dag_in_order(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tree: Path, file: str | None, goal: str
) -> None:
    """make -n -j4 runs a goal's ancestry, each image after its parents, each once, nothing else."""
    pipeline = file or str(tree)
    makefile = tmp_path / "buildflow.mk"
    makefile.write_text(generate(capsys, "make", pipeline))
    done = run_make("-n", "-j4", "-f", str(makefile), goal, "BUILDFLOW=bf")
    built = [shlex.split(line)[5] for line in done.stdout.splitlines()]
    plan = plan_of(pipeline)
    wanted = make_plan(plan.pipeline, [goal])
    assert sorted(built) == sorted(step.target.id for step in wanted.steps)
    for parent, child in selected_edges(wanted):
        assert built.index(parent) < built.index(child)
    assert all(line.startswith(f"bf build -f {pipeline} --only ") for line in done.stdout.splitlines())


def test_make_help_lists_every_image(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    makefile = tmp_path / "buildflow.mk"
    makefile.write_text(generate(capsys, "make", "examples/quickstart/buildflow.yaml"))
    done = run_make("-f", str(makefile))
    listed = {line.split()[1]: line.split()[2] for line in done.stdout.splitlines()}
    assert listed["tools--flavour-small"] == "tools[flavour=small]"
    assert {"help", "all", "release", "base", "app", "bundle"} <= set(listed)


def test_docs_show_the_workflow_as_it_is_written(capsys: pytest.CaptureFixture[str]) -> None:
    """Every line of the shortened t2t workflow in docs/ci.md, but the elisions, is a line of the real one."""
    docs = (REPO / "docs" / "ci.md").read_text()
    block = docs.split("```yaml\n", 1)[1].split("```", 1)[0]
    written = set(generate(capsys, "github", "pipelines/t2t/buildflow.yaml").splitlines())
    shown = [line for line in block.splitlines() if "# ..." not in line]
    assert len(shown) > 40
    assert [line for line in shown if line not in written] == []
