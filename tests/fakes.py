"""A fake engine for unit tests of scheduling: records calls, fails on request, keeps a registry in memory."""

from __future__ import annotations

import io
import json
import tarfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from buildflow.engine.base import BuildRequest, BuildResult, EngineError, ImageLayers, TestRequest, TestRun
from buildflow.model import RetryPolicy

FAST = RetryPolicy(attempts=3, initial_delay=0, max_delay=0)


class FakeEngine:
    """Records calls; fails the targets it is told to, transiently a number of times or for good."""

    def __init__(
        self,
        fail: Sequence[str] = (),
        transient: dict[str, int] | None = None,
        seconds: float = 0.0,
        push_faults: int = 0,
    ) -> None:
        self.fail, self.transient, self.seconds, self.push_faults = (
            set(fail),
            dict(transient or {}),
            seconds,
            push_faults,
        )
        self.built: dict[str, str] = {}
        self.pushed: list[str] = []
        self.lock = threading.Lock()
        self.log: list[tuple[str, str]] = []
        self.requests: dict[str, BuildRequest] = {}
        self.tags: list[tuple[str, tuple[str, ...]]] = []
        self.running = 0
        self.most_running = 0
        self.records: dict[str, bytes] = {}
        self.registry: dict[str, str] = {}
        self.layer_size = 1000
        self.down = False  # a builder that stopped answering

    def build(self, request: BuildRequest) -> BuildResult:
        with self.lock:
            self.log.append(("start", request.target_id))
            self.requests[request.target_id] = request
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        time.sleep(self.seconds)
        with self.lock:
            self.running -= 1
            self.log.append(("end", request.target_id))
            if self.transient.get(request.target_id, 0) > 0:
                self.transient[request.target_id] -= 1
                raise EngineError("connection reset by peer", transient=True)
        if request.target_id in self.fail:
            raise EngineError('process "/bin/sh -c false" did not complete successfully: exit code: 1', transient=False)
        digest = f"sha256:{request.target_id.encode().hex():0<64}"[:71]
        self.built[request.tags[0]] = digest
        return BuildResult(digest, self.seconds, 2, 1)

    def push(self, reference: str) -> str:
        with self.lock:
            if self.push_faults > 0:
                self.push_faults -= 1
                raise EngineError("unexpected status from HEAD request: 503 Service Unavailable", transient=True)
            self.pushed.append(reference)
            self.registry[reference] = self.built[reference]
        return self.built[reference]

    def manifest_digest(self, reference: str) -> str | None:
        if reference in self.registry:
            return self.registry[reference]
        if "@" in reference and reference.rpartition("@")[2] in self.registry.values():
            return reference.rpartition("@")[2]  # an image the registry holds, named by its digest
        return "sha256:" + "e" * 64 if "base" in reference else None

    def local_digest(self, reference: str) -> str | None:
        return self.built.get(reference)

    def save_layout(self, reference: str, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "index.json").write_text(json.dumps({"manifests": [{"digest": self.built[reference]}]}))

    def cancel(self) -> None:
        self.cancelled = True

    def answers(self) -> bool:
        return not self.down

    def get_record(self, reference: str) -> bytes | None:
        return self.records.get(reference)

    def put_record(self, reference: str, data: bytes) -> None:
        self.records[reference] = data

    def tag(self, source: str, references: Sequence[str]) -> None:
        self.tags.append((source, tuple(references)))
        digest = self.manifest_digest(source) if "@" in source else None
        if digest:
            self.registry.update(dict.fromkeys(references, digest))  # the registry holds it under these tags too

    def delete_tag(self, reference: str) -> bool:
        with self.lock:
            self.tags.append(("delete", (reference,)))
        return False

    def tag_local(self, source: str, references: Sequence[str]) -> None:
        self.tags.append((source, tuple(references)))

    def run_test(self, request: TestRequest) -> TestRun:
        with self.lock:
            self.log.append(("test", f"{request.image} {request.command}"))
        return TestRun(1 if request.command == "false" else 0, "", 0.0)

    def has_gpus(self) -> bool:
        return False

    def image_layers(self, reference: str) -> ImageLayers:
        """One layer per image, on top of the layers of the images it was built on (their BASE_IMAGE)."""
        requests = self.requests.values()
        built = {self.built[request.tags[0]]: request for request in requests if request.tags[0] in self.built}
        layers: list[tuple[str, int]] = []
        digest = reference.rpartition("@")[2]
        while digest in built and all(digest != layer for layer, _ in layers):
            layers.insert(0, (digest, self.layer_size))
            digest = built[digest].args.get("BASE_IMAGE", "").rpartition("@")[2]
        return ImageLayers(tuple(layers), tuple({"created_by": "RUN x"} for _ in layers))

    def layer_digests(self, reference: str) -> tuple[str, ...]:
        return self.image_layers(reference).digests

    def blob(self, reference: str, digest: str) -> BinaryIO:
        """A layer: one file of layer_size bytes."""
        stream = io.BytesIO()
        with tarfile.open(fileobj=stream, mode="w") as tar:
            member = tarfile.TarInfo(f"layer-{digest[7:19]}")
            member.size = self.layer_size
            tar.addfile(member, io.BytesIO(b"x" * self.layer_size))
        stream.seek(0)
        return stream
