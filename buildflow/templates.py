"""Templates: `{name}` placeholders filled from variables that flow down the DAG."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# `{name}` is a placeholder; `{{` and `}}` are literal braces; `${name}` is left alone for shells and Dockerfiles.
_PLACEHOLDER = re.compile(r"\{\{|\}\}|(?<!\$)\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class Ambiguous:
    """A variable that two ancestors set to different values."""

    values: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        """'framework[tf=1] gives 1, framework[tf=2] gives 2'."""
        return ", ".join(f"{source} gives '{value}'" for source, value in self.values)


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
    if "{" not in template and "}}" not in template:
        return template

    def fill(match: re.Match[str]) -> str:
        name = match[1]
        if name is None:
            return match[0][0]
        value = scope.get(name)
        if value is None:
            raise TemplateError(name, f"undefined variable '{name}'")
        if isinstance(value, Ambiguous):
            raise TemplateError(name, f"variable '{name}' is ambiguous ({value.describe()}); set it on this target")
        return value

    return _PLACEHOLDER.sub(fill, template)
