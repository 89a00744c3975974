"""Builders: the docker contexts and buildx builders a run can build on, and what each of them can do.

`available()` names them and `describe(name)` asks one of them what it is, through engine/docker.py: a docker
context is a builder of the docker driver whose engine is the context's; a buildx builder that is not a context
(docker-container, remote, kubernetes drivers) is reached through the current context. Nothing here starts,
creates or changes a builder: one that does not answer, or is inactive, is described as such.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, NamedTuple, TypeVar

from buildflow.engine.base import EngineError
from buildflow.engine.docker import Docker

DOCKER_DRIVER = "docker"
CONTAINERD_STORE, CLASSIC_STORE = "containerd", "classic"
CONTAINERD_SNAPSHOTTER = "io.containerd.snapshotter.v1"  # `docker info`'s driver-type with the containerd store
DESCRIBE_TIMEOUT = 20  # seconds any one docker command of a description may take
RUNNING = "running"

# Runs one docker command: (context, arguments) -> what it prints; "" is the current context. EngineError when
# the command fails. describe() and available() take one, so that tests can answer for docker.
Run = Callable[[str, Sequence[str]], str]
One = TypeVar("One")
Two = TypeVar("Two")


@dataclass(frozen=True)
class BuilderInfo:
    """One builder as it answers now: its driver, versions, image store and platforms, or why it does not answer."""

    name: str  # as the user names it: a docker context or a buildx builder ("" for the current one)
    context: str = ""  # the docker context whose engine it is (docker driver), "" for the current context
    builder: str = ""  # the buildx builder to build with (other drivers), "" for the context's own
    driver: str = DOCKER_DRIVER  # docker, docker-container, remote, kubernetes
    answers: bool = True
    error: str = ""  # why it does not answer
    engine_version: str = ""
    buildkit_version: str = ""
    image_store: str = CONTAINERD_STORE  # containerd or classic for the docker driver; "" for the others
    platforms: tuple[str, ...] = ()
    resolved: str = ""  # the builder's own name when `name` is "" (the current one): default, mybuilder

    @property
    def label(self) -> str:
        """The name to show: as the user named it, or the current builder's own name marked as current."""
        return self.name or f"{self.resolved or 'the current builder'} (current)"

    @property
    def local_images(self) -> bool:
        """Images it builds land in an engine's image store, where tests run and children build on them by name."""
        return self.driver == DOCKER_DRIVER

    @property
    def registry_cache(self) -> bool:
        """It can export build cache to a registry (the docker driver only with the containerd store)."""
        return self.driver != DOCKER_DRIVER or self.image_store == CONTAINERD_STORE

    @property
    def same_digest(self) -> bool:
        """The digest it builds is the one the registry holds after the push (not so with the classic store,
        whose push compresses the layers again)."""
        return self.driver != DOCKER_DRIVER or self.image_store == CONTAINERD_STORE

    @property
    def multi_platform(self) -> bool:
        """It builds images for several platforms in one build."""
        return self.driver != DOCKER_DRIVER or self.image_store == CONTAINERD_STORE

    @property
    def capabilities(self) -> tuple[str, ...]:
        """What it can do, in words, for `buildflow builders`."""
        found = {
            "registry cache": self.registry_cache,
            "push from BuildKit": True,
            "local image hand-off": self.local_images,
            "multi-platform": self.multi_platform,
        }
        return tuple(name for name, present in found.items() if present)


def docker_output(context: str, arguments: Sequence[str]) -> str:
    """What a docker command prints, sent to `context` ("" for the current one), ended after DESCRIBE_TIMEOUT s."""
    return Docker(context=context, timeout=DESCRIBE_TIMEOUT).output(arguments)


# ---- naming them ---------------------------------------------------------------------------------------------


def available(run: Run = docker_output) -> list[str]:
    """The names of the docker contexts and buildx builders here, each once: contexts first, in docker's order."""
    names: list[str] = []
    for listing in (context_names, builder_names):
        try:
            names += listing(run)
        except EngineError:
            continue  # no docker, or no buildx: the other list may still name some
    return list(dict.fromkeys(names))


def context_names(run: Run = docker_output) -> list[str]:
    """The docker contexts (`docker context ls --format '{{json .}}'`: one JSON object per line)."""
    return [str(entry["Name"]) for entry in _json_lines(run("", ["context", "ls", "--format", "{{json .}}"]))]


def builder_names(run: Run = docker_output) -> list[str]:
    """The buildx builders, contexts included: `docker buildx ls --format json` (buildx 0.13 prints each builder
    twice), or its table where buildx is older and has no --format."""
    try:
        listed = run("", ["buildx", "ls", "--format", "json"])
    except EngineError as error:
        if not _UNKNOWN_FLAG.search(str(error)):
            raise
        return _table_names(run("", ["buildx", "ls"]))
    return list(dict.fromkeys(str(entry["Name"]) for entry in _json_lines(listed)))


_UNKNOWN_FLAG = re.compile(r"unknown flag|unknown shorthand flag", re.IGNORECASE)


def _json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON objects of a listing that prints one per line, each with a Name (other lines are skipped)."""
    found = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("Name"):
            found.append(entry)
    return found


def _table_names(text: str) -> list[str]:
    """The builders of `docker buildx ls`'s table: the lines that start in the first column, up to the blank line
    before the errors; nodes are indented. The current builder is marked with '*'."""
    names = []
    for line in text.splitlines()[1:]:
        if not line.strip():
            break
        if not line[0].isspace():
            names.append(line.split()[0].rstrip("*"))
    return names


# ---- describing one ------------------------------------------------------------------------------------------


class Node(NamedTuple):
    """One node of a buildx builder, as `docker buildx inspect` shows it."""

    name: str
    status: str = ""
    error: str = ""
    buildkit_version: str = ""
    platforms: tuple[str, ...] = ()


class Inspection(NamedTuple):
    """What `docker buildx inspect NAME` says of a builder: its name, driver, error and nodes."""

    name: str
    driver: str
    error: str
    nodes: tuple[Node, ...]

    @property
    def problem(self) -> str:
        """Why the builder cannot build now, in one line ('' when every node is running)."""
        if self.error:
            return self.error
        if not self.nodes:
            return "the builder has no nodes"
        for node in self.nodes:
            if node.error:
                return node.error if len(self.nodes) == 1 else f"node {node.name}: {node.error}"
            if node.status != RUNNING:
                return f"{node.status or 'no status'}; buildflow starts no builder"
        return ""

    @property
    def platforms(self) -> tuple[str, ...]:
        """The platforms of every node, each once."""
        return tuple(dict.fromkeys(platform for node in self.nodes for platform in node.platforms))

    @property
    def buildkit_version(self) -> str:
        """The BuildKit version of the first node that reports one."""
        return next((node.buildkit_version for node in self.nodes if node.buildkit_version), "")


def parse_inspection(text: str) -> Inspection:
    """`docker buildx inspect`'s text: 'Key: value' lines for the builder, then after 'Nodes:' one block of them
    per node, blank lines between; indented lines (labels, GC policies) are skipped."""
    head, _, rest = text.partition("\nNodes:")
    builder = _fields(head)
    nodes = tuple(_node(_fields(block)) for block in re.split(r"\n\s*\n", rest) if block.strip())
    return Inspection(builder.get("Name", ""), builder.get("Driver", ""), builder.get("Error", ""), nodes)


def _fields(block: str) -> dict[str, str]:
    """The 'Key: value' lines of a block that start in the first column (the first of each key)."""
    found: dict[str, str] = {}
    for line in block.splitlines():
        key, colon, value = line.partition(":")
        if colon and line[:1].strip():
            found.setdefault(key.strip(), value.strip())
    return found


def _node(fields: dict[str, str]) -> Node:
    """A node from its fields ('BuildKit version' since buildx 0.13, 'Buildkit' before)."""
    platforms = tuple(p.strip().rstrip("*") for p in fields.get("Platforms", "").split(",") if p.strip())
    version = fields.get("BuildKit version") or fields.get("Buildkit", "")
    return Node(fields.get("Name", ""), fields.get("Status", ""), fields.get("Error", ""), version, platforms)


def _both(first: Callable[[], One], second: Callable[[], Two]) -> tuple[One, Two]:
    """Two docker commands at once (each is a process start): their results, or the first one's error."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        later = pool.submit(second)
        one = first()
        return one, later.result()


def describe(name: str = "", run: Run = docker_output) -> BuilderInfo:
    """What the context or builder `name` ("" for the current one) is and can do now; one that does not answer
    (or does not exist) is described with answers=False and why, never raised."""
    try:
        contexts, inspected = _both(
            lambda: context_names(run), lambda: run("", ["buildx", "inspect", *([name] if name else [])])
        )
        inspection = parse_inspection(inspected)
    except EngineError as error:
        return _unknown(name, _one_line(str(error)), run)
    if (inspection.name or name) in contexts or inspection.driver == DOCKER_DRIVER:
        return _context(name, inspection, run)
    return BuilderInfo(
        name,
        builder=name,
        driver=inspection.driver,
        answers=not inspection.problem,
        error=inspection.problem,
        buildkit_version=inspection.buildkit_version,
        image_store="",
        platforms=inspection.platforms,
        resolved=inspection.name,
    )


def current(run: Run = docker_output) -> BuilderInfo:
    """The current builder as a run needs to know it: its driver, and for the docker driver its engine's image
    store; two docker commands at once, no versions (describe() says more, and why one does not answer)."""
    try:
        inspected, status = _both(
            lambda: run("", ["buildx", "inspect"]), lambda: run("", ["info", "--format", "{{json .DriverStatus}}"])
        )
    except EngineError:
        return describe("", run)
    inspection = parse_inspection(inspected)
    if inspection.problem:
        return describe("", run)
    docker = inspection.driver == DOCKER_DRIVER
    return BuilderInfo(
        "",
        driver=inspection.driver,
        buildkit_version=inspection.buildkit_version,
        image_store=image_store(status) if docker else "",
        platforms=inspection.platforms,
        resolved=inspection.name,
    )


def _context(name: str, inspection: Inspection, run: Run) -> BuilderInfo:
    """A docker context: its engine's version and image store, and BuildKit's, every command sent to it."""
    described = BuilderInfo(name, context=name, resolved=inspection.name, image_store="")
    if inspection.problem:
        return _silent(described, inspection.problem)
    try:
        version, status = _both(
            lambda: run(name, ["version", "--format", "{{.Server.Version}}"]),
            lambda: run(name, ["info", "--format", "{{json .DriverStatus}}"]),
        )
    except EngineError as error:
        return _silent(described, _one_line(str(error)))
    return BuilderInfo(
        name,
        context=name,
        engine_version=version,
        buildkit_version=inspection.buildkit_version,
        image_store=image_store(status),
        platforms=inspection.platforms,
        resolved=inspection.name,
    )


def _unknown(name: str, reason: str, run: Run) -> BuilderInfo:
    """A name buildx could not inspect: a context whose buildx fails, or no context or builder at all."""
    try:
        is_context = name in context_names(run)
    except EngineError:
        is_context = False
    if is_context or not name:
        return _silent(BuilderInfo(name, context=name, image_store=""), reason)
    if _NO_BUILDER.search(reason):
        reason = f"no docker context or buildx builder is named '{name}'"
    return BuilderInfo(name, builder=name, driver="", answers=False, error=reason, image_store="")


_NO_BUILDER = re.compile(r"no builder .* found", re.IGNORECASE)


def _silent(described: BuilderInfo, reason: str) -> BuilderInfo:
    """The builder as described so far, marked as not answering, and why."""
    return replace(described, answers=False, error=reason)


def image_store(driver_status: str) -> str:
    """containerd when `docker info`'s DriverStatus (JSON pairs) names the containerd snapshotter, else classic."""
    try:
        pairs = json.loads(driver_status or "null") or []
    except ValueError:
        return CLASSIC_STORE
    values = {str(value) for pair in pairs if isinstance(pair, list) for value in pair}
    return CONTAINERD_STORE if CONTAINERD_SNAPSHOTTER in values else CLASSIC_STORE


def _one_line(text: str) -> str:
    """The first line of a message that has any."""
    return next((line.strip() for line in text.splitlines() if line.strip()), text.strip())
