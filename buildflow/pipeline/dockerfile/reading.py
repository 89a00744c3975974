"""Reading a Dockerfile as BuildKit's parser and instruction parser read it: parser directives, global ARGs,
stages, and every place it names another stage or an image."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from buildflow.pipeline.dockerfile.expansion import ExpansionError, expand_word

INSTRUCTIONS = frozenset(
    "ADD ARG CMD COPY ENTRYPOINT ENV EXPOSE FROM HEALTHCHECK LABEL MAINTAINER ONBUILD RUN SHELL "  # noqa: SIM905
    "STOPSIGNAL USER VOLUME WORKDIR".split()
)
# The ARGs BuildKit defines for FROM lines without a declaration (dockerfile2llb/platform.go defaultArgs).
PLATFORM_ARGS = (
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDOSVERSION",
    "BUILDARCH",
    "BUILDVARIANT",
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETOSVERSION",
    "TARGETARCH",
    "TARGETVARIANT",
    "TARGETSTAGE",
)
SYNTAX_ARG = "BUILDKIT_SYNTAX"  # a build arg that replaces the `# syntax=` directive
SCRATCH = "scratch"
BUILTIN_FRONTEND = "dockerfile.v0"
_DIRECTIVE = re.compile(r"^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_DIRECTIVES = frozenset({"syntax", "escape", "check"})
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9-_.]*$")
STAGE_INDEX = re.compile(r"[+-]?[0-9]+")


class DockerfileError(ValueError):
    """A Dockerfile that BuildKit would refuse."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True, slots=True)
class ImageUse:
    """One place a Dockerfile names an image or a stage: FROM, COPY --from, RUN --mount from=, the source of an
    ONBUILD trigger, or the `# syntax=` frontend."""

    line: int
    instruction: str
    text: str
    stages_before: frozenset[str]
    stage: int = -1  # the index of the stage it is in (-1: the syntax directive)


@dataclass(frozen=True, slots=True)
class Stage:
    """One FROM and what its instructions take from other stages or images."""

    index: int
    name: str  # lowercased, as BuildKit keeps it; '' when unnamed
    base: ImageUse  # the FROM line, its image as written
    platform: str  # FROM --platform= as written ('' without one)
    sources: tuple[ImageUse, ...]  # COPY --from= and RUN --mount from=, literal (BuildKit expands no ARG there)
    triggers: tuple[ImageUse, ...]  # the sources of its ONBUILD instructions: builds FROM this stage use them


@dataclass(frozen=True, slots=True, eq=False)
class Dockerfile:
    """What edge inference needs from a Dockerfile."""

    global_args: Mapping[str, str | None]  # ARGs before the first FROM: name -> default as written (last one)
    uses: tuple[ImageUse, ...]  # every FROM, COPY --from, RUN --mount from= and ONBUILD source, in file order
    stages: frozenset[str]  # stage names, lowercased
    resolved: dict[Any, Resolution] = field(default_factory=dict, repr=False)
    declarations: tuple[tuple[str, str | None], ...] = ()  # every global ARG in order: (name, default as written)
    stage_list: tuple[Stage, ...] = ()
    escape: str = "\\"
    syntax: ImageUse | None = None  # the `# syntax=` directive's frontend image
    stage_args: frozenset[str] = frozenset()  # ARGs declared inside stages, which FROM lines do not see
    relevant: frozenset[str] = frozenset()  # the build args that can change what it names
    has_triggers: bool = False  # some stage has ONBUILD instructions that COPY --from or mount an image

    order: Mapping[ImageUse, int] = field(default_factory=dict, repr=False)  # the position of each use
    stage_index: Mapping[str, int] = field(default_factory=dict, repr=False)  # by name; the last of a name wins

    def only_uses(self, variable: str) -> bool:
        """True when every image this Dockerfile names is exactly $VARIABLE or ${VARIABLE}, a global ARG."""
        return (
            bool(self.uses)
            and self.syntax is None
            and variable in self.global_args
            and all(use.text in (f"${variable}", f"${{{variable}}}") for use in self.uses)
        )

    def has_stage(self, name: str) -> bool:
        """True when a stage of this name exists (BuildKit compares target names lowercased)."""
        return name.lower() in self.stages


class Unresolved(NamedTuple):
    """A FROM line whose image cannot be known offline: an ARG without a value, or a blank name."""

    use: ImageUse
    reason: str

    def message(self, target: str) -> str:
        """What is wrong and what follows from it."""
        if self.use.instruction == "FROM --platform":
            return (
                f"FROM --platform={self.use.text}: {self.reason} (target {target}); the stage's platform is unknown: "
                "give the ARG a default or set it in the target's args"
            )
        return (
            f"{self.use.instruction} {self.use.text}: {self.reason} (target {target}); no parent or base is taken "
            "from this line: give the ARG a default or set it in the target's args"
        )


class Resolution(NamedTuple):
    """What a build of one stage pulls in: images (with their names after expansion), the syntax frontend, and
    the FROM lines that cannot be resolved."""

    uses: list[tuple[ImageUse, str]]
    frontend: tuple[ImageUse, str] | None
    unresolved: list[Unresolved]


class _Anything(Mapping[str, str]):
    """Every variable set: checks a word's syntax, whatever the values."""

    def __getitem__(self, key: str) -> str:
        return "x"

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def get(self, key: str, default: Any = None) -> str:
        return "x"


def read(path: Path) -> Dockerfile:
    """Parse a Dockerfile with BuildKit's own parser; raise DockerfileError where BuildKit would."""
    import dockerfile as parser

    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as error:
        raise DockerfileError(f"cannot read: {error.strerror or error}") from None
    try:
        commands = parser.parse_string(text)
    except parser.GoParseError as error:
        raise DockerfileError(f"dockerfile parse error: {error}") from None
    return _summarise(commands, _directives(text), _syntax_directive(text))


def _directives(text: str) -> dict[str, tuple[str, int]]:
    """The parser directives at the top of the file (`# escape=`, `# syntax=`), as BuildKit's parser reads them."""
    found: dict[str, tuple[str, int]] = {}
    for number, line in enumerate(text.removeprefix("\ufeff").split("\n"), 1):
        directive = _directive(line.rstrip("\r\n").lstrip())
        if directive is None:
            break
        key, value = directive
        if key in found:
            raise DockerfileError(f"only one {key} parser directive can be used", number)
        found[key] = (value, number)
    return found


def _directive(line: str) -> tuple[str, str] | None:
    """(name, value) of a directive line, None for any other line (which ends the directives)."""
    if not line.startswith("#"):
        return None
    match = _DIRECTIVE.match(line[1:].lstrip())
    if match is None or match[1].lower() not in _DIRECTIVES:
        return None
    return match[1].lower(), match[2]


def _syntax_directive(text: str) -> tuple[str, int] | None:
    """The frontend image of `# syntax=` and its line, found as BuildKit's DetectSyntax finds it (after a
    shebang line, if any)."""
    lines = text.removeprefix("\ufeff").split("\n")
    skipped = 1 if lines[0].startswith("#!") else 0
    seen: set[str] = set()
    for number, line in enumerate(lines[skipped:], 1 + skipped):
        directive = _directive(line.rstrip("\r\n"))
        if directive is None or directive[0] in seen:
            return None
        seen.add(directive[0])
        if directive[0] == "syntax":
            return directive[1].split(" ", 1)[0], number
    return None


class _Builder:
    """Collects stages, ARGs and uses while the instructions are walked."""

    def __init__(self, escape: str) -> None:
        self.escape = escape
        self.declarations: list[tuple[str, str | None]] = []
        self.stage_args: set[str] = set()
        self.stages: list[dict[str, Any]] = []
        self.uses: list[ImageUse] = []

    def names_before(self) -> frozenset[str]:
        """The names of the stages so far."""
        return frozenset(stage["name"] for stage in self.stages if stage["name"])

    def add_use(self, key: str, line: int, instruction: str, text: str) -> None:
        """A use in the current stage: its sources (key 'sources') or its ONBUILD triggers (key 'triggers')."""
        use = ImageUse(line, instruction, text, self.names_before(), len(self.stages) - 1)
        self.stages[-1][key].append(use)
        self.uses.append(use)


def _summarise(
    commands: tuple[Any, ...], directives: Mapping[str, tuple[str, int]], syntax: tuple[str, int] | None
) -> Dockerfile:
    """Collect global ARGs, stages and image uses from parsed instructions."""
    escape = directives.get("escape", ("\\", 0))[0]
    if not any(command.cmd.upper() == "FROM" for command in commands):
        _check_instructions(commands)
        raise DockerfileError("no FROM instruction")
    builder = _Builder(escape)
    for command in commands:
        _walk(builder, command)
    return _frozen(builder, syntax)


def _check_instructions(commands: tuple[Any, ...]) -> None:
    """Unknown instructions are reported before anything else."""
    for command in commands:
        if command.cmd.upper() not in INSTRUCTIONS:
            raise DockerfileError(f"unknown instruction: {command.cmd}", command.start_line)


def _walk(builder: _Builder, command: Any) -> None:
    """One instruction."""
    name, line = command.cmd.upper(), command.start_line
    if name not in INSTRUCTIONS:
        raise DockerfileError(f"unknown instruction: {command.cmd}", line)
    if name == "FROM":
        _add_stage(builder, command)
    elif not builder.stages:
        if name != "ARG":
            raise DockerfileError("no build stage in current context", line)
        builder.declarations.extend(_arg_declarations(command.value, line, builder.escape))
    elif name == "ARG":
        builder.stage_args.update(name for name, _ in _arg_declarations(command.value, line, builder.escape))
    elif name in ("COPY", "RUN"):
        for instruction, text in _flag_sources(name, command.flags, line):
            builder.add_use("sources", line, instruction, text)
    elif name == "ONBUILD":
        for instruction, text in _trigger_sources(command, line):
            builder.add_use("triggers", line, instruction, text)


def _add_stage(builder: _Builder, command: Any) -> None:
    """A FROM line starts a stage."""
    line, values = command.start_line, command.value
    if not values or (len(values) not in (1, 3)) or (len(values) == 3 and values[1].upper() != "AS"):
        raise DockerfileError("FROM takes an image and an optional 'AS name'", line)
    name = values[2].lower() if len(values) == 3 else ""
    if name and not _STAGE_NAME.match(name):
        raise DockerfileError(
            f"invalid name for build stage: '{values[2]}', name can't start with a number or contain symbols", line
        )
    _check_word(values[0], line, builder.escape)
    platform = next((flag.removeprefix("--platform=") for flag in command.flags if flag.startswith("--platform=")), "")
    _check_word(platform, line, builder.escape)
    base = ImageUse(line, "FROM", values[0], builder.names_before(), len(builder.stages))
    builder.stages.append({"name": name, "base": base, "platform": platform, "sources": [], "triggers": []})
    builder.uses.append(base)


def _check_word(word: str, line: int, escape: str) -> None:
    """A word that BuildKit cannot expand whatever the ARGs (bad substitution, unmatched quote) is an error."""
    try:
        expand_word(word, _Anything(), escape=escape)
    except ExpansionError as error:
        raise DockerfileError(str(error), line) from None


def _arg_declarations(values: tuple[str, ...], line: int, escape: str) -> list[tuple[str, str | None]]:
    """ARG NAME[=default] ... as (name, default as written)."""
    result: list[tuple[str, str | None]] = []
    for value in values:
        name, equals, default = value.partition("=")
        if not name:
            raise DockerfileError("ARG names can not be blank", line)
        if equals:
            _check_word(default, line, escape)
        result.append((name, default if equals else None))
    return result


def _flag_sources(name: str, flags: Sequence[str], line: int) -> list[tuple[str, str]]:
    """(instruction, name) of COPY --from=X and of every RUN --mount=...,from=X."""
    found = []
    for flag in flags:
        if name == "COPY" and flag.startswith("--from="):
            found.append(("COPY --from", _copy_source(flag.removeprefix("--from="), line)))
        elif name == "RUN" and flag.startswith("--mount="):
            source = _mount_source(flag.removeprefix("--mount="), line)
            if source:
                found.append(("RUN --mount", source))
    return found


def _copy_source(text: str, line: int) -> str:
    """COPY --from's stage or image: BuildKit refuses any expansion there."""
    try:
        literal = expand_word(text, {}).text == text
    except ExpansionError:
        literal = False
    if not literal:
        raise DockerfileError(
            "variable expansion is not supported for --from, define a new stage with FROM using ARG from global "
            "scope as a workaround",
            line,
        )
    return text


def _mount_source(options: str, line: int) -> str:
    """The from= of a RUN --mount (comma-separated, quotes allowed, keys in any case); '' without one."""
    try:
        fields = next(csv.reader([options]))
    except (csv.Error, StopIteration):
        return ""
    source = ""
    for option in fields:
        key, _, value = option.partition("=")
        if key.lower() == "from":
            if "$" in value[:-1]:
                raise DockerfileError("'from' doesn't support variable expansion, define alias stage instead", line)
            source = value
    return source


def _trigger_sources(command: Any, line: int) -> list[tuple[str, str]]:
    """The sources of an ONBUILD trigger (COPY --from, RUN --mount from=), which builds FROM this stage use."""
    import dockerfile as parser

    trigger = (command.sub_cmd or "").upper()
    if trigger == "ONBUILD":
        raise DockerfileError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed", line)
    if trigger in ("MAINTAINER", "FROM"):
        raise DockerfileError(f"{trigger} isn't allowed as an ONBUILD trigger", line)
    if trigger not in ("COPY", "RUN"):
        return []
    expression = re.sub(r"(?i)^\s*ONBUILD\s*", "", command.original, count=1)
    try:
        parsed = parser.parse_string(expression)
    except parser.GoParseError as error:
        raise DockerfileError(f"dockerfile parse error in ONBUILD: {error}", line) from None
    sources: list[tuple[str, str]] = []
    for inner in parsed[:1]:
        for flag in inner.flags:
            if trigger == "COPY" and flag.startswith("--from="):
                sources.append(("ONBUILD COPY --from", flag.removeprefix("--from=")))
            elif trigger == "RUN" and flag.startswith("--mount="):
                source = _mount_source(flag.removeprefix("--mount="), line)
                if source:
                    sources.append(("ONBUILD RUN --mount", source))
    return sources


def _frozen(builder: _Builder, syntax: tuple[str, int] | None) -> Dockerfile:
    """The Dockerfile once every instruction is read; stage indexes in --from checked."""
    stages = tuple(
        Stage(index, s["name"], s["base"], s["platform"], tuple(s["sources"]), tuple(s["triggers"]))
        for index, s in enumerate(builder.stages)
    )
    for stage in stages:
        for use in stage.sources:
            if STAGE_INDEX.fullmatch(use.text) and not 0 <= int(use.text) < len(stages):
                raise DockerfileError(f"invalid stage index {int(use.text)}", use.line)
    global_args = dict(builder.declarations)
    syntax_use = ImageUse(syntax[1], "# syntax", syntax[0], frozenset()) if syntax else None
    relevant = frozenset((*global_args, *PLATFORM_ARGS, SYNTAX_ARG))
    return Dockerfile(
        global_args=global_args,
        uses=tuple(builder.uses),
        stages=frozenset(stage.name for stage in stages if stage.name),
        declarations=tuple(builder.declarations),
        stage_list=stages,
        escape=builder.escape,
        syntax=syntax_use,
        stage_args=frozenset(builder.stage_args - global_args.keys()),
        relevant=relevant,
        order={use: index for index, use in enumerate(builder.uses)},
        stage_index={stage.name: stage.index for stage in stages if stage.name},
        has_triggers=any(stage.triggers for stage in stages),
    )
