"""A Makefile from a plan: one make target per image (or per generation), its prerequisites the targets of its
parents, so that `make -j4 -f buildflow.mk app` builds app's ancestry with make as the scheduler."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from buildflow.output.ci import CiSettings, Job, header, only_args, plan_jobs, release_args, title
from buildflow.plan.planner import Plan

_WIDTH = 110  # where lists of prerequisites are wrapped


def makefile(plan: Plan, settings: CiSettings) -> str:
    """The Makefile, as text."""
    jobs = plan_jobs(plan, settings.shard)
    lines = [*header(settings), *_about(settings), *_settings(settings), ""]
    lines += _phony([job.key for job in jobs])
    lines += [
        "",
        "help: ## List these targets",
        "\t@awk -F':.*## ' '/^[A-Za-z0-9_-]+:.*## /{printf \"  make %-30s %s\\n\", $$1, $$2}' $(BUILDFLOW_MK)",
        "",
        "all: ## Build every image; no release tag moves",
        *_wrapped("all:", [job.key for job in jobs]),
        "",
        "release: all ## Build every image, then move every release tag at once",
        f"\t$(BUILDFLOW) release -f $(BUILDFLOW_FILE){_escaped(_passed(settings) + release_args(plan))}",
    ]
    for job in jobs:
        lines += ["", *_rule(job, settings)]
    return "\n".join(lines) + "\n"


def _about(settings: CiSettings) -> list[str]:
    """The comment that says what the file does and how to use it."""
    target = "one make target per image" if settings.shard == "target" else "one make target per DAG generation"
    return [
        "#",
        f"# The images of {settings.file}, {target} (docs/ci.md).",
        "# Each target builds exactly its images (buildflow build --only, their parents taken from the registry by",
        "# digest) and its prerequisites are the targets of its parents, so make runs the DAG:",
        "#",
        "#   make -j4 -f buildflow.mk app       app's ancestry, four builds at a time",
        "#   make -j4 -f buildflow.mk release   every image, then every release tag moved at once",
        "#   make -f buildflow.mk help          the targets, each with its image id",
        "#",
        "# Settings: BUILDFLOW (the buildflow command), BUILDFLOW_FILE (the pipeline file).",
        "",
    ]


def _settings(settings: CiSettings) -> list[str]:
    """The variables a user may set, and the name of this file for `help`."""
    return [
        "BUILDFLOW ?= buildflow",
        f"BUILDFLOW_FILE ?= {_escaped(settings.file)}",
        "",
        "# This file, for `help`, wherever it is included from.",
        "BUILDFLOW_MK := $(lastword $(MAKEFILE_LIST))",
        "",
        ".DEFAULT_GOAL := help",
    ]


def _phony(keys: Sequence[str]) -> list[str]:
    """Every target is phony: none is a file."""
    return _wrapped(".PHONY:", ["help", "all", "release", *keys])


def _wrapped(head: str, words: Sequence[str]) -> list[str]:
    """`head word word ...` over lines of at most _WIDTH characters, continued with a backslash."""
    lines = [head]
    for word in words:
        if len(lines[-1]) + 1 + len(word) > _WIDTH - 2 and lines[-1] != head:
            lines[-1] += " \\"
            lines.append(" ")
        lines[-1] += " " + word
    return lines


def _rule(job: Job, settings: CiSettings) -> list[str]:
    """One target: its prerequisites, the image id as its help, and the build of exactly its images."""
    prerequisites = "".join(f" {key}" for key in job.needs)
    arguments = _escaped(f"{_passed(settings)} {only_args(job)} --no-release")
    return [f"{job.key}:{prerequisites} ## {title(job)}", f"\t$(BUILDFLOW) build -f $(BUILDFLOW_FILE){arguments}"]


def _passed(settings: CiSettings) -> str:
    """The --var and --registry arguments the file was written with, as shell words."""
    return "".join(f" {shlex.quote(word)}" for word in settings.passed)


def _escaped(text: str) -> str:
    """Text make passes on as it is: every dollar sign doubled."""
    return text.replace("$", "$$")
