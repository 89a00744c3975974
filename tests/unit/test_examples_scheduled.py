"""examples/scheduled: cron, systemd, GitHub Actions and GitLab CI all run nightly.sh; examples/Makefile.include."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO, run_make

SCHEDULED = REPO / "examples" / "scheduled"
MAKEFILE = REPO / "examples" / "Makefile.include"
SCRIPT = "examples/scheduled/nightly.sh"
CALLERS = ["crontab", "buildflow-nightly.service", "github-actions.yml", "gitlab-ci.yml"]
COMMAND = (
    'buildflow build --file "${BUILDFLOW_FILE:-buildflow.yaml}" --keep-going --max-age "${BUILDFLOW_MAX_AGE:-7d}" '
    "--wait --log-format json --report reports/buildflow.json --junit reports/junit.xml --summary reports/summary.md "
    '"$@"'
)
# What nightly.sh passes with the default environment, before the caller's own arguments.
DEFAULT_ARGS = [
    "build",
    "--file",
    "buildflow.yaml",
    "--keep-going",
    "--max-age",
    "7d",
    "--wait",
    "--log-format",
    "json",
    "--report",
    "reports/buildflow.json",
    "--junit",
    "reports/junit.xml",
    "--summary",
    "reports/summary.md",
]


class _Unit(configparser.ConfigParser):
    """A systemd unit file: keys keep their case, values are not interpolated, repeated keys allowed."""

    def __init__(self) -> None:
        super().__init__(strict=False, interpolation=None)

    def optionxform(self, optionstr: str) -> str:
        return optionstr


def read_unit(name: str) -> _Unit:
    parser = _Unit()
    parser.read_string((SCHEDULED / name).read_text())
    return parser


def joined(text: str) -> str:
    """Shell text with backslash-newline continuations (and the indentation after them) joined."""
    return re.sub(r"\\\n\s*", "", text)


def load_yaml(name: str) -> dict[Any, Any]:
    document = yaml.safe_load((SCHEDULED / name).read_text())
    assert isinstance(document, dict)
    return document


def make(*argv: str, cwd: Path = REPO) -> str:
    done = run_make(*argv, cwd=cwd, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


# ---- nightly.sh ---------------------------------------------------------------------------------------------------


def test_nightly_sh_parses_with_bash() -> None:
    """bash -n accepts nightly.sh."""
    done = subprocess.run(["bash", "-n", str(SCHEDULED / "nightly.sh")], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_nightly_sh_is_strict_executable_and_runs_the_command() -> None:
    """nightly.sh is an executable bash script with set -euo pipefail that runs the one buildflow command."""
    path = SCHEDULED / "nightly.sh"
    text = path.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert os.access(path, os.X_OK)
    code = [line for line in joined(text).splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert code[0] == "set -euo pipefail"
    assert "git" in code[1] and "rev-parse --show-toplevel" in code[1] and code[1].startswith("cd ")
    assert code[-1] == f"exec {COMMAND}"


@pytest.fixture
def checkout(tmp_path: Path) -> tuple[Path, Path]:
    """A git repository holding nightly.sh, and a bin directory with a fake buildflow that records its call."""
    repo = tmp_path / "repo"
    (repo / "examples" / "scheduled").mkdir(parents=True)
    shutil.copy2(SCHEDULED / "nightly.sh", repo / "examples" / "scheduled" / "nightly.sh")
    subprocess.run(["git", "init", "--quiet", str(repo)], check=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "buildflow"
    fake.write_text('#!/usr/bin/env bash\npwd > "$CALLED"\nprintf "%s\\n" "$@" >> "$CALLED"\nexit "${FAKE_EXIT:-0}"\n')
    fake.chmod(0o755)
    return repo, bin_dir


def run_nightly(checkout: tuple[Path, Path], tmp_path: Path, *args: str, **env: str) -> tuple[int, list[str]]:
    repo, bin_dir = checkout
    called = tmp_path / "called"
    environment = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "CALLED": str(called),
        **env,
    }
    done = subprocess.run(
        [str(repo / SCRIPT), *args], cwd=tmp_path, env=environment, capture_output=True, text=True, check=False
    )
    assert done.stderr == ""
    return done.returncode, called.read_text().splitlines()


def test_nightly_sh_runs_buildflow_from_the_repository_root(checkout: tuple[Path, Path], tmp_path: Path) -> None:
    """Called from elsewhere (as cron does), nightly.sh runs buildflow at the repository root with its flags."""
    code, called = run_nightly(checkout, tmp_path)
    assert code == 0
    assert Path(called[0]).resolve() == checkout[0].resolve()
    assert called[1:] == DEFAULT_ARGS
    assert (checkout[0] / "reports").is_dir()


def test_nightly_sh_passes_environment_and_arguments(checkout: tuple[Path, Path], tmp_path: Path) -> None:
    """BUILDFLOW_FILE and BUILDFLOW_MAX_AGE override the defaults; extra arguments come last, as given."""
    code, called = run_nightly(
        checkout, tmp_path, "--since", "HEAD~1", "two words", BUILDFLOW_FILE="p/b.yaml", BUILDFLOW_MAX_AGE="12h"
    )
    assert code == 0
    expected = [*DEFAULT_ARGS, "--since", "HEAD~1", "two words"]
    expected[expected.index("buildflow.yaml")] = "p/b.yaml"
    expected[expected.index("7d")] = "12h"
    assert called[1:] == expected


@pytest.mark.parametrize("exit_code", ["1", "4"])
def test_nightly_sh_exits_with_buildflows_code(checkout: tuple[Path, Path], tmp_path: Path, exit_code: str) -> None:
    """buildflow's exit code is the script's exit code."""
    code, _ = run_nightly(checkout, tmp_path, FAKE_EXIT=exit_code)
    assert code == int(exit_code)


# ---- the callers --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CALLERS)
def test_every_caller_runs_nightly_sh_and_not_buildflow_itself(name: str) -> None:
    """Each caller runs examples/scheduled/nightly.sh, so all of them build the same way."""
    text = (SCHEDULED / name).read_text()
    assert SCRIPT in text
    assert "buildflow build" not in text


def test_crontab_has_one_nightly_line() -> None:
    """The crontab has one job: 5 time fields, 03:17 every day, nightly.sh with output appended, no flock."""
    lines = [line for line in (SCHEDULED / "crontab").read_text().splitlines() if line.strip()]
    jobs = [line for line in lines if not line.startswith("#") and not re.match(r"[A-Za-z_][A-Za-z0-9_]*=", line)]
    assert len(jobs) == 1
    fields = jobs[0].split(maxsplit=5)
    assert len(fields) == 6
    assert all(re.fullmatch(r"[0-9*,/-]+", field) for field in fields[:5])
    assert fields[:5] == ["17", "3", "*", "*", "*"]
    command = fields[5]
    assert SCRIPT in command
    assert re.search(r">>\s*\S+ 2>&1$", command)
    assert "flock" not in command
    assert "%" not in command  # cron turns % into newlines


def test_systemd_service() -> None:
    """The service is a oneshot run of nightly.sh in /srv/images, started by the timer only."""
    unit = read_unit("buildflow-nightly.service")
    assert set(unit.sections()) == {"Unit", "Service"}
    service = unit["Service"]
    assert service["Type"] == "oneshot"
    assert service["WorkingDirectory"] == "/srv/images"
    assert service["ExecStart"] == f"/srv/images/{SCRIPT}"
    assert unit["Unit"]["Description"]


def test_systemd_timer() -> None:
    """The timer starts the service at 03:17 every day, catches up missed runs and spreads the start."""
    unit = read_unit("buildflow-nightly.timer")
    assert set(unit.sections()) == {"Unit", "Timer", "Install"}
    timer = unit["Timer"]
    assert timer["OnCalendar"] == "*-*-* 03:17"
    assert timer["Persistent"] == "true"
    assert timer["RandomizedDelaySec"] == "10m"
    assert timer["Unit"] == "buildflow-nightly.service"
    assert unit["Install"]["WantedBy"] == "timers.target"


@pytest.mark.parametrize("name", ["buildflow-nightly.service", "buildflow-nightly.timer"])
def test_systemd_units_explain_the_install(name: str) -> None:
    """Both unit files say how to install: enable --now the timer."""
    assert "systemctl enable --now buildflow-nightly.timer" in (SCHEDULED / name).read_text()


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_units_verify(tmp_path: Path) -> None:
    """systemd-analyze verify accepts both units (with /srv/images pointing at this checkout)."""
    for suffix in ("service", "timer"):
        text = (SCHEDULED / f"buildflow-nightly.{suffix}").read_text()
        (tmp_path / f"buildflow-nightly.{suffix}").write_text(text.replace("/srv/images", str(REPO)))
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", "buildflow-nightly.timer", "buildflow-nightly.service"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def github_steps() -> list[dict[str, Any]]:
    workflow = load_yaml("github-actions.yml")
    steps = workflow["jobs"]["images"]["steps"]
    assert isinstance(steps, list)
    return steps


def github_step(uses: str) -> dict[str, Any]:
    """The one step that uses an action, by its name without the version."""
    found = [step for step in github_steps() if step.get("uses", "").partition("@")[0] == uses]
    assert len(found) == 1, uses
    return found[0]


def test_github_actions_triggers() -> None:
    """The workflow runs nightly at 03:17, by hand, and on pushes to main."""
    workflow = load_yaml("github-actions.yml")
    triggers = workflow["on"] if "on" in workflow else workflow[True]  # YAML 1.1 reads a bare `on` as true
    assert triggers["schedule"] == [{"cron": "17 3 * * *"}]
    assert "workflow_dispatch" in triggers
    assert triggers["push"]["branches"] == ["main"]


def test_github_actions_steps() -> None:
    """Full checkout, Python, install, registry login from vars and secrets, then nightly.sh."""
    assert github_step("actions/checkout")["with"]["fetch-depth"] == 0
    assert "python-version" in github_step("actions/setup-python")["with"]
    login = github_step("docker/login-action")["with"]
    assert login["registry"] == "${{ vars.REGISTRY }}"
    assert login["username"].startswith("${{ secrets.") and login["password"].startswith("${{ secrets.")
    runs = [step.get("run", "") for step in github_steps()]
    install = next(index for index, run in enumerate(runs) if "pip install ." in run)
    build = next(index for index, run in enumerate(runs) if SCRIPT in run)
    assert install < build
    order = [step.get("uses", "").partition("@")[0] for step in github_steps()]
    assert order.index("docker/login-action") < build < order.index("actions/upload-artifact")


def test_github_actions_passes_since_on_push() -> None:
    """On a push, nightly.sh gets --since with the commit before the push (github.event.before)."""
    step = next(step for step in github_steps() if SCRIPT in step.get("run", ""))
    env = step.get("env", {})
    before = [name for name, value in env.items() if value == "${{ github.event.before }}"]
    assert len(before) == 1
    assert f'--since "${before[0]}"' in step["run"]
    assert any(value == "${{ github.event_name }}" for value in env.values())
    assert "push" in step["run"]


def test_github_actions_publishes_reports() -> None:
    """reports/ is uploaded and the JUnit file published, also when the build failed."""
    upload = github_step("actions/upload-artifact")
    assert upload["if"] == "always()" and upload["with"]["path"] == "reports/"
    junit = github_step("mikepenz/action-junit-report")
    assert junit["if"] == "always()" and junit["with"]["report_paths"] == "reports/junit.xml"
    assert "$GITHUB_STEP_SUMMARY" in (SCHEDULED / "github-actions.yml").read_text()


def test_gitlab_ci_job() -> None:
    """The GitLab job runs on schedules and default-branch pushes, calls nightly.sh and keeps reports/."""
    jobs = {name: job for name, job in load_yaml("gitlab-ci.yml").items() if isinstance(job, dict) and "script" in job}
    assert len(jobs) == 1
    (job,) = jobs.values()
    rules = [rule["if"] for rule in job["rules"]]
    assert '$CI_PIPELINE_SOURCE == "schedule"' in rules
    assert any("$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH" in rule and '"push"' in rule for rule in rules)
    script = "\n".join(job["script"])
    assert SCRIPT in script and '--since "$CI_COMMIT_BEFORE_SHA"' in script
    assert job["variables"]["GIT_DEPTH"] == 0
    artifacts = job["artifacts"]
    assert artifacts["when"] == "always"
    assert artifacts["paths"] == ["reports/"]
    assert artifacts["reports"]["junit"] == "reports/junit.xml"


# ---- no hosts, no secrets; the README ---------------------------------------------------------------------------

_HOST = re.compile(r"\b(?:[a-z0-9-]+\.)+(?:io|com|org|net|dev|cloud)\b|\blocalhost:\d+|\b\d+\.\d+\.\d+\.\d+:\d+")


@pytest.mark.parametrize("path", [*sorted(SCHEDULED.iterdir()), MAKEFILE], ids=lambda path: path.name)
def test_no_registry_host_and_no_secret(path: Path) -> None:
    """No registry, mirror or package index host, and no credential, is written into the examples."""
    text = path.read_text()
    assert not _HOST.findall(text)
    for match in re.finditer(r"(?i)(?:password|token|username)\s*[:=][ \t]*(.*)$", text, re.MULTILINE):
        assert match.group(1).startswith(("${{ secrets.", '"$', "$")), match.group(0)


def test_readme_names_every_file_the_command_and_the_exit_codes() -> None:
    """The README names each file, shows nightly.sh's command as it is, and lists exit codes 0 to 4."""
    readme = (SCHEDULED / "README.md").read_text()
    for path in [*SCHEDULED.iterdir(), MAKEFILE]:
        assert f"{path.name}`" in readme or path.name == "README.md", path.name
    assert COMMAND in joined(readme)
    for flag in ("--max-age", "--wait", "--no-wait", "--since", "--keep-going"):
        assert f"`{flag}" in readme, flag
    assert re.findall(r"^\| ([0-9]) \|", readme, re.MULTILINE) == ["0", "1", "2", "3", "4"]


# ---- examples/Makefile.include ------------------------------------------------------------------------------------


def test_make_image_target(tmp_path: Path) -> None:
    """image-% builds one target, and runs even when a file has the goal's name (it is phony in effect)."""
    (tmp_path / "image-app").write_text("")
    out = make("-n", "-f", str(MAKEFILE), "image-app", "BUILDFLOW=buildflow", cwd=tmp_path)
    assert out == "buildflow build -f buildflow.yaml app\n"


def test_make_settings() -> None:
    """BUILDFLOW, BUILDFLOW_FILE and BUILDFLOW_FLAGS reach the command lines."""
    settings = ["BUILDFLOW=.venv/bin/buildflow", "BUILDFLOW_FILE=p.yaml", "BUILDFLOW_FLAGS=--keep-going --no-push"]
    out = make("-n", "-f", str(MAKEFILE), "images", "image-base", "plan", "status", *settings)
    assert out.splitlines() == [
        ".venv/bin/buildflow build -f p.yaml --keep-going --no-push",
        ".venv/bin/buildflow build -f p.yaml --keep-going --no-push base",
        ".venv/bin/buildflow plan -f p.yaml",
        ".venv/bin/buildflow status -f p.yaml",
    ]


def test_make_buildflow_mk_writes_a_target_per_image() -> None:
    """make buildflow-mk runs buildflow ci make on the pipeline file, writing BUILDFLOW_MK."""
    out = make("-n", "-f", str(MAKEFILE), "buildflow-mk", "BUILDFLOW_FILE=p.yaml", "BUILDFLOW_MK=ci/images.mk")
    assert out == "buildflow ci make -f p.yaml -o ci/images.mk\n"
    assert make("-n", "-f", str(MAKEFILE), "buildflow-mk") == "buildflow ci make -f buildflow.yaml -o buildflow.mk\n"


def test_make_help_lists_the_targets() -> None:
    """make help lists images, image-%, plan, status and buildflow-mk with their help text."""
    out = make("-f", str(MAKEFILE), "help")
    listed = {line.split()[1]: line for line in out.splitlines()}
    for target in ("images", "image-%", "plan", "status", "buildflow-mk", "help"):
        assert target in listed and len(listed[target].split()) > 2, target


def test_make_targets_are_phony_and_documented() -> None:
    """Every target with a ## help comment is .PHONY (image-% through its phony prerequisite)."""
    text = MAKEFILE.read_text()
    assert text.startswith("# ") and "include examples/Makefile.include" in text
    documented = re.findall(r"^([a-z%-]+):[^\n]*## ", text, re.MULTILINE)
    assert documented == ["help", "images", "image-%", "plan", "status", "buildflow-mk"]
    phony = set(re.findall(r"^\.PHONY:(.*)$", text, re.MULTILINE)[0].split())
    assert {"help", "images", "plan", "status", "buildflow-mk", ".buildflow-force"} <= phony
    assert re.search(r"^image-%: \.buildflow-force ", text, re.MULTILINE)
    for variable in (
        "BUILDFLOW ?= buildflow",
        "BUILDFLOW_FILE ?= buildflow.yaml",
        "BUILDFLOW_FLAGS ?=",
        "BUILDFLOW_MK ?= buildflow.mk",
    ):
        assert re.search(rf"^{re.escape(variable)}$", text, re.MULTILINE), variable


def test_every_flag_nightly_sh_passes_is_one_buildflow_build_accepts() -> None:
    """nightly.sh uses only options that `buildflow build --help` documents."""
    import sys

    script = (SCHEDULED / "nightly.sh").read_text()
    flags = set(re.findall(r"(--[a-z][a-z-]+)", script.split("exec buildflow build", 1)[1]))
    documented = subprocess.run(
        [sys.executable, "-m", "buildflow", "build", "--help"], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    assert flags and {flag for flag in flags if flag not in documented} == set()
