"""Variable expansion in Dockerfile words as BuildKit's shell lexer does it (frontend/dockerfile/shell/lex.go).

Quotes are removed, the escape token (`\\` or the `# escape=` directive's backtick) escapes, and `$NAME`,
`${NAME}`, `${NAME:-word}`, `${NAME-word}`, `${NAME:+word}`, `${NAME+word}`, `${NAME:?message}`,
`${NAME#pattern}`, `${NAME%pattern}` (and `##`, `%%`) and `${NAME/pattern/replacement}` (and `//`) are expanded.
As in BuildKit, a variable without a value expands to nothing; unlike BuildKit, the expansion also says which
such variables reached the result, so that a reference that cannot be known offline is reported, not guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple

_SIMPLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])([^}$'\"\\`<]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")
_SPECIAL_PARAMETERS = frozenset("@*#?-$!0")
_STARTS_A_NAME = frozenset("_{@*#?-$!")  # besides letters and digits
_QUOTES_OR_ESCAPES = re.compile(r"['\"\\`<]")


class ExpansionError(ValueError):
    """A word BuildKit refuses to expand (bad substitution, unmatched quote, ${NAME:?message})."""


class Expansion(NamedTuple):
    """An expanded word, and the variables without a value whose (empty) value reached it."""

    text: str
    missing: frozenset[str]


def expand_word(
    word: str,
    env: Mapping[str, str],
    *,
    escape: str = "\\",
    tainted: Mapping[str, frozenset[str]] | None = None,
) -> Expansion:
    """Expand `word` with `env` as BuildKit's ProcessWord does; raise ExpansionError where BuildKit fails.

    `tainted` names variables whose own value was made from variables without a value (ARG B=$A with A unset):
    using such a variable counts those as missing too.
    """
    if "$" not in word and not _QUOTES_OR_ESCAPES.search(word):
        return Expansion(word, frozenset())
    if not _QUOTES_OR_ESCAPES.search(word):
        simple = _simple(word, env, tainted or {})
        if simple is not None:
            return simple
    return _Word(word, env, escape, tainted or {}).expand()


def _simple(word: str, env: Mapping[str, str], tainted: Mapping[str, frozenset[str]]) -> Expansion | None:
    """The common words ($A, ${A}, x-${A:-b}) by regular expression; None when the full lexer is needed."""
    missing: set[str] = set()

    def substitute(match: re.Match[str]) -> str:
        name = match[1] or match[4]
        value = env.get(name)
        operator, alternative = match[2], match[3] or ""
        unset = value is None or (operator is not None and operator.startswith(":") and value == "")
        if operator in (":-", "-"):
            if unset:
                return alternative
        elif operator in (":+", "+"):
            return "" if unset else alternative
        if value is None:
            missing.add(name)
            return ""
        missing.update(tainted.get(name, ()))
        return value

    remainder = _SIMPLE.sub("", word)
    if "$" in remainder and not _lone_dollars(remainder):
        return None
    return Expansion(_SIMPLE.sub(substitute, word), frozenset(missing))


def _lone_dollars(text: str) -> bool:
    """True when every $ left is literal: followed by nothing that names a variable."""
    return all(
        index + 1 == len(text) or not (text[index + 1].isalnum() or text[index + 1] in _STARTS_A_NAME)
        for index, char in enumerate(text)
        if char == "$"
    )


class _Word:
    """One word being expanded: a cursor over its characters, the variables, and what was missing."""

    __slots__ = ("env", "escape", "missing", "position", "raw_escapes", "tainted", "text")

    def __init__(self, text: str, env: Mapping[str, str], escape: str, tainted: Mapping[str, frozenset[str]]) -> None:
        self.text, self.env, self.escape, self.tainted = text, env, escape, tainted
        self.position = 0
        self.raw_escapes = False
        self.missing: set[str] = set()

    def expand(self) -> Expansion:
        """The whole word."""
        return Expansion(self.until(None, raw_escapes=False), frozenset(self.missing))

    def peek(self) -> str:
        """The next character, '' at the end."""
        return self.text[self.position] if self.position < len(self.text) else ""

    def next(self) -> str:
        """Consume the next character ('' at the end)."""
        char = self.peek()
        self.position += 1 if char else 0
        return char

    def until(self, stop: str | None, *, raw_escapes: bool) -> str:
        """Process up to `stop` (consumed) or the end of the word (processStopOn)."""
        saved, self.raw_escapes = self.raw_escapes, raw_escapes
        try:
            return self._until(stop)
        finally:
            self.raw_escapes = saved

    def _until(self, stop: str | None) -> str:
        result: list[str] = []
        while char := self.peek():
            if stop is not None and char == stop:
                self.next()
                return "".join(result)
            if char == "$":
                result.append(self.dollar())
            elif char == "<":
                result.append(self.possible_heredoc())
            elif char == "'":
                result.append(self.single_quoted())
            elif char == '"':
                result.append(self.double_quoted())
            else:
                char = self.next()
                if char == self.escape:
                    if self.raw_escapes:
                        result.append(char)
                    char = self.next()
                    if not char:
                        break
                result.append(char)
        if stop is not None:
            raise ExpansionError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result)

    def single_quoted(self) -> str:
        """'...': every character as it is."""
        self.next()
        result: list[str] = []
        while (char := self.next()) != "'":
            if not char:
                raise ExpansionError("unexpected end of statement while looking for matching single-quote")
            result.append(char)
        return "".join(result)

    def double_quoted(self) -> str:
        """ "...": variables expanded; the escape token escapes only ", $ and itself."""
        self.next()
        result: list[str] = []
        while True:
            char = self.peek()
            if not char:
                raise ExpansionError("unexpected end of statement while looking for matching double-quote")
            if char == '"':
                self.next()
                return "".join(result)
            if char == "$":
                result.append(self.dollar())
                continue
            char = self.next()
            if char == self.escape:
                if self.raw_escapes:
                    result.append(char)
                following = self.peek()
                if not following:
                    continue
                if following in ('"', "$", self.escape):
                    char = self.next()
            result.append(char)

    def possible_heredoc(self) -> str:
        """'<<' and the spaces after it stay as they are; so does a lone '<'."""
        self.next()
        if self.peek() != "<":
            return "<"
        self.next()
        spaces = ""
        while self.peek() in ("\t", "\r", " "):
            spaces += self.next()
        return "<<" + spaces

    def name(self) -> str:
        """A variable name: letters, digits and _, or digits alone, or one special parameter."""
        start = self.position
        first = self.peek()
        if first.isdigit():
            while self.peek().isdigit():
                self.next()
            return self.text[start : self.position]
        if first and first in _SPECIAL_PARAMETERS:
            return self.next()
        while (char := self.peek()) and (char.isalnum() or char == "_"):
            self.next()
        return self.text[start : self.position]

    def value(self, name: str) -> str | None:
        """A variable's value, None when it has none."""
        return self.env.get(name)

    def used(self, name: str) -> str:
        """A variable's value as it enters the word ('' without one, which is noted as missing)."""
        value = self.env.get(name)
        if value is None:
            self.missing.add(name)
            return ""
        self.missing.update(self.tainted.get(name, ()))
        return value

    def dollar(self) -> str:
        """$NAME or ${...}."""
        self.next()
        if self.peek() != "{":
            name = self.name()
            return self.used(name) if name else "$"
        self.next()
        if not self.peek():
            raise ExpansionError("syntax error: missing '}'")
        if self.peek() in "{}:":
            raise ExpansionError("syntax error: bad substitution")
        name = self.name()
        operator = self.next()
        if operator == "}":
            return self.used(name)
        if operator == "/":
            return self.replaced(name)
        null_is_unset = operator == ":"
        if null_is_unset:
            operator = self.next()
        return self.modified(name, operator, null_is_unset)

    def word_until_brace(self, raw_escapes: bool) -> tuple[str, set[str]]:
        """The word of ${NAME<op>word}, and the variables missing in it (kept apart until it is used)."""
        before, self.missing = self.missing, set()
        try:
            word = self.until("}", raw_escapes=raw_escapes)
        except ExpansionError:
            if not self.peek():
                raise ExpansionError("syntax error: missing '}'") from None
            raise
        missing, self.missing = self.missing, before
        return word, missing

    def modified(self, name: str, operator: str, null_is_unset: bool) -> str:
        """${NAME:-word} and the other modifiers."""
        shown = (":" if null_is_unset else "") + operator
        if operator not in ("+", "-", "?", "#", "%"):
            raise ExpansionError(f"unsupported modifier ({shown}) in substitution")
        pattern = operator in ("#", "%")
        if null_is_unset and pattern:
            raise ExpansionError(f"unsupported modifier ({shown}) in substitution")
        word, word_missing = self.word_until_brace(pattern)
        value = self.value(name)
        unset = value is None or (null_is_unset and value == "")
        if operator == "-":
            if unset:
                self.missing |= word_missing
                return word
            return self.used(name)
        if operator == "+":
            if unset:
                return ""
            self.missing |= word_missing
            return word
        if operator == "?":
            if unset:
                state = "unset" if value is None else "empty"
                raise ExpansionError(f"{name}: {word or f'is not allowed to be {state}'}")
            return self.used(name)
        return _trimmed(self.used(name), word, operator)

    def replaced(self, name: str) -> str:
        """${NAME/pattern/replacement} and ${NAME//pattern/replacement}."""
        every = self.peek() == "/"
        if every:
            self.next()
        try:
            pattern = self.until("/", raw_escapes=True)
        except ExpansionError:
            if not self.peek():
                raise ExpansionError("syntax error: missing '/' in ${}") from None
            raise
        replacement, replacement_missing = self.word_until_brace(True)
        self.missing |= replacement_missing
        value = self.used(name)
        expression = _shell_pattern(pattern, greedy=True, anchored=False)
        if every:
            return expression.sub(lambda _: replacement, value)
        return expression.sub(lambda _: replacement, value, count=1)


def _trimmed(value: str, word: str, operator: str) -> str:
    """${NAME#pattern} (shortest prefix), ## (longest), % (shortest suffix), %% (longest)."""
    greedy = word.startswith(operator)
    pattern = word[1:] if greedy else word
    if operator == "#":
        match = _shell_pattern(pattern, greedy=greedy, anchored=True).match(value)
        return value[match.end() :] if match else value
    reversed_value = value[::-1]
    match = _shell_pattern(_reversed_pattern(pattern), greedy=greedy, anchored=True).match(reversed_value)
    return (reversed_value[match.end() :] if match else reversed_value)[::-1]


def _shell_pattern(pattern: str, *, greedy: bool, anchored: bool) -> re.Pattern[str]:
    """A shell wildcard pattern (* and ?, \\ escapes) as a regular expression, as BuildKit converts it."""
    parts = ["^"] if anchored else []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        index += 1
        if char == "*":
            parts.append(".*" if greedy else ".*?")
        elif char == "?":
            parts.append(".")
        elif char == "\\":
            following = pattern[index] if index < len(pattern) else ""
            if following in ("}", "/"):
                continue
            if following not in ("*", "?", "\\"):
                raise ExpansionError(f"invalid pattern ({pattern}) in substitution: invalid escape '\\{following}'")
            parts.append(re.escape(following))
            index += 1
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts))


def _reversed_pattern(pattern: str) -> str:
    """A pattern reversed with its escapes kept in front of what they escape (a\\*c -> c\\*a)."""
    out: list[str] = []
    index = 0
    while index < len(pattern):
        if pattern[index] == "\\" and index + 1 < len(pattern):
            out.append(pattern[index : index + 2])
            index += 2
        else:
            out.append(pattern[index])
            index += 1
    return "".join(reversed(out))
