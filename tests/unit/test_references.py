"""Docker's reference grammar, registries and normalised forms."""

from __future__ import annotations

import pytest

from buildflow.references import normalized, parse, qualify


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ubuntu", "docker.io/library/ubuntu:latest"),
        ("ubuntu:16.04", "docker.io/library/ubuntu:16.04"),
        ("nvidia/cuda:9.0-cudnn7", "docker.io/nvidia/cuda:9.0-cudnn7"),
        ("localhost:5000/t2t/cuda:9.0", "localhost:5000/t2t/cuda:9.0"),
        ("localhost/x", "localhost/x:latest"),
        ("[::1]:5000/x:y", "[::1]:5000/x:y"),
        ("registry.example/a__b/c--d.e:T_1", "registry.example/a__b/c--d.e:T_1"),
        ("x@sha256:" + "a" * 64, "docker.io/library/x@sha256:" + "a" * 64),
    ],
)
def test_valid_references(text: str, expected: str) -> None:
    assert normalized(parse(text)) == expected


@pytest.mark.parametrize("text", ["Ubuntu", "x:", ":x", "x/", "x:.y", "a" * 256, "x y", "x::y", "-x", "x_:y"])
def test_invalid_references(text: str) -> None:
    with pytest.raises(ValueError):
        parse(text)


def test_qualify_puts_tags_under_the_registry() -> None:
    assert str(qualify(parse("t2t:nmt"), "localhost:5000/t2t")) == "localhost:5000/t2t/t2t:nmt"
    assert str(qualify(parse("cuda"), "localhost:5000")) == "localhost:5000/cuda:latest"
    assert str(qualify(parse("registry.example/x/y:1"), "localhost:5000")) == "registry.example/x/y:1"
    assert str(qualify(parse("x"), "")) == "x:latest"
    with pytest.raises(ValueError, match="longer than 255"):
        qualify(parse("a" * 200), "localhost:5000/" + "b" * 60)
