"""gc's decisions on a repository's tags: what stays and why, what goes, and digests shared between tags."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildflow.cli import main
from buildflow.engine.catalog import _next_page
from buildflow.run.cleanup import Build, Policy, Repository, decide
from tests.conftest import dockerfiles, write_pipeline

NOW = 1_000_000.0
HOUR = 3600.0


def key(n: int) -> str:
    return f"{n:024x}"


def digest(name: str) -> str:
    return "sha256:" + name.encode().hex().ljust(64, "0")[:64]


def repository(*builds: tuple[int, str, float], extra: dict[str, str] | None = None) -> Repository:
    """A repository with one build (image and record, own digests) per (key number, target, age in hours)."""
    found = Repository("localhost:5000/ns/app", dict(extra or {}))
    for n, target, hours in builds:
        build = Build(found.name, key(n), digest(f"i{n}"), digest(f"r{n}"), target, NOW - hours * HOUR)
        found.builds[build.key] = build
        found.tags[build.image_tag], found.tags[build.record_tag] = build.image, build.record
    return found


def going(found: Repository) -> set[str]:
    return {tag for build in found.builds.values() for tag in build.going}


def test_the_n_newest_of_each_target_and_the_current_inputs_stay() -> None:
    found = repository((1, "app", 5), (2, "app", 4), (3, "app", 3), (4, "cli", 9), (5, "cli", 1))
    decide(found, {key(1): "app"}, Policy(keep=1), NOW)
    assert going(found) == {f"bf-{key(n)}{suffix}" for n in (2, 4) for suffix in ("", ".record")}
    assert found.builds[key(1)].keep == "the current inputs of app"
    assert found.builds[key(3)].keep == "one of the 1 newest of app"
    decide(found, {}, Policy(keep=0), NOW)
    assert len(going(found)) == 10


def test_older_than_keeps_what_was_used_within_the_age() -> None:
    found = repository((1, "app", 5), (2, "app", 30), (3, "app", 1))
    decide(found, {}, Policy(keep=0, age="1d"), NOW)
    assert going(found) == {f"bf-{key(2)}", f"bf-{key(2)}.record"}


def test_a_release_tag_keeps_its_build_and_a_shared_content_digest_keeps_the_tag_but_not_the_record() -> None:
    found = repository((1, "app", 1), (2, "app", 5), (3, "app", 6), extra={"v1": digest("i3")})
    found.builds[key(2)].image = found.tags[f"bf-{key(2)}"] = digest("i1")  # rebuilt to the same digest
    decide(found, {}, Policy(keep=1), NOW)
    assert found.builds[key(3)].keep == "release tag v1 points at it"
    assert going(found) == {f"bf-{key(2)}.record"}
    assert found.builds[key(2)].why == f"bf-{key(2)} stays: bf-{key(1)}, which stays, points at the same digest"


def test_the_build_a_last_record_names_stays() -> None:
    found = repository((1, "app", 1), (2, "app", 5), extra={"bf-last.app": digest("r2")})
    found.latest["bf-last.app"] = (digest("r2"), digest("i2"))
    decide(found, {}, Policy(keep=0), NOW)
    assert going(found) == {f"bf-{key(1)}", f"bf-{key(1)}.record"}
    assert "bf-last.app names it" in found.builds[key(2)].keep


def test_builds_of_targets_not_selected_stay() -> None:
    found = repository((1, "app", 5), (2, "cli", 5), (3, "", 5))
    decide(found, {}, Policy(keep=0, selected=frozenset({"app"})), NOW)
    assert going(found) == {f"bf-{key(1)}", f"bf-{key(1)}.record"}


def test_tag_pages_follow_the_link_header_on_the_same_registry_only() -> None:
    first = "http://127.0.0.1:5000/v2/ns/app/tags/list?n=2"
    assert _next_page(first, '</v2/ns/app/tags/list?last=b&n=2>; rel="next"') == (
        "http://127.0.0.1:5000/v2/ns/app/tags/list?last=b&n=2"
    )
    assert _next_page(first, "") == ""
    assert _next_page(first, '<http://elsewhere.invalid/v2/x/tags/list?last=b>; rel="next"') == ""


@pytest.mark.parametrize(
    ("arguments", "option"),
    [
        (("--keep", "-1"), "--keep -1"),
        (("--older-than", "3 days"), "--older-than 3 days"),
        (("--older-than", "7"), "--older-than 7"),
    ],
)
def test_bad_gc_options_exit_2_in_one_line_naming_the_option(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, arguments: tuple[str, ...], option: str
) -> None:
    file = write_pipeline(
        tmp_path, "version: 1\nregistry: localhost:5000/ns\ntargets:\n  base: {context: base}\n", dockerfiles("base")
    )
    with pytest.raises(SystemExit) as done:
        main(["gc", "-f", str(file), *arguments])
    lines = capsys.readouterr().err.strip().splitlines()
    assert done.value.code == 2
    assert len(lines) == 1 and option in lines[0], lines
