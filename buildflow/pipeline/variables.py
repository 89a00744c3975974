"""Variables: built-ins (git, date), pipeline variables and the scopes that flow from parents to children."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from buildflow.pipeline.templates import Ambiguous

BUILTIN_NAMES = frozenset(
    {"target", "registry", "date", "git_commit", "git_commit_short", "git_branch", "git_branch_slug", "fingerprint"}
)
MAX_VISIBLE_VARIABLES = 1_000_000  # variables seen by all images together (each sees its ancestors')
MAX_LISTED_SOURCES = 5  # parents named when a variable is ambiguous
_BRANCH_ENV = ("GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME", "BRANCH_NAME", "GIT_BRANCH")


def as_text(value: object) -> str:
    """A YAML/JSON scalar as the text a build sees: true/false, integers as digits, text unchanged."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def date_stamp() -> str:
    """Today (UTC) as YYYYMMDD, or the day of SOURCE_DATE_EPOCH for reproducible builds."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    seconds = int(epoch) if epoch.isdigit() else time.time()
    return time.strftime("%Y%m%d", time.gmtime(seconds))


def git_variables(root: Path) -> dict[str, str]:
    """git_commit, git_commit_short, git_branch and git_branch_slug of the checkout holding `root`, or {}."""
    import subprocess

    try:
        result = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD", "--abbrev-ref", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    lines = result.stdout.split()
    if result.returncode != 0 or len(lines) != 2:
        return {}
    commit, branch = lines
    if branch == "HEAD":
        branch = next((os.environ[name] for name in _BRANCH_ENV if os.environ.get(name)), "HEAD")
    return {
        "git_commit": commit,
        "git_commit_short": commit[:12],
        "git_branch": branch,
        "git_branch_slug": slug(branch),
    }


def source_date_epoch(root: Path) -> str:
    """SOURCE_DATE_EPOCH for new images: the environment's, else the commit time of the checkout, else ''."""
    import subprocess

    if os.environ.get("SOURCE_DATE_EPOCH", "").isdigit():
        return os.environ["SOURCE_DATE_EPOCH"]
    try:
        result = subprocess.run(
            ["git", "-C", str(root), "log", "-1", "--format=%ct"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    epoch = result.stdout.strip()
    return epoch if result.returncode == 0 and epoch.isdigit() else ""


def slug(text: str) -> str:
    """Text made safe for a tag: letters, digits, '_', '.', '-'; at most 128 characters."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip(".-")
    return cleaned[:128] or "none"


def merge_scopes(scopes: Iterable[tuple[str, Mapping[str, str | Ambiguous]]]) -> dict[str, str | Ambiguous]:
    """Merge the scopes of several parents; a name they disagree on becomes Ambiguous (linear in the parents)."""
    scopes = list(scopes)
    if len(scopes) == 1:
        return dict(scopes[0][1])
    merged: dict[str, str | Ambiguous] = {}
    sources: dict[str, list[tuple[str, str]]] = {}
    extra: dict[str, int] = {}
    for parent, scope in scopes:
        for name, value in scope.items():
            if name not in merged:
                merged[name] = value
                if isinstance(value, str):
                    sources[name] = [(parent, value)]
            elif isinstance(value, str) and (name in extra or merged[name] != value):
                listed = sources.setdefault(name, [])
                if len(listed) < MAX_LISTED_SOURCES:
                    listed.append((parent, value))
                    extra.setdefault(name, 0)
                else:
                    extra[name] += 1
    for name, more in extra.items():
        merged[name] = Ambiguous(tuple(sources[name]), more)
    return merged
