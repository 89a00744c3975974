"""A drafted pipeline as a commented YAML file (or JSON, where the notes go under an `x-` key), checked by loading
it with buildflow's own loader before it replaces anything."""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from buildflow.errors import UsageError, printable
from buildflow.model import Pipeline
from buildflow.pipeline.loader import load_pipeline
from buildflow.pipeline.source import MAX_YAML_CHARACTERS

_FIELD_ORDER = (
    "description",
    "context",
    "dockerfile",
    "stage",
    "from",
    "depends_on",
    "args",
    "tags",
    "platforms",
    "labels",
    "secrets",
    "cache",
    "push",
    "network",
)
_PLAIN = re.compile(r"[A-Za-z_./][A-Za-z0-9_./@+-]*")
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_NUMBER = re.compile(r"[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?|0[xob][0-9a-fA-F_]+|[-+]?\.(inf|nan)")
_WORDS = frozenset({"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~", "none"})


@dataclass
class DraftTarget:
    """One target to write: its settings, the comment lines above it, and commented-out lines inside it."""

    fields: dict[str, Any] = field(default_factory=dict)
    comments: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)


@dataclass
class Draft:
    """A pipeline to write: comment lines first, then version, registry, targets, and `x-` extension keys."""

    header: list[str] = field(default_factory=list)
    registry: str | None = None
    targets: dict[str, DraftTarget] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)


def render(draft: Draft, json_file: bool = False) -> str:
    """The pipeline file's text: YAML with comments, or JSON with the comments as `x-notes`."""
    if json_file:
        return _render_json(draft)
    lines = [f"# {printable(line)}".rstrip() for line in draft.header]
    lines.append("version: 1")
    if draft.registry:
        lines.append(f"registry: {scalar(draft.registry)}")
    lines.append("targets:")
    for name, target in draft.targets.items():
        lines.extend(_target_lines(name, target))
    for key, value in draft.extensions.items():
        lines.append(f"{key}:")
        lines.extend(f"  {mapping_key(name)}: {flow(item)}" for name, item in value.items())
    return "\n".join(lines) + "\n"


def _target_lines(name: str, target: DraftTarget) -> Iterator[str]:
    """A target's lines under `targets:`."""
    yield from (f"  # {printable(line)}".rstrip() for line in target.comments)
    fields = _ordered(target.fields)
    if not fields and not target.hints:
        yield f"  {mapping_key(name)}: {{}}"
        return
    yield f"  {mapping_key(name)}:" + ("" if fields else " {}")
    for key, value in fields.items():
        text = scalar(value) if not isinstance(value, dict | list) else flow(value)
        yield f"    {mapping_key(key)}: {text}"
    yield from (f"    # {printable(hint)}".rstrip() for hint in target.hints)


def _ordered(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A target's settings in the order the docs list them."""
    known = {key: fields[key] for key in _FIELD_ORDER if key in fields}
    return known | {key: value for key, value in fields.items() if key not in known}


def _render_json(draft: Draft) -> str:
    """The draft as a JSON pipeline: the header lines under x-notes."""
    document: dict[str, Any] = {"version": 1}
    if draft.registry:
        document["registry"] = draft.registry
    document["targets"] = {name: _ordered(target.fields) for name, target in draft.targets.items()}
    document |= draft.extensions
    if draft.header:
        document["x-notes"] = draft.header
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def scalar(value: Any) -> str:
    """A scalar as YAML reads it back unchanged (YAML 1.2 core, as buildflow reads files): plain when safe."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    text = str(value)
    if _PLAIN.fullmatch(text) and not _NUMBER.fullmatch(text) and text.lower() not in _WORDS:
        return text
    return json.dumps(text, ensure_ascii=False)


def mapping_key(key: str) -> str:
    """A mapping key, quoted unless it is a plain word."""
    return key if _PLAIN_KEY.fullmatch(key) and key.lower() not in _WORDS else json.dumps(key, ensure_ascii=False)


def flow(value: Any) -> str:
    """A list or mapping on one line, as JSON (which YAML reads as flow style)."""
    return json.dumps(value, ensure_ascii=False)


def refuse_overwrite(path: Path, force: bool) -> None:
    """An existing file is replaced only with --force (exit 2 otherwise)."""
    if path.is_dir():
        raise UsageError(f"{path} is a directory; name a file to write")
    if path.exists() and not force:
        raise UsageError(f"{path} exists; pass --force to overwrite it")


def check(draft: Draft, output: Path) -> Pipeline:
    """Load the draft as the pipeline file `output` would be (contexts relative to its directory), without touching
    `output`; PipelineError lists every problem, UsageError when YAML this large could not be read back.

    The draft is loaded from its JSON form, the same document as the YAML one (render's YAML reads back as that
    JSON: tests/unit/test_adopt_writing.py), since the standard library parses it several times faster."""
    if output.suffix.lower() != ".json" and len(text := render(draft)) > MAX_YAML_CHARACTERS:
        raise UsageError(
            f"{output}: the pipeline is {len(text) / 2**20:.1f} MiB, more than buildflow reads as YAML "
            f"({MAX_YAML_CHARACTERS // 2**20} MiB); write it as JSON: -f {output.with_suffix('.json')}"
        )
    with _scratch(output) as scratch:
        scratch.write_text(render(draft, json_file=True))
        return load_pipeline(scratch, display=str(output))


def write(text: str, output: Path) -> None:
    """Write the file whole or not at all (a temporary file beside it, renamed over it)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, output)


@contextlib.contextmanager
def _scratch(output: Path) -> Iterator[Path]:
    """A temporary file beside `output` (same directory, so relative paths mean the same), removed afterwards."""
    output.parent.mkdir(parents=True, exist_ok=True)
    path = output.with_name(f".{output.name}.{os.getpid()}.check.json")
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
