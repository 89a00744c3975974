"""The raw pipeline spec: its JSON Schema, typed views of validated data, and schema problems in plain words."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, Required, TypedDict

from buildflow.errors import FieldPath, Problem, did_you_mean
from buildflow.pipeline.matrix import RESERVED_KEYS

SCHEMA_PATH = Path(__file__).with_name("pipeline.schema.json")

Scalar = str | int | float | bool


class ParentSpec(TypedDict, total=False):
    """A conditional parent: {target: NAME, when: {AXIS: VALUE}}."""

    target: Required[str]
    when: dict[str, Scalar | list[Scalar]]


class CacheSpec(TypedDict, total=False):
    """The long form of `cache:`."""

    type: Required[str]
    ref: str
    mode: str
    dir: str


class TestCommandSpec(TypedDict, total=False):
    """One test command with a condition: {run: COMMAND, when: {AXIS: VALUE}}."""

    run: Required[str]
    when: dict[str, Scalar | list[Scalar]]


class TestSpec(TypedDict, total=False):
    """The long form of `test:`."""

    commands: list[str | TestCommandSpec]
    env: dict[str, Scalar]
    timeout: int
    network: str
    gpus: str
    inherit: bool


class LintSpec(TypedDict, total=False):
    """`lint:`: which hadolint findings count."""

    threshold: str
    ignore: list[str]


class MatrixSpec(TypedDict, total=False):
    """Matrix axes plus the reserved keys exclude and include."""

    exclude: list[dict[str, Scalar]]
    include: list[dict[str, Scalar]]


TargetSpec = TypedDict(
    "TargetSpec",
    {
        "description": str,
        "context": str,
        "dockerfile": str,
        "stage": str,
        "from": str | ParentSpec | list[str | ParentSpec],
        "depends_on": str | list[str],
        "args": dict[str, Scalar],
        "vars": dict[str, Scalar],
        "tags": list[str],
        "platforms": list[str],
        "labels": dict[str, Scalar],
        "secrets": dict[str, dict[str, str]],
        "cache": str | CacheSpec,
        "push": bool,
        "network": str,
        "test": list[str | TestCommandSpec] | TestSpec,
        "lint": LintSpec,
        "size_budget": int | str,
        "attest": dict[str, Any],
        "ssh": list[Any],
        "annotations": dict[str, Scalar],
        "output": str | dict[str, str],
        "matrix": dict[str, Any],
    },
    total=False,
)


class RetrySpec(TypedDict, total=False):
    """Retry settings (delays as numbers, or as text like "0.5")."""

    attempts: int
    initial_delay: float | str
    max_delay: float | str


class RebuildSpec(TypedDict, total=False):
    """When unchanged images are rebuilt."""

    follow_bases: bool
    max_age: str


class BuilderEntrySpec(TypedDict, total=False):
    """One entry of `builders:`: a docker context or buildx builder, its jobs and platforms."""

    name: Required[str]
    jobs: int
    platforms: list[str]


class PipelineSpec(TypedDict, total=False):
    """A whole validated pipeline file."""

    version: Required[int]
    registry: str
    vars: dict[str, Scalar]
    defaults: TargetSpec
    retry: RetrySpec
    rebuild: RebuildSpec
    builders: list[BuilderEntrySpec]
    release: str
    targets: Required[dict[str, TargetSpec]]


@cache
def schema() -> dict[str, Any]:
    """The JSON Schema of pipeline files."""
    with SCHEMA_PATH.open(encoding="utf-8") as handle:
        loaded: dict[str, Any] = json.load(handle)
    return loaded


@cache
def _validator() -> Any:
    import jsonschema_rs

    return jsonschema_rs.validator_for(schema())


def schema_problems(data: Any) -> list[Problem]:
    """Every way `data` breaks the schema, as problems with field paths (no file or line yet)."""
    validator = _validator()
    if validator.is_valid(data):
        return []
    errors = list(validator.iter_errors(data))
    with_unknown_keys = {tuple(error.instance_path) for error in errors if _kind(error) == "AdditionalProperties"}
    problems: list[Problem] = []
    misplaced: set[FieldPath] = set()
    for error in errors:
        path: FieldPath = tuple(error.instance_path)
        if _kind(error) == "MaxProperties" and path in with_unknown_keys:
            continue  # {env: X, value: y}: the unknown key says it all
        axis = _misspelt_matrix_key(path)
        if axis is None:
            problems.extend(_explain(error))
        elif axis not in misplaced:
            misplaced.add(axis)
            problems.append(_unknown_key(axis[:-1], str(axis[-1]), list(RESERVED_KEYS)))
    return problems


def _kind(error: Any) -> str:
    """The name of a validation error's kind: Type, Enum, AdditionalProperties..."""
    return type(error.kind).__name__


def _misspelt_matrix_key(path: FieldPath) -> FieldPath | None:
    """targets.T.matrix.KEY when KEY, read as an axis, looks like a misspelt exclude or include."""
    if len(path) < 4 or path[0] != "targets" or path[2] != "matrix" or path[3] in RESERVED_KEYS:
        return None
    return path[:4] if did_you_mean(str(path[3]), RESERVED_KEYS) else None


def _explain(error: Any) -> list[Problem]:
    """Turn one validation error into problems with plain messages."""
    path: FieldPath = tuple(error.instance_path)
    kind = _kind(error)
    node = _schema_node(list(error.schema_path)[:-1])
    if kind == "AdditionalProperties":
        known = sorted(node.get("properties", {}))
        return [_unknown_key(path, key, known) for key in error.kind.unexpected]
    if kind == "AnyOf":
        return _explain_any_of(error, path, node)
    if kind == "PropertyNames":
        bad = error.kind.error.instance
        rule = _schema_node(list(error.kind.error.schema_path)[:-1]).get("description", "")
        return [Problem(f"invalid name '{bad}'" + (f": {rule}" if rule else ""), (*path, str(bad)))]
    return [Problem(_message(kind, error, node), path)]


def _unknown_key(path: FieldPath, key: str, known: list[str]) -> Problem:
    """An unknown key, with the closest known one."""
    if path == ("defaults",) and key in schema()["$defs"]["target"]["properties"]:
        return Problem(f"'{key}' cannot be a default; set it on each target", (*path, key))
    hint = did_you_mean(key, known) or f" — known keys: {', '.join(known)}"
    return Problem(f"unknown key{hint}", (*path, key))


def _explain_any_of(error: Any, path: FieldPath, node: dict[str, Any]) -> list[Problem]:
    """Explain the one branch whose type fits the value, else say what was expected."""
    value_type = _json_type(error.instance)
    fitting = [
        branch_errors
        for branch_schema, branch_errors in zip(node.get("anyOf", []), error.kind.context, strict=False)
        if value_type in _branch_types(branch_schema)
    ]
    if len(fitting) == 1:
        return [problem for nested in fitting[0] for problem in _explain(nested)]
    expected = node.get("x-expected", "another kind of value")
    return [Problem(f"expected {expected}, got {_describe(error.instance)}", path)]


def _json_type(value: Any) -> str:
    """The JSON type name of a Python value."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    names = {float: "number", str: "string", list: "array", dict: "object"}
    return names.get(type(value), "null")


def _branch_types(branch: dict[str, Any]) -> set[str]:
    """The JSON types a schema branch accepts."""
    if "$ref" in branch:
        branch = _schema_node(branch["$ref"].removeprefix("#/").split("/"))
    if "anyOf" in branch:
        return set().union(*(_branch_types(sub) for sub in branch["anyOf"]))
    if "enum" in branch:
        return {_json_type(option) for option in branch["enum"]}
    declared = branch.get("type", [])
    types = {declared} if isinstance(declared, str) else set(declared)
    return types | {"integer"} if "number" in types else types


def _message(kind: str, error: Any, node: dict[str, Any]) -> str:
    """The plain-words message for one simple validation error (the validator's own words otherwise)."""
    explain = _MESSAGES.get(kind)
    return (explain(error, node) if explain else None) or str(error.message)


def _type_message(error: Any, node: dict[str, Any]) -> str:
    expected = node.get("x-expected") or " or ".join(_TYPE_WORDS.get(t, t) for t in error.kind.types)
    return f"expected {expected}, got {_describe(error.instance)}"


def _enum_message(error: Any, node: dict[str, Any]) -> str:
    options = [json.dumps(option) if isinstance(option, bool) else str(option) for option in error.kind.options]
    return f"'{error.instance}' is not one of {', '.join(options)}{did_you_mean(str(error.instance), options)}"


def _constant_message(error: Any, node: dict[str, Any]) -> str:
    """A version other than 1, or 1 written as text."""
    expected = error.kind.expected_value
    if isinstance(error.instance, str) and error.instance.strip() == str(expected):
        return f"expected the number {expected}, got the string '{error.instance}'; write version: {expected}"
    return f"unsupported version {error.instance!r}: this buildflow reads version {expected}"


def _required_message(error: Any, node: dict[str, Any]) -> str:
    missing = error.message.split('"')[1] if '"' in error.message else error.message
    return f"missing required key '{missing}'"


def _pattern_message(error: Any, node: dict[str, Any]) -> str:
    """Text that does not match its pattern, with the rule in words."""
    rule = node.get("x-expected") or node.get("description")
    return f"'{error.instance}' is not allowed here" + (f"; expected {rule}" if rule else "")


def _size_message(error: Any, node: dict[str, Any]) -> str | None:
    """An empty mapping or list, or one with too many or too few keys."""
    if isinstance(error.instance, dict | list) and not error.instance:
        return "must not be empty" + (f"; expected {node['x-expected']}" if "x-expected" in node else "")
    return f"expected {node['x-expected']}" if "x-expected" in node else None


def _bound_message(error: Any, node: dict[str, Any]) -> str | None:
    """A number out of its range, said with the range in words where the schema gives them."""
    return f"expected {node['x-expected']}, got {_describe(error.instance)}" if "x-expected" in node else None


_MESSAGES: dict[str, Callable[[Any, dict[str, Any]], str | None]] = {
    "Type": _type_message,
    "Enum": _enum_message,
    "Constant": _constant_message,
    "Required": _required_message,
    "Pattern": _pattern_message,
    "MinProperties": _size_message,
    "MaxProperties": _size_message,
    "MinItems": _size_message,
    "Minimum": _bound_message,
    "Maximum": _bound_message,
}


_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "boolean": "true or false",
    "number": "a number",
    "array": "a list",
    "object": "a mapping",
}


def _describe(value: Any) -> str:
    """A short description of a value for messages: 'a list', 'the number 3'."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string '{value[:40]}'"
    if value is None:
        return "nothing (null)"
    return "a list" if isinstance(value, list) else "a mapping"


def _schema_node(schema_path: Any) -> dict[str, Any]:
    """The schema node at a schema path (refs already resolved by the validator)."""
    node: Any = schema()
    for part in schema_path:
        in_dict = isinstance(node, dict) and part in node
        if in_dict or (isinstance(node, list) and isinstance(part, int) and part < len(node)):
            node = node[part]
        else:
            return {}
    return node if isinstance(node, dict) else {}
