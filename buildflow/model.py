"""The resolved pipeline: frozen targets with every default, variable, matrix value and edge applied."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, NamedTuple

BASE_IMAGE_ARG = "BASE_IMAGE"  # build arg buildflow sets to the first `from:` parent's pinned reference


class EdgeKind(StrEnum):
    """Why a target waits for another."""

    FROM = "from"
    DEPENDS_ON = "depends_on"
    INFERRED = "inferred"


class Edge(NamedTuple):
    """A parent of a target, how buildflow learned of it, and the name its Dockerfile uses for it, if any."""

    parent: str
    kind: EdgeKind
    reference: str = ""
    line: int = 0
    instruction: str = ""  # the Dockerfile instruction that names the parent (FROM, COPY, RUN), for inferred edges

    @property
    def lineage(self) -> bool:
        """True when the child is built on this parent's image (declared from:, or an inferred FROM)."""
        return self.kind == EdgeKind.FROM or (self.kind == EdgeKind.INFERRED and self.instruction.upper() == "FROM")

    @property
    def detail(self) -> str:
        """Where an inferred edge comes from: 'FROM cuda:9.0 (Dockerfile line 3)'."""
        return f"{self.reference} (Dockerfile line {self.line})" if self.kind == EdgeKind.INFERRED else ""


@dataclass(frozen=True, slots=True)
class Secret:
    """A BuildKit secret: its id and where its value comes from (never the value)."""

    id: str
    source: str
    location: str


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """Where build cache is read from and written to."""

    type: str
    ref: str = ""
    mode: str = "max"
    dir: str = ""
    written_at: str = ""  # the field that sets it (targets.NAME.cache, defaults.cache); "" for buildflow's default

    def ref_for(self, registry: str, target: str) -> str:
        """The registry cache reference: the declared one, or REGISTRY/buildcache:TARGET."""
        return self.ref or f"{registry}/buildcache:{target}"

    def dir_for(self, target: str) -> str:
        """The local cache directory: the declared one, or .buildflow/cache/TARGET."""
        return self.dir or f".buildflow/cache/{target}"


@dataclass(frozen=True, slots=True)
class TestPolicy:
    """Commands run in a container of the built image."""

    commands: tuple[str, ...] = ()
    env: Mapping[str, str] | None = None
    timeout: int = 300
    network: str = "none"
    gpus: str = ""
    inherit: bool = True


LINT_LEVELS = ("error", "warning", "info", "style")  # most to least severe, as hadolint names them


@dataclass(frozen=True, slots=True)
class LintPolicy:
    """Which Dockerfile lint findings count: those at or above `threshold`, minus the `ignore`d rules."""

    threshold: str = "info"
    ignore: frozenset[str] = frozenset()


_DEFAULT_LINT = LintPolicy()


@dataclass(frozen=True, slots=True)
class Attest:
    """Attestations pushed with an image: an SBOM ("": none, "default": BuildKit's scanner, else a scanner image)
    and SLSA provenance ("", "min" or "max")."""

    sbom: str = ""
    provenance: str = ""

    def __bool__(self) -> bool:
        """True when any attestation is asked for."""
        return bool(self.sbom or self.provenance)


@dataclass(frozen=True, slots=True)
class SshForward:
    """An SSH agent socket or keys a build may use (RUN --mount=type=ssh): `default` with no paths is the agent
    of $SSH_AUTH_SOCK."""

    id: str = "default"
    paths: tuple[str, ...] = ()

    @property
    def argument(self) -> str:
        """buildx's --ssh value: default, ID, or ID=PATH[,PATH]."""
        return f"{self.id}={','.join(self.paths)}" if self.paths else self.id


NO_ATTEST = Attest()


class Target(NamedTuple):
    """One image to build: a target, or one combination of a matrix target.

    A NamedTuple rather than a frozen dataclass: just as immutable, and several times cheaper to create,
    which matters when a pipeline expands to thousands of images.
    """

    id: str
    name: str
    matrix: Mapping[str, str]
    description: str
    context: Path
    dockerfile: Path
    stage: str
    args: Mapping[str, str]
    labels: Mapping[str, str]
    tags: tuple[str, ...]
    platforms: tuple[str, ...]
    secrets: tuple[Secret, ...]
    cache: CachePolicy
    push: bool
    network: str
    tests: TestPolicy
    parents: tuple[Edge, ...]
    variables: Mapping[str, str]
    fingerprint: str
    bases: Mapping[str, str] = {}  # external images the Dockerfile names -> digest ("" when not resolved)
    lint: LintPolicy = _DEFAULT_LINT
    size_budget: int = 0  # bytes the image may take (uncompressed); 0: no budget
    attest: Attest = NO_ATTEST
    ssh: tuple[SshForward, ...] = ()
    annotations: Mapping[str, str] = {}
    oci_dir: Path | None = None  # output: oci: where the OCI layout of each image built is written

    def to_json(self, root: Path) -> dict[str, Any]:
        """A JSON-ready description, paths relative to the pipeline directory."""
        return {
            "id": self.id,
            "target": self.name,
            "matrix": dict(self.matrix),
            "description": self.description,
            "context": relative_path(self.context, root),
            "dockerfile": relative_path(self.dockerfile, root),
            "stage": self.stage,
            "parents": [{"id": e.parent, "kind": str(e.kind), "detail": e.detail} for e in self.parents],
            "args": dict(self.args),
            "labels": dict(self.labels),
            "tags": list(self.tags),
            "platforms": list(self.platforms),
            "secrets": [secret.id for secret in self.secrets],
            "cache": self.cache.type,
            "push": self.push,
            "network": self.network,
            "tests": list(self.tests.commands),
            "lint": {"threshold": self.lint.threshold, "ignore": sorted(self.lint.ignore)},
            "size_budget": self.size_budget or None,
            "attest": {"sbom": self.attest.sbom, "provenance": self.attest.provenance} if self.attest else None,
            "ssh": [forward.id for forward in self.ssh],
            "annotations": dict(self.annotations),
            "oci_dir": relative_path(self.oci_dir, root) if self.oci_dir else None,
            "bases": dict(self.bases),
            "fingerprint": self.fingerprint,
        }


@lru_cache(maxsize=1024)  # thousands of targets share a few contexts and Dockerfiles
def relative_path(path: Path, root: Path) -> str:
    """A path relative to the pipeline directory, with forward slashes."""
    try:
        return path.relative_to(root).as_posix() or "."
    except ValueError:
        return path.as_posix()


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently transient engine and registry errors are retried."""

    attempts: int = 3
    initial_delay: float = 1.0
    max_delay: float = 30.0


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_age(text: str) -> float:
    """Seconds in an age like 7d, 12h or 2w; ValueError for anything else."""
    number, unit = text[:-1], text[-1:]
    if not number.isdigit() or unit not in _UNITS:
        raise ValueError(f"'{text}' is not an age like 7d, 12h or 2w")
    return float(int(number) * _UNITS[unit])


@dataclass(frozen=True)
class RebuildPolicy:
    """When an image whose inputs did not change is built again."""

    follow_bases: bool = True  # external bases are resolved to digests that enter the fingerprint
    max_age: str = ""  # e.g. "7d"; empty: never rebuilt for age

    @property
    def max_age_seconds(self) -> float | None:
        """max_age in seconds, or None."""
        return parse_age(self.max_age) if self.max_age else None


@dataclass(frozen=True)
class BuilderSpec:
    """A builder a pipeline (or --builder) names: a docker context or buildx builder, how many builds it runs at
    once (0: as --jobs), and the platforms it builds natively (empty: any, as it can)."""

    name: str
    jobs: int = 0
    platforms: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pipeline:
    """A resolved pipeline: its targets by id (in file order), their generations, and the DAG over them."""

    file: Path
    root: Path
    registry: str
    targets: Mapping[str, Target]
    generations: list[list[str]]  # target ids by depth in the DAG, file order inside each
    retry: RetryPolicy = RetryPolicy()
    rebuild: RebuildPolicy = RebuildPolicy()
    builders: tuple[BuilderSpec, ...] = ()  # empty: the current builder
    release: str = "all"  # the release policy: all (every tag or none) or per-target (each image whose ancestry built)
    warnings: tuple[str, ...] = ()  # lines worth saying that do not stop the pipeline (file:line: message)

    @cached_property
    def graph(self) -> Any:
        """The DAG as a networkx DiGraph (edge parent -> child, attribute `kind`), built on first use."""
        from buildflow.graph import digraph

        return digraph({t.id: [(e.parent, str(e.kind)) for e in t.parents] for t in self.targets.values()})
