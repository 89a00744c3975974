"""A GitHub Actions workflow from a plan: one job per image (or per generation), `needs:` from the DAG, and a
release job that needs every build job."""

from __future__ import annotations

import shlex
from typing import Any

from buildflow.errors import UsageError
from buildflow.output.ci import (
    CiSettings,
    Job,
    build_command,
    commented,
    header,
    jobs_phrase,
    plan_jobs,
    release_command,
    title,
    to_yaml,
)
from buildflow.plan.planner import Plan

# "A job matrix can generate a maximum of 256 jobs per workflow run" (docs.github.com/en/actions/reference/limits,
# Job Matrix). buildflow holds the whole workflow to it: a generated workflow never has more jobs than that.
MAX_JOBS = 256
LIMITS_URL = "https://docs.github.com/en/actions/reference/limits"
NIGHTLY = "17 3 * * *"


def workflow(plan: Plan, settings: CiSettings) -> str:
    """The workflow, as the text of a .github/workflows file."""
    jobs = plan_jobs(plan, settings.shard)
    _check_size(plan, jobs, settings)
    document = {
        "name": f"buildflow {settings.file}",
        "on": _triggers(settings),
        "permissions": {"contents": "read"},
        "concurrency": {
            "group": f"buildflow {settings.file} ${{{{ github.workflow }}}} ${{{{ github.ref }}}}",
            "cancel-in-progress": False,
        },
        "jobs": {job.key: _build_job(job, settings) for job in jobs} | {"release": _release_job(plan, jobs, settings)},
    }
    return "\n".join([*header(settings), *_about(settings), "", ""]) + commented(to_yaml(document), _COMMENTS, "jobs")


def _about(settings: CiSettings) -> list[str]:
    """The comment that says what the workflow does and how to call it."""
    return [
        "#",
        f"# The images of {settings.file}, {jobs_phrase(settings)} (docs/ci.md): a job builds exactly its images",
        "# (buildflow build --only, their parents taken from the registry by digest) and pushes only content tags;",
        "# the release job moves every release tag at once, once every image is built.",
        "#",
        "# Call it from another workflow (secrets: inherit passes the registry login):",
        "#   jobs:",
        "#     images:",
        "#       uses: ./.github/workflows/<this file>",
        "#       secrets: inherit",
        "#",
        "# Settings: the variable REGISTRY (the registry host) and the secrets REGISTRY_USERNAME and",
        "# REGISTRY_PASSWORD (a token that may push); without REGISTRY, no login. Engine: the runner's own Docker",
        "# engine through buildx's `docker` driver, as examples/scheduled/github-actions.yml sets it up.",
    ]


_COMMENTS = {
    "concurrency": [
        "One run at a time per pipeline, workflow and ref, and none cancelled half-way (cancel-in-progress: false):",
        "a newer run waits for the older one, so an older run never releases over a newer one. GitHub keeps one",
        "run pending and drops an older pending run when a newer one comes: the newest commit releases last.",
        "The group is prefixed with buildflow so that it differs from a calling workflow's own group.",
    ],
}


def _check_size(plan: Plan, jobs: list[Job], settings: CiSettings) -> None:
    """More jobs than GitHub runs in one workflow: exit 2, naming the limit and whether --shard generation fits."""
    count = len(jobs) + 1
    if count <= MAX_JOBS:
        return
    what = f"ci github: {count} jobs ({len(jobs)} builds and the release)"
    limit = f"over GitHub's limit of {MAX_JOBS} jobs per workflow run ({LIMITS_URL})"
    if settings.shard == "generation":
        raise UsageError(f"{what} {limit}; select fewer targets")
    generations = len({step.generation for step in plan.steps}) + 1
    fits = "fits" if generations <= MAX_JOBS else "does not fit either"
    raise UsageError(f"{what} {limit}; --shard generation {fits} ({generations} jobs)")


def _triggers(settings: CiSettings) -> dict[str, Any]:
    """The `on:` events: called by another workflow, pushes to a branch, or nightly; by hand with the last two."""
    events: dict[str, Any] = {}
    for trigger in settings.triggers:
        if trigger == "workflow_call":
            secret = {"required": False}
            events["workflow_call"] = {"secrets": {"REGISTRY_USERNAME": secret, "REGISTRY_PASSWORD": dict(secret)}}
        elif trigger == "push":
            events["push"] = {"branches": [settings.branch]}
        else:
            events["schedule"] = [{"cron": NIGHTLY}]
    if "push" in events or "schedule" in events:
        events["workflow_dispatch"] = None
    return events


def _setup_steps(settings: CiSettings) -> list[dict[str, Any]]:
    """Checkout, Python, buildflow, the engine and the registry login, as examples/scheduled does them."""
    return [
        {"uses": "actions/checkout@v4"},
        {"uses": "actions/setup-python@v5", "with": {"python-version": "3.12"}},
        {"name": "Install buildflow", "run": f"pip install {shlex.quote(settings.install)}"},
        {
            "name": "Use the runner's Docker engine (buildx's docker driver)",
            "uses": "docker/setup-buildx-action@v3",
            "with": {"driver": "docker"},
        },
        {
            "name": "Log in to the registry",
            "if": "vars.REGISTRY != ''",
            "uses": "docker/login-action@v3",
            "with": {
                "registry": "${{ vars.REGISTRY }}",
                "username": "${{ secrets.REGISTRY_USERNAME }}",
                "password": "${{ secrets.REGISTRY_PASSWORD }}",
            },
        },
    ]


def _upload(name: str) -> dict[str, Any]:
    """Upload reports/ as an artifact of its own name, also after a failure."""
    return {
        "name": "Upload the reports",
        "if": "always()",
        "uses": "actions/upload-artifact@v4",
        "with": {"name": f"reports-{name}", "path": "reports/"},
    }


def _build_job(job: Job, settings: CiSettings) -> dict[str, Any]:
    """One build job: set up, build exactly its images without releasing, upload its reports."""
    body: dict[str, Any] = {"name": title(job)}
    if job.needs:
        body["needs"] = list(job.needs)
    body["runs-on"] = "ubuntu-latest"
    body["steps"] = [*_setup_steps(settings), {"name": "Build", "run": build_command(settings, job)}, _upload(job.key)]
    return body


def _release_job(plan: Plan, jobs: list[Job], settings: CiSettings) -> dict[str, Any]:
    """The release: once every build job succeeded, move every release tag at once."""
    return {
        "name": "release",
        "needs": [job.key for job in jobs],
        "runs-on": "ubuntu-latest",
        "steps": [
            *_setup_steps(settings),
            {"name": "Release", "run": release_command(plan, settings)},
            _upload("release"),
        ],
    }
