"""The problems found while resolving, each reported once."""

from __future__ import annotations

from buildflow.errors import FieldPath, Problem


class Problems:
    """Problems in the order found, each reported once per file, field and message."""

    __slots__ = ("_seen", "display", "found")

    def __init__(self, display: str) -> None:
        """No problems yet, in the pipeline file shown as `display`."""
        self.display = display  # the pipeline file as the user named it
        self.found: list[Problem] = []
        self._seen: set[tuple[str, FieldPath, str]] = set()

    def __bool__(self) -> bool:
        """True once a problem was found."""
        return bool(self.found)

    def add(
        self,
        path: FieldPath,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        once: str | None = None,
    ) -> None:
        """Record a problem in the pipeline file (or in `file`) unless the same one was recorded already."""
        # `once`, when given, is what makes two problems the same instead of their whole message: a template
        # variable undefined in every image of a matrix target, a Dockerfile that several targets use.
        where = self.display if file is None else file
        key = (where, path, message if once is None else once)
        if key not in self._seen:
            self._seen.add(key)
            self.found.append(Problem(message, path, where, line))
