"""Reading a pipeline file: size and encoding checks, JSON or YAML, and line numbers for field paths."""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, NoReturn

from buildflow.errors import FieldPath, PipelineError, Problem

MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_EXPANDED_VALUES = 1_000_000
MAX_YAML_CHARACTERS = 2 * 1024 * 1024  # PyYAML builds every node first: 2.3 MB took 3.6 s to refuse; JSON, 0.5 s


def read_document(path: Path, display: str) -> tuple[str, Any]:
    """Return the file's text and its parsed data; every failure is a PipelineError naming the file."""
    text = read_text(path, display)
    return text, parse_document(text, path, display)


def parse_document(text: str, path: Path, display: str) -> Any:
    """The data of a pipeline file's text (a mapping); every failure is a PipelineError naming the file."""
    if not text.strip():
        _fail(display, "the file is empty; a pipeline needs 'version: 1' and 'targets:'")
    data = _parse_json(text, display)
    if data is None and len(text) > MAX_YAML_CHARACTERS:
        _fail(
            display, f"a YAML file over {MAX_YAML_CHARACTERS // (1024 * 1024)} MiB; write a pipeline this large as JSON"
        )
    if data is None:
        data = _parse_yaml(text, display, json_file=path.suffix.lower() == ".json")
    if not isinstance(data, dict):
        _fail(display, _NOT_A_MAPPING, line=1)
    return data


_NOT_A_MAPPING = "the top level must be a mapping with 'version: 1' and 'targets:'"


def read_text(path: Path, display: str) -> str:
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
    for bom, encoding in _WIDE_BOMS:
        if raw.startswith(bom):
            _fail(display, f"{encoding} text; save the file as UTF-8", line=1)
    if b"\0" in raw:
        _fail(display, "binary data (NUL bytes): not a YAML or JSON pipeline file; pass the pipeline with -f PATH")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        _fail(display, f"not UTF-8 text (byte {error.start}); save the file as UTF-8", line=line)


_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def _fail(display: str, message: str, line: int | None = None) -> NoReturn:
    """Raise a single-problem PipelineError."""
    raise PipelineError([Problem(message, file=display, line=line)])


class _NotPlainJson(ValueError):
    """JSON that buildflow leaves to the YAML reader: a repeated key (YAML gives its line), NaN or Infinity."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON object hook that refuses repeated keys."""
    result = dict(pairs)
    if len(result) != len(pairs):
        key = next(key for index, (key, _) in enumerate(pairs) if key in dict(pairs[:index]))
        raise _NotPlainJson(f"duplicate key '{key}'; keep one")
    return result


def _refuse_constant(name: str) -> Any:
    """NaN and Infinity are not JSON: YAML then reads them, as text."""
    raise _NotPlainJson(f"{name} is not a JSON value; write a number, or text in quotes")


def _json_loads(text: str) -> Any:
    """json.loads with buildflow's rules: no repeated keys, no NaN or Infinity, numbers with a point kept as text."""
    return json.loads(text, object_pairs_hook=_unique_keys, parse_float=str, parse_constant=_refuse_constant)


def _parse_json(text: str, display: str) -> Any:
    """Parse a JSON document quickly; None when the text is not plain JSON (YAML then reads it)."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        data = _json_loads(text)
    except (ValueError, RecursionError):
        return None
    if "\\u" in text:
        _check_surrogates(text, data, display)
    return data


_LONE_SURROGATE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


def _check_surrogates(text: str, data: Any, display: str) -> None:
    """Refuse \\uD800-style escapes that encode half a character: no file, log or registry can hold them."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        found = _LONE_SURROGATE.search(text)
        line = text.count("\n", 0, found.start()) + 1 if found else None
        shown = f"'{found[0]}' " if found else ""
        _fail(
            display, f"JSON escape {shown}is half a character (an unpaired surrogate); write the character itself", line
        )


def _parse_yaml(text: str, display: str, json_file: bool = False) -> Any:
    """Parse YAML with the core schema, refusing duplicate keys and alias bombs (a .json file: JSON's message)."""
    import yaml

    try:
        data = _load_yaml(text)
    except yaml.constructor.ConstructorError as error:
        _fail(display, _yaml_message(error), line=_mark_line(error))
    except (yaml.YAMLError, RecursionError) as error:
        if json_file:
            _fail_json(text, display)
        _fail_yaml(error, text, display)
    if "&" in text or "<<" in text:
        _check_aliases(data, display)
    return data


def _load_yaml(text: str) -> Any:
    """The YAML document's value: libyaml's nodes built directly, or by PyYAML's constructor when they are not
    plain (which then raises the ConstructorError that names the problem)."""
    from buildflow.pipeline.yamlnodes import NotPlain, plain_value

    loader = _yaml_loader()(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        try:
            return plain_value(node)
        except NotPlain:
            return loader.construct_document(node)
    finally:
        loader.dispose()


def _fail_yaml(error: Exception, text: str, display: str) -> NoReturn:
    """A YAML syntax error as one line, with a hint where the usual cause is known."""
    import yaml

    if isinstance(error, yaml.MarkedYAMLError):
        _fail(display, f"YAML syntax: {_yaml_message(error)}{_yaml_hint(error, text)}", line=_mark_line(error))
    if isinstance(error, yaml.reader.ReaderError):
        line = text.count("\n", 0, error.position) + 1
        character = chr(error.character) if isinstance(error.character, int) else str(error.character)
        _fail(display, f"not YAML text: character {character!r} is not allowed; remove it", line=line)
    if isinstance(error, RecursionError):
        _fail(display, f"nested too deeply to read; {_NESTING_HINT}")
    _fail(display, f"YAML syntax: {' '.join(str(error).split())}")


def _fail_json(text: str, display: str) -> NoReturn:
    """Why a .json file that YAML cannot read either is not a pipeline, in the JSON parser's words."""
    try:
        _json_loads(text)
    except json.JSONDecodeError as error:
        hint = "; remove what follows the closing '}'" if error.msg == "Extra data" else ""
        _fail(display, f"JSON syntax: {error.msg} (column {error.colno}){hint}", line=error.lineno)
    except RecursionError:
        _fail(display, f"JSON syntax: nested too deeply to read; {_NESTING_HINT}")
    except _NotPlainJson as error:
        _fail(display, f"JSON: {error}")
    except ValueError:
        _fail(display, "JSON: a number is too long to read; quote it if it is text")
    _fail(display, _NOT_A_MAPPING, line=1)


_NESTING_HINT = "a pipeline needs a few levels of nesting, not hundreds: look for unclosed brackets"

_YAML_HINTS = (
    ("exceeded maximum nesting depth", _NESTING_HINT),
    ("did not find expected <document start>", "a pipeline is one mapping: remove what follows it"),
    ("expected a single document", "a pipeline is one document: remove the '---' and what follows it"),
    ("mapping values are not allowed", "check the indentation, and quote values that contain ': '"),
    ("did not find expected key", "check the indentation of this line and the one above"),
    ("did not find expected '-' indicator", "check the indentation of this line and the one above"),
    ("found unexpected end of stream", "close the quote or bracket opened above"),
    ("did not find expected ',' or", "close the bracket, or separate the items with ','"),
    ("found incompatible YAML document", "remove the %YAML directive"),
)


_LONGEST_YAML_KEY = 1024  # characters of a plain (implicit) key, as the YAML 1.1 spec and PyYAML allow


def _yaml_hint(error: Any, text: str) -> str:
    """What to do about a YAML syntax error, from its message and the text it points at."""
    problem = str(error.problem or "")
    mark = error.problem_mark
    at = text[mark.index : mark.index + 40] if mark is not None and 0 <= mark.index < len(text) else ""
    if problem == "found character that cannot start any token" and at:
        return "; indent with spaces, not tabs" if at[0] == "\t" else f"; quote the value that starts with {at[0]!r}"
    if problem.startswith("mapping values are not allowed") and mark is not None and mark.column > _LONGEST_YAML_KEY:
        return f"; a key of {mark.column:,} characters: YAML reads at most {_LONGEST_YAML_KEY} as a key, so shorten it"
    if problem == "found undefined alias" and at.startswith("*"):
        name = re.split(r"[\s,\]}]", at[1:], maxsplit=1)[0]
        return f" '*{name}'; define it first with '&{name}'"
    return next((f"; {hint}" for pattern, hint in _YAML_HINTS if pattern in problem), "")


def _check_aliases(data: Any, display: str) -> None:
    """Refuse aliases that loop back into their own anchor or expand to more than MAX_EXPANDED_VALUES values."""
    size = _expanded_size(data)
    if size is None:
        _fail(display, "a YAML alias refers to its own anchor, which makes an endless value; remove the loop")
    if size > MAX_EXPANDED_VALUES:
        _fail(display, f"YAML aliases expand to more than {MAX_EXPANDED_VALUES:,} values; remove the alias chain")


def _mark_line(error: Any) -> int | None:
    """The 1-based line a YAML error points at."""
    mark = error.problem_mark or error.context_mark
    return mark.line + 1 if mark else None


def _yaml_message(error: Any) -> str:
    """A one-line description of a YAML syntax error."""
    parts = [error.context, error.problem]
    return "; ".join(" ".join(str(part).split()) for part in parts if part)


class _Loop(Exception):
    """A value that contains itself (an alias inside its own anchor)."""


def _expanded_size(data: Any) -> int | None:
    """The number of values once every alias is expanded (shared values counted each time); None for a loop."""
    sizes: dict[int, int] = {}
    open_values: set[int] = set()

    def size(value: Any) -> int:
        """The expanded size of one value (memoised by identity)."""
        if not isinstance(value, dict | list):
            return 1
        known = sizes.get(id(value))
        if known is not None:
            return known
        if id(value) in open_values:
            raise _Loop
        open_values.add(id(value))
        items = value.values() if isinstance(value, dict) else value
        total = 1 + sum(size(item) for item in items)
        sizes[id(value)] = total
        return total

    try:
        return size(data)
    except _Loop:
        return None
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
                    raise ConstructorError(None, None, _key_message(key_node), key_node.start_mark)
                if key_node.value in seen:
                    first = seen[key_node.value]
                    message = f"duplicate key '{key_node.value}' (first at line {first}); keep one"
                    raise ConstructorError(None, None, message, key_node.start_mark)
                seen[key_node.value] = key_node.start_mark.line + 1
            mapping = super().construct_mapping(node, deep)
            return {str(key): value for key, value in mapping.items()}

    CoreLoader.yaml_implicit_resolvers = _core_resolvers()
    CoreLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
    CoreLoader.add_constructor(None, _refuse_unknown_tag)
    for unsupported in ("binary", "timestamp", "omap", "pairs", "set"):
        CoreLoader.add_constructor(f"tag:yaml.org,2002:{unsupported}", _refuse_tag)
    return CoreLoader


def _refuse_tag(loader: Any, node: Any) -> Any:
    """Explicit tags for values a pipeline cannot hold (!!binary, !!set, ...)."""
    from yaml.constructor import ConstructorError

    message = f"{node.tag.rsplit(':', 1)[-1]} values are not supported; use text, numbers, lists and mappings"
    raise ConstructorError(None, None, message, node.start_mark)


def _refuse_unknown_tag(loader: Any, node: Any) -> Any:
    """Tags no safe loader knows (!!python/object, !include, ...): never constructed, always refused."""
    from yaml.constructor import ConstructorError

    tag = str(node.tag)
    shown = "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag
    message = f"the tag '{shown}' is not supported: remove it (a pipeline holds text, numbers, lists and mappings)"
    raise ConstructorError(None, None, message, node.start_mark)


def _key_message(key_node: Any) -> str:
    """Why a mapping key is refused, and what to write instead."""
    import yaml

    if isinstance(key_node, yaml.ScalarNode):
        return f"keys must be plain text: quote the key ('{key_node.value}')"
    return "keys must be plain text, not lists or mappings"


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
    from yaml.constructor import ConstructorError

    value = str(loader.construct_scalar(node))
    try:
        return int(value, 0) if value[:2] in ("0o", "0x") else int(value, 10)
    except ValueError:
        message = f"a number of {len(value):,} digits is too long; quote it if it is text"
        raise ConstructorError(None, None, message, node.start_mark) from None


def line_finder(text: str) -> Callable[[FieldPath], int | None]:
    """A function giving the 1-based line of a field path in the document (the YAML is composed once)."""
    import yaml

    if "\n" not in text.strip():  # one line, as generated JSON often is: no need to compose it
        return lambda path: 1
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
