"""`buildflow init`: a pipeline proposed for a tree of Dockerfiles — one target per Dockerfile, named after its
directory or file, with the tags that let buildflow's inference find the edges the Dockerfiles already imply."""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from buildflow import references
from buildflow.pipeline import dockerfile as dockerfiles

DOCKERFILE = "Dockerfile"
_SKIPPED_DIRECTORIES = frozenset({"node_modules", "__pycache__", "venv", "site-packages"})  # and hidden ones
_UNSAFE = re.compile(r"[^a-z0-9_.-]+")
_SEPARATORS = re.compile(r"[._-]{2,}")
NAME_LIMIT = 128


def is_dockerfile(name: str) -> bool:
    """Dockerfile, NAME.Dockerfile or Dockerfile.NAME (not Dockerfile.dockerignore, BuildKit's ignore file)."""
    if name == DOCKERFILE:
        return True
    if name.endswith(".dockerignore"):
        return False
    return (name.endswith(f".{DOCKERFILE}") and len(name) > 11) or (
        name.startswith(f"{DOCKERFILE}.") and len(name) > 11
    )


def find_dockerfiles(root: Path) -> list[PurePosixPath]:
    """Every Dockerfile under `root` (hidden directories, node_modules and virtualenvs left out), as paths relative
    to it, in a stable order."""
    found = []
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = sorted(
            name for name in subdirectories if not name.startswith(".") and name not in _SKIPPED_DIRECTORIES
        )
        relative = PurePosixPath(Path(directory).relative_to(root).as_posix())
        found += [relative / name for name in sorted(files) if is_dockerfile(name)]
    return found


def _variant(file_name: str) -> str | None:
    """NAME of NAME.Dockerfile or Dockerfile.NAME; None for a plain Dockerfile."""
    if file_name == DOCKERFILE:
        return None
    if file_name.startswith(f"{DOCKERFILE}."):
        return file_name.removeprefix(f"{DOCKERFILE}.")
    return file_name.removesuffix(f".{DOCKERFILE}")


def _candidates(path: PurePosixPath, root_name: str) -> list[str]:
    """Names for a Dockerfile, shortest first: its directory (or its variant: Dockerfile.gpu, gpu.Dockerfile),
    then with more of its path in front, as long as they clash with another Dockerfile's."""
    directories = [part for part in path.parent.parts if part != "."]
    variant = _variant(path.name)
    parts = (directories or [root_name]) if variant is None else [*(directories or [root_name]), variant]
    cleaned = [_UNSAFE.sub("-", part.lower()).strip("-_.") or "image" for part in parts]
    return [_shorten("-".join(cleaned[-count:])) for count in range(1, len(cleaned) + 1)]


def _shorten(name: str) -> str:
    """A target name within buildflow's limit, whose separators also make a valid image name (a.-b does not)."""
    name = _SEPARATORS.sub(lambda run: run[0] if set(run[0]) == {"-"} or run[0] == "__" else "-", name)
    return name[:NAME_LIMIT].rstrip("-_.")


def target_names(paths: Sequence[PurePosixPath], root_name: str) -> list[str]:
    """A unique target name per Dockerfile: the shortest candidate that no other Dockerfile's name clashes with,
    then a number."""
    candidates = [_candidates(path, root_name) for path in paths]
    level = [0] * len(paths)
    while True:
        names = [options[level[index]] for index, options in enumerate(candidates)]
        counts = Counter(names)
        clashing = [i for i, name in enumerate(names) if counts[name] > 1 and level[i] < len(candidates[i]) - 1]
        if not clashing:
            break
        for index in clashing:
            level[index] += 1
    return _numbered(names)


def _numbered(names: list[str]) -> list[str]:
    """Names made unique by a number where they still clash (app, app-2)."""
    taken: set[str] = set()
    unique = []
    for name in names:
        chosen, number = name, 2
        while chosen in taken:
            chosen, number = _shorten(f"{name[: NAME_LIMIT - 6]}-{number}"), number + 1
        taken.add(chosen)
        unique.append(chosen)
    return unique


@dataclass
class Found:
    """A Dockerfile proposed as a target, and what init learned from it."""

    path: PurePosixPath  # relative to the directory scanned
    name: str
    parsed: dockerfiles.Dockerfile
    tags: list[str] = field(default_factory=list)
    needs_from: list[str] = field(default_factory=list)  # the lines naming a parent init cannot work out


@dataclass
class Survey:
    """What init found in a directory: the targets, the Dockerfiles skipped, the edges that need a registry."""

    found: list[Found]
    skipped: list[str]
    needs_registry: list[str] = field(default_factory=list)


def survey(root: Path, shown: str, registry: str | None) -> Survey:
    """Read every Dockerfile under `root` (`shown` is how to name it in messages) and propose the targets."""
    paths = find_dockerfiles(root)
    parsed, skipped = [], []
    for path in paths:
        try:
            parsed.append((path, dockerfiles.read(root / path)))
        except dockerfiles.DockerfileError as error:
            where = f"{_shown(shown, path)}:{error.line}" if error.line else _shown(shown, path)
            skipped.append(f"{where}: {error}; skipped")
    names = target_names([path for path, _ in parsed], _root_name(root))
    found = [Found(path, name, dockerfile) for (path, dockerfile), name in zip(parsed, names, strict=True)]
    result = Survey(found, skipped)
    _propose_tags(result, shown, registry)
    for one in found:
        one.needs_from = list(_unresolved(one, shown))
    return result


def _root_name(root: Path) -> str:
    """The scanned directory's own name (its absolute one for '.')."""
    return root.resolve().name or "image"


def _shown(shown: str, path: PurePosixPath) -> str:
    """A Dockerfile's path as the user named the directory: docker/app/Dockerfile."""
    return os.path.normpath(os.path.join(shown, str(path)))


def _propose_tags(result: Survey, shown: str, registry: str | None) -> None:
    """Tag every target NAME:latest, and also with each reference another Dockerfile names it by (FROM
    team/base:1.0 for the target base), so that buildflow infers that edge; a target whose own Dockerfile names
    the same repository wraps the upstream image, and is not matched."""
    by_name = {one.name: one for one in result.found}
    for one in result.found:
        one.tags.append(f"{one.name}:latest")
    for one in result.found:
        for use, text in dockerfiles.image_uses(one.parsed, {}):
            owner, reference = _owner(text, by_name)
            if owner is None or reference is None or owner is one or _wraps(owner, reference):
                continue
            tag = _tag_for(reference, text, registry)
            if tag not in owner.tags:
                owner.tags.append(tag)
            if reference.domain and tag == text:
                where = f"{_shown(shown, one.path)}:{use.line}"
                result.needs_registry.append(
                    f"{owner.name} -> {one.name} ({where}: {use.instruction} {text}) needs the registry "
                    f"{_registry_of(reference)}: {owner.name} is tagged {text}, and is pushed there"
                )


def _owner(text: str, by_name: dict[str, Found]) -> tuple[Found | None, references.Reference | None]:
    """The target a reference names by its repository's last component (base in team/base:1.0)."""
    if text in by_name:
        return None, None  # the target's name itself: buildflow infers that edge as it is
    try:
        reference = references.parse(text)
    except ValueError:
        return None, None
    if reference.digest:
        return None, None
    return by_name.get(reference.path.rsplit("/", 1)[-1]), reference


def _wraps(owner: Found, reference: references.Reference) -> bool:
    """True when the owner's own Dockerfile names the same repository (python/ built FROM python:3.12)."""
    for _, text in dockerfiles.image_uses(owner.parsed, {}):
        try:
            if references.parse(text).repository == reference.repository:
                return True
        except ValueError:
            continue
    return False


def _tag_for(reference: references.Reference, text: str, registry: str | None) -> str:
    """The tag to give: relative to --registry when the reference is under it, else as the Dockerfile writes it."""
    if registry and reference.domain and text.startswith(registry.rstrip("/") + "/"):
        return text.removeprefix(registry.rstrip("/") + "/")
    return text


def _registry_of(reference: references.Reference) -> str:
    """The registry and repository prefix a reference is under: localhost:5000/team for .../team/base:1."""
    prefix = reference.path.rpartition("/")[0]
    return f"{reference.domain}/{prefix}" if prefix else reference.domain


def _unresolved(one: Found, shown: str) -> Iterator[str]:
    """The image uses whose name rests on an ARG without a default: a parent init cannot infer."""
    resolved = {use for use, _ in dockerfiles.image_uses(one.parsed, {})}
    for use in one.parsed.uses:
        if use in resolved or "$" not in use.text or dockerfiles.expand(use.text, one.parsed.global_args):
            continue
        yield f"{_shown(shown, one.path)}:{use.line}: {use.instruction} {use.text}"
