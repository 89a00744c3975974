""".dockerignore matching with Docker's own semantics (a port of moby/patternmatcher).

A path is left out when the last pattern that matches it, or one of its parent directories, is not a '!'
exception. Patterns are compiled once: written-out paths are looked up in a dict, wildcard patterns are grouped
by their first directory and tried as a few combined regexes, and each directory's answer is kept for the
paths below it, so a file costs a lookup or two whatever the number of patterns.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

_WILDCARDS = frozenset("*?[\\^")  # a pattern without them matches only its own text ('^' anchors: never literal)
_CHUNK = 64  # wildcard patterns per combined regex


@dataclass(frozen=True, slots=True)
class _Pattern:
    """One cleaned pattern line."""

    text: str
    exclusion: bool

    @property
    def literal(self) -> bool:
        """True when the pattern has no wildcard, class or escape: it matches its own text."""
        return _WILDCARDS.isdisjoint(self.text)

    @property
    def start(self) -> str:
        """The text before the first wildcard: every path the pattern matches begins with it."""
        return next((self.text[:at] for at, char in enumerate(self.text) if char in _WILDCARDS), self.text)


class IgnoreRules:
    """The patterns of one .dockerignore file, applied in order, the last match winning."""

    def __init__(self, patterns: tuple[_Pattern, ...]) -> None:
        """Index the patterns: a pattern repeated counts only where it last appears."""
        self.patterns = patterns
        self.has_exclusions = any(pattern.exclusion for pattern in patterns)
        last = {pattern.text: index for index, pattern in enumerate(patterns)}
        self._literals = {text: index for text, index in last.items() if patterns[index].literal}
        self._wildcards = _Wildcards(
            [(index, patterns[index]) for index in last.values() if not patterns[index].literal]
        )
        self._reach = _Reach(patterns)
        self._directories: dict[str, int] = {}  # directory -> last pattern matching it or a parent, -1 for none

    def ignores(self, path: str) -> bool:
        """Whether a slash-separated path relative to the context is left out (its parents count too)."""
        return self._verdict(self._last_match(path))

    def reaches_below(self, directory: str) -> bool:
        """Whether a '!' pattern after the one that ignores a directory could bring back a path below it."""
        return self.has_exclusions and self._reach.below(directory, self._directory_match(directory))

    def _verdict(self, index: int) -> bool:
        """Left out when the deciding pattern is not an exception."""
        return index >= 0 and not self.patterns[index].exclusion

    def _last_match(self, path: str) -> int:
        """The last pattern matching the path or one of its parents, -1 for none."""
        cut = path.rfind("/")
        own = self._match(path)
        return own if cut < 0 else max(own, self._directory_match(path[:cut]))

    def _directory_match(self, directory: str) -> int:
        """_last_match of a directory, kept for the paths below it; filled from the nearest known parent down."""
        known = self._directories.get(directory)
        if known is not None:
            return known
        cuts = [at for at, char in enumerate(directory) if char == "/"]
        level = len(cuts)
        while level and (known := self._directories.get(directory[: cuts[level - 1]])) is None:
            level -= 1
        best = -1 if known is None else known
        for end in [*cuts[level:], len(directory)]:
            best = max(best, self._match(directory[:end]))
            self._directories[directory[:end]] = best
        return best

    def _match(self, text: str) -> int:
        """The last pattern matching exactly this text, -1 for none."""
        index = self._literals.get(text, -1)
        if text.endswith("\n"):  # '$' matches before a final newline too, as each pattern's own regex did
            index = max(index, self._literals.get(text[:-1], -1))
        return max(index, self._wildcards.last_match(text))


class _Wildcards:
    """Wildcard patterns grouped by their written-out first directory; those starting with a wildcard apart."""

    def __init__(self, patterns: list[tuple[int, _Pattern]]) -> None:
        """Sort each group from the last pattern to the first: the first hit is the one that counts."""
        self._groups: dict[str, _Group] = {}
        self._anywhere = _Group()
        for index, pattern in sorted(patterns, key=lambda item: item[0], reverse=True):
            head, slash, _ = pattern.start.partition("/")
            group = self._groups.setdefault(head, _Group()) if slash else self._anywhere
            group.members.append((index, pattern.text))

    def last_match(self, text: str) -> int:
        """The last wildcard pattern matching exactly this text, -1 for none."""
        group = self._groups.get(text.partition("/")[0])
        found = self._anywhere.last_match(text) if self._anywhere.members else -1
        return found if group is None else max(found, group.last_match(text))


class _Group:
    """Wildcard patterns, last first, tried in chunks of one combined regex each, compiled when first needed."""

    def __init__(self) -> None:
        """An empty group."""
        self.members: list[tuple[int, str]] = []
        self._chunks: list[tuple[re.Pattern[str], list[tuple[int, re.Pattern[str]]]]] | None = None

    def last_match(self, text: str) -> int:
        """The first member (so the last pattern) matching the text, -1 for none."""
        if self._chunks is None:
            self._chunks = self._compile()
        for combined, members in self._chunks:
            if combined.match(text):
                for index, regex in members:
                    if regex.match(text):
                        return index
        return -1

    def _compile(self) -> list[tuple[re.Pattern[str], list[tuple[int, re.Pattern[str]]]]]:
        """Each member's own regex, and one regex per chunk that answers whether any of the chunk matches."""
        chunks = []
        with warnings.catch_warnings():  # "possible nested set" ('[[' in a pattern) speaks of Python's future
            warnings.simplefilter("ignore", FutureWarning)
            for start in range(0, len(self.members), _CHUNK):
                members = [(index, _compile(text)) for index, text in self.members[start : start + _CHUNK]]
                chunks.append((re.compile("|".join(regex.pattern for _, regex in members)), members))
        return chunks


class _Reach:
    """Where the '!' patterns can match: whether one could bring back a path below an ignored directory."""

    def __init__(self, patterns: tuple[_Pattern, ...]) -> None:
        """Index each exception by the directories its written-out start lies in, and by that start."""
        self._inside: dict[str, int] = {}  # directory -> last exception whose start lies below it
        self._starts: dict[str, int] = {}  # start of a wildcard exception -> its last index
        for index, pattern in enumerate(patterns):
            if not pattern.exclusion:
                continue
            start = pattern.start
            for at, char in enumerate(start):
                if char == "/":
                    self._inside[start[:at]] = index
            if not pattern.literal:
                self._starts[start] = index
        self._lengths = sorted({len(start) for start in self._starts})

    def below(self, directory: str, after: int) -> bool:
        """Whether an exception later than pattern `after` could match a path that starts with directory + '/'."""
        if self._inside.get(directory, -1) > after:
            return True
        prefix = directory + "/"
        return any(self._starts.get(prefix[:length], -1) > after for length in self._lengths if length <= len(prefix))


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
        patterns.append(_Pattern(cleaned, exclusion))
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
            regex += ".*" if index >= len(pattern) else "(?:.*/)?"
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


def sent_entries(
    root: Path, rules: IgnoreRules, unlistable: Callable[[str, OSError], None], prefix: str = ""
) -> Iterator[tuple[str, os.DirEntry[str], int]]:
    """(path relative to root, entry, mode) of every entry under `prefix` a build sends, in name order; an ignored
    directory is walked, not yielded, when a '!' exception may let something below it in. A directory that
    cannot be listed goes to `unlistable` (which may raise) and is passed over."""
    try:
        children = sorted(os.scandir(root / prefix if prefix else root), key=lambda entry: entry.name)
    except OSError as error:
        unlistable(prefix or ".", error)
        return
    for entry in children:
        relative = f"{prefix}/{entry.name}" if prefix else entry.name
        ignored = rules.ignores(relative)
        mode = entry.stat(follow_symlinks=False).st_mode
        if not ignored:
            yield relative, entry, mode
        if stat.S_ISDIR(mode) and (not ignored or rules.reaches_below(relative)):
            yield from sent_entries(root, rules, unlistable, relative)
