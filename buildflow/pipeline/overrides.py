"""--set ID.FIELD=VALUE: a target's setting overridden for one run, as if the file said so, then checked like the
file (schema and resolution). ID is a target name or `*` for every target, as in `docker buildx bake --set`."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from buildflow.errors import FieldPath, Problem, did_you_mean
from buildflow.pipeline.spec import schema

_ALL = "*"
_MAPPINGS = frozenset({"args", "labels", "annotations", "vars"})  # FIELD.KEY: the rest is one key (dots and all)


@dataclass(frozen=True)
class Override:
    """One --set as given: the targets it names, the field path under each target, and its value."""

    given: str
    targets: tuple[str, ...]
    field: tuple[str, ...]
    value: Any


def apply_overrides(data: Any, sets: Sequence[str]) -> tuple[Any, list[Problem], list[Override]]:
    """The pipeline document with every --set applied (a copy), the problems of the --set options themselves
    (unknown target or field, no '='), and the overrides applied, to name them in the schema's problems."""
    if not sets or not isinstance(data, dict) or not isinstance(data.get("targets"), dict):
        return data, [], []
    data = copy.deepcopy(data)
    fields = _target_fields()
    problems: list[Problem] = []
    applied: list[Override] = []
    for given in sets:
        override = _parse(given, data["targets"], fields, problems)
        if override is not None:
            for name in override.targets:
                data["targets"][name] = _with_value(data["targets"][name], override.field, override.value)
            applied.append(override)
    return data, problems, applied


def name_overrides(problems: Sequence[Problem], applied: Sequence[Override]) -> list[Problem]:
    """Problems in a field a --set wrote point at that --set rather than at the file."""
    named = []
    for problem in problems:
        override = next((o for o in reversed(applied) if _written_by(problem.path, o)), None)
        named.append(replace(problem, file=f"--set {override.given}", line=None) if override else problem)
    return named


def _written_by(path: FieldPath, override: Override) -> bool:
    """True when a problem's field lies in (or holds) what an override wrote."""
    if len(path) < 2 or path[0] != "targets" or path[1] not in override.targets:
        return False
    inner = path[2:]
    shortest = min(len(inner), len(override.field))
    return inner[:shortest] == override.field[:shortest] and bool(inner)


def _parse(
    given: str, targets: Mapping[str, Any], fields: Mapping[str, Any], problems: list[Problem]
) -> Override | None:
    """One --set, checked for its form, target and field; None (and a problem) when it is not usable."""
    where, equals, text = given.partition("=")
    target, dot, field = where.partition(".")
    if not equals or not dot or not target or not field or "" in field.split("."):
        problems.append(
            Problem(
                "expected ID.FIELD=VALUE, e.g. app.args.VERSION=2 or '*.platforms=linux/amd64'", file=f"--set {given}"
            )
        )
        return None
    if target != _ALL and target not in targets:
        known = ", ".join(sorted(targets))
        hint = did_you_mean(target, targets)
        problems.append(
            Problem(f"unknown target '{target}'{hint}; the targets are: {known} (or * for all)", file=f"--set {given}")
        )
        return None
    head, _, key = field.partition(".")
    path = (head, key) if head in _MAPPINGS and key else tuple(field.split("."))
    if path[0] not in fields:
        hint = did_you_mean(path[0], fields)
        problems.append(
            Problem(
                f"unknown field '{path[0]}'{hint}; a target's fields are: {', '.join(sorted(fields))}",
                file=f"--set {given}",
            )
        )
        return None
    names = tuple(targets) if target == _ALL else (target,)
    return Override(given, names, path, _value(text, fields[path[0]], nested=len(path) > 1))


def _target_fields() -> dict[str, Any]:
    """The settings a target may have, by name, with their schema."""
    properties: dict[str, Any] = schema()["$defs"]["target"]["properties"]
    return properties


def _value(text: str, field_schema: Mapping[str, Any], *, nested: bool) -> Any:
    """The value as the file would hold it: a list for list fields (comma-separated), else what YAML reads
    (true, 2, min), text when YAML reads a mapping or a list."""
    if not nested and _is_list(field_schema):
        return [item.strip() for item in text.split(",") if item.strip()]
    import yaml

    try:
        value = yaml.safe_load(text) if text else ""
    except yaml.YAMLError:
        return text
    return text if isinstance(value, dict | list) or value is None else value


def _is_list(field_schema: Mapping[str, Any]) -> bool:
    """True when a field is a list in the schema (platforms, tags, ssh), not also a single value (from:)."""
    resolved = field_schema
    if "$ref" in resolved:
        resolved = schema()["$defs"][str(resolved["$ref"]).rpartition("/")[2]]
    return resolved.get("type") == "array"


def _with_value(target: Any, field: tuple[str, ...], value: Any) -> Any:
    """A target with one (possibly nested) field set; mappings on the way are made or copied."""
    if not isinstance(target, dict):
        return target
    updated = dict(target)
    head, rest = field[0], field[1:]
    if not rest:
        updated[head] = value
    else:
        inner = updated.get(head)
        updated[head] = _with_value(inner if isinstance(inner, dict) else {}, rest, value)
    return updated
