"""Templates: `{name}` placeholders filled from variables that flow down the DAG."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# `{name}` is a placeholder; `{{` and `}}` are literal braces; `${name}` is left alone for shells and Dockerfiles.
_PLACEHOLDER = re.compile(r"\{\{|\}\}|(?<!\$)\{([A-Za-z_][A-Za-z0-9_]*)\}")

MAX_RENDERED_LENGTH = 1_000_000  # characters in one rendered value
MAX_RENDERED_TOTAL = 50_000_000  # characters in all the values a pipeline renders


@dataclass(frozen=True, slots=True)
class Ambiguous:
    """A variable that two ancestors set to different values."""

    values: tuple[tuple[str, str], ...]
    more: int = 0  # sources left out of `values`, so that a target with thousands of parents stays cheap

    def describe(self) -> str:
        """'framework[tf=1] gives 1, framework[tf=2] gives 2' (and how many more)."""
        text = ", ".join(f"{source} gives '{value}'" for source, value in self.values)
        return text + (f" and {self.more:,} more" if self.more else "")


Scope = Mapping[str, "str | Ambiguous"]


class TemplateError(ValueError):
    """A placeholder that has no value (or an ambiguous one)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


def placeholders(template: str) -> list[str]:
    """The variable names a template uses."""
    if "{" not in template:
        return []
    return [match[1] for match in _PLACEHOLDER.finditer(template) if match[1]]


def render(template: str, scope: Scope) -> str:
    """Fill every placeholder from `scope`; raise TemplateError naming the first that cannot be filled."""
    # A value may not grow past MAX_RENDERED_LENGTH characters: variables made of variables grow exponentially.
    if "{" not in template and "}}" not in template:
        return template
    length = len(template)

    def fill(match: re.Match[str]) -> str:
        """The text for one placeholder or escaped brace."""
        nonlocal length
        name = match[1]
        if name is None:
            return match[0][0]
        value = scope.get(name)
        if value is None:
            raise TemplateError(name, f"undefined variable '{name}'")
        if isinstance(value, Ambiguous):
            raise TemplateError(name, f"variable '{name}' is ambiguous ({value.describe()}); set it on this target")
        length += len(value)
        if length > MAX_RENDERED_LENGTH:
            raise TemplateError(
                name, f"variable '{name}' makes the value longer than {MAX_RENDERED_LENGTH:,} characters"
            )
        return value

    return _PLACEHOLDER.sub(fill, template)
