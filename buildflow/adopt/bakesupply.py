"""bake's supply-chain settings as buildflow's: `ssh` (one entry), `attest` (sbom, provenance) and `annotations`
(on the manifest, and the index when there is one). What does not fit is noted, never dropped silently."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Note = Callable[[str, str, str], None]  # (target, setting, why it is not carried over)
_ANNOTATION_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")
_LEVELS = frozenset({"manifest", "index"})  # where buildflow puts annotations


def supply_settings(name: str, spec: Mapping[str, Any], path: Callable[[str], str], note: Note) -> dict[str, Any]:
    """ssh, attest and annotations of a bake target (bake prints each as a list of strings)."""
    fields: dict[str, Any] = {}
    ssh = _ssh(name, [str(entry) for entry in spec.get("ssh") or []], path, note)
    if ssh:
        fields["ssh"] = ssh
    attest = _attest(name, [str(entry) for entry in spec.get("attest") or []], note)
    if attest:
        fields["attest"] = attest
    annotations = _annotations(name, [str(entry) for entry in spec.get("annotations") or []], note)
    if annotations:
        fields["annotations"] = annotations
    return fields


def _ssh(name: str, entries: Sequence[str], path: Callable[[str], str], note: Note) -> list[Any]:
    """The first ssh entry: `default`, an id (the agent), or ID=PATH[,PATH] (paths rebased); others noted."""
    if len(entries) > 1:
        note(name, "ssh", f"{len(entries)} entries: buildflow forwards one per target; kept {entries[0].split('=')[0]}")
    if not entries:
        return []
    forward, equals, paths = entries[0].partition("=")
    if forward == "default" and not equals:
        return ["default"]
    entry: dict[str, Any] = {"id": forward}
    if equals:
        entry["paths"] = [path(item) for item in paths.split(",") if item]
    return [entry]


def _attest(name: str, entries: Sequence[str], note: Note) -> dict[str, Any]:
    """type=sbom[,generator=IMAGE] and type=provenance[,mode=min|max] (disabled=true: left out)."""
    attest: dict[str, Any] = {}
    for entry in entries:
        fields = dict(part.partition("=")[::2] for part in entry.split(","))
        if fields.get("disabled") == "true":
            continue
        if fields.get("type") == "sbom":
            attest["sbom"] = {"generator": fields["generator"]} if fields.get("generator") else True
        elif fields.get("type") == "provenance" and fields.get("mode", "min") in ("min", "max"):
            attest["provenance"] = fields.get("mode", "min")
        else:
            note(name, "attest", f"'{entry}': buildflow attests type=sbom[,generator=IMAGE] and type=provenance,mode=")
    return attest


def _annotations(name: str, entries: Sequence[str], note: Note) -> dict[str, str]:
    """KEY=VALUE, or LEVELS:KEY=VALUE for the manifest or the index (buildflow annotates both, where there are)."""
    found: dict[str, str] = {}
    for entry in entries:
        where, equals, value = entry.partition("=")
        levels, colon, key = where.rpartition(":")
        if not colon:
            key = where
        elif not set(levels.split(",")) <= _LEVELS:
            note(name, "annotations", f"'{entry}': buildflow annotates the manifest and the index only")
            continue
        if not equals or not _ANNOTATION_KEY.fullmatch(key):
            note(name, "annotations", f"'{entry}' is not KEY=VALUE")
            continue
        found[key] = value  # annotations are text, not templates
    return found
