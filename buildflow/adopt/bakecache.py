"""bake's cache-from/cache-to, secret and output entries as buildflow's cache:, secrets: and push: settings.

buildflow has one cache per target, read and written at the same place (docs/building.md#cache): bake's first
cache-to becomes it, and a cache-from that reads elsewhere is noted. A secret is `{env: VARIABLE}` or
`{file: PATH}`; an output that pushes is `push: true`, one that loads into the engine `push: false`."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Note = Callable[[str, str, str], None]  # (target, setting, why it is not carried over)
Rebase = Callable[[str], str]  # a path bake resolved, relative to the pipeline file

_SECRET_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CACHE_KEYS = frozenset({"type", "ref", "mode", "dest", "src", "ignore-error"})
_LOADS = frozenset({"docker", "image"})


def fields_of(entry: Any) -> dict[str, str]:
    """A bake entry such as 'type=registry,ref=x,mode=max' (or the mapping newer buildx prints) as a mapping;
    a bare value is under ''."""
    if isinstance(entry, Mapping):
        return {str(key).lower(): str(value) for key, value in entry.items()}
    parsed: dict[str, str] = {}
    for part in next(csv.reader([str(entry)]), []):
        key, equals, value = part.partition("=")
        if equals:
            parsed[key.strip().lower()] = value
        elif part.strip():
            parsed.setdefault("", part.strip())
    return parsed


def _cache_entry(entry: Any) -> dict[str, str]:
    """A cache entry; a bare reference (cache-from = ["user/app:cache"]) is a registry cache."""
    fields = fields_of(entry)
    if "" in fields and "type" not in fields:
        fields = {"type": "registry", "ref": fields.pop("")} | fields
    if "type" not in fields and "ref" in fields:
        fields["type"] = "registry"
    return fields


def cache_setting(name: str, spec: Mapping[str, Any], rebase: Rebase, note: Note) -> str | dict[str, str] | None:
    """buildflow's cache: for bake's cache-to (its first entry) and cache-from; None to leave the default."""
    written = [_cache_entry(entry) for entry in spec.get("cache-to") or []]
    read = [_cache_entry(entry) for entry in spec.get("cache-from") or []]
    if not written:
        for entry in read:
            note(
                name, "cache-from", f"{_shown(entry)} without a cache-to: buildflow reads the cache it writes (cache:)"
            )
        return None
    first, setting = written[0], _cache_of(written[0], rebase)
    for entry in written[1:]:
        note(name, "cache-to", f"{_shown(entry)}: buildflow writes one cache per target (the first one is kept)")
    if setting is None:
        note(name, "cache-to", f"{_shown(first)}: buildflow's caches are registry, inline and local")
        return None
    for key in sorted(set(first) - _CACHE_KEYS):
        note(name, f"cache-to {key}", "no such cache option in buildflow")
    for entry in read:
        if not _same_place(entry, first):
            note(name, "cache-from", f"{_shown(entry)}: buildflow reads the cache where it writes it")
    return setting


def _cache_of(entry: Mapping[str, str], rebase: Rebase) -> str | dict[str, str] | None:
    """One cache-to entry as buildflow's cache:, or None when buildflow has no such cache."""
    kind = entry.get("type", "")
    if kind == "inline":
        return "inline"
    if kind == "registry":
        setting = {"type": "registry", "mode": entry.get("mode", "min")}  # bake's default mode is min
        return {"type": "registry", "ref": entry["ref"], "mode": setting["mode"]} if entry.get("ref") else setting
    if kind == "local" and entry.get("dest"):
        return {"type": "local", "dir": rebase(entry["dest"])}
    return None


def _same_place(read: Mapping[str, str], written: Mapping[str, str]) -> bool:
    """True when a cache-from reads what the cache-to writes (inline cache is read from the image itself)."""
    if written.get("type") == "inline":
        return False
    if written.get("type") == "local":
        return read.get("type") == "local" and read.get("src") == written.get("dest")
    return read.get("type") == "registry" and read.get("ref") == written.get("ref")


def _shown(entry: Mapping[str, str]) -> str:
    """A cache entry as bake writes it."""
    return ",".join(f"{key}={value}" if key else value for key, value in entry.items())


def secrets_setting(name: str, entries: Sequence[Any], rebase: Rebase, note: Note) -> dict[str, dict[str, str]]:
    """buildflow's secrets: for bake's secret entries (id=ID,env=VAR / id=ID,src=PATH / type=env,id=ID)."""
    secrets: dict[str, dict[str, str]] = {}
    for entry in entries:
        fields = fields_of(entry)
        secret_id, source = fields.get("id", ""), fields.get("src") or fields.get("source")
        variable = fields.get("env")
        if fields.get("type") == "env" and not variable:
            variable, source = source or secret_id, None
        if not secret_id or not _SECRET_ID.fullmatch(secret_id):
            note(name, "secret", f"id '{secret_id}': buildflow's ids are letters, digits, '_', '.', '-' (at most 64)")
        elif variable:
            if _VARIABLE.fullmatch(variable):
                secrets[secret_id] = {"env": variable}
            else:
                note(name, f"secret {secret_id}", f"'{variable}' is not an environment variable name")
        elif source:
            secrets[secret_id] = {"file": rebase(source)}
        else:
            secrets[secret_id] = {"env": secret_id}  # BuildKit reads $ID when set, else a file named ID
            note(name, f"secret {secret_id}", f"neither env nor src: imported as env: {secret_id}, not as a file")
    return secrets


def push_setting(name: str, outputs: Sequence[Any], note: Note) -> bool | None:
    """push: true for an output that pushes, false for one that loads into the engine; None when bake has none."""
    push = None
    for entry in outputs:
        fields = fields_of(entry)
        kind = fields.get("type", fields.get("", ""))
        if kind == "registry" or (kind == "image" and fields.get("push") == "true"):
            push = True
        elif kind in _LOADS:
            push = False
        else:
            note(name, "output", f"{_shown(fields)}: buildflow pushes images to a registry or keeps them in the engine")
    return push
