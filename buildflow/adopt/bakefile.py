"""Reading a bake file as `docker buildx bake --print` prints it: that JSON as it is, anything else (HCL, a bake
JSON with variables, matrices or inherits, a compose file) through `bake --print` itself, in the file's directory.

With no target named, the whole file is imported: bake's default group as bake prints it (which keeps that group as
the file defines it), then every other group and target the file declares. A target only ever inherited from
(`target "_common"`) is a template, not an image, and is left out unless a group or another target names it."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from buildflow.engine import bake
from buildflow.engine.base import EngineError
from buildflow.errors import UsageError

MAX_BYTES = 64 * 2**20
PRINTED_KEYS = frozenset({"group", "target"})
UNPRINTED_TARGET_KEYS = frozenset({"matrix", "inherits", "name"})  # bake resolves these before it prints
EXPECTED = 'the JSON that `docker buildx bake --print` prints: {"group": {...}, "target": {"NAME": {...}}}'
_BLOCK = re.compile(r'^\s*(target|group)\s+"([^"]+)"\s*\{', re.MULTILINE)
_INHERITS = re.compile(r"inherits\s*=\s*\[([^\]]*)\]")
_QUOTED = re.compile(r'"([^"]+)"')
_NO_DEFAULT = "failed to find target default"
_JSON_TYPES = {list: "list", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


class NotBake(UsageError):
    """A file that is not bake's JSON and cannot be turned into it here (exit 2)."""


def read(file: Path, names: Sequence[str] = ()) -> tuple[dict[str, Any], bool]:
    """The printed definition of the bake file, and whether bake itself printed it."""
    text = _text(file)
    data = _json(file, text)
    if data is not None and not (isinstance(data, dict) and isinstance(data.get("target"), dict)):
        raise NotBake(f"{file}: expected {EXPECTED}; got {_described(data)}")
    if data is not None and printed_form(checked(file, data)) and not names:
        return data, False
    if not bake.available():
        what = "JSON with variables, matrices or inherits" if data is not None else "not JSON (HCL or compose?)"
        raise NotBake(
            f"{file}: expected {EXPECTED}; this file is {what}, which needs docker buildx bake to print it, and "
            "docker buildx is not here: run `docker buildx bake -f FILE --print > bake.json` where it is, "
            "and import bake.json"
        )
    return checked(file, _printed(file, text, data, names)), True


_STRINGS = ("context", "dockerfile", "dockerfile-inline", "target", "description", "network")
_LISTS = ("tags", "platforms", "cache-from", "cache-to", "secret", "output", "ssh", "attest", "annotations")
_MAPPINGS = ("args", "labels", "contexts")


def checked(file: Path, printed: dict[str, Any]) -> dict[str, Any]:
    """The printed definition, once each target and group has bake's shape (NotBake naming the first that has not)."""
    for name, target in printed["target"].items():
        if not isinstance(target, dict):
            raise NotBake(f"{file}: target.{name}: expected a mapping of settings, got {_described(target)}")
        for key, kind, expected in _SHAPES:
            if key in target and target[key] is not None and not isinstance(target[key], kind):
                raise NotBake(f"{file}: target.{name}.{key}: expected {expected}, got {_described(target[key])}")
    for name, group in (printed.get("group") or {}).items():
        members = group.get("targets") if isinstance(group, dict) else None
        if not isinstance(members, list) or not all(isinstance(member, str) for member in members):
            raise NotBake(f'{file}: group.{name}: expected {{"targets": [NAME, ...]}}, got {_described(group)}')
    return printed


_SHAPES = (
    *((key, str, "a string") for key in _STRINGS),
    *((key, list, "a list") for key in _LISTS),
    *((key, dict, "a mapping") for key in _MAPPINGS),
)


def printed_form(data: Any) -> bool:
    """True when `data` has the shape of bake --print's output (no variable, matrix or inherits left)."""
    if not isinstance(data, dict) or not set(data) <= PRINTED_KEYS or not isinstance(data.get("target"), dict):
        return False
    return all(
        isinstance(target, dict) and not UNPRINTED_TARGET_KEYS & set(target) for target in data["target"].values()
    )


def _text(file: Path) -> str:
    """The file as text, refusing what cannot be a bake file."""
    try:
        raw = file.read_bytes() if file.stat().st_size <= MAX_BYTES else None
    except FileNotFoundError:
        raise NotBake(f"{file}: no such file") from None
    except OSError as error:
        raise NotBake(f"{file}: cannot be read ({error.strerror or error})") from None
    if raw is None:
        raise NotBake(f"{file}: larger than {MAX_BYTES // 2**20} MiB; expected {EXPECTED}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise NotBake(f"{file}: not UTF-8 text; expected {EXPECTED}") from None


def _json(file: Path, text: str) -> Any:
    """The parsed JSON, or None when the text is not JSON at all (HCL never starts with a brace)."""
    if not text.lstrip().startswith(("{", "[")):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise NotBake(f"{file}:{error.lineno}: not valid JSON ({error.msg}); expected {EXPECTED}") from None


def _described(data: Any) -> str:
    """What a JSON value holds instead of what bake prints there."""
    if not isinstance(data, dict):
        return f"a JSON {_JSON_TYPES.get(type(data), type(data).__name__)}"
    if "target" in data:
        return f"'target' holding a {type(data['target']).__name__}"
    keys = ", ".join(list(map(str, data))[:5])
    return f"a mapping with {keys}, and no 'target'" if keys else "an empty mapping"


def _printed(file: Path, text: str, data: Any, names: Sequence[str]) -> dict[str, Any]:
    """bake --print of the named targets, or of the whole file."""
    try:
        if names:
            printed = bake.print_definition(file, names)
            if "default" not in names:
                printed.get("group", {}).pop("default", None)  # bake's own list of the names asked for
            return printed
        return _whole_file(file, text, data)
    except EngineError as error:
        raise NotBake(f"{file}: docker buildx bake --print failed: {error}") from None


def _whole_file(file: Path, text: str, data: Any) -> dict[str, Any]:
    """The default group as bake prints it, then everything else the file declares."""
    try:
        printed = bake.print_definition(file)
    except EngineError as error:
        if _NO_DEFAULT not in str(error):
            raise
        printed = {"group": {}, "target": {}}
    printed.setdefault("group", {})
    printed.setdefault("target", {})
    missing = [
        name for name in declared_names(text, data) if name not in printed["group"] and name not in printed["target"]
    ]
    if missing:
        rest = bake.print_definition(file, missing)
        rest.get("group", {}).pop("default", None)
        printed["group"] |= rest.get("group", {})
        printed["target"] |= rest.get("target", {})
    return printed


def declared_names(text: str, data: Any) -> list[str]:
    """The groups and targets a bake file declares, templates (targets only inherited from) left out."""
    if isinstance(data, dict):
        groups, targets = list(data.get("group") or {}), list(data.get("target") or {})
        inherited = {name for target in (data.get("target") or {}).values() for name in _inherits_of(target)}
    else:
        blocks = _BLOCK.findall(text)
        groups = [name for kind, name in blocks if kind == "group"]
        targets = [name for kind, name in blocks if kind == "target"]
        inherited = {name for found in _INHERITS.findall(text) for name in _QUOTED.findall(found)}
    return list(dict.fromkeys([*groups, *(name for name in targets if name not in inherited)]))


def _inherits_of(target: Any) -> list[str]:
    """The names a JSON target inherits from."""
    inherits = target.get("inherits") if isinstance(target, dict) else None
    return [name for name in inherits if isinstance(name, str)] if isinstance(inherits, list) else []
