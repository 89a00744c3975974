"""A GitLab CI child pipeline from a plan: one job per image (or per generation), `needs:` from the DAG, and a
release job in a resource group once every build job succeeded."""

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
    to_yaml,
)
from buildflow.plan.planner import Plan

# "The maximum number of jobs that a single job can have in the needs array is limited: for GitLab.com, the limit
# is 50; for GitLab Self-Managed and GitLab Dedicated, the default limit is 50" (docs.gitlab.com/ci/yaml/#needs;
# an administrator may change it: ci_needs_size_limit, docs.gitlab.com/administration/cicd/#needs-job-limit).
MAX_NEEDS = 50
NEEDS_URL = "https://docs.gitlab.com/ci/yaml/#needs"
_MAX_NAME = 255  # characters of a job name
RESOURCE_GROUP = "buildflow-release"


def pipeline(plan: Plan, settings: CiSettings) -> str:
    """The child pipeline, as the text of a .gitlab-ci.yml file."""
    jobs = plan_jobs(plan, settings.shard)
    names = {job.key: job_name(job) for job in jobs}
    _check_needs(jobs, names)
    document: dict[str, Any] = {"variables": _ENGINE_VARIABLES, "default": _default(settings)}
    for job in jobs:
        document[names[job.key]] = _build_job(job, names, settings)
    document["release"] = _release_job(plan, list(names.values()), settings)
    return "\n".join([*header(settings), *_about(settings), "", ""]) + commented(to_yaml(document), _COMMENTS)


def job_name(job: Job) -> str:
    """`build:IMAGE-ID` (or `build:generation-N`): readable, unique, never a keyword; the key when that is long."""
    name = f"build:{job.label}"
    return name if len(name) <= _MAX_NAME else f"build:{job.key}"


def _about(settings: CiSettings) -> list[str]:
    """The comment that says what the pipeline does and how to run it."""
    return [
        "#",
        f"# The images of {settings.file}, {jobs_phrase(settings)} (docs/ci.md): a job builds exactly its images",
        "# (buildflow build --only, their parents taken from the registry by digest) and pushes only content tags;",
        f"# the release job, in the resource group {RESOURCE_GROUP}, moves every release tag at once.",
        "# A DAG pipeline: build jobs start as their `needs:` finish; the release job is in .post, after all of them.",
        "#",
        "# Run it as a child pipeline from .gitlab-ci.yml:",
        "#   images:",
        "#     trigger:",
        "#       include:",
        "#         - local: <this file>",
        "#       strategy: depend",
        "#",
        "# CI/CD variables: REGISTRY (the registry host), REGISTRY_USER and REGISTRY_PASSWORD (a token that may push);",
        "# without REGISTRY, no login. Engine: Docker-in-Docker, as examples/scheduled/gitlab-ci.yml sets it up",
        "# (a privileged runner sharing /certs/client).",
    ]


_COMMENTS = {
    "variables": ["The engine: the docker:dind service with TLS, its client certificates in /certs/client."],
    "release": [
        f"Once every build job succeeded. The resource group {RESOURCE_GROUP} runs one release at a time, in any",
        "project pipeline; set its process mode to oldest_first (API: resource_groups) to release in pipeline order.",
    ],
}

_ENGINE_VARIABLES = {
    "DOCKER_HOST": "tcp://docker:2376",
    "DOCKER_TLS_CERTDIR": "/certs",
    "DOCKER_TLS_VERIFY": "1",
    "DOCKER_CERT_PATH": "/certs/client",
}


def _default(settings: CiSettings) -> dict[str, Any]:
    """What every job shares: the docker CLI image, the dind service, buildflow installed, the registry login."""
    return {
        "image": "docker:27-cli",
        "services": ["docker:27-dind"],
        "before_script": [
            "apk add --no-cache git python3",
            "for second in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done; docker info >/dev/null",
            "python3 -m venv .venv",
            f".venv/bin/pip install {shlex.quote(settings.install)}",
            'export PATH="$CI_PROJECT_DIR/.venv/bin:$PATH"',
            'if [ -n "${REGISTRY:-}" ]; then printf \'%s\' "$REGISTRY_PASSWORD"'
            ' | docker login "$REGISTRY" --username "$REGISTRY_USER" --password-stdin; fi',
        ],
    }


def _check_needs(jobs: list[Job], names: dict[str, str]) -> None:
    """A job that needs more jobs than GitLab allows: exit 2, naming the limit and --shard generation."""
    for job in jobs:
        if len(job.needs) > MAX_NEEDS:
            raise UsageError(
                f"ci gitlab: {names[job.key]} needs {len(job.needs)} jobs (its parents), over GitLab's default limit "
                f"of {MAX_NEEDS} needs per job ({NEEDS_URL}); --shard generation fits: each job needs only the "
                "previous generation's"
            )


def _build_job(job: Job, names: dict[str, str], settings: CiSettings) -> dict[str, Any]:
    """One build job: build exactly its images without releasing; JUnit for the Tests tab, the JSON report kept."""
    return {
        "stage": "build",
        "needs": [names[key] for key in job.needs],
        "script": [build_command(settings, job)],
        "artifacts": {
            "when": "always",
            "paths": [f"reports/{job.key}.json"],
            "reports": {"junit": f"reports/{job.key}.xml"},
            "expire_in": "30 days",
        },
    }


def _release_job(plan: Plan, builds: list[str], settings: CiSettings) -> dict[str, Any]:
    """The release: in .post, after every build job (named in `needs:` when they fit GitLab's limit)."""
    body: dict[str, Any] = {"stage": ".post"}
    if len(builds) <= MAX_NEEDS:
        body["needs"] = builds
    body |= {
        "resource_group": RESOURCE_GROUP,
        "script": [release_command(plan, settings)],
        "artifacts": {
            "when": "always",
            "paths": ["reports/release.json", "reports/release.md"],
            "expire_in": "30 days",
        },
    }
    return body
