"""CI pipelines written from a plan (GitHub Actions, GitLab CI, a Makefile): what they share.

The jobs of a plan (one per image, or one per generation), their names, the header that says which command wrote
the file, shell quoting of ids, and YAML written in a stable, readable block style.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import yaml

from buildflow.plan.planner import Plan

RESERVED = frozenset({"all", "help", "release"})  # names the generators give their own jobs and targets
_MAX_KEY = 100  # characters of a job key, hash suffix included
_KEY_START = re.compile(r"[A-Za-z_]")
_NOT_KEY = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class CiSettings:
    """What a generator needs beyond the plan: the pipeline file as jobs name it, and the command's choices."""

    file: str  # the pipeline file, as given on the command line (relative to where CI runs)
    command: str  # the command that writes this output, for the header and --check
    shard: str = "target"  # or "generation"
    triggers: tuple[str, ...] = ("workflow_call",)
    branch: str = "main"
    install: str = "."  # what the jobs pip-install to have buildflow
    passed: tuple[str, ...] = ()  # --var and --registry arguments every buildflow command of a job gets


class Job(NamedTuple):
    """One build job: a safe key, a label (the image id or generation-N), the ids it builds, the keys it needs."""

    key: str
    label: str
    ids: tuple[str, ...]
    needs: tuple[str, ...]


def title(job: Job) -> str:
    """What a job builds, for people: the image id, or 'generation 2: 4 images'."""
    if job.ids == (job.label,):
        return job.label
    count = len(job.ids)
    return f"generation {job.label.rpartition('-')[2]}: {count} image{'' if count == 1 else 's'}"


def jobs_phrase(settings: CiSettings) -> str:
    """'one job per image' or 'one job per DAG generation'."""
    return "one job per image" if settings.shard == "target" else "one job per DAG generation"


def header(settings: CiSettings) -> list[str]:
    """The first line of every generated file: the command that wrote it."""
    return [f"# Written by {settings.command}; do not edit: regenerate, or check with --check"]


def quoted(text: str) -> str:
    """Text as one single-quoted shell word, whatever it holds: 'tf[tf=1.8.0,device=gpu]'."""
    return "'" + text.replace("'", "'\\''") + "'"


def only_args(job: Job) -> str:
    """`--only 'ID'` for every image of a job."""
    return " ".join(f"--only {quoted(target_id)}" for target_id in job.ids)


def release_args(plan: Plan) -> str:
    """The images a release names: none when the plan holds the whole pipeline, else every selected id."""
    if len(plan.steps) == len(plan.pipeline.targets):
        return ""
    return " " + " ".join(quoted(step.target.id) for step in plan.steps)


def _buildflow(settings: CiSettings, verb: str) -> str:
    """`buildflow VERB -f FILE` with the --var and --registry the file was written with."""
    return " ".join(["buildflow", verb, "-f", shlex.quote(settings.file), *map(shlex.quote, settings.passed)])


def build_command(settings: CiSettings, job: Job) -> str:
    """The command of a CI build job: exactly its images, no release, its JSON and JUnit reports."""
    return (
        f"{_buildflow(settings, 'build')} {only_args(job)} --no-release "
        f"--report reports/{job.key}.json --junit reports/{job.key}.xml"
    )


def release_command(plan: Plan, settings: CiSettings) -> str:
    """The command of a CI release job: every release tag of the selection at once, with its report and summary."""
    return (
        f"{_buildflow(settings, 'release')}{release_args(plan)} "
        "--report reports/release.json --summary reports/release.md"
    )


def readable_key(target_id: str) -> str:
    """A job id GitHub accepts, read like the image id: tf[tf=1.8.0,device=gpu] -> tf--tf-1-8-0--device-gpu."""
    key = target_id.replace("[", "--").replace(",", "--").replace("]", "").replace("=", "-")
    key = _NOT_KEY.sub("-", key)
    return key if _KEY_START.match(key) else f"_{key}"


def _with_hash(key: str, target_id: str, length: int) -> str:
    """A key made unique by a hash of the image id, cut to _MAX_KEY characters."""
    digest = hashlib.sha256(target_id.encode()).hexdigest()[:length]
    return f"{key[: _MAX_KEY - length - 1]}-{digest}"


def job_keys(ids: Sequence[str], reserved: frozenset[str] = RESERVED) -> dict[str, str]:
    """A unique, stable key per id: readable, hashed only on a collision (case ignored), a reserved name or length."""
    for length in (8, 16, 64):
        readable = {target_id: readable_key(target_id) for target_id in ids}
        counts = Counter(key.lower() for key in readable.values())
        keys = {
            target_id: (
                _with_hash(key, target_id, length)
                if counts[key.lower()] > 1 or key.lower() in reserved or len(key) > _MAX_KEY
                else key
            )
            for target_id, key in readable.items()
        }
        if len({key.lower() for key in keys.values()}) == len(keys):
            return keys
    raise AssertionError(f"no unique job keys for {len(ids)} images")  # sha256 prefixes of distinct ids differ


def plan_jobs(plan: Plan, shard: str) -> list[Job]:
    """The build jobs: one per image needing its parents' jobs, or one per generation needing the one before."""
    if shard == "generation":
        return _generation_jobs(plan)
    keys = job_keys([step.target.id for step in plan.steps])
    jobs = []
    for step in plan.steps:
        parents = dict.fromkeys(edge.parent for edge in step.target.parents if edge.parent in keys)
        jobs.append(Job(keys[step.target.id], step.target.id, (step.target.id,), tuple(keys[p] for p in parents)))
    return jobs


def _generation_jobs(plan: Plan) -> list[Job]:
    """One job per generation of the plan, in order, each needing the one before."""
    layers: dict[int, list[str]] = {}
    for step in plan.steps:
        layers.setdefault(step.generation, []).append(step.target.id)
    jobs: list[Job] = []
    for generation, ids in sorted(layers.items()):
        key = f"generation-{generation}"
        jobs.append(Job(key, key, tuple(ids), (jobs[-1].key,) if jobs else ()))
    return jobs


def selected_edges(plan: Plan) -> set[tuple[str, str]]:
    """(parent, child) for every edge of the plan between selected images."""
    selected = {step.target.id for step in plan.steps}
    return {(e.parent, step.target.id) for step in plan.steps for e in step.target.parents if e.parent in selected}


class _Dumper(yaml.SafeDumper):
    """Block-style YAML in the order given, lists indented under their key, no anchors, long lines kept whole."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        """Indent sequences under their mapping key (PyYAML does not by default)."""
        super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:
        """Never write anchors and aliases: each job reads on its own."""
        return True


def _text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    """Multi-line text as a literal block, the rest as YAML chooses."""
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


def _null(dumper: yaml.SafeDumper, _: None) -> yaml.ScalarNode:
    """None as nothing: `workflow_dispatch:`."""
    return dumper.represent_scalar("tag:yaml.org,2002:null", "")


_Dumper.add_representer(str, _text)
_Dumper.add_representer(type(None), _null)


def to_yaml(document: Mapping[str, Any]) -> str:
    """A document as block-style YAML, keys in the order given."""
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100_000)


def commented(text: str, comments: Mapping[str, Sequence[str]], spaced: str = "") -> str:
    """YAML with comments before top-level keys, blank lines between them and between the entries of `spaced`."""
    lines: list[str] = []
    section = ""
    for line in text.splitlines():
        top_level = line[:1] not in (" ", "-", "")
        entry = section == spaced and line.startswith("  ") and line[2:3] not in (" ", "-")
        if lines and (top_level or (entry and not lines[-1].endswith(":"))):
            lines.append("")
        if top_level:
            section = line.partition(":")[0]
            lines.extend(f"# {comment}".rstrip() for comment in comments.get(section, ()))
        lines.append(line)
    return "\n".join(lines) + "\n"
