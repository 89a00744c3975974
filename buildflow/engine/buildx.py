"""The engine on Docker and buildx: builds, pushes and test containers through engine/docker.py, registries
through the registry client."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import signal
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from buildflow.engine.base import (
    RECORD_MEDIA_TYPE,
    BuildRequest,
    BuildResult,
    EngineError,
    ImageLayers,
    TestRequest,
    TestRun,
)
from buildflow.engine.builders import BuilderInfo, current
from buildflow.engine.docker import (
    DEFAULT_TIMEOUT,
    KILLED,
    TERMINATED,
    TIMED_OUT,
    Docker,
    classify,
)
from buildflow.engine.layout import SavedImage, read_saved, unpack_layout
from buildflow.engine.registry import RegistryClient
from buildflow.engine.requests import DOCKER_HUB, RequestRetry
from buildflow.engine.trust import Trust, from_daemon
from buildflow.errors import EngineUnavailable
from buildflow.model import Secret
from buildflow.references import parse

_STEP = re.compile(r"^#(\d+) \[(?:[^\]]* )?\d+/\d+\] (?!FROM )")  # a Dockerfile instruction, not FROM
_CACHED = re.compile(r"^#(\d+) CACHED")
_USAGE_HINT = "Run 'docker run --help'"  # what docker run adds after its own errors
DOCKER_RUN_FAILED = 125  # docker run's own failure (no such image, daemon gone), not the command's
_UNAUTHORIZED = re.compile(r"\b401\b|unauthorized|no basic auth credentials|authentication required", re.IGNORECASE)


class BuildxEngine:
    """Builds with `docker buildx build` and pushes with `docker push`; looks images up and copies tags in
    registries through a RegistryClient."""

    def __init__(
        self,
        *,
        timeout: int = DEFAULT_TIMEOUT,
        info: BuilderInfo | None = None,
        push_from_buildkit: bool = False,
        on_output: Callable[[str, str], None] | None = None,
        on_request_retry: RequestRetry | None = None,
    ):
        self.timeout = timeout
        self._info = info
        self.docker = Docker(
            context=info.context if info else "", builder=info.builder if info else "", timeout=timeout
        )
        self._push_from_buildkit = push_from_buildkit
        daemon = functools.partial(from_daemon, self.docker.context)  # its insecure registries, Docker Hub's key
        self.registry = RegistryClient(on_retry=on_request_retry, trust=Trust(daemon))
        self.on_output = on_output or (lambda target, line: None)
        self.checked = False
        self.built: dict[str, str] = {}  # the digest of each image this engine built, by its tag

    def check(self) -> None:
        """Fail early, in one line, when no engine or no buildx answers."""
        for command in (["version", "--format", "{{.Server.Version}}"], ["buildx", "version"]):
            try:
                self.docker.output(command)
            except EngineError as reason:
                raise EngineUnavailable(
                    f"the Docker engine is not usable ({reason}); start one, e.g. scripts/engine.sh up"
                ) from None

    @functools.cached_property
    def info(self) -> BuilderInfo:
        """What this builder can do: as given, or the current builder as it answers on first use (docker asked)."""
        return self._info or current()

    @property
    def push_from_buildkit(self) -> bool:
        """True when BuildKit pushes the images itself: a builder without an image store, or when asked to."""
        return self._push_from_buildkit or not self.info.local_images

    def answers(self) -> bool:
        """True when the engine and buildx answer now (asked after a build failed in a way that could be it)."""
        try:
            self.check()
        except EngineUnavailable:
            return False
        return True

    def _check_once(self) -> None:
        """check() before the first build: a run that reuses everything never starts docker."""
        if not self.checked:
            try:
                self.check()
            except EngineUnavailable as error:
                raise EngineError(str(error), transient=False) from None
            self.checked = True

    def build(self, request: BuildRequest) -> BuildResult:
        """Build one image into the local image store and return its manifest digest."""
        self.checked = self.checked or self.info.answers  # describing the builder asked the engine and buildx
        self._check_once()
        started = time.monotonic()
        index = bool(request.attest) or len(request.platforms) > 1
        output = with_annotations(self._output(request), request.annotations, index)
        with tempfile.TemporaryDirectory(prefix="buildflow-") as scratch:
            metadata = Path(scratch) / "metadata.json"
            lines = self.docker.build(
                _build_arguments(request, metadata, output), lambda line: self.on_output(request.target_id, line)
            )
            digest = json.loads(metadata.read_text())["containerimage.digest"]
        if not request.export:
            self.built[request.tags[0]] = digest
        steps, cached = _step_counts(lines)
        return BuildResult(digest, time.monotonic() - started, steps, cached, pushed=output.get("push") == "true")

    def _output(self, request: BuildRequest) -> dict[str, str]:
        """Where a build goes: the engine's image store (docker driver: tested there, then pushed by buildflow), or
        the registry by BuildKit's own push (other drivers), or loaded into the current engine (--no-push)."""
        if request.export:
            return {"type": "oci", "dest": request.export, "oci-mediatypes": "false"}
        name = request.tags[0]
        if self.info.local_images and not (request.push and self.push_from_buildkit):
            return {"type": "image", "name": name, "push": "false"}
        if request.push:
            return {"type": "image", "name": name, "push": "true"}
        return {"type": "docker", "name": name}

    def push(self, reference: str) -> str:
        """Push a built image from the local store; return the digest the registry now holds for it.

        Builds go to the local store and are pushed by this separate call: buildx's docker driver would
        otherwise push twice (BuildKit, then the daemon), and a half-done first push breaks every retry.
        From the containerd image store, the image is saved (an OCI layout with the built manifest and layers)
        and uploaded by buildflow's registry client, which tries each request again on its own: `docker push`
        fails as a whole when any one of its requests fails. Other stores are pushed by `docker push`.
        """
        with tempfile.TemporaryDirectory(prefix="buildflow-push-") as scratch:
            saved = self._saved(reference, Path(scratch) / "image.tar")
            if saved is not None:
                try:
                    return self.registry.push_saved(saved, reference)
                finally:
                    saved.close()
        return self._docker_push(reference)

    def save_layout(self, reference: str, directory: Path) -> None:
        """Write a local image as an OCI layout into `directory` (made anew): `docker save`, unpacked."""
        with tempfile.TemporaryDirectory(prefix="buildflow-oci-") as scratch:
            archive = Path(scratch) / "image.tar"
            self.docker.output(["save", "--output", str(archive), reference])
            try:
                unpack_layout(archive, directory)
            except (OSError, tarfile.TarError) as error:
                raise EngineError(
                    f"cannot write the OCI layout of {reference} to {directory}: {error}", transient=False
                ) from None

    def _saved(self, reference: str, path: Path) -> SavedImage | None:
        """The image as `docker save` writes it, when that is exactly the built image (the containerd store)."""
        self.docker.output(["save", "--output", str(path), reference])
        saved = read_saved(str(path))
        built = self.built.get(reference) or self.local_digest(reference)
        if saved is not None and saved.top.digest != built:
            saved.close()  # the classic store saves another manifest than the one pushed: docker push instead
            return None
        return saved

    def _docker_push(self, reference: str) -> str:
        """`docker push`; the digest the registry then holds (on the classic store, not the local image id)."""
        try:
            self.docker.push(reference)
        except EngineError as failure:
            if _UNAUTHORIZED.search(str(failure)):
                host = parse(reference).host
                raise EngineError(f"not logged in to {host}: run docker login {host}", transient=False) from None
            raise
        digest = self.registry.digest(reference)
        if digest is None:
            raise EngineError(f"{reference} was pushed but the registry does not have it", transient=True)
        return digest

    def manifest_digest(self, reference: str) -> str | None:
        """The digest of the manifest a registry holds for `reference`, or None when it holds none.

        Images on Docker Hub (docker.io, a name rather than an API host) are looked up by buildx itself.
        """
        if parse(reference).host != DOCKER_HUB:
            return self.registry.digest(reference)
        return self._inspect_digest(reference)

    def local_digest(self, reference: str) -> str | None:
        """The id of an image in the local image store, or None when the store has no such tag."""
        return self.docker.output(["image", "inspect", "--format", "{{.Id}}", reference], missing_ok=True) or None

    def get_record(self, reference: str) -> bytes | None:
        """The build record stored under `reference`, or None."""
        return self.registry.get_artifact(reference, RECORD_MEDIA_TYPE)

    def put_record(self, reference: str, data: bytes) -> None:
        """Store a build record under `reference`."""
        self.registry.put_artifact(reference, data, RECORD_MEDIA_TYPE)

    def run_test(self, request: TestRequest) -> TestRun:
        """Run `sh -c COMMAND` in a new container of an image (its entrypoint reset), killed after the timeout.

        `docker run --rm` removes the container when the command ends; when the client was killed instead
        (timeout, interrupted run) the container is removed here."""
        self._check_once()
        name = f"buildflow-test-{uuid.uuid4().hex[:12]}"
        started = time.monotonic()
        ran = self.docker.ran(_test_arguments(request, name), request.timeout)
        seconds = time.monotonic() - started
        if ran.code in (*KILLED, TIMED_OUT, *TERMINATED):
            self._remove_container(name)
        if ran.code == DOCKER_RUN_FAILED:
            raise classify(ran.stderr.splitlines(), ran.code)
        timed_out = ran.code in (*KILLED, TIMED_OUT) and seconds >= request.timeout
        return TestRun(ran.code, _joined(ran.stdout, ran.stderr), seconds, timed_out)

    def has_gpus(self) -> bool:
        """True when the engine has the NVIDIA runtime (what `docker run --gpus` needs)."""
        return "nvidia" in self.docker.output(["info", "--format", "{{json .Runtimes}}"])

    def image_layers(self, reference: str) -> ImageLayers:
        """The layers and history of an image in a registry."""
        return self.registry.image_layers(reference)

    def layer_digests(self, reference: str) -> tuple[str, ...]:
        """The layer digests of an image in a registry."""
        return self.registry.layer_digests(reference)

    def blob(self, reference: str, digest: str) -> BinaryIO:
        """A stream of one blob of an image's repository."""
        return self.registry.blob(reference, digest)

    def _remove_container(self, name: str) -> None:
        """Remove a test container if it is still there (killed client, timeout, interrupted run)."""
        with contextlib.suppress(EngineError):
            self.docker.output(["rm", "--force", name])

    def _inspect_digest(self, reference: str) -> str | None:
        """A registry digest as `docker buildx imagetools inspect` finds it; a refusal says whether docker login
        has credentials for the registry (Docker Hub answers 401 for a repository that does not exist, too)."""
        arguments = ["buildx", "imagetools", "inspect", "--format", "{{json .Manifest}}", reference]
        try:
            output = self.docker.output(arguments, missing_ok=True)
        except EngineError as error:
            if not _UNAUTHORIZED.search(str(error)):
                raise
            host = parse(reference).host
            if self.registry.credentials.of(host) is None:
                raise EngineError(
                    f"{reference}: {host} refused the lookup ({error}): it does not exist, or it is private and "
                    f"needs docker login {host}",
                    transient=False,
                ) from None
            raise EngineError(
                f"{reference}: {host} refused the credentials of docker login ({error}): check that the image "
                f"exists and that the account of docker login {host} may pull it",
                transient=False,
            ) from None
        try:
            digest = json.loads(output)["digest"] if output else None
        except (ValueError, KeyError, TypeError):
            return None
        return str(digest) if digest else None

    def tag(self, source: str, references: Sequence[str]) -> None:
        """Point more tags at a pushed image, registry side, with the very same manifest (and digest)."""
        for reference in references:
            self.registry.copy_tag(source, reference)

    def delete_tag(self, reference: str) -> bool:
        """Remove a tag from its registry, where the registry deletes tags."""
        return self.registry.delete_tag(reference)

    def cancel(self) -> None:
        """Terminate the docker commands this process runs (buildx cancels a build whose client goes away), and
        end the registry requests under way."""
        for pid in _children():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
        self.registry.interrupt()

    def tag_local(self, source: str, references: Sequence[str]) -> None:
        """Tag an image in the local image store."""
        for reference in references:
            self.docker.tag(source, reference)


def _children() -> list[int]:
    """The pids of this process's children, as Linux lists them for each thread."""
    pids: list[int] = []
    for listing in Path("/proc/self/task").glob("*/children"):
        with contextlib.suppress(OSError):
            pids += [int(pid) for pid in listing.read_text().split()]
    return pids


def _build_arguments(request: BuildRequest, metadata: Path, output: dict[str, str]) -> dict[str, Any]:
    """python-on-whales build() arguments for a request: its output, plain progress, provenance off unless asked.
    (python-on-whales passes one --ssh: a target forwards one agent or one id.)"""
    return {
        "context_path": request.context,
        "file": request.dockerfile,
        "build_args": dict(request.args),
        "build_contexts": dict(request.build_contexts),
        "labels": dict(request.labels),
        "target": request.stage or None,
        "platforms": list(request.platforms) or None,
        "network": request.network if request.network != "default" else None,
        "secrets": [_secret_argument(secret) for secret in request.secrets],
        "cache": not request.no_cache,
        "cache_from": [dict(source) for source in request.cache_from] or None,
        "cache_to": dict(request.cache_to) if request.cache_to else None,
        "pull": request.pull,
        "provenance": {"mode": request.attest.provenance} if request.attest.provenance else False,
        "sbom": _sbom_argument(request.attest.sbom),
        "ssh": request.ssh[0].argument if request.ssh else None,
        "output": output,
        "metadata_file": metadata,
        "progress": "plain",
        "stream_logs": True,
    }


def _sbom_argument(sbom: str) -> bool | dict[str, str] | None:
    """--sbom: none, BuildKit's own scanner, or a scanner image."""
    if not sbom:
        return None
    return True if sbom == "default" else {"generator": sbom}


def with_annotations(output: dict[str, str], annotations: Mapping[str, str] | None, index: bool) -> dict[str, str]:
    """An image output with OCI annotations on its manifests (annotation-manifest.KEY), and on its index too when
    the artifact is one (attestations, several platforms); each field quoted when it needs to be (CSV, as buildx
    reads --output)."""
    fields = dict(output)
    for key, value in (annotations or {}).items():
        for kind in ("manifest", "index") if index else ("manifest",):
            name, text = f"annotation-{kind}.{key}", str(value)
            if any(character in name + text for character in ',"'):
                quoted = '"' + f"{name}={text}".replace('"', '""') + '"'
                name, text = quoted.partition("=")[0], quoted.partition("=")[2]
            fields[name] = text
    return fields


def _test_arguments(request: TestRequest, name: str) -> list[str]:
    """run ... IMAGE sh -c COMMAND: a test container's docker arguments."""
    command = ["run", "--rm", "--name", name, "--pull", "missing", "--entrypoint", ""]
    if request.network != "default":
        command += ["--network", request.network]
    for key, value in sorted(request.env.items()):
        command += ["--env", f"{key}={value}"]
    if request.gpus:
        command += ["--gpus", request.gpus]
    return [*command, request.image, "sh", "-c", request.command]


def _joined(stdout: str, stderr: str) -> str:
    """A container's output and error output, one after the other, without docker run's usage hint."""
    lines = "\n".join(part.rstrip("\n") for part in (stdout, stderr) if part).splitlines()
    return "\n".join(line for line in lines if not line.startswith(_USAGE_HINT))


def _secret_argument(secret: Secret) -> str:
    """--secret id=X,env=VAR or id=X,src=PATH: the value itself is never on the command line."""
    kind = "env" if secret.source == "env" else "src"
    return f"id={secret.id},{kind}={secret.location}"


def _step_counts(lines: Iterable[str]) -> tuple[int, int]:
    """How many Dockerfile steps (FROM aside) the build had and how many came from cache."""
    steps, cached = set(), set()
    for line in lines:
        if match := _STEP.match(line):
            steps.add(match[1])
        if match := _CACHED.match(line):
            cached.add(match[1])
    return len(steps), len(cached & steps)
