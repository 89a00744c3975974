"""bake's printed definition as a buildflow pipeline: targets, contexts, Dockerfiles, args, tags, platforms, labels,
cache, secrets, outputs, ssh, attestations, annotations, and `target:` contexts as `from:` edges; groups as
selections. What buildflow has no equivalent for is listed, never dropped silently. Pure: no file is read here."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from buildflow.adopt.bakecache import cache_setting, push_setting, secrets_setting
from buildflow.adopt.bakesupply import supply_settings
from buildflow.adopt.writing import Draft, DraftTarget
from buildflow.model import BASE_IMAGE_ARG

TARGET_CONTEXT = "target:"
_VALID_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_REMOTE = re.compile(r"^([a-z][a-z0-9+.-]*://|git@)")
_NETWORKS = frozenset({"default", "host", "none"})
_MAPPED = frozenset(
    {"context", "contexts", "dockerfile", "args", "labels", "tags", "platforms", "target"}
    | {"cache-from", "cache-to", "secret", "output", "network", "description", "ssh", "attest", "annotations"}
)
NO_EQUIVALENT = {
    "dockerfile-inline": "buildflow builds a Dockerfile in the context: write it to a file and set dockerfile:",
    "pull": "external bases are resolved to digests at every plan (rebuild.follow_bases); `buildflow build --pull`",
    "no-cache": "not per target: `buildflow build --no-cache`, or `--force-target NAME` to rebuild one target",
    "no-cache-filter": "not per stage: `buildflow build --no-cache` runs every step again",
    "shm-size": "no /dev/shm size for RUN",
    "ulimits": "no ulimits for RUN",
    "entitlements": "no entitlements (network: host is the one buildflow has)",
    "call": "buildflow builds images; Dockerfile checks are `buildflow lint`",
}


@dataclass
class Imported:
    """The draft of the pipeline, bake's edges in buildflow names, and what could not be carried over."""

    draft: Draft
    names: dict[str, str]  # bake target name -> buildflow target name
    edges: set[tuple[str, str]]  # (parent, child), buildflow names
    aliases: dict[str, dict[str, str]]  # target -> {context name: parent} where the two differ
    groups: dict[str, list[str]]
    notes: Notes
    published: dict[str, str] = field(default_factory=dict)  # tag -> the target that publishes it


@dataclass
class Notes:
    """What has no equivalent, once per setting and reason, with the targets it concerns."""

    found: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def add(self, target: str, setting: str, reason: str) -> None:
        """Note that `setting` of `target` is not carried over, and why."""
        self.found.setdefault((setting, reason), []).append(target)

    def lines(self) -> list[str]:
        """One line per setting and reason: `ssh` (targets a, b and 3 more): why."""
        return [f"{setting} ({_some(targets)}): {reason}" for (setting, reason), targets in self.found.items()]


def _some(names: list[str], shown: int = 3) -> str:
    """target a / targets a, b and 3 more."""
    if len(names) == 1:
        return f"target {names[0]}"
    more = len(names) - shown
    return f"targets {', '.join(names[:shown])}" + (f" and {more} more" if more > 0 else "")


def bake_edges(printed: Mapping[str, Any]) -> set[tuple[str, str]]:
    """bake's own edges, (parent, child) by bake's names: its `target:` contexts, the only edges bake has."""
    targets = printed.get("target") or {}
    return {
        (value.removeprefix(TARGET_CONTEXT), child)
        for child, spec in targets.items()
        for value in (spec.get("contexts") or {}).values()
        if isinstance(value, str) and value.startswith(TARGET_CONTEXT) and value.removeprefix(TARGET_CONTEXT) in targets
    }


@dataclass
class _Where:
    """Where bake resolved paths (its working directory) and where the pipeline file goes."""

    bake_dir: Path
    out_dir: Path
    known: dict[str, str] = field(default_factory=dict)  # many targets share a context

    def path(self, value: str) -> str:
        """A path bake resolved in its directory, relative to the pipeline file's."""
        if value not in self.known:
            absolute = value if os.path.isabs(value) else os.path.join(self.bake_dir, value)
            self.known[value] = Path(os.path.relpath(os.path.normpath(absolute), self.out_dir)).as_posix()
        return self.known[value]


def import_bake(printed: Mapping[str, Any], *, bake_dir: Path, out_dir: Path, registry: str | None) -> Imported:
    """The pipeline equivalent to bake's printed definition, paths rebased from bake's directory to the output's."""
    specs: dict[str, dict[str, Any]] = dict(printed.get("target") or {})
    names = target_names(specs)
    result = Imported(Draft(registry=registry), names, set(), {}, {}, Notes())
    for original, name in names.items():
        if original != name:
            result.notes.add(name, "name", f"bake's target '{original}' is not a buildflow name; renamed '{name}'")
    where = _Where(bake_dir, out_dir)
    for original, spec in specs.items():
        result.draft.targets[names[original]] = _target(names[original], spec, names, where, result)
    result.groups = groups(printed.get("group") or {}, names, result.notes)
    return result


def target_names(specs: Mapping[str, Any]) -> dict[str, str]:
    """A buildflow name for every bake target: its own where valid (bake allows a leading '_' or '-')."""
    names: dict[str, str] = {}
    taken = set(specs)
    for original in specs:
        if _VALID_NAME.fullmatch(original):
            names[original] = original
            continue
        base = re.sub(r"[^A-Za-z0-9_.-]", "-", original).lstrip("_.-")[:120] or "target"
        chosen, number = base, 2
        while chosen in taken:
            chosen, number = f"{base}-{number}", number + 1
        taken.add(chosen)
        names[original] = chosen
    return names


def _target(
    name: str, spec: Mapping[str, Any], names: Mapping[str, str], where: _Where, result: Imported
) -> DraftTarget:
    """One bake target as a buildflow target."""
    notes, fields = result.notes, dict[str, Any]()
    parents, aliases = _parents(name, spec, names, notes)
    result.edges |= {(parent, name) for parent in parents}
    if aliases:
        result.aliases[name] = aliases
    context = spec.get("context") or "."
    if _REMOTE.match(context):
        notes.add(name, "context", f"a remote context ({context}): buildflow builds local directories; set context:")
    elif where.path(context) != ".":
        fields["context"] = literal(where.path(context))
    fields |= _dockerfile(name, spec, context, where, notes)
    if spec.get("target"):
        fields["stage"] = literal(str(spec["target"]))
    if parents:
        fields["from"] = parents if len(parents) > 1 else parents[0]
    fields |= _strings(name, spec, parents, names, notes)
    fields |= _tags(name, spec.get("tags") or [], result)
    fields |= _settings(name, spec, where, notes)
    for key, value in spec.items():
        if key not in _MAPPED and value not in (None, False, "", [], {}):
            notes.add(name, key, NO_EQUIVALENT.get(key, "no equivalent in buildflow"))
    return DraftTarget(fields)


def _parents(
    name: str, spec: Mapping[str, Any], names: Mapping[str, str], notes: Notes
) -> tuple[list[str], dict[str, str]]:
    """The parents from `target:` contexts (the one BASE_IMAGE names first), and the context names that differ
    from their parent's name; other named contexts are noted."""
    parents, aliases = [], {}
    for alias, value in (spec.get("contexts") or {}).items():
        text = str(value)
        if not text.startswith(TARGET_CONTEXT):
            notes.add(
                name, f"contexts.{alias}", f"{_context_kind(text)}: buildflow passes only parents as named contexts"
            )
            continue
        other = text.removeprefix(TARGET_CONTEXT)
        if other not in names:
            notes.add(name, f"contexts.{alias}", f"names target '{other}', which bake did not print")
            continue
        parents.append(names[other])
        if alias != names[other]:
            aliases[alias] = names[other]
    first = aliases.get(str((spec.get("args") or {}).get(BASE_IMAGE_ARG)))
    if first is not None:
        parents.remove(first)
        parents.insert(0, first)
    return list(dict.fromkeys(parents)), aliases


def _context_kind(value: str) -> str:
    """What a named context that is not a target is, in words."""
    if value.startswith("docker-image://"):
        return f"an image ({value.removeprefix('docker-image://')})"
    if value.startswith("oci-layout://"):
        return "an OCI layout"
    return f"a URL ({value})" if _REMOTE.match(value) else f"a local directory ({value})"


def _dockerfile(name: str, spec: Mapping[str, Any], context: str, where: _Where, notes: Notes) -> dict[str, str]:
    """dockerfile:, relative to the context as in bake; the default Dockerfile is left out."""
    dockerfile = str(spec.get("dockerfile") or "Dockerfile")
    if dockerfile == "-":
        notes.add(name, "dockerfile", "a Dockerfile from standard input: buildflow reads it from a file")
        return {}
    if os.path.isabs(dockerfile):
        dockerfile = os.path.relpath(dockerfile, os.path.join(where.bake_dir, context))
    return {} if dockerfile == "Dockerfile" else {"dockerfile": literal(Path(dockerfile).as_posix())}


def _strings(
    name: str, spec: Mapping[str, Any], parents: list[str], names: Mapping[str, str], notes: Notes
) -> dict[str, Any]:
    """args (a context name as value becomes the parent's name, whose context buildflow passes), labels,
    platforms, description and network."""
    fields: dict[str, Any] = {}
    aliases = {alias: names[value.removeprefix(TARGET_CONTEXT)] for alias, value in _target_contexts(spec, names)}
    args = {}
    for key, value in (spec.get("args") or {}).items():
        if value is None:
            continue
        text = str(value)
        if text in aliases:
            if key == BASE_IMAGE_ARG and parents and aliases[text] == parents[0]:
                continue  # buildflow sets BASE_IMAGE to the first from: parent, pinned by digest
            text = aliases[text]
        args[key] = literal(text)
    if args:
        fields["args"] = args
    labels = {key: literal(str(value)) for key, value in (spec.get("labels") or {}).items() if value is not None}
    if labels:
        fields["labels"] = labels
    if spec.get("platforms"):
        fields["platforms"] = [literal(str(platform)) for platform in spec["platforms"]]
    if spec.get("description"):
        fields["description"] = str(spec["description"])
    network = spec.get("network")
    if network in _NETWORKS:
        fields["network"] = network
    elif network:
        notes.add(name, "network", f"'{network}': buildflow's networks are default, host and none")
    return fields


def _target_contexts(spec: Mapping[str, Any], names: Mapping[str, str]) -> Iterable[tuple[str, str]]:
    """(context name, value) of the `target:` contexts that name a printed target."""
    for alias, value in (spec.get("contexts") or {}).items():
        if isinstance(value, str) and value.startswith(TARGET_CONTEXT) and value.removeprefix(TARGET_CONTEXT) in names:
            yield alias, value


def _tags(name: str, tags: list[Any], result: Imported) -> dict[str, list[str]]:
    """The tags (relative to the pipeline's registry when under it), each published by one target only: the
    first that names it."""
    kept, prefix = [], f"{result.draft.registry.rstrip('/')}/" if result.draft.registry else None
    for tag in map(str, tags):
        if result.published.setdefault(tag, name) != name:
            result.notes.add(
                name, "tags", f"{tag} is also a tag of {result.published[tag]}: in buildflow one image publishes a tag"
            )
            continue
        written = literal(tag.removeprefix(prefix) if prefix and tag.startswith(prefix) else tag)
        if written not in kept:
            kept.append(written)
    return {"tags": kept} if kept else {}


def _settings(name: str, spec: Mapping[str, Any], where: _Where, notes: Notes) -> dict[str, Any]:
    """cache, secrets, push, and ssh, attest and annotations."""
    fields: dict[str, Any] = {}
    cache = cache_setting(name, spec, where.path, notes.add)
    if cache is not None:
        fields["cache"] = cache
    secrets = secrets_setting(name, spec.get("secret") or [], where.path, notes.add)
    if secrets:
        fields["secrets"] = secrets
    push = push_setting(name, spec.get("output") or [], notes.add)
    if push is not None:
        fields["push"] = push
    return fields | supply_settings(name, spec, where.path, notes.add)


def groups(declared: Mapping[str, Any], names: Mapping[str, str], notes: Notes) -> dict[str, list[str]]:
    """Each group as the buildflow targets it selects (nested groups and matrix groups expanded), in order."""

    def members(group: str, seen: frozenset[str]) -> list[str]:
        selected = []
        for member in (declared.get(group) or {}).get("targets") or []:
            if member in names:
                selected.append(names[member])
            elif member in declared and member not in seen:
                selected += members(member, seen | {member})
            elif member not in declared:
                notes.add(f"group {group}", "targets", f"'{member}' is neither a target nor a group bake printed")
        return list(dict.fromkeys(selected))

    return {group: members(group, frozenset({group})) for group in declared}


def literal(text: str) -> str:
    """A value as a buildflow template that renders to itself: braces doubled."""
    return text.replace("{", "{{").replace("}", "}}")
