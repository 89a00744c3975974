""".dockerignore matching with Docker's own semantics (a port of moby/patternmatcher)."""

from __future__ import annotations

import posixpath
import re
import stat
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class _Pattern:
    """One cleaned pattern line."""

    text: str
    exclusion: bool
    regex: re.Pattern[str]
    depth: int


@dataclass(frozen=True)
class IgnoreRules:
    """The patterns of one .dockerignore file, applied in order, the last match winning."""

    patterns: tuple[_Pattern, ...]

    @property
    def has_exclusions(self) -> bool:
        """True when a '!' pattern can bring back something an earlier pattern ignored."""
        return any(pattern.exclusion for pattern in self.patterns)

    def ignores(self, path: str) -> bool:
        """Whether a slash-separated path relative to the context is left out (its parents count too)."""
        matched = False
        parents = path.split("/")[:-1]
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue
            hit = pattern.regex.match(path) is not None or any(
                pattern.regex.match("/".join(parents[: index + 1])) for index in range(len(parents))
            )
            if hit:
                matched = not pattern.exclusion
        return matched


def parse(text: str) -> IgnoreRules:
    """Parse .dockerignore text as BuildKit reads it (comments, blank lines, '!' exceptions, cleaned paths)."""
    patterns = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        if exclusion:
            line = line[1:].strip()
        if not line:
            continue
        cleaned = posixpath.normpath(line)
        if len(cleaned) > 1 and cleaned.startswith("/"):
            cleaned = cleaned.lstrip("/") or "/"
        patterns.append(_Pattern(cleaned, exclusion, _compile(cleaned), cleaned.count("/") + 1))
    return IgnoreRules(tuple(patterns))


_REGEX_ONLY = frozenset(".+()|{}$")  # characters escaped because they mean nothing to filepath.Match


def _compile(pattern: str) -> re.Pattern[str]:
    """Translate a pattern as patternmatcher does: '*' and '?' stay in one directory, '**' crosses them."""
    regex, index = "^", 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**", index):
            index += 2
            if pattern.startswith("/", index):
                index += 1
            regex += ".*" if index >= len(pattern) else "(.*/)?"
            continue
        if char == "*":
            regex += "[^/]*"
        elif char == "?":
            regex += "[^/]"
        elif char == "\\" and index + 1 < len(pattern):
            index += 1
            regex += re.escape(pattern[index])
        elif char in _REGEX_ONLY:
            regex += "\\" + char
        else:
            regex += char
        index += 1
    try:
        return re.compile(regex + "$")
    except re.error:
        return re.compile(re.escape(pattern) + "$")


class IgnoreFileError(OSError):
    """An ignore file that is there but cannot be read as text (a directory, a named pipe, unreadable)."""


def read_rules_text(context: Path, dockerfile: Path) -> str:
    """The ignore file of a build: <Dockerfile>.dockerignore beside the Dockerfile wins over .dockerignore."""
    for candidate in (dockerfile.with_name(dockerfile.name + ".dockerignore"), context / ".dockerignore"):
        try:
            if not stat.S_ISREG(candidate.stat().st_mode):
                raise IgnoreFileError(f"{candidate.name} is not a regular file; make it a text file or remove it")
            return candidate.read_text(encoding="utf-8", errors="replace")
        except (FileNotFoundError, NotADirectoryError):
            continue
        except IgnoreFileError:
            raise
        except OSError as error:
            raise IgnoreFileError(f"cannot read {candidate.name}: {error.strerror}; fix its permissions") from None
    return ""
