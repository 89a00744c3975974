"""Dockerfile reading for edge inference: the images a Dockerfile pulls in, after ARG expansion."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INSTRUCTIONS = frozenset(
    "ADD ARG CMD COPY ENTRYPOINT ENV EXPOSE FROM HEALTHCHECK LABEL MAINTAINER ONBUILD RUN SHELL "  # noqa: SIM905
    "STOPSIGNAL USER VOLUME WORKDIR".split()
)
_WHOLE_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")
_VARIABLE = re.compile(r"\\\$|\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


class DockerfileError(ValueError):
    """A Dockerfile that BuildKit would refuse."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True, slots=True)
class ImageUse:
    """One place a Dockerfile names an image: FROM, COPY --from or RUN --mount from=."""

    line: int
    instruction: str
    text: str
    stages_before: frozenset[str]


@dataclass(frozen=True, slots=True, eq=False)
class Dockerfile:
    """What edge inference needs from a Dockerfile."""

    global_args: Mapping[str, str | None]
    uses: tuple[ImageUse, ...]
    stages: frozenset[str]
    resolved: dict[tuple[tuple[str, str | None], ...], list[tuple[ImageUse, str]]] = field(
        default_factory=dict, repr=False
    )

    def only_uses(self, variable: str) -> bool:
        """True when every image this Dockerfile names is exactly $VARIABLE or ${VARIABLE}."""
        return bool(self.uses) and all(use.text in (f"${variable}", f"${{{variable}}}") for use in self.uses)


def read(path: Path) -> Dockerfile:
    """Parse a Dockerfile with BuildKit's own parser; raise DockerfileError where BuildKit would."""
    import dockerfile as parser

    try:
        commands = parser.parse_file(str(path))
    except parser.GoIOError as error:
        raise DockerfileError(f"cannot read: {error}") from None
    except parser.GoParseError as error:
        raise DockerfileError(f"dockerfile parse error: {error}") from None
    return _summarise(commands)


def _summarise(commands: tuple[Any, ...]) -> Dockerfile:
    """Collect global ARGs, stage names and image uses from parsed instructions."""
    global_args: dict[str, str | None] = {}
    uses: list[ImageUse] = []
    stages: set[str] = set()
    seen_from = False
    for command in commands:
        name, line = command.cmd.upper(), command.start_line
        if name not in INSTRUCTIONS:
            raise DockerfileError(f"unknown instruction: {command.cmd}", line)
        if name == "ARG" and not seen_from:
            global_args.update(_arg_defaults(command.value))
        elif name == "FROM":
            seen_from = True
            uses.append(ImageUse(line, "FROM", _from_image(command.value, line), frozenset(stages)))
            stages.update(_stage_name(command.value))
        elif name in ("COPY", "RUN"):
            uses.extend(_flag_uses(name, command.flags, line, frozenset(stages)))
    if not seen_from:
        raise DockerfileError("no FROM instruction")
    return Dockerfile(global_args, tuple(uses), frozenset(stages))


def _arg_defaults(values: tuple[str, ...]) -> dict[str, str | None]:
    """ARG NAME[=default] ... as a mapping."""
    result: dict[str, str | None] = {}
    for value in values:
        name, equals, default = value.partition("=")
        result[name] = _unquote(default) if equals else None
    return result


def _unquote(text: str) -> str:
    """Strip one pair of matching quotes."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def _from_image(values: tuple[str, ...], line: int) -> str:
    """The image of `FROM image [AS name]`."""
    if not values or (len(values) not in (1, 3)) or (len(values) == 3 and values[1].upper() != "AS"):
        raise DockerfileError("FROM takes an image and an optional 'AS name'", line)
    return values[0]


def _stage_name(values: tuple[str, ...]) -> list[str]:
    """The stage name of `FROM image AS name`, lowercased as BuildKit does."""
    return [values[2].lower()] if len(values) == 3 else []


def _flag_uses(name: str, flags: tuple[str, ...], line: int, stages: frozenset[str]) -> list[ImageUse]:
    """Images named by COPY --from=X and RUN --mount=...,from=X."""
    found = []
    for flag in flags:
        if name == "COPY" and flag.startswith("--from="):
            found.append(ImageUse(line, "COPY --from", flag.removeprefix("--from="), stages))
        elif name == "RUN" and flag.startswith("--mount="):
            options = dict(part.partition("=")[::2] for part in flag.removeprefix("--mount=").split(","))
            if options.get("from"):
                found.append(ImageUse(line, "RUN --mount", options["from"], stages))
    return found


def expand(text: str, variables: Mapping[str, str | None]) -> str | None:
    """Expand $VAR, ${VAR}, ${VAR:-x}, ${VAR:+x} as BuildKit does; None when a variable has no value."""
    whole = _WHOLE_VARIABLE.fullmatch(text)
    if whole and (text[1] == "{") == (text[-1] == "}"):
        return variables.get(whole[1])
    unresolved = False

    def substitute(match: re.Match[str]) -> str:
        nonlocal unresolved
        if match[0] == "\\$":
            return "$"
        name = match[1] or match[4]
        value = variables.get(name)
        operator, word = match[2], match[3] or ""
        if operator in (":-", "-"):
            return value if value else word
        if operator in (":+", "+"):
            return word if value else ""
        if value is None:
            unresolved = True
            return ""
        return value

    result = _VARIABLE.sub(substitute, text) if "$" in text else text
    return None if unresolved else result


def image_uses(dockerfile: Dockerfile, build_args: Mapping[str, str]) -> list[tuple[ImageUse, str]]:
    """Each image use with its name after ARG expansion; stage references, scratch and indexes left out."""
    key = tuple((name, build_args.get(name, default)) for name, default in dockerfile.global_args.items())
    if key not in dockerfile.resolved:
        dockerfile.resolved[key] = _image_uses(dockerfile, dict(key))
    return dockerfile.resolved[key]


def _image_uses(dockerfile: Dockerfile, variables: Mapping[str, str | None]) -> list[tuple[ImageUse, str]]:
    """image_uses for one set of global ARG values."""
    resolved = []
    for use in dockerfile.uses:
        name = expand(use.text, variables)
        if not name or name.lower() in use.stages_before or name == "scratch" or name.isdigit():
            continue
        resolved.append((use, name))
    return resolved
