"""The settings no template reaches: a target's secrets, cache, tests, lint and budget; the pipeline's policies
and builders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from buildflow.model import (
    NO_ATTEST,
    Attest,
    BuilderSpec,
    CachePolicy,
    LintPolicy,
    RebuildPolicy,
    RetryPolicy,
    Secret,
    SshForward,
    TestPolicy,
)
from buildflow.pipeline.spec import BuilderEntrySpec, RebuildSpec, RetrySpec, TargetSpec
from buildflow.pipeline.variables import as_text
from buildflow.sizes import parse_size

SETTING_KEYS = frozenset(
    {"description", "secrets", "cache", "push", "network", "test", "lint", "size_budget"}
    | {"attest", "ssh", "annotations", "output"}
)
DEFAULT_OCI_DIR = ".buildflow/oci"
_NO_TESTS = TestPolicy()
_DEFAULT_LINT = LintPolicy()


class Settings(NamedTuple):
    """A target's non-templated settings, shared by every image of the target."""

    description: str
    secrets: tuple[Secret, ...]
    cache: CachePolicy
    push: bool
    network: str
    tests: TestPolicy
    lint: LintPolicy
    size_budget: int
    supply: Supply


def target_settings(spec: TargetSpec, registry: str, defaults: Mapping[str, Any], cache_field: str = "") -> Settings:
    """The settings of a target (over the defaults) in a pipeline pushing to `registry` ('' for none);
    `cache_field` is where its cache is written, if it is."""
    return Settings(
        description=spec.get("description", ""),
        secrets=secrets_from_spec(spec),
        cache=cache_policy(spec, registry, cache_field),
        push=spec.get("push", bool(registry)),
        network=spec.get("network", "default"),
        tests=tests_policy(spec),
        lint=lint_policy(spec, defaults),
        size_budget=parse_size(spec["size_budget"]) if "size_budget" in spec else 0,
        supply=supply_settings(spec),
    )


class Supply(NamedTuple):
    """A target's supply-chain settings: attestations, SSH forwarding, OCI annotations, an OCI layout directory."""

    attest: Attest = NO_ATTEST
    ssh: tuple[SshForward, ...] = ()
    annotations: Mapping[str, str] = {}
    oci_dir: str = ""  # relative to the pipeline file; "" when output is the registry only


_NO_SUPPLY = Supply()


def supply_settings(spec: TargetSpec) -> Supply:
    """The `attest:`, `ssh:`, `annotations:` and `output:` settings (checked by the schema)."""
    if not {"attest", "ssh", "annotations", "output"} & spec.keys():
        return _NO_SUPPLY
    return Supply(
        attest=attest_policy(spec.get("attest", {})),
        ssh=tuple(
            SshForward() if entry == "default" else SshForward(entry["id"], tuple(entry.get("paths", ())))
            for entry in spec.get("ssh", [])
        ),
        annotations={key: as_text(value) for key, value in spec.get("annotations", {}).items()},
        oci_dir=oci_dir(spec.get("output", "registry")),
    )


def attest_policy(declared: Mapping[str, Any]) -> Attest:
    """`attest:` as an Attest: sbom true is BuildKit's own scanner ("default"), {generator: IMAGE} another."""
    sbom = declared.get("sbom", False)
    generator = sbom.get("generator", "") if isinstance(sbom, Mapping) else ("default" if sbom else "")
    provenance = declared.get("provenance", False)
    return Attest(sbom=generator, provenance=provenance or "")


def oci_dir(declared: str | Mapping[str, str]) -> str:
    """Where `output: oci` writes OCI layouts ("" for output: registry)."""
    settings = {"type": declared} if isinstance(declared, str) else declared
    return settings.get("dest", DEFAULT_OCI_DIR) if settings["type"] == "oci" else ""


def secrets_from_spec(spec: TargetSpec) -> tuple[Secret, ...]:
    """A target's declared secrets, sorted by id."""
    found = []
    for secret_id, source in sorted(spec.get("secrets", {}).items()) if "secrets" in spec else ():
        kind, location = next(iter(source.items()))
        found.append(Secret(secret_id, kind, location))
    return tuple(found)


def cache_policy(spec: TargetSpec, registry: str, written_at: str = "") -> CachePolicy:
    """Registry cache by default when a registry is set, else none; empty ref and dir mean the defaults."""
    declared = spec.get("cache", "registry" if registry else "none")
    settings = {"type": declared} if isinstance(declared, str) else declared
    ref, mode, directory = settings.get("ref", ""), settings.get("mode", "max"), settings.get("dir", "")
    return CachePolicy(settings["type"], ref, mode, directory, written_at if "cache" in spec else "")


def tests_policy(spec: TargetSpec) -> TestPolicy:
    """The `test:` setting in its long form."""
    declared = spec.get("test", [])
    if not declared:
        return _NO_TESTS
    if isinstance(declared, list):
        return TestPolicy(commands=_commands(declared))
    return TestPolicy(
        commands=_commands(declared.get("commands", [])),
        env={key: as_text(value) for key, value in declared.get("env", {}).items()},
        timeout=declared.get("timeout", 300),
        network=declared.get("network", "none"),
        gpus=declared.get("gpus", ""),
        inherit=declared.get("inherit", True),
    )


def _commands(declared: Sequence[Any]) -> tuple[str, ...]:
    """The commands as written ({run: COMMAND, when: …} gives its command; resolve/tests.py applies `when:`)."""
    return tuple(command if isinstance(command, str) else command["run"] for command in declared)


def lint_policy(spec: TargetSpec, defaults: Mapping[str, Any]) -> LintPolicy:
    """The target's `lint:` over the pipeline's (defaults.lint); ignored rules add up."""
    declared: Mapping[str, Any] = spec.get("lint", {})
    pipeline_wide: Mapping[str, Any] = defaults.get("lint", {})
    if not declared and not pipeline_wide:
        return _DEFAULT_LINT
    return LintPolicy(
        threshold=declared.get("threshold", pipeline_wide.get("threshold", "info")),
        ignore=frozenset(pipeline_wide.get("ignore", ())) | frozenset(declared.get("ignore", ())),
    )


def retry_policy(spec: RetrySpec) -> RetryPolicy:
    """The retry settings; delays may be written as text ("0.5") since YAML floats stay text."""
    default = RetryPolicy()
    return RetryPolicy(
        attempts=spec.get("attempts", default.attempts),
        initial_delay=float(spec.get("initial_delay", default.initial_delay)),
        max_delay=float(spec.get("max_delay", default.max_delay)),
    )


def rebuild_policy(spec: RebuildSpec) -> RebuildPolicy:
    """The rebuild settings (max_age is checked by the schema)."""
    return RebuildPolicy(follow_bases=spec.get("follow_bases", True), max_age=spec.get("max_age", ""))


def builder_specs(declared: Sequence[BuilderEntrySpec]) -> tuple[BuilderSpec, ...]:
    """The pipeline's `builders:` (jobs 0: as --jobs; no platforms: any)."""
    return tuple(BuilderSpec(b["name"], b.get("jobs", 0), tuple(b.get("platforms", ()))) for b in declared)
