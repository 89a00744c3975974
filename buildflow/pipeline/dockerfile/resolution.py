"""What a build of one stage of a Dockerfile pulls in, as BuildKit decides it: the global ARGs (platform ARGs,
build args over defaults, defaults that use earlier ARGs), each FROM expanded, the stages the target stage
reaches, and the syntax frontend."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import NamedTuple

from buildflow.pipeline.dockerfile.expansion import ExpansionError, expand_word
from buildflow.pipeline.dockerfile.reading import (
    BUILTIN_FRONTEND,
    SCRATCH,
    STAGE_INDEX,
    SYNTAX_ARG,
    Dockerfile,
    ImageUse,
    Resolution,
    Unresolved,
)

_ARCHITECTURES = {  # Python's platform.machine() -> (GOARCH, variant), as BuildKit names the build platform
    "x86_64": ("amd64", ""),
    "amd64": ("amd64", ""),
    "aarch64": ("arm64", ""),
    "arm64": ("arm64", ""),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i386": ("386", ""),
    "i686": ("386", ""),
}


def expand(text: str, variables: Mapping[str, str | None]) -> str | None:
    """Expand $VAR, ${VAR}, ${VAR:-x}, ${VAR:+x} (and the other forms, quotes and escapes) as BuildKit does;
    None when a variable without a value reaches the result, or BuildKit would refuse the word."""
    try:
        expansion = expand_word(text, {name: value for name, value in variables.items() if value is not None})
    except ExpansionError:
        return None
    return None if expansion.missing else expansion.text


@functools.cache
def host_platform() -> str:
    """The platform of this machine as BuildKit names a build platform (linux/amd64)."""
    machine = os.uname().machine.lower()
    architecture, variant = _ARCHITECTURES.get(machine, (machine, ""))
    return f"linux/{architecture}" + (f"/{variant}" if variant else "")


@functools.cache
def platform_args(build: str, target: str, stage: str) -> Mapping[str, str]:
    """The ARGs BuildKit defines for every FROM line: BUILDPLATFORM, TARGETARCH, ..., TARGETSTAGE."""
    build_os, build_arch, build_variant = _platform_parts(build)
    target_os, target_arch, target_variant = _platform_parts(target)
    return {
        "BUILDPLATFORM": build,
        "BUILDOS": build_os,
        "BUILDOSVERSION": "",
        "BUILDARCH": build_arch,
        "BUILDVARIANT": build_variant,
        "TARGETPLATFORM": target,
        "TARGETOS": target_os,
        "TARGETOSVERSION": "",
        "TARGETARCH": target_arch,
        "TARGETVARIANT": target_variant,
        "TARGETSTAGE": stage or "default",
    }


def _platform_parts(platform: str) -> tuple[str, str, str]:
    """os, architecture and variant of linux/arm/v7."""
    parts = [*platform.split("/"), "", ""]
    return parts[0], parts[1], parts[2]


def image_uses(
    dockerfile: Dockerfile,
    build_args: Mapping[str, str],
    *,
    stage: str = "",
    platforms: Sequence[str] = (),
    contexts: frozenset[str] = frozenset(),
) -> list[tuple[ImageUse, str]]:
    """Each image a build of `stage` (the last stage by default) pulls in, with its name after ARG expansion:
    FROM, COPY --from and RUN --mount from= in the stages it needs. Stage references, scratch, unreachable stages
    and FROM lines that cannot be resolved are left out; so is the syntax frontend (see resolve)."""
    return resolve(dockerfile, build_args, stage=stage, platforms=platforms, contexts=contexts).uses


def resolve(
    dockerfile: Dockerfile,
    build_args: Mapping[str, str],
    *,
    stage: str = "",
    platforms: Sequence[str] = (),
    contexts: frozenset[str] = frozenset(),
) -> Resolution:
    """What a build of `stage` for each of `platforms` (the build platform when none) pulls in, with build args
    given and `contexts` the named build contexts that replace stages of their name; cached per Dockerfile."""
    relevant = dockerfile.relevant
    key = (
        tuple([(name, value) for name, value in build_args.items() if name in relevant]),
        stage.lower(),
        tuple(platforms),
        contexts & dockerfile.stages if contexts else contexts,
    )
    found = dockerfile.resolved.get(key)
    if found is None:
        found = dockerfile.resolved[key] = _resolution(dockerfile, build_args, key[1], key[2] or ("",), key[3])
    return found


def _resolution(
    dockerfile: Dockerfile,
    build_args: Mapping[str, str],
    stage: str,
    platforms: Sequence[str],
    contexts: frozenset[str],
) -> Resolution:
    """resolve() for each platform, merged."""
    uses: dict[tuple[ImageUse, str], None] = {}
    unresolved: dict[tuple[int, str], Unresolved] = {}
    for platform in platforms:
        one = _Resolver(dockerfile, build_args, stage, platform, contexts)
        uses.update(dict.fromkeys(one.uses()))
        for item in one.unresolved:
            unresolved.setdefault((item.use.line, item.use.instruction), item)
    return Resolution(list(uses), _frontend(dockerfile, build_args), list(unresolved.values()))


def _frontend(dockerfile: Dockerfile, build_args: Mapping[str, str]) -> tuple[ImageUse, str] | None:
    """The frontend image: the BUILDKIT_SYNTAX build arg, or the `# syntax=` directive; None for the built-in."""
    if SYNTAX_ARG in build_args:
        name = build_args[SYNTAX_ARG].strip().split(" ", 1)[0]
        use = ImageUse(0, f"build arg {SYNTAX_ARG}", name, frozenset())
    elif dockerfile.syntax is not None:
        use, name = dockerfile.syntax, dockerfile.syntax.text
    else:
        return None
    return None if name in ("", BUILTIN_FRONTEND) else (use, name)


class _Base(NamedTuple):
    """What a stage is built on: another stage (index), an image (name), or nothing known."""

    stage: int | None
    image: str | None


class _Resolver:
    """One Dockerfile, build args, target stage and platform: the global ARGs, each stage's base, what is reached."""

    def __init__(
        self,
        dockerfile: Dockerfile,
        build_args: Mapping[str, str],
        stage: str,
        platform: str,
        contexts: frozenset[str],
    ) -> None:
        self.dockerfile = dockerfile
        self.build_args = build_args
        self.contexts = contexts
        self.unresolved: list[Unresolved] = []
        stages = dockerfile.stage_list
        self.by_name = dockerfile.stage_index
        self.target = self.by_name.get(stage, len(stages) - 1) if stage else len(stages) - 1
        build = host_platform()
        self.env, self.tainted = self._global_args(platform_args(build, platform or build, stages[self.target].name))
        self.bases = self._bases()

    def _global_args(self, defaults: Mapping[str, str]) -> tuple[dict[str, str], dict[str, frozenset[str]]]:
        """The ARGs every FROM line sees: BuildKit's platform ARGs, then each global ARG in order (a build arg
        wins over its default; a default may use the ARGs before it). Values made from ARGs without a value are
        tainted with their names."""
        env = {name: self.build_args.get(name, value) for name, value in defaults.items()}
        tainted: dict[str, frozenset[str]] = {}
        for name, default in self.dockerfile.declarations:
            if name in self.build_args:
                env[name] = self.build_args[name]
                tainted.pop(name, None)
            elif default is not None:
                try:
                    expansion = expand_word(default, env, escape=self.dockerfile.escape, tainted=tainted)
                except ExpansionError:  # ${X:?message} without X: as if it had no value
                    env.pop(name, None)
                    tainted[name] = frozenset({name})
                    continue
                env[name] = expansion.text
                tainted[name] = expansion.missing
        return env, tainted

    def _bases(self) -> list[_Base]:
        """Each stage's base, in order: a FROM names an earlier stage or an image (BuildKit expands every FROM
        line, even of the stages a build does not need)."""
        bases: list[_Base] = []
        earlier: dict[str, int] = {}
        for stage in self.dockerfile.stage_list:
            name = self._expanded(stage.base)
            if stage.platform:
                self._expanded(ImageUse(stage.base.line, "FROM --platform", stage.platform, frozenset(), stage.index))
            if name is None:
                bases.append(_Base(None, None))
            elif name in earlier:
                bases.append(_Base(earlier[name], None))
            else:
                bases.append(_Base(None, None if name == SCRATCH else name))
            if stage.name:
                earlier[stage.name] = stage.index
        return bases

    def _expanded(self, use: ImageUse) -> str | None:
        """A FROM word expanded; None (and the reason kept) when it cannot be known or is blank."""
        try:
            expansion = expand_word(use.text, self.env, escape=self.dockerfile.escape, tainted=self.tainted)
        except ExpansionError as error:
            self.unresolved.append(Unresolved(use, str(error)))
            return None
        if expansion.missing:
            self.unresolved.append(Unresolved(use, "; ".join(self._why_missing(sorted(expansion.missing)))))
            return None
        if not expansion.text:
            self.unresolved.append(Unresolved(use, "expands to nothing, and BuildKit refuses a blank name"))
            return None
        return expansion.text

    def _why_missing(self, names: list[str]) -> Iterator[str]:
        """Why each variable has no value."""
        for name in names:
            if name in self.dockerfile.global_args:
                yield f"ARG {name} has no default and no build arg sets it"
            elif name in self.dockerfile.stage_args:
                yield f"ARG {name} is declared after the first FROM, where FROM lines do not see it"
            else:
                yield f"{name} is not declared with ARG before the first FROM"

    def _source(self, use: ImageUse) -> tuple[int | None, str | None]:
        """A COPY --from / RUN --mount from= / ONBUILD source: a stage (by index or name, any stage of the file)
        or an image."""
        if STAGE_INDEX.fullmatch(use.text):
            return int(use.text), None
        index = self.by_name.get(use.text.lower())
        return (index, None) if index is not None else (None, use.text)

    def _needs(self, index: int) -> Iterator[tuple[int | None, ImageUse, str | None]]:
        """What stage `index` needs: (stage, use, image) for its base, its sources and its base stage's
        ONBUILD triggers. A stage that a named build context replaces needs nothing."""
        stage = self.dockerfile.stage_list[index]
        if stage.name and stage.name in self.contexts:
            return
        base = self.bases[index]
        yield base.stage, stage.base, base.image
        inherited: tuple[ImageUse, ...] = ()
        if base.stage is not None and self.dockerfile.stage_list[base.stage].name not in self.contexts:
            inherited = self.dockerfile.stage_list[base.stage].triggers
        for use in (*stage.sources, *inherited):
            source, image = self._source(use)
            yield source, use, image

    def uses(self) -> list[tuple[ImageUse, str]]:
        """The images the target stage needs, through every stage it reaches, in file order."""
        reached: set[int] = set()
        pending = [self.target]
        found: list[tuple[ImageUse, str]] = []
        while pending:
            index = pending.pop()
            if index in reached:
                continue
            reached.add(index)
            for stage, use, image in self._needs(index):
                if stage is not None:
                    pending.append(stage)
                elif image is not None:
                    found.append((use, image))
        order = self.dockerfile.order
        return sorted(found, key=lambda item: order[item[0]])


def triggers(dockerfile: Dockerfile, stage: str = "") -> tuple[ImageUse, ...]:
    """The sources of the ONBUILD instructions of `stage` (the last by default): an image built from it runs
    them in the build of every image FROM it (and only there: they do not pass on to grandchildren)."""
    stages = dockerfile.stage_list
    if not dockerfile.has_triggers:
        return ()
    index = dockerfile.stage_index.get(stage.lower(), len(stages) - 1) if stage else len(stages) - 1
    return stages[index].triggers
