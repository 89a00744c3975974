"""The hostile corpus as tests and benchmarks run it: committed cases copied, big and special ones generated.

Committed cases are plain files (`NAME.yaml`, `NAME.json`, ...) run from this directory, whose Dockerfile is
their build context, or directories holding a `buildflow.*` file and whatever else the case needs. Cases
that would be megabytes, or need symlinks and named pipes, are made here at run time.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CORPUS = Path(__file__).resolve().parent
_NOT_CASES = frozenset({"README.md", "Dockerfile", ".dockerignore", "__init__.py", "generate.py", "__pycache__"})
_DOCKERFILE = "FROM scratch\n"


@dataclass(frozen=True)
class Case:
    """One hostile pipeline: run `buildflow validate -f FILE` in `directory`."""

    name: str
    directory: Path
    file: str

    @property
    def path(self) -> Path:
        """The pipeline file."""
        return self.directory / self.file


def materialise(work: Path) -> list[Case]:
    """Copy the corpus into `work`, add its symlinks, pipes and generated files, and list every case by name."""
    shutil.copytree(CORPUS, work, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    cases = [_committed(work, entry.name) for entry in sorted(work.iterdir()) if entry.name not in _NOT_CASES]
    for name, setup in SPECIAL.items():
        setup(work / name)
    for name, generate in GENERATED.items():
        directory = work / name
        directory.mkdir()
        cases.append(Case(name, directory, generate(directory)))
    return sorted(cases, key=lambda case: case.name)


def tidy(work: Path) -> None:
    """Remove the deep directory chains, which shutil.rmtree cannot (it recurses once per level)."""
    for name in DEEP:
        chain = [work / name / "ctx" / "d"]
        while chain[-1].is_dir():
            chain.append(chain[-1] / "d")
        for directory in reversed(chain[:-1]):
            directory.rmdir()


def _committed(work: Path, name: str) -> Case:
    """A committed case: a file run from the corpus directory, or a directory with one buildflow.* file."""
    entry = work / name
    if entry.is_file():
        return Case(name, work, name)
    [pipeline] = [path.name for path in entry.iterdir() if path.name.startswith("buildflow.")]
    return Case(name, entry, pipeline)


def _symlink(link: str, target: str) -> Callable[[Path], None]:
    """A set-up step that makes `link` (relative to the case directory) point at `target`."""

    def setup(directory: Path) -> None:
        """Make the symlink."""
        (directory / link).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, directory / link)

    return setup


def _fifo(path: str) -> Callable[[Path], None]:
    """A set-up step that makes a named pipe, which blocks whoever reads it."""

    def setup(directory: Path) -> None:
        """Make the named pipe."""
        os.mkfifo(directory / path)

    return setup


def _deep_directories(path: str, depth: int) -> Callable[[Path], None]:
    """A set-up step that nests `depth` directories under `path`."""

    def setup(directory: Path) -> None:
        """Make the directories, one level at a time (os.makedirs recurses)."""
        current = directory / path
        for _ in range(depth):
            current = current / "d"
            current.mkdir()

    return setup


SPECIAL: dict[str, Callable[[Path], None]] = {
    "context-symlink-escape": _symlink("outside", ".."),
    "dockerfile-symlink-escape": _symlink("ctx/Dockerfile", "../../Dockerfile"),
    "dockerignore-named-pipe": _fifo("ctx/.dockerignore"),
    "context-deep-directories": _deep_directories("ctx", 1200),
}
DEEP = ("context-deep-directories",)


def _write(directory: Path, name: str, content: str | bytes, dockerfile: bool = False) -> str:
    """Write a generated pipeline (and a Dockerfile beside it when asked); return its file name."""
    path = directory / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    if dockerfile:
        (directory / "Dockerfile").write_text(_DOCKERFILE)
    return name


def huge_file(directory: Path) -> str:
    """A 20 MB pipeline: valid YAML, far over the 8 MiB limit."""
    line = "  # padding, padding, padding, padding, padding, padding, padding, padding, padding, padding\n"
    body = "version: 1\ntargets:\n  base: {}\n" + line * (20_000_000 // len(line))
    return _write(directory, "buildflow.yaml", body, dockerfile=True)


def many_targets(count: int, suffix: str) -> Callable[[Path], str]:
    """A generator of a pipeline of `count` targets, as JSON or YAML."""

    def generate(directory: Path) -> str:
        """Write the pipeline."""
        names = [f"t{index}" for index in range(count)]
        if suffix == "json":
            text = json.dumps({"version": 1, "targets": {name: {"tags": [f"{name}:1"]} for name in names}})
        else:
            text = "version: 1\ntargets:\n" + "".join(f"  {name}: {{tags: ['{name}:1']}}\n" for name in names)
        return _write(directory, f"buildflow.{suffix}", text, dockerfile=True)

    return generate


def deep_flow(directory: Path) -> str:
    """10,000 nested YAML flow lists."""
    return _write(directory, "buildflow.yaml", "version: 1\ntargets: " + "[" * 10_000 + "]" * 10_000 + "\n")


def deep_block(directory: Path) -> str:
    """10,000 nested YAML block lists on one line."""
    return _write(directory, "buildflow.yaml", "- " * 10_000 + "x\n")


def deep_indented(directory: Path) -> str:
    """2,000 nested YAML mappings, one more space of indentation each."""
    lines = "".join(" " * level + f"k{level}:\n" for level in range(2_000))
    return _write(directory, "buildflow.yaml", "version: 1\nx-deep:\n" + lines)


def deep_json(directory: Path) -> str:
    """10,000 nested JSON objects."""
    return _write(directory, "buildflow.json", '{"version": 1, "x-deep": ' + '{"a": ' * 10_000 + "1" + "}" * 10_001)


def random_bytes(directory: Path) -> str:
    """64 KiB of (seeded) random bytes."""
    return _write(directory, "buildflow.yaml", random.Random(20260101).randbytes(65_536))


def random_text_bytes(directory: Path) -> str:
    """64 KiB of (seeded) random bytes without NUL: not UTF-8."""
    junk = bytes(byte or 1 for byte in random.Random(20260102).randbytes(65_536))
    return _write(directory, "buildflow.yaml", junk)


def long_number(directory: Path) -> str:
    """A number of 5,000 digits, more than Python converts by default."""
    return _write(directory, "buildflow.yaml", "version: " + "1" * 5_000 + "\ntargets: {base: {}}\n", dockerfile=True)


def long_context(directory: Path) -> str:
    """A context path of 5,000 characters, longer than any file name may be."""
    text = "version: 1\ntargets:\n  base: {context: " + "c" * 5_000 + "}\n"
    return _write(directory, "buildflow.yaml", text, dockerfile=True)


def variable_chain(directory: Path) -> str:
    """20,000 targets in a chain, each adding a variable that flows to all its descendants."""
    targets: dict[str, object] = {
        f"t{index}": {"vars": {f"v{index}": "x"}, **({"from": f"t{index - 1}"} if index else {})}
        for index in range(20_000)
    }
    return _write(directory, "buildflow.json", json.dumps({"version": 1, "targets": targets}), dockerfile=True)


def depends_on_everything(directory: Path) -> str:
    """77 targets of 256 images, and one of 256 images that depends on all of them: 5 million edges."""
    axes = {"x": list(range(16)), "y": list(range(16))}
    targets: dict[str, object] = {f"t{i}": {"matrix": axes, "tags": [f"t{i}:{{x}}-{{y}}"]} for i in range(77)}
    targets["all"] = {"matrix": {"n": list(range(256))}, "depends_on": list(targets), "tags": ["all:{n}"]}
    return _write(directory, "buildflow.json", json.dumps({"version": 1, "targets": targets}), dockerfile=True)


def big_dockerignore(directory: Path) -> str:
    """A valid pipeline whose context holds 2,000 files and a .dockerignore of 10,001 patterns (a benchmark)."""
    context = directory / "ctx"
    for index in range(2_000):
        (context / _big_file(index)).parent.mkdir(parents=True, exist_ok=True)
        (context / _big_file(index)).write_text(f"{index}\n")
    (context / "Dockerfile").write_text(_DOCKERFILE)
    (context / ".dockerignore").write_text("\n".join(_big_patterns(random.Random(20260103))) + "\n")
    return _write(directory, "buildflow.yaml", "version: 1\ntargets:\n  base: {context: ctx}\n")


_BIG_FOLDERS = ("src/app", "src/lib", "src/tests", "build/out", "docs/guide", "vendor/pkg", "data", "tools/ci")
_BIG_SUFFIXES = ("py", "txt", "log", "md", "json", "tmp")


def _big_file(index: int) -> str:
    """The path of the index-th file of the big context, three or four directories deep."""
    folder = _BIG_FOLDERS[index % len(_BIG_FOLDERS)]
    return f"{folder}/m{index % 7}/f{index}.{_BIG_SUFFIXES[index % len(_BIG_SUFFIXES)]}"


def _big_patterns(rng: random.Random) -> list[str]:
    """10,001 patterns: written-out paths (one in twenty present), globs, and '!' exceptions among them."""
    globs = ["**/*.log", "build/*", "*.tmp", "**/*.tmp", "docs/**/*.md", "src/*/m?/f1*.json", "vendor/**", "[a-c]*"]
    exceptions = ["!build/out/m3", "!**/f7*.log", "!vendor/pkg/m1/f5.py", "!docs/guide/m2/*.md", "!src/app/m0"]
    patterns = [_big_file(rng.randrange(40_000)) for _ in range(9_960)]
    for pattern in globs * 3 + exceptions * 3:
        patterns.insert(rng.randrange(len(patterns)), pattern)
    patterns += ["tools/**/*.txt", "!tools/ci/m2"]
    return patterns[:10_001]


GENERATED: dict[str, Callable[[Path], str]] = {
    "huge-20mb": huge_file,
    "targets-100k-json": many_targets(100_000, "json"),
    "targets-100k-yaml": many_targets(100_000, "yaml"),
    "deep-flow-10k": deep_flow,
    "deep-block-10k": deep_block,
    "deep-indented-2k": deep_indented,
    "deep-json-10k": deep_json,
    "random-bytes": random_bytes,
    "random-bytes-no-nul": random_text_bytes,
    "number-5000-digits": long_number,
    "context-name-too-long": long_context,
    "variables-chain-20k": variable_chain,
    "depends-on-everything": depends_on_everything,
}
