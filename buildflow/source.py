"""Reading a pipeline file: size and encoding checks, JSON or YAML, and line numbers for field paths."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, NoReturn

from buildflow.errors import FieldPath, PipelineError, Problem

MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_EXPANDED_VALUES = 1_000_000


def read_document(path: Path, display: str) -> tuple[str, Any]:
    """Return the file's text and its parsed data; every failure is a PipelineError naming the file."""
    text = _read_text(path, display)
    if not text.strip():
        _fail(display, "the file is empty; a pipeline needs 'version: 1' and 'targets:'")
    data = _parse_json(text)
    if data is None:
        data = _parse_yaml(text, display)
    if not isinstance(data, dict):
        _fail(display, "the top level must be a mapping with 'version: 1' and 'targets:'", line=1)
    return text, data


def _read_text(path: Path, display: str) -> str:
    """Read the file as UTF-8 text, refusing huge or binary files."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        _fail(display, "no such file; pass the pipeline with -f PATH (default ./buildflow.yaml)")
    except IsADirectoryError:
        _fail(display, "is a directory; pass the pipeline file itself with -f PATH")
    except OSError as error:
        _fail(display, f"cannot read: {error.strerror}")
    if len(raw) > MAX_FILE_BYTES:
        _fail(display, f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; a pipeline file should be small")
    if b"\0" in raw:
        _fail(display, "binary data (NUL bytes): not a YAML or JSON pipeline file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        _fail(display, f"not UTF-8 text (byte {error.start}); save the file as UTF-8", line=line)


def _fail(display: str, message: str, line: int | None = None) -> NoReturn:
    """Raise a single-problem PipelineError."""
    raise PipelineError([Problem(message, file=display, line=line)])


class _DuplicateKey(ValueError):
    """A JSON object repeats a key (reported with its line by the YAML reader)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON object hook that refuses repeated keys."""
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKey
    return result


def _parse_json(text: str) -> Any:
    """Parse a JSON document quickly; None when the text is not plain JSON (YAML then reads it)."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_float=str)
    except (ValueError, RecursionError):
        return None


def _parse_yaml(text: str, display: str) -> Any:
    """Parse YAML with the core schema, refusing duplicate keys and alias bombs."""
    import yaml

    loader_class = _yaml_loader()
    try:
        data = yaml.load(text, Loader=loader_class)
    except yaml.constructor.ConstructorError as error:
        _fail(display, _yaml_message(error), line=_mark_line(error))
    except yaml.MarkedYAMLError as error:
        _fail(display, f"YAML syntax: {_yaml_message(error)}", line=_mark_line(error))
    except yaml.reader.ReaderError as error:
        line = text.count("\n", 0, error.position) + 1
        _fail(display, f"not YAML text: character {error.character!r} is not allowed", line=line)
    except yaml.YAMLError as error:
        _fail(display, f"YAML syntax: {' '.join(str(error).split())}")
    except RecursionError:
        _fail(display, "nested too deeply to read")
    if ("&" in text or "<<" in text) and _expanded_size(data) > MAX_EXPANDED_VALUES:
        _fail(display, f"YAML aliases expand to more than {MAX_EXPANDED_VALUES:,} values; remove the alias chain")
    return data


def _mark_line(error: Any) -> int | None:
    """The 1-based line a YAML error points at."""
    mark = error.problem_mark or error.context_mark
    return mark.line + 1 if mark else None


def _yaml_message(error: Any) -> str:
    """A one-line description of a YAML syntax error."""
    parts = [error.context, error.problem]
    return "; ".join(" ".join(str(part).split()) for part in parts if part)


def _expanded_size(data: Any) -> int:
    """Count the values the data holds once every alias is expanded (shared objects counted each time)."""
    sizes: dict[int, int] = {}

    def size(value: Any, depth: int = 0) -> int:
        if not isinstance(value, dict | list):
            return 1
        known = sizes.get(id(value))
        if known is not None:
            return known
        items = value.values() if isinstance(value, dict) else value
        total = 1 + sum(size(item, depth + 1) for item in items)
        sizes[id(value)] = total
        return total

    try:
        return size(data)
    except RecursionError:
        return MAX_EXPANDED_VALUES + 1


@cache
def _yaml_loader() -> Any:
    """A SafeLoader (libyaml when present) with YAML 1.2 core scalars and duplicate-key checks."""
    import yaml
    from yaml.constructor import ConstructorError

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class CoreLoader(base):  # type: ignore[misc,valid-type]
        """YAML 1.2 core schema, except that 1.10 stays "1.10": no floats, dates or sexagesimals; yes/on are text."""

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: dict[str, int] = {}
            for key_node, _value in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in _KEY_TAGS:
                    raise ConstructorError(None, None, "keys must be plain text", key_node.start_mark)
                if key_node.value in seen:
                    first = seen[key_node.value]
                    message = f"duplicate key '{key_node.value}' (first at line {first}); keep one"
                    raise ConstructorError(None, None, message, key_node.start_mark)
                seen[key_node.value] = key_node.start_mark.line + 1
            mapping = super().construct_mapping(node, deep)
            return {str(key): value for key, value in mapping.items()}

    CoreLoader.yaml_implicit_resolvers = _core_resolvers()
    CoreLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
    for unsupported in ("binary", "timestamp", "omap", "pairs", "set"):
        CoreLoader.add_constructor(f"tag:yaml.org,2002:{unsupported}", _refuse_tag)
    return CoreLoader


def _refuse_tag(loader: Any, node: Any) -> Any:
    """Explicit tags for values a pipeline cannot hold (!!binary, !!set, ...)."""
    from yaml.constructor import ConstructorError

    message = f"{node.tag.rsplit(':', 1)[-1]} values are not supported; use text, numbers, lists and mappings"
    raise ConstructorError(None, None, message, node.start_mark)


_KEY_TAGS = frozenset({"tag:yaml.org,2002:str", "tag:yaml.org,2002:int"})


def _core_resolvers() -> dict[str, list[tuple[str, re.Pattern[str]]]]:
    """Implicit scalar types of the YAML 1.2 core schema, minus floats: numbers with a point stay text as written
    (versions like 1.10), and the few settings that take fractions accept them as text."""
    table: dict[str, list[tuple[str, re.Pattern[str]]]] = {}
    rules = [
        ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
        ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
        ("null", r"^(?:~|null|Null|NULL|)$", "~nN"),
        ("merge", r"^(?:<<)$", "<"),
    ]
    for name, pattern, first_chars in rules:
        compiled = re.compile(pattern)
        starts = [*first_chars, ""] if name == "null" else list(first_chars)
        for char in starts:
            table.setdefault(char, []).append((f"tag:yaml.org,2002:{name}", compiled))
    return table


def _construct_int(loader: Any, node: Any) -> int:
    """Integers in decimal, 0o octal or 0x hex (YAML 1.2: 012 is twelve)."""
    value = str(loader.construct_scalar(node))
    return int(value, 0) if value[:2] in ("0o", "0x") else int(value, 10)


def line_finder(text: str) -> Callable[[FieldPath], int | None]:
    """A function giving the 1-based line of a field path in the document (the YAML is composed once)."""
    import yaml

    try:
        document = yaml.compose(text, Loader=_yaml_loader())
    except (yaml.YAMLError, RecursionError):
        document = None

    def find(path: FieldPath) -> int | None:
        if document is None:
            return None
        node, line = document, document.start_mark.line + 1
        for part in path:
            node, key_line = _child(node, part)
            if node is None:
                break
            line = key_line if key_line is not None else node.start_mark.line + 1
        return line

    return find


def _child(node: Any, part: str | int) -> tuple[Any, int | None]:
    """The child node for one path element and the line of its key (mappings only)."""
    import yaml

    if isinstance(node, yaml.SequenceNode) and isinstance(part, int):
        return (node.value[part], None) if 0 <= part < len(node.value) else (None, None)
    if not isinstance(node, yaml.MappingNode):
        return None, None
    merged = []
    for key_node, value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            merged.append(value_node)
        elif isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
            return value_node, key_node.start_mark.line + 1
    for source in merged:
        for candidate in source.value if isinstance(source, yaml.SequenceNode) else [source]:
            found, line = _child(candidate, part)
            if found is not None:
                return found, line
    return None, None
