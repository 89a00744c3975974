"""Dockerfile reading with BuildKit's parser, and ARG expansion as BuildKit does it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from buildflow.pipeline.dockerfile import (
    DockerfileError,
    ExpansionError,
    ImageUse,
    Resolution,
    expand,
    expand_word,
    host_platform,
    image_uses,
    read,
    resolve,
    triggers,
)


def uses(tmp_path: Path, text: str, **args: str) -> list[tuple[str, int, str]]:
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    return [(use.instruction, use.line, name) for use, name in image_uses(read(path), args)]


def test_from_copy_and_mount_uses(tmp_path: Path) -> None:
    text = (
        "# syntax=docker/dockerfile:1\nARG BASE=a:1\nFROM ${BASE} AS build\n"
        "RUN --mount=type=bind,from=b:2,target=/b \\\n    ls\n"
        "FROM c:3\nCOPY --from=build /x /x\nCOPY --from=d:4 --chown=1 /y /y\n"
    )
    assert uses(tmp_path, text) == [
        ("FROM", 3, "a:1"),
        ("RUN --mount", 4, "b:2"),
        ("FROM", 6, "c:3"),
        ("COPY --from", 8, "d:4"),
    ]
    assert uses(tmp_path, text, BASE="z:9")[0] == ("FROM", 3, "z:9")


def test_args_after_the_first_from_do_not_reach_from_lines(tmp_path: Path) -> None:
    assert uses(tmp_path, "FROM scratch\nARG LATE=x\nFROM ${LATE}\n") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${A}", "1"),
        ("$A", "1"),
        ("x-${A}-y", "x-1-y"),
        ("${MISSING:-d}", "d"),
        ("${A:+alt}", "alt"),
        ("${MISSING:+alt}", ""),
        ("\\$A", "$A"),
        ("${MISSING}", None),
        ("$MISSING", None),
        ("${EMPTY:-d}", "d"),
    ],
)
def test_expand(text: str, expected: str | None) -> None:
    assert expand(text, {"A": "1", "EMPTY": ""}) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FROM a\nRUNN x\n", "unknown instruction: RUNN"),
        ("# only a comment\n", "file with no instructions"),
        ("RUN x\n", "no FROM instruction"),
        ("FROM a b\n", "FROM takes an image and an optional 'AS name'"),
        ("FROM a\nRUN <<EOF\nx\n", "unterminated heredoc"),
    ],
)
def test_errors_buildkit_would_give(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    with pytest.raises(DockerfileError, match=message):
        read(path)


def resolved(tmp_path: Path, text: str, args: dict[str, str] | None = None, **options: Any) -> Resolution:
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    return resolve(read(path), args or {}, **options)


def names(resolution: Resolution) -> list[str]:
    return [name for _, name in resolution.uses]


def reasons(resolution: Resolution) -> list[tuple[int, str]]:
    return [(item.use.line, item.reason) for item in resolution.unresolved]


def test_global_arg_defaults_use_the_args_before_them(tmp_path: Path) -> None:
    text = "ARG REGISTRY=quay.io\nARG OWNER=jupyter\nARG BASE_IMAGE=$REGISTRY/$OWNER/base-notebook\nFROM $BASE_IMAGE\n"
    assert names(resolved(tmp_path, text)) == ["quay.io/jupyter/base-notebook"]
    assert names(resolved(tmp_path, text, {"OWNER": "me"})) == ["quay.io/me/base-notebook"]  # re-expanded
    assert names(resolved(tmp_path, text, {"BASE_IMAGE": "x:1"})) == ["x:1"]  # a build arg wins over the default
    assert names(resolved(tmp_path, text.replace("REGISTRY=quay.io", "REGISTRY"), {"REGISTRY": "r.io"})) == [
        "r.io/jupyter/base-notebook"
    ]


def test_a_default_made_from_an_arg_without_value_is_unresolved_and_says_which(tmp_path: Path) -> None:
    result = resolved(tmp_path, "ARG REGISTRY\nARG BASE_IMAGE=$REGISTRY/jupyter/x\nFROM $BASE_IMAGE\n")
    assert names(result) == [] and reasons(result) == [(3, "ARG REGISTRY has no default and no build arg sets it")]


def test_args_after_the_first_from_are_stage_scoped(tmp_path: Path) -> None:
    # the order the issue quotes: BuildKit fails it with "base name ($ROOT_IMAGE) should not be blank"
    text = "FROM ubuntu@sha256:" + "1" * 64 + " AS default_root_image\nARG ROOT_IMAGE=default_root_image\n"
    result = resolved(tmp_path, text + "FROM $ROOT_IMAGE\n")
    assert names(result) == []
    assert reasons(result) == [(3, "ARG ROOT_IMAGE is declared after the first FROM, where FROM lines do not see it")]
    # declared before the first FROM, it names the pinned stage, which is the only base
    text = "ARG ROOT_IMAGE=default_root_image\nFROM ubuntu@sha256:" + "1" * 64 + " AS default_root_image\n"
    assert names(resolved(tmp_path, text + "FROM $ROOT_IMAGE\nRUN true\n")) == ["ubuntu@sha256:" + "1" * 64]
    assert names(resolved(tmp_path, text + "FROM $ROOT_IMAGE\n", {"ROOT_IMAGE": "debian:12"})) == ["debian:12"]


@pytest.mark.parametrize(
    ("text", "args", "expected"),
    [
        ("ARG V=1\nFROM img:${V:+v$V}\n", {}, ["img:v1"]),
        ("ARG V\nFROM img:${V:-latest}\n", {}, ["img:latest"]),
        ("ARG V\nFROM img${V:+:$V}\n", {}, ["img"]),
        ("ARG V\nFROM img${V:+:$V}\n", {"V": "2"}, ["img:2"]),
        ('ARG A="quay.io/x"\nFROM "${A}:1"\n', {}, ["quay.io/x:1"]),  # quotes removed as BuildKit does
        ("ARG CUDA=12.2.0\nARG ARCH=\nFROM nvidia/cuda${ARCH:+-$ARCH}:${CUDA}-base\n", {}, ["nvidia/cuda:12.2.0-base"]),
        ("ARG V=3.12.1\nFROM python:${V%.*}-slim\n", {}, ["python:3.12-slim"]),
        (
            "FROM a:$UNDECLARED_BUT_DEFAULTED\n".replace("$UNDECLARED_BUT_DEFAULTED", "${X-fallback}"),
            {},
            ["a:fallback"],
        ),
        ("FROM img\nARG LATE=x\n", {"LATE": "y"}, ["img"]),
    ],
)
def test_variable_forms_in_from(tmp_path: Path, text: str, args: dict[str, str], expected: list[str]) -> None:
    assert names(resolved(tmp_path, text, args)) == expected


def test_an_arg_without_a_value_is_reported_not_tracked(tmp_path: Path) -> None:
    text = "ARG IMAGE_NAME\nFROM ${IMAGE_NAME}:12.3.1-base-ubuntu22.04 AS base\nRUN true\n"
    result = resolved(tmp_path, text)
    assert result.uses == [] and reasons(result) == [(2, "ARG IMAGE_NAME has no default and no build arg sets it")]
    assert names(resolved(tmp_path, text, {"IMAGE_NAME": "nvidia/cuda"})) == ["nvidia/cuda:12.3.1-base-ubuntu22.04"]
    assert reasons(resolved(tmp_path, "FROM img$NOPE\n")) == [
        (1, "NOPE is not declared with ARG before the first FROM")
    ]
    blank = resolved(tmp_path, "ARG X=\nFROM ${X}\n")
    assert reasons(blank) == [(2, "expands to nothing, and BuildKit refuses a blank name")]
    assert reasons(resolved(tmp_path, "ARG X\nFROM ${X:?set_X}\n")) == [(2, "X: set_X")]


def test_from_an_arg_that_names_an_earlier_stage(tmp_path: Path) -> None:
    text = "ARG FLAVOUR=cpu\nFROM ubuntu:22.04 AS cpu\nFROM nvidia/cuda:12 AS gpu\nFROM ${FLAVOUR}\nRUN true\n"
    assert names(resolved(tmp_path, text)) == ["ubuntu:22.04"]
    assert names(resolved(tmp_path, text, {"FLAVOUR": "gpu"})) == ["nvidia/cuda:12"]
    # a FROM sees only the stages before it: a later one of the same name is an image
    assert names(resolved(tmp_path, "FROM later\nFROM scratch AS later\n", stage="0")) == []
    assert names(resolved(tmp_path, "FROM x AS a\nFROM later AS b\nFROM a AS later\nFROM b\n")) == ["later"]


def test_only_the_stages_the_target_stage_needs_count(tmp_path: Path) -> None:
    text = (
        "FROM golang:1.22 AS builder\nRUN make\n"
        "FROM gcr.io/distroless/static:debug AS debug\nCOPY --from=builder /out /out\n"
        "FROM gcr.io/distroless/static:nonroot AS runtime\nCOPY --from=builder /out /out\n"
    )
    assert names(resolved(tmp_path, text)) == ["golang:1.22", "gcr.io/distroless/static:nonroot"]
    assert names(resolved(tmp_path, text, stage="DEBUG")) == ["golang:1.22", "gcr.io/distroless/static:debug"]
    assert names(resolved(tmp_path, text, stage="builder")) == ["golang:1.22"]


def test_copy_from_and_mount_from_name_stages_anywhere_or_images(tmp_path: Path) -> None:
    text = (
        "FROM alpine:3 AS final\nCOPY --from=tools /t /t\nCOPY --from=1 /u /u\n"
        'RUN --mount=type=cache,FROM=cache-seed:1,target=/c --mount="type=bind,from=assets:2,target=/a" ls\n'
        "FROM busybox:1 AS tools\n"
    )
    assert names(resolved(tmp_path, text, stage="final")) == ["alpine:3", "cache-seed:1", "assets:2", "busybox:1"]


def test_platform_args_and_cross_builds(tmp_path: Path) -> None:
    text = (
        "FROM --platform=$BUILDPLATFORM golang:1.22-alpine AS build\nARG TARGETOS TARGETARCH\n"
        "RUN GOOS=$TARGETOS GOARCH=$TARGETARCH go build -o /out/app\n"
        "FROM rootfs:${TARGETARCH}${TARGETVARIANT:+-$TARGETVARIANT}\nCOPY --from=build /out/app /app\n"
    )
    result = resolved(tmp_path, text, platforms=["linux/amd64", "linux/arm/v7"])
    assert names(result) == ["golang:1.22-alpine", "rootfs:amd64", "rootfs:arm-v7"] and result.unresolved == []
    native = host_platform().split("/")[1]
    assert names(resolved(tmp_path, text)) == ["golang:1.22-alpine", f"rootfs:{native}"]  # the build platform
    assert names(resolved(tmp_path, text, {"TARGETARCH": "s390x"})) == ["golang:1.22-alpine", "rootfs:s390x"]
    unknown = resolved(tmp_path, "FROM --platform=$NOPE a\n")
    assert names(unknown) == ["a"] and reasons(unknown) == [(1, "NOPE is not declared with ARG before the first FROM")]
    assert unknown.unresolved[0].message("t").startswith("FROM --platform=$NOPE: ")


def test_parser_directives_escape_and_syntax(tmp_path: Path) -> None:
    windows = (
        "# escape=`\nARG BASE=mcr.microsoft.com/windows/servercore:ltsc2022\nFROM $BASE AS build\n"
        "RUN echo `\n    C:\\path\nFROM `$BASE\nCOPY --from=build C:\\out C:\\out\n"
    )
    assert [(use.line, name) for use, name in resolved(tmp_path, windows, stage="build").uses] == [
        (3, "mcr.microsoft.com/windows/servercore:ltsc2022")
    ]
    assert names(resolved(tmp_path, windows)) == ["mcr.microsoft.com/windows/servercore:ltsc2022", "$BASE"]
    text = "#!/usr/bin/env buildctl\n# syntax=docker/dockerfile:1.7 --some-option\nFROM a\n"
    assert resolved(tmp_path, text).frontend == (
        ImageUse(2, "# syntax", "docker/dockerfile:1.7", frozenset()),
        "docker/dockerfile:1.7",
    )
    assert resolved(tmp_path, text, {"BUILDKIT_SYNTAX": "dockerfile.v0"}).frontend is None
    assert resolved(tmp_path, text, {"BUILDKIT_SYNTAX": "my/frontend:2"}).frontend[1] == "my/frontend:2"  # type: ignore[index]
    assert resolved(tmp_path, "FROM a\n# syntax=docker/dockerfile:1\n").frontend is None  # not a directive there
    assert resolved(tmp_path, "# a comment\n# syntax=docker/dockerfile:1\nFROM a\n").frontend is None


def test_heredocs_and_continuations_keep_lines(tmp_path: Path) -> None:
    text = (
        "FROM a AS one\nRUN <<EOF\nFROM not-an-image\nCOPY --from=nor-this /a /b\nEOF\n"
        "COPY <<EOF /etc/x\nFROM neither\nEOF\n"
        "FROM \\\n  b:1 \\\n  AS two\nCOPY --from=one \\\n  /a /a\nRUN --mount=from=c:2,target=/c \\\n  ls\n"
    )
    assert [(use.instruction, use.line, name) for use, name in resolved(tmp_path, text).uses] == [
        ("FROM", 1, "a"),
        ("FROM", 9, "b:1"),
        ("RUN --mount", 14, "c:2"),
    ]


def test_onbuild_triggers_run_in_the_stages_built_from_theirs(tmp_path: Path) -> None:
    text = "FROM a AS base\nONBUILD COPY --from=tool:1 /t /t\nONBUILD RUN --mount=from=seed:2 ls\nFROM base\n"
    uses = [(use.instruction, name) for use, name in resolved(tmp_path, text).uses]
    assert uses == [("FROM", "a"), ("ONBUILD COPY --from", "tool:1"), ("ONBUILD RUN --mount", "seed:2")]
    own = resolved(tmp_path, "FROM a\nONBUILD COPY --from=tool:1 /t /t\n")
    assert names(own) == ["a"]  # not this build's: its children's
    assert [use.text for use in triggers(read(tmp_path / "Dockerfile"))] == ["tool:1"]


def test_a_named_context_replaces_the_stage_of_its_name(tmp_path: Path) -> None:
    text = "FROM ubuntu:22.04 AS base\nRUN true\nFROM base\nCOPY --from=x:1 /x /x\n"
    assert names(resolved(tmp_path, text)) == ["ubuntu:22.04", "x:1"]
    assert names(resolved(tmp_path, text, contexts=frozenset({"base"}))) == ["x:1"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ARG A\nRUN x\nFROM a\n", "no build stage in current context"),
        ("FROM a AS 1st\n", "invalid name for build stage"),
        ("FROM a\nCOPY --from=3 /a /a\n", "invalid stage index 3"),
        ("FROM a\nONBUILD ONBUILD RUN x\n", "Chaining ONBUILD"),
        ("FROM a\nONBUILD FROM b\n", "FROM isn't allowed as an ONBUILD trigger"),
        ("# escape=`\n# escape=\\\nFROM a\n", "only one escape parser directive"),
        ("FROM ${A\n", "unsupported modifier"),
        ("FROM a:${A:-x\n", "missing '}'"),
        ("ARG A=${B:=x}\nFROM a\n", "unsupported modifier"),
        ("FROM a\nCOPY --from=$X /a /a\n", "variable expansion is not supported for --from"),
        ("FROM a\nRUN --mount=from=${X},target=/x ls\n", "'from' doesn't support variable expansion"),
    ],
)
def test_more_errors_buildkit_would_give(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    with pytest.raises(DockerfileError, match=re.escape(message)):
        read(path)


@pytest.mark.parametrize(
    ("word", "expected", "missing"),
    [
        ("plain", "plain", set()),
        ("$SET/x", "v/x", set()),
        ("$UNSET/x", "/x", {"UNSET"}),
        ("${UNSET:-d}", "d", set()),
        ("${UNSET:-$ALSO}", "", {"ALSO"}),
        ("${SET:-$ALSO}", "v", set()),  # the word is not used: what it lacks does not count
        ("${UNSET:+$ALSO}", "", set()),
        ("${SET:+x$ALSO}", "x", {"ALSO"}),
        ("${EMPTY:-d}", "d", set()),
        ("${EMPTY-d}", "", set()),
        ("'$SET'", "$SET", set()),
        ('"$SET"', "v", set()),
        ("\\$SET", "$SET", set()),
        ("${SET#v}", "", set()),
        ("${SET/v/w}", "w", set()),
        ("$TAINTED", "x", {"ROOT"}),
    ],
)
def test_expansion_says_what_had_no_value(word: str, expected: str, missing: set[str]) -> None:
    env = {"SET": "v", "EMPTY": "", "TAINTED": "x"}
    assert expand_word(word, env, tainted={"TAINTED": frozenset({"ROOT"})}) == (expected, frozenset(missing))


@pytest.mark.parametrize("word", ["'unclosed", '"unclosed', "${", "${}", "${A:B}", "${A?}"])
def test_expansion_errors(word: str) -> None:
    with pytest.raises(ExpansionError):
        expand_word(word, {})


@pytest.mark.parametrize(
    ("word", "escape", "expected"),
    [("C:\\x", "`", "C:\\x"), ("a`$b", "`", "a$b"), ("a\\$b", "\\", "a$b"), ("a`b", "\\", "a`b")],
)
def test_the_escape_token(word: str, escape: str, expected: str) -> None:
    assert expand_word(word, {"b": "B"}, escape=escape).text == expected


def test_named_parents_sorts_what_a_build_names(tmp_path: Path) -> None:
    from buildflow.pipeline.inference import named_parents

    path = tmp_path / "Dockerfile"
    path.write_text("# syntax=docker/dockerfile:1\nARG TAG=1\nFROM base:$TAG AS build\nFROM two:1\nFROM base:1\n")
    owners = {"base:1": ["base"], "two:1": ["two-a", "two-b"]}
    uses = named_parents(read(path), {}, "app", lambda text: owners.get(text, []))
    assert [(edge.parent, edge.line, edge.instruction) for edge in uses.edges] == [("base", 5, "FROM")]
    assert uses.external == ["docker/dockerfile:1"] and uses.ambiguous == []  # the unneeded stages are left out
    built = named_parents(read(path), {}, "app", lambda text: owners.get(text, []), stage="build")
    assert [edge.parent for edge in built.edges] == ["base"]
