""".dockerignore semantics as BuildKit applies them (cases from moby/patternmatcher's behaviour)."""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import stat
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from buildflow.pipeline import fingerprint
from buildflow.pipeline.dockerignore import parse
from tests.hostile.generate import big_dockerignore


@pytest.mark.parametrize(
    ("rules", "path", "ignored"),
    [
        ("*.pyc", "a.pyc", True),
        ("*.pyc", "dir/a.pyc", False),  # unlike .gitignore, patterns are anchored at the context root
        ("**/*.pyc", "dir/sub/a.pyc", True),
        ("**/*.pyc", "a.pyc", True),
        ("dir", "dir/sub/file", True),  # a matching parent directory excludes what is below it
        ("dir/", "dir/file", True),
        ("/dir/file", "dir/file", True),
        ("dir/*", "dir/file", True),
        ("dir/*", "dir/sub/file", True),
        ("d?r", "dir", True),
        ("d?r", "dr", False),
        ("dir/**", "dir/a/b/c", True),
        ("**", "anything/at/all", True),
        ("*\n!keep", "keep", False),
        ("*\n!keep", "other", True),
        ("dir\n!dir/keep", "dir/keep", False),  # unlike .gitignore, an excluded directory's file can come back
        ("dir\n!dir/keep", "dir/other", True),
        ("!keep\n*", "keep", True),  # the last matching pattern wins
        ("# comment\n\n  spaced  ", "spaced", True),
        ("a/../b", "b", True),
        ("[a-c].txt", "b.txt", True),
        ("[a-c].txt", "d.txt", False),
        ("\\*star", "*star", True),
        ("file.txt", "file_txt", False),
    ],
)
def test_patterns(rules: str, path: str, ignored: bool) -> None:
    assert parse(rules).ignores(path) is ignored


def test_exclusions_are_detected() -> None:
    assert parse("a\n!b").has_exclusions and not parse("a\nb").has_exclusions


def test_a_repeated_pattern_counts_where_it_last_appears() -> None:
    """'a' ignored, brought back, then ignored again by the same line: the last one decides."""
    assert parse("a\n!a\na").ignores("a/x") and not parse("a\n!a\na\n!a/x").ignores("a/x")


def test_a_name_ending_in_a_newline_matches_as_the_regex_did() -> None:
    """Each pattern used to be a regex ending in '$', which matches before a final newline: kept as it was."""
    assert parse("a\n").ignores("a\n") and parse("a*").ignores("ab\n") and not parse("a").ignores("a\n\n")


def test_a_pattern_that_is_no_regex_matches_its_own_text() -> None:
    """An unclosed class or a trailing backslash: the pattern's text, as the regex it could not become."""
    assert parse("a[b").ignores("a[b") and not parse("a[b").ignores("ab")
    assert parse("x\\").ignores("x$") and parse("x\\").ignores("x$/y")


# ---- the reference: the matcher before patterns were compiled together, pattern by pattern ---------------------------


def reference_parse(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    """(exception, regex) per pattern line, in order."""
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
        patterns.append((exclusion, reference_compile(cleaned)))
    return patterns


def reference_compile(pattern: str) -> re.Pattern[str]:
    """One pattern as one regex."""
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
        elif char in ".+()|{}$":
            regex += "\\" + char
        else:
            regex += char
        index += 1
    try:
        with warnings.catch_warnings():  # "possible nested set": '[[' in a pattern
            warnings.simplefilter("ignore", FutureWarning)
            return re.compile(regex + "$")
    except re.error:
        return re.compile(re.escape(pattern) + "$")


def reference_ignores(patterns: list[tuple[bool, re.Pattern[str]]], path: str) -> bool:
    """Every pattern against the path and each of its parents; the last match wins."""
    matched = False
    parents = path.split("/")[:-1]
    for exclusion, regex in patterns:
        if exclusion != matched:
            continue
        hit = regex.match(path) is not None or any(
            regex.match("/".join(parents[: index + 1])) for index in range(len(parents))
        )
        if hit:
            matched = not exclusion
    return matched


def reference_lines(root: Path, prefix: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> Iterator[str]:
    """The context walk as it was: into every directory as soon as there is one exception."""
    exceptions = any(exclusion for exclusion, _ in patterns)
    for entry in sorted(os.scandir(root / prefix if prefix else root), key=lambda entry: entry.name):
        relative = f"{prefix}/{entry.name}" if prefix else entry.name
        ignored = reference_ignores(patterns, relative)
        mode = entry.stat(follow_symlinks=False).st_mode
        if stat.S_ISDIR(mode):
            if ignored and not exceptions:
                continue
            if not ignored:
                yield f"d {relative}\n"
            yield from reference_lines(root, relative, patterns)
        elif not ignored and stat.S_ISREG(mode):
            executable = "x" if mode & stat.S_IXUSR else "-"
            yield f"f {relative} {executable} {fingerprint.file_digest(Path(entry.path))}\n"


def reference_digest(context: Path) -> str:
    """context_digest as the reference computes it, for a context whose ignore file is .dockerignore."""
    patterns = reference_parse((context / ".dockerignore").read_text() if (context / ".dockerignore").exists() else "")
    digest = hashlib.sha256()
    for line in reference_lines(context, "", patterns):
        digest.update(line.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


# ---- the compiled matcher against the reference ------------------------------------------------------------------

PROPERTIES = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOKENS = ("a", "b", "ab", ".", "..", "/", "*", "**", "?", "[a-b]", "\\*", "\\a", "\\", "[", "^", "$")
SEGMENTS = ("a", "b", "ab", "ba", "a.b", ".", "..", "", "*", "[a]", "a\n")
pattern_lines = st.builds(
    lambda bang, slash, tokens: bang + slash + "".join(tokens),
    st.sampled_from(["", "", "!", " ! "]),
    st.sampled_from(["", "", "/"]),
    st.lists(st.sampled_from(TOKENS), min_size=1, max_size=5),
) | st.sampled_from(["", "# comment", "!", "**", "*"])
segment_paths = st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=4).map("/".join)


@st.composite
def rules_and_paths(draw: st.DrawFn) -> tuple[str, list[str]]:
    """Pattern lines, and paths: random ones, and pattern texts with segments added (so written-out ones hit)."""
    lines = draw(st.lists(pattern_lines, min_size=1, max_size=10))
    texts = [line.strip().lstrip("!").strip() or "a" for line in lines]
    grown = st.builds(
        lambda text, tail: posixpath.normpath(text).lstrip("/") + tail,
        st.sampled_from(texts),
        st.sampled_from(["", "/a", "/b/ab", "\n"]),
    )
    return "\n".join(lines), draw(st.lists(segment_paths | grown, min_size=1, max_size=12))


@PROPERTIES
@given(rules_and_paths())
def test_the_compiled_matcher_agrees_with_the_reference(case: tuple[str, list[str]]) -> None:
    """Same answer for every path, asked in any order of one set of rules (so cached parents are reused)."""
    text, paths = case
    rules, reference = parse(text), reference_parse(text)
    for path in paths:
        assert rules.ignores(path) is reference_ignores(reference, path), (text, path)


FILE_SEGMENTS = ("a", "b", "ab", "b.a", "a*b", "[a]")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.lists(st.sampled_from(FILE_SEGMENTS), min_size=1, max_size=4), min_size=1, max_size=12),
    st.lists(pattern_lines, max_size=8),
)
def test_the_walk_sends_what_the_reference_walk_sends(files: list[list[str]], lines: list[str]) -> None:
    """Random trees and rules: the same digest, so the same files in the same order, skipped directories or not."""
    with tempfile.TemporaryDirectory() as directory:
        context = Path(directory)
        for segments in files:
            path = context.joinpath(*segments)
            if not any(parent.is_file() for parent in path.parents) and not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("/".join(segments))
        (context / ".dockerignore").write_text("\n".join(lines))
        assert fingerprint.context_digest(context, context / "Dockerfile") == reference_digest(context)


# ---- walking: ignored directories are skipped unless an exception can reach below them ------------------------------


@pytest.mark.parametrize(
    ("rules", "listed"),
    [
        ("secret\n!keep\n!src/*.py\n!s/**", False),  # no exception can match below secret/
        ("secret\n!secret/keep", True),
        ("secret\n!**/keep", True),
        ("secret\n!se*/keep", True),
        ("!secret/keep\nsecret", False),  # an exception before the pattern that ignores the directory
        ("*\n!src", False),
        ("*\n!src\n!secret/x", True),
    ],
)
def test_an_ignored_directory_is_listed_only_when_an_exception_can_reach_below_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rules: str, listed: bool
) -> None:
    """BuildKit skips an excluded directory unless an exclusion pattern could match inside it; so does the walk."""
    (tmp_path / "secret" / "deep").mkdir(parents=True)
    (tmp_path / "secret" / "deep" / "keep").write_text("x")
    (tmp_path / "src").mkdir()
    (tmp_path / ".dockerignore").write_text(rules)
    scanned: list[str] = []
    scandir = os.scandir

    def recording(path: Path) -> object:
        scanned.append(Path(path).relative_to(tmp_path).as_posix())
        return scandir(path)

    monkeypatch.setattr(os, "scandir", recording)
    digest = fingerprint.context_digest(tmp_path, tmp_path / "Dockerfile")
    monkeypatch.undo()
    assert ("secret" in scanned) is listed
    assert digest == reference_digest(tmp_path)


# ---- a big ignore file over a big context (the benchmark's case) ---------------------------------------------------

# What the reference gives for generate.big_dockerignore's context: it takes 9 s to recompute, so it is written here.
BIG_CONTEXT_DIGEST = "f79e5ce165745849ad4c089c899907d3e5582fb2703423882208c7295aa67d2c"


def test_ten_thousand_patterns_over_two_thousand_files(tmp_path: Path) -> None:
    """10,001 patterns, 2,000 files: the reference's digest, and its answer for a sample of the paths."""
    big_dockerignore(tmp_path)
    context = tmp_path / "ctx"
    assert fingerprint.context_digest(context, context / "Dockerfile") == BIG_CONTEXT_DIGEST
    text = (context / ".dockerignore").read_text()
    rules, reference = parse(text), reference_parse(text)
    paths = sorted(
        (Path(folder) / name).relative_to(context).as_posix()
        for folder, directories, files in os.walk(context)
        for name in [*directories, *files]
    )
    assert len(paths) > 2_000 and len(reference) == 10_001
    for path in paths[::50]:
        assert rules.ignores(path) is reference_ignores(reference, path), path
