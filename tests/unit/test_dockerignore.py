""".dockerignore semantics as BuildKit applies them (cases from moby/patternmatcher's behaviour)."""

from __future__ import annotations

import pytest

from buildflow.pipeline.dockerignore import parse


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
