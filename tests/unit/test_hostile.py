"""Hostile pipeline files (tests/hostile/): each exits 2 with one line per problem, naming the file and the field."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from buildflow.errors import PipelineError, quoted
from buildflow.pipeline import contexts, dockerignore, matrix
from buildflow.pipeline.loader import load_pipeline
from buildflow.pipeline.source import line_finder
from buildflow.pipeline.templates import MAX_RENDERED_LENGTH, TemplateError, render
from buildflow.pipeline.variables import MAX_LISTED_SOURCES, merge_scopes
from tests.conftest import REPO, dockerfiles, one_problem, problems, write_pipeline
from tests.hostile.generate import Case, materialise, tidy
from tests.unit.test_cli import run

# Case -> the text expected in each line of stderr, in order: one entry per problem reported.
EXPECTED: dict[str, tuple[str, ...]] = {
    # YAML syntax
    "yaml-bad-indent.yaml": (":6: YAML syntax: while parsing a block mapping; did not find expected key; check the",),
    "yaml-colon-in-value.yaml": (":5: YAML syntax: mapping values are not allowed in this context; check the",),
    "yaml-control-character.yaml": (":4: not YAML text: character '\\x07' is not allowed; remove it",),
    "yaml-directive.yaml": (":1: YAML syntax: found incompatible YAML document; remove the %YAML directive",),
    "yaml-reserved-indicator.yaml": ("cannot start any token; quote the value that starts with '@'",),
    "yaml-tab-indent.yaml": ("cannot start any token; indent with spaces, not tabs",),
    "yaml-two-documents.yaml": (":5: YAML syntax: expected a single document in the stream",),
    "yaml-unclosed-bracket.yaml": (":4: YAML syntax: while parsing a flow sequence; did not find expected ',' or ']'",),
    "yaml-unclosed-quote.yaml": (":5: YAML syntax: while scanning a quoted scalar; found unexpected end of stream",),
    "yaml-undefined-alias.yaml": (":4: YAML syntax: found undefined alias '*common'; define it first with '&common'",),
    # the shape of the file
    "empty.yaml": (": the file is empty; a pipeline needs 'version: 1' and 'targets:'",),
    "comment-only.yaml": (":1: the top level must be a mapping with 'version: 1' and 'targets:'",),
    "top-level-list.yaml": (":1: the top level must be a mapping",),
    "top-level-scalar.yaml": (":1: the top level must be a mapping",),
    "version-2.yaml": (":2: version: unsupported version 2: this buildflow reads version 1",),
    "version-string.yaml": (":2: version: expected the number 1, got the string '1'; write version: 1",),
    "missing-version-and-targets.yaml": (":2: missing required key 'version'", ":2: missing required key 'targets'"),
    "targets-empty.yaml": (":3: targets: must not be empty",),
    # wrong types
    "types-top-level.yaml": (
        ":3: registry: expected a registry and repository prefix like localhost:5000/team",
        ":4: vars: expected a mapping of names to strings, got a list",
        ":5: defaults: expected a mapping, got the string 'host'",
        ":6: retry: expected a mapping with attempts, initial_delay, max_delay, got the number 3",
        ":7: rebuild: expected a mapping with follow_bases, max_age, got the boolean true",
        ":8: targets: expected a mapping of target names to targets, got a list",
    ),
    "types-target.yaml": (
        ":5: targets.base.description: expected a string, got a list",
        ":6: targets.base.context: expected a string, got the number 1",
        ":7: targets.base.dockerfile: expected a string, got a mapping",
        ":8: targets.base.stage: expected a string, got the boolean true",
        ":9: targets.base.from: expected a target name or a list of them, got the number 3",
        ":10: targets.base.depends_on: expected a target name or a list of them, got a mapping",
        ":11: targets.base.args: expected a mapping of names to strings, got a list",
        ":12: targets.base.vars: expected a mapping of names to strings, got the string 'x'",
        ":13: targets.base.tags: expected a list of tag templates, got the string 'base:1'",
        ":14: targets.base.platforms: expected a list like [linux/amd64], got the string 'linux/amd64'",
        ":15: targets.base.labels: expected a mapping of names to strings, got the number 1",
        ":16: targets.base.secrets: expected a mapping, got a list",
        ":17: targets.base.cache: expected one of registry, inline, local, none, or a mapping",
        ":18: targets.base.push: expected true or false, got the string 'yes'",
        ":19: targets.base.network: 'bridge' is not one of default, host, none",
        ":20: targets.base.test: expected a list of commands, or a mapping with commands",
        ":21: targets.base.matrix: expected a mapping, got a list",
    ),
    "types-nested.yaml": (
        ":3: retry.attempts: expected an integer, got the string 'three'",
        ":3: retry.initial_delay: 'soon' is not allowed here; expected a number of seconds, e.g. 1 or 0.5",
        ":4: rebuild.follow_bases: expected true or false, got the string 'yes'",
        ":7: targets.base.test.timeout: expected an integer, got the string '5m'",
        ":8: targets.base.cache.mode: 'all' is not one of min, max",
        ":9: targets.base.secrets.token.env: expected an environment variable name like PIP_TOKEN, got the number 5",
        ":10: targets.base.matrix.py: expected a list of values without spaces",
    ),
    "types-target-null.yaml": (
        ":4: targets.base: expected a mapping of target settings, got nothing (null)",
        ":5: targets.app: expected a mapping of target settings, got a list",
    ),
    # unknown keys
    "unknown-key-top-level.yaml": (":3: target: unknown key — did you mean 'targets'?",),
    "unknown-key-target.yaml": (":4: targets.base.contxt: unknown key — did you mean 'context'?",),
    "unknown-key-defaults.yaml": (":3: defaults.tags: 'tags' cannot be a default; set it on each target",),
    "unknown-key-matrix.yaml": (":7: targets.base.matrix.includes: unknown key — did you mean 'include'?",),
    "unknown-key-secrets.yaml": (":5: targets.base.secrets.token.value: unknown key — known keys: env, file",),
    "unknown-key-cache.yaml": (":5: targets.base.cache.reff: unknown key — did you mean 'ref'?",),
    "unknown-key-test.yaml": (":5: targets.base.test.command: unknown key — did you mean 'commands'?",),
    "unknown-key-retry.yaml": (":3: retry.attemps: unknown key — did you mean 'attempts'?",),
    "unknown-key-rebuild.yaml": (":3: rebuild.max_ages: unknown key — did you mean 'max_age'?",),
    # cycles
    "cycle-2.yaml": (":4: targets.a.from: cycle: a -> b -> a; remove one of these edges",),
    "cycle-3.yaml": (":4: targets.a.from: cycle: a -> b -> c -> a; remove one of these edges",),
    "cycle-self.yaml": (":4: targets.a.from: cycle: a -> a; a target cannot be its own parent",),
    "cycle-depends-on.yaml": (":4: targets.a.depends_on: cycle: a -> b -> a; remove one of these edges",),
    "cycle-inferred": (":4: targets.a: cycle through Dockerfile FROM lines: a -> b -> a; remove one of these edges",),
    "cycle-inferred-declared": (":5: targets.app: cycle through Dockerfile FROM lines: app -> base -> app",),
    # unknown parents
    "unknown-from.yaml": (":5: targets.cuda.from: unknown target 'bsae' — did you mean 'base'?",),
    "unknown-depends-on.yaml": (":5: targets.app.depends_on[1]: unknown target 'data'",),
    "unknown-conditional-parent.yaml": (":9: targets.tf.from[1]: unknown target 'cuda'",),
    "when-not-an-axis.yaml": (
        ":7: targets.tf.from[0].when.arch: 'arch' is not a matrix axis of tf; its axes are device",
    ),
    # contexts and Dockerfiles
    "context-absolute.yaml": (":4: targets.base.context: '/etc' is outside the pipeline directory",),
    "context-dotdot": (":4: targets.base.context: '../' is outside the pipeline directory",),
    "context-symlink-escape": (":4: targets.base.context: 'outside' is outside the pipeline directory",),
    "context-missing.yaml": (":4: targets.base.context: 'nowhere' does not exist",),
    "context-is-a-file": (":4: targets.base.context: 'notes.txt' is not a directory",),
    "context-nul-byte.yaml": (":4: targets.base.context: 'ctx\\x00evil' contains a NUL character; fix the path",),
    "context-name-too-long": ("...' (5,000 characters) cannot be used as a path (File name too long); fix the",),
    "context-deep-directories": (":4: targets.base.context: directories nested too deeply to read; .dockerignore",),
    "dockerfile-outside-context": (":4: targets.base.dockerfile: '../Dockerfile' is outside the context 'ctx'",),
    "dockerfile-symlink-escape": (":4: targets.base.dockerfile: 'Dockerfile' is outside the context 'ctx'",),
    "dockerfile-missing": (":4: targets.base.dockerfile: 'Dockerfile' not found in context 'ctx'; create it",),
    "dockerfile-is-a-directory": (":4: targets.base.dockerfile: 'Dockerfile' is a directory in context 'ctx'",),
    "dockerignore-is-a-directory": (":4: targets.base.context: .dockerignore is not a regular file",),
    "dockerignore-named-pipe": (":4: targets.base.context: .dockerignore is not a regular file",),
    # huge files and deep nesting
    "huge-20mb": (": larger than 8 MiB; a pipeline file should be small",),
    "targets-100k-json": (": targets: 100,000 targets; the limit is 20,000 images per pipeline",),
    "targets-100k-yaml": (": a YAML file over 2 MiB; write a pipeline this large as JSON",),
    "deep-flow-10k": (":2: YAML syntax: while increasing flow level; exceeded maximum nesting depth; a pipeline",),
    "deep-block-10k": (":1: YAML syntax: while increasing block level; exceeded maximum nesting depth",),
    "deep-indented-2k": (":1002: YAML syntax: while increasing block level; exceeded maximum nesting depth",),
    "deep-json-10k": (": JSON syntax: nested too deeply to read; a pipeline needs a few levels of nesting",),
    "variables-chain-20k": (": targets.t1410: the images see more than 1,000,000 variables in all",),
    "depends-on-everything": (": targets.all: the images have more than 200,000 parents in all",),
    # binary junk
    "random-bytes": (": binary data (NUL bytes): not a YAML or JSON pipeline file",),
    "random-bytes-no-nul": (":1: not UTF-8 text (byte 0); save the file as UTF-8",),
    "nul-bytes.yaml": (": binary data (NUL bytes)",),
    "invalid-utf8.yaml": (":3: not UTF-8 text (byte 75); save the file as UTF-8",),
    "utf16-bom.yaml": (":1: UTF-16 text; save the file as UTF-8",),
    "number-5000-digits": (":1: a number of 5,000 digits is too long; quote it if it is text",),
    # duplicates
    "duplicate-key.yaml": (":5: duplicate key 'version' (first at line 2); keep one",),
    "duplicate-target.yaml": (":6: duplicate key 'base' (first at line 4); keep one",),
    "duplicate-key.json": (":5: duplicate key 'base' (first at line 4); keep one",),
    "duplicate-tag.yaml": (":5: targets.app.tags[0]: shared:1 is produced by both base and app",),
    # templates
    "undefined-variable.yaml": ("'relaese' in 'base:{relaese}' (target base) — did you mean 'release'?",),
    "undefined-variable-in-args.yaml": (":4: targets.base.args.UBUNTU: undefined variable 'ubuntu' in '{ubuntu}'",),
    "ambiguous-variable.yaml": (":6: targets.app.tags[0]: variable 'v' is ambiguous (one gives '1', two gives '2')",),
    "builtin-variable-redefined.yaml": (":3: vars.registry: 'registry' is a built-in variable; choose another name",),
    "template-laughs.yaml": (":9: vars.v5: variable 'v4' makes the value longer than 1,000,000 characters",),
    # tags
    "tag-uppercase.yaml": (
        ":4: targets.base.tags[0]: 'Base:1' is not a valid tag: repository names must be lowercase",
    ),
    "tag-bad-characters.yaml": (":4: targets.base.tags[0]: 'base image:1!' is not a valid tag",),
    "tag-too-long.yaml": ("tttt' is not a valid tag: a tag is at most 128 letters, digits",),
    "tag-empty-after-render.yaml": (":5: targets.base.tags[0]: ':1' (from '{name}:1', target base) is not a valid",),
    # matrix
    "matrix-explosion-target.yaml": (":5: targets.base.matrix: 400 combinations; the limit is 256 per target",),
    "matrix-explosion-pipeline.yaml": (":6: targets: expands to more than 20,000 images, the limit per pipeline",),
    "matrix-explosion-parents.yaml": (":8: targets.app.matrix: expands to more than 256 images",),
    "matrix-empty-axis.yaml": (":4: targets.base.matrix.py: must not be empty",),
    "matrix-bad-value.yaml": (":4: targets.base.matrix.py[0]: '3.11, 3.12' is not allowed here; expected a value",),
    "matrix-excludes-everything.yaml": (":5: targets.base.matrix.exclude: excludes every combination",),
    # aliases and tags
    "billion-laughs.yaml": (": YAML aliases expand to more than 1,000,000 values; remove the alias chain",),
    "alias-loop.yaml": (": a YAML alias refers to its own anchor, which makes an endless value; remove the loop",),
    "python-object.yaml": (":3: the tag '!!python/object:os.system' is not supported: remove it",),
    "python-apply.yaml": (":2: the tag '!!python/object/apply:os.system' is not supported: remove it",),
    "size-budget-unit.yaml": (
        ":4: targets.base.size_budget: '12 parsecs' is not allowed here; expected a size like 200MB, 1.5GB or 512MiB "
        "(kB, MB, GB, TB or KiB, MiB, GiB, TiB)",
    ),
    "lint-settings.yaml": (
        ":4: targets.base.lint.ignore[1]: 'rm -rf' is not allowed here; "
        "expected a rule code like DL3008, SC2086 or BF001",
        ":4: targets.base.lint.threshold: 'loud' is not one of error, warning, info, style",
    ),
    "binary-tag.yaml": (":4: binary values are not supported; use text, numbers, lists and mappings",),
    "include-tag.yaml": (":3: the tag '!include' is not supported: remove it",),
    "non-text-keys.yaml": (":4: keys must be plain text: quote the key ('true')",),
    # JSON
    "trailing-garbage.json": (":1: JSON syntax: Extra data (column 41); remove what follows the closing '}'",),
    "truncated.json": (":3: JSON syntax: Expecting ',' delimiter (column 1)",),
    "nan.json": (
        ":1: retry.initial_delay: 'NaN' is not allowed here; expected a number of seconds",
        ":1: retry.max_delay: 'Infinity' is not allowed here; expected a number of seconds",
    ),
    "infinity-and-escapes.json": (": JSON: Infinity is not a JSON value; write a number, or text in quotes",),
    "lone-surrogate.json": (":2: JSON escape '\\ud83d' is half a character (an unpaired surrogate)",),
    # rebuild, registry and names
    "max-age-words.yaml": (":3: rebuild.max_age: '7 days' is not allowed here; expected a number and a unit",),
    "max-age-number.yaml": (":3: rebuild.max_age: expected a number and a unit, like 7d or 12h, got the number 7",),
    "registry-uppercase.yaml": (":3: registry: 'localhost:5000/Team' is not allowed here; expected a registry",),
    "registry-spaces.yaml": (":3: registry: 'local host:5000' is not allowed here; expected a registry",),
    "registry-double-slash.yaml": (":3: registry: 'localhost:5000/team//images' is not a registry like",),
    "target-name-invalid.yaml": (
        ":4: targets[\"my image\"]: invalid name 'my image': a name of letters, digits",
        ":5: targets.-dash: invalid name '-dash'",
        ":6: targets.nnnn",
    ),
    "variable-name-invalid.yaml": (":3: vars.1st: invalid name '1st'", ":3: vars.my-var: invalid name 'my-var'"),
    "secret-env-invalid.yaml": (":4: targets.base.secrets.token.env: '1 TOKEN' is not allowed here; expected an",),
    # builders
    "builders-duplicate-name.yaml": (
        ":6: builders[2].name: builder 'buildflow-2' is named twice (first as builders[0]); name each builder once",
    ),
    "builders-jobs-zero.yaml": (
        ":4: builders[0].jobs: expected a number of builds at once, from 1 to 64 (leave jobs out for --jobs), got the "
        "number 0",
        ":5: builders[1].jobs: expected a number of builds at once, from 1 to 64 (leave jobs out for --jobs), got the "
        "number -2",
    ),
    "builders-platform-uncovered.yaml": (
        ":8: targets.app.platforms[1]: no builder builds 'linux/riscv64' (the builders list linux/amd64, "
        "linux/arm64/v8); add it to a builder's platforms: (one without platforms: builds any)",
    ),
    "builders-entry-shape.yaml": (
        ":4: builders[0]: missing required key 'name'",
        ":5: builders[1].job: unknown key — did you mean 'jobs'?",
        ":6: builders[2]: expected a mapping with name, jobs, platforms, got the string 'buildflow-3'",
    ),
}

# Cases that would hang or fill the memory if their fix regressed run only as processes, under a timeout.
ONLY_AS_PROCESS = (
    "dockerignore-named-pipe",
    "template-laughs.yaml",
    "billion-laughs.yaml",
    "matrix-explosion-parents.yaml",
    "depends-on-everything",
    "variables-chain-20k",
    "huge-20mb",
)
# A handful more run as processes too: the entry point, output encoding and exit codes as a user sees them.
AS_PROCESS = (
    *ONLY_AS_PROCESS,
    "yaml-tab-indent.yaml",
    "python-apply.yaml",
    "random-bytes",
    "deep-json-10k",
    "cycle-inferred",
    "context-symlink-escape",
    "lone-surrogate.json",
)


@pytest.fixture(scope="module")
def corpus() -> Iterator[dict[str, Case]]:
    """The corpus copied to a temporary directory, with its generated cases."""
    # Not under pytest's temporary directories: if this run were killed before tidy(), the 1,200 nested
    # directories left behind would break pytest's clean-up of old runs, which removes them recursively.
    work = Path(tempfile.mkdtemp(prefix="buildflow-hostile-")) / "corpus"
    cases = materialise(work)
    yield {case.name: case for case in cases}
    tidy(work)
    shutil.rmtree(work.parent)


def check(case: Case, code: int, out: str, err: str) -> None:
    """Exit 2, nothing on stdout, one line per expected problem, each naming the file and saying what is wrong."""
    lines = err.splitlines()
    assert code == 2, err
    assert out == ""
    assert "Traceback" not in err
    assert len(lines) == len(EXPECTED[case.name]), lines
    for line, expected in zip(lines, EXPECTED[case.name], strict=True):
        assert re.match(rf"{re.escape(case.file)}(:\d+)?: \S", line), line
        assert expected in line, line


def test_the_corpus_is_complete(corpus: dict[str, Case]) -> None:
    """Every case has its expected lines, and there are at least 50."""
    assert sorted(corpus) == sorted(EXPECTED)
    assert len(corpus) >= 50


@pytest.mark.parametrize("name", sorted(EXPECTED.keys() - ONLY_AS_PROCESS))
def test_hostile_file(
    name: str, corpus: dict[str, Case], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`buildflow validate -f FILE` run in the case's directory, in this process."""
    case = corpus[name]
    monkeypatch.chdir(case.directory)
    check(case, *run(capsys, "validate", "-f", case.file))


@pytest.mark.parametrize("name", AS_PROCESS)
def test_hostile_file_as_a_process(name: str, corpus: dict[str, Case]) -> None:
    """`python -m buildflow validate -f FILE` as a whole process; the timeout only guards against a hang."""
    case = corpus[name]
    result = subprocess.run(
        [sys.executable, "-m", "buildflow", "validate", "-f", case.file],
        cwd=case.directory,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    check(case, result.returncode, result.stdout, result.stderr)


# ---- the fixes, one by one -----------------------------------------------------------------------------------------


def test_merging_many_parents_is_linear_and_names_a_few(tmp_path: Path) -> None:
    """An ambiguous variable lists a few of its sources and counts the rest."""
    scopes = [(f"p{index}", {"v": str(index), "same": "x"}) for index in range(1000)]
    merged = merge_scopes(scopes)
    assert merged["same"] == "x"
    ambiguous = merged["v"]
    assert not isinstance(ambiguous, str)
    assert len(ambiguous.values) == MAX_LISTED_SOURCES and ambiguous.more == 1000 - MAX_LISTED_SOURCES
    assert ambiguous.describe().endswith("p4 gives '4' and 995 more")


def test_merging_keeps_the_first_value_when_parents_agree() -> None:
    """Agreeing parents give a plain value; a later disagreement lists the first source too."""
    assert merge_scopes([("a", {"v": "1"}), ("b", {"v": "1"})]) == {"v": "1"}
    merged = merge_scopes([("a", {"v": "1"}), ("b", {"v": "1"}), ("c", {"v": "2"})])["v"]
    assert not isinstance(merged, str) and merged.values == (("a", "1"), ("c", "2"))


def test_a_rendered_value_has_a_length_limit() -> None:
    """Variables made of variables stop at MAX_RENDERED_LENGTH characters."""
    with pytest.raises(TemplateError, match="makes the value longer than"):
        render("{v}{v}", {"v": "x" * (MAX_RENDERED_LENGTH // 2 + 1)})


def test_paths_the_system_cannot_take_are_problems(tmp_path: Path) -> None:
    """A NUL, a name too long, a Dockerfile that is a directory: problems, not exceptions."""
    (tmp_path / "ctx" / "Dockerfile").mkdir(parents=True)
    assert contexts.check_paths(tmp_path, "a\0b", "Dockerfile")[2] == [
        ("context", "'a\0b' contains a NUL character; fix the path")
    ]
    [(setting, message)] = contexts.check_paths(tmp_path, "c" * 300, "Dockerfile")[2]
    assert setting == "context" and "(300 characters) cannot be used as a path (File name too long)" in message
    [(setting, message)] = contexts.check_paths(tmp_path, "ctx", "Dockerfile")[2]
    assert setting == "dockerfile" and message == "'Dockerfile' is a directory in context 'ctx'; name the file"


def test_an_ignore_file_that_is_not_a_file_is_refused(tmp_path: Path) -> None:
    """A .dockerignore directory or named pipe is an error, never read (a pipe would block forever)."""
    (tmp_path / ".dockerignore").mkdir()
    with pytest.raises(dockerignore.IgnoreFileError, match="not a regular file"):
        dockerignore.read_rules_text(tmp_path, tmp_path / "Dockerfile")
    (tmp_path / ".dockerignore").rmdir()
    os.mkfifo(tmp_path / ".dockerignore")
    with pytest.raises(dockerignore.IgnoreFileError, match="not a regular file"):
        dockerignore.read_rules_text(tmp_path, tmp_path / "Dockerfile")


def test_parents_with_unrelated_axes_stop_before_filling_the_memory(tmp_path: Path) -> None:
    """Three matrix parents of 100 images multiply to a million partial choices: refused at the limit."""
    values = ", ".join(str(value) for value in range(100))
    line = one_problem(
        tmp_path,
        f"""\
        version: 1
        targets:
          a: {{matrix: {{x: [{values}]}}}}
          b: {{matrix: {{y: [{values}]}}}}
          c: {{matrix: {{z: [{values}]}}}}
          d: {{from: [a, b, c]}}
        """,
        dockerfiles("."),
    )
    assert f"targets.d.matrix: expands to more than {matrix.MAX_IMAGES_PER_TARGET} images" in line


def test_parents_that_share_axes_still_combine(tmp_path: Path) -> None:
    """The cap on partial choices leaves ordinary joins alone: a x b narrowed by c gives c's images."""
    path = write_pipeline(
        tmp_path,
        """\
        version: 1
        targets:
          a: {matrix: {x: [1, 2]}, tags: ["a:{x}"]}
          b: {matrix: {y: [1, 2]}, tags: ["b:{y}"]}
          c: {from: [a, b], tags: ["c:{x}-{y}"]}
        """,
        dockerfiles("."),
    )
    assert len(load_pipeline(path).targets) == 2 + 2 + 4


def test_pipeline_wide_limits_stop_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Edges, variables and rendered characters each have a pipeline-wide limit, reported once."""
    monkeypatch.setattr(matrix, "MAX_EDGES_PER_PIPELINE", 3)
    text = "version: 1\ntargets:\n  a: {matrix: {x: [1, 2, 3]}}\n  b: {matrix: {y: [1, 2]}, depends_on: [a]}\n"
    assert "targets.b: the images have more than 3 parents in all" in one_problem(tmp_path, text, dockerfiles("."))
    monkeypatch.setattr("buildflow.pipeline.resolve.budget.MAX_VISIBLE_VARIABLES", 10)
    text = "version: 1\nvars: {a: '1', b: '2', c: '3', d: '4', e: '5', f: '6'}\ntargets:\n  a: {}\n  b: {from: a}\n"
    assert "targets.b: the images see more than 10 variables in all" in one_problem(tmp_path, text)
    monkeypatch.setattr("buildflow.pipeline.resolve.budget.MAX_RENDERED_TOTAL", 100)
    text = "version: 1\nvars: {v: '" + "x" * 60 + "'}\ntargets:\n  a: {labels: {a: '{v}', b: '{v}'}}\n"
    assert "templates render more than 100 characters in all" in one_problem(tmp_path, text)


def test_more_targets_than_images_are_refused_before_anything_else(tmp_path: Path) -> None:
    """A pipeline with more targets than the image limit fails at once, with no line to look for."""
    targets = {f"t{index}": {"bad": "key"} for index in range(matrix.MAX_IMAGES_PER_PIPELINE + 1)}
    path = write_pipeline(tmp_path, json.dumps({"version": 1, "targets": targets}), name="p.json")
    with pytest.raises(PipelineError) as caught:
        load_pipeline(path, display="p.yaml")
    assert caught.value.lines() == [
        "p.yaml: targets: 20,001 targets; the limit is 20,000 images per pipeline: split the pipeline"
    ]


def test_a_bad_registry_is_one_problem(tmp_path: Path) -> None:
    """The schema's pattern and the reference grammar do not both report the same registry."""
    lines = problems(tmp_path, "version: 1\nregistry: 'Bad Registry'\ntargets: {a: {}}\n", dockerfiles("."))
    assert len(lines) == 1 and "registry: 'Bad Registry' is not allowed here; expected a registry" in lines[0]


def test_a_secret_with_an_unknown_key_is_one_problem(tmp_path: Path) -> None:
    """{env: X, value: y}: the unknown key, not also 'exactly one of env or file'."""
    text = "version: 1\ntargets: {a: {secrets: {t: {env: X, value: y}}}}\n"
    assert one_problem(tmp_path, text).endswith("targets.a.secrets.t.value: unknown key — known keys: env, file")


def test_json_files_get_json_messages(tmp_path: Path) -> None:
    """A .json file that neither parser reads is explained by the JSON parser; the same text as .yaml by YAML."""
    for name, expected in (("p.json", "JSON syntax: Extra data"), ("p.yaml", "YAML syntax: did not find expected")):
        path = tmp_path / name
        path.write_text('{"version": 1} trailing')
        with pytest.raises(PipelineError) as caught:
            load_pipeline(path, display=name)
        assert caught.value.lines()[0].startswith(f"{name}:1: {expected}")


def test_json_that_only_json_reads_gets_its_own_reason(tmp_path: Path) -> None:
    """A .json file with escapes YAML cannot read and NaN or a repeated key: the JSON reason, not a YAML one."""
    astral = '"\\ud83d\\ude00"'
    for content, expected in (
        (f'{{"version": 1, "vars": {{"a": NaN, "b": {astral}}}}}', "p.json: JSON: NaN is not a JSON value"),
        (f'{{"version": 1, "version": 1, "b": {astral}}}', "p.json: JSON: duplicate key 'version'; keep one"),
        (f'{{"version": 1{"0" * 5000}, "b": {astral}}}', "p.json: JSON: a number is too long to read"),
        (f"[{astral}]", "p.json:1: the top level must be a mapping"),
    ):
        path = tmp_path / "p.json"
        path.write_text(content)
        with pytest.raises(PipelineError) as caught:
            load_pipeline(path, display="p.json")
        assert caught.value.lines()[0].startswith(expected)


def test_a_document_on_one_line_is_not_composed_for_line_numbers() -> None:
    """Generated one-line JSON: every field is on line 1, found without composing the document."""
    find = line_finder('{"version": 1, "targets": {"a": {"tags": ["x"]}}}')
    assert find(("targets", "a", "tags", 0)) == 1 and find(("nowhere",)) == 1


def test_long_values_are_cut_short_in_messages() -> None:
    """quoted() keeps short text whole and says how long a long one is."""
    assert quoted("short") == "'short'"
    assert quoted("x" * 200) == "'" + "x" * 60 + "...' (200 characters)"
