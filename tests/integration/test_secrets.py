"""BuildKit secrets reach the build and nothing else: not the logs, reports, records, registry blobs or image."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import re
import subprocess
import tarfile
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from buildflow.engine.base import RECORD_MEDIA_TYPE
from buildflow.engine.registry import RegistryClient
from tests.integration.conftest import BASE, REGISTRY, Project, make_project, run_image

pytestmark = pytest.mark.integration

ENDPOINT = "http://127.0.0.1:5000"
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
LAYER_TYPE = re.compile(r"\.tar\b|\.layer\.|rootfs")
GZIP_MAGIC, ZSTD_MAGIC = b"\x1f\x8b", b"\x28\xb5\x2f\xfd"
CHILD = """\
    ARG BASE_IMAGE=base
    FROM ${BASE_IMAGE}
    RUN --mount=type=secret,id=tok --mount=type=secret,id=key \\
        test -s /run/secrets/tok && test -s /run/secrets/key \\
        && test "$(sha256sum < /run/secrets/tok | cut -d ' ' -f 1)" = TOK_SHA \\
        && test "$(sha256sum < /run/secrets/key | cut -d ' ' -f 1)" = KEY_SHA \\
        && TOKEN="$(cat /run/secrets/tok)" && echo "${#TOKEN}" > /tok.len \\
        && wc -c < /run/secrets/key | tr -d ' ' > /key.len
    """
TARGETS = """\
    base: {context: base, tags: ["base:1"]}
    child:
      context: child
      from: base
      tags: ["child:1"]
      secrets: {tok: {env: BF_TEST_TOKEN}, key: {file: key.txt}}
    """
OUTPUTS = ("report.json", "J.xml", "S.md")


@dataclass
class Searched:
    """What was searched, to quote: registry objects by kind, bytes, files in layers, and the run's own output."""

    manifests: int = 0
    configs: int = 0  # image configs; build records are counted apart
    layers: int = 0
    layer_bytes: int = 0  # as stored (compressed)
    unpacked_bytes: int = 0
    files: int = 0
    records: int = 0
    other_blobs: int = 0  # blobs an index names that are neither manifests nor layers: BuildKit cache configs
    logs: int = 0  # bytes of stdout and stderr
    reports: int = 0  # bytes of the JSON report, the JUnit file and the summary
    project_files: int = 0  # every other file in the project directory, but the secret's own file
    blobs: dict[str, bytes] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)

    def add(self, where: str, data: bytes) -> None:
        """Keep something to search, under a name that says where it came from."""
        self.blobs[where] = data

    def summary(self, found: list[str]) -> str:
        """One line of figures for the log."""
        parts = [
            f"{self.layers} layers ({_size(self.layer_bytes)} stored, {_size(self.unpacked_bytes)} unpacked,"
            f" {self.files} tar entries)",
            f"{self.configs} image configs (history, Env, labels)",
            f"{self.manifests} manifests",
            f"{self.other_blobs} cache configs",
            f"{self.records} records",
            f"logs {_size(self.logs)}",
            f"reports {_size(self.reports)}",
            f"project files {_size(self.project_files)}",
        ]
        return f"secrets: searched {', '.join(parts)}: {len(found)} leaks"


def _size(count: int) -> str:
    """1.2 MB, 40 KB or 512 B."""
    for unit, scale in (("MB", 1_000_000), ("KB", 1_000)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


def forms(value: str) -> dict[str, bytes]:
    """A value as it could show up: itself, and base64 (standard and URL-safe) at each of the 3 byte alignments."""
    raw = value.encode()
    found = {"as is": raw}
    for shift in range(3):
        for name, encode in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
            encoded = encode(b"\0" * shift + raw)
            whole_groups = encoded[: (shift + len(raw)) // 3 * 4]  # only characters no neighbouring byte changes
            needle = whole_groups[(0, 2, 3)[shift] :]
            if needle not in found.values():
                found[f"{name}+{shift}"] = needle
    return found


def leaks(values: Iterable[str], blobs: Mapping[str, bytes]) -> list[str]:
    """Where any form of any value occurs, as 'WHERE: value N (FORM)'; the values themselves are never shown."""
    found = []
    for number, value in enumerate(values, 1):
        for form, needle in forms(value).items():
            found += [f"{where}: value {number} ({form})" for where, data in blobs.items() if needle in data]
    return found


def unpack(data: bytes, media_type: str) -> bytes:
    """A layer blob as a tar stream, by its mediaType: gzip, zstd, or a plain tar."""
    if media_type.endswith("gzip"):
        assert data.startswith(GZIP_MAGIC), media_type
        return gzip.decompress(data)
    if media_type.endswith("zstd"):
        assert data.startswith(ZSTD_MAGIC), media_type
        return subprocess.run(["zstd", "-dc"], input=data, capture_output=True, check=True).stdout
    assert media_type.endswith("tar"), f"a layer of unknown type {media_type}"
    return data


def tar_files(stream: bytes) -> Iterator[tuple[str, bytes]]:
    """Every member of a tar stream with its bytes: file contents, link targets, and PAX headers (xattrs)."""
    with tarfile.open(fileobj=io.BytesIO(stream)) as archive:
        for member in archive:
            content = archive.extractfile(member).read() if member.isfile() else b""  # type: ignore[union-attr]
            extra = (member.linkname + json.dumps(member.pax_headers)).encode()
            yield member.name, content + b"\0" + extra


def get(path: str, accept: str = "") -> tuple[bytes, str]:
    """GET from the registry's HTTP API on loopback: the body and its Content-Type."""
    request = urllib.request.Request(f"{ENDPOINT}/v2/{path}", headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read(), response.headers.get("Content-Type", "")


def repositories(namespace: str) -> list[str]:
    """Every repository of the registry under `namespace/`, from its catalog, page by page."""
    found: list[str] = []
    last = namespace
    while True:
        page = json.loads(get(f"_catalog?{urllib.parse.urlencode({'n': 100, 'last': last})}")[0])["repositories"]
        mine = [name for name in page or [] if name.startswith(f"{namespace}/")]
        found += mine
        if len(mine) < 100:
            return found
        last = mine[-1]


def tags(repository: str) -> list[str]:
    """The tags of a repository."""
    return sorted(json.loads(get(f"{repository}/tags/list")[0])["tags"] or [])


def walk(repository: str, reference: str, searched: Searched) -> None:
    """Fetch a manifest and, recursively, every manifest, config, layer and blob it names, into `searched`.

    A blob that several repositories share (the image's layers, the build cache's) is searched once, under the
    first repository met.
    """
    body, _ = get(f"{repository}/manifests/{reference}", ", ".join(MANIFEST_TYPES))
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    if digest in searched.seen:
        return
    searched.seen.add(digest)
    searched.manifests += 1
    searched.add(f"{repository} manifest {digest[:19]}", body)
    document: dict[str, Any] = json.loads(body)
    for entry in document.get("manifests", []):  # an index: of images, or of cache layers and a cache config
        _entry(repository, entry, searched)
    if "config" in document:
        _config(repository, document["config"], searched)
    for layer in document.get("layers", []):
        _layer(repository, layer, searched)


def _entry(repository: str, entry: Mapping[str, Any], searched: Searched) -> None:
    """One entry of an index: a manifest to walk, a layer to unpack, or another blob (BuildKit's cache config)."""
    media_type = str(entry.get("mediaType", ""))
    if media_type in MANIFEST_TYPES:
        walk(repository, entry["digest"], searched)
    elif LAYER_TYPE.search(media_type):
        _layer(repository, entry, searched)
    elif entry["digest"] not in searched.seen:
        searched.seen.add(entry["digest"])
        searched.other_blobs += 1
        searched.add(f"{repository} blob {entry['digest'][:19]}", get(f"{repository}/blobs/{entry['digest']}")[0])


def _config(repository: str, descriptor: Mapping[str, Any], searched: Searched) -> None:
    """An image config (history, Env, labels) or an artifact's data (a build record), searched as stored."""
    digest = str(descriptor["digest"])
    if digest not in searched.seen:
        searched.seen.add(digest)
        searched.configs += descriptor.get("mediaType") != RECORD_MEDIA_TYPE
        searched.add(f"{repository} config {digest[:19]}", get(f"{repository}/blobs/{digest}")[0])


def _layer(repository: str, descriptor: Mapping[str, Any], searched: Searched) -> None:
    """A layer: its stored bytes, its tar stream, and every entry in it, each searched."""
    digest = str(descriptor["digest"])
    if digest in searched.seen:
        return
    searched.seen.add(digest)
    data = get(f"{repository}/blobs/{digest}")[0]
    stream = unpack(data, str(descriptor.get("mediaType", "")))
    searched.layers += 1
    searched.layer_bytes += len(data)
    searched.unpacked_bytes += len(stream)
    where = f"{repository} layer {digest[:19]}"
    searched.add(f"{where} (stored)", data)
    searched.add(f"{where} (tar)", stream)
    for name, content in tar_files(stream):
        searched.files += 1
        searched.add(f"{where} /{name}", content)


def search_registry(namespace: str, searched: Searched) -> None:
    """Everything the run left in the registry under its namespace: images, build cache and build records."""
    for repository in repositories(namespace):
        for tag in tags(repository):
            walk(repository, tag, searched)
            if tag.endswith(".record") or tag.startswith("bf-last."):
                record = RegistryClient().get_artifact(f"{REGISTRY}/{repository}:{tag}", RECORD_MEDIA_TYPE)
                assert record is not None, f"{repository}:{tag} holds no build record"
                searched.records += 1
                searched.add(f"{repository}:{tag} record", record)


def search_outputs(project: Project, result: subprocess.CompletedProcess[str], searched: Searched) -> None:
    """stdout, stderr (debug included), the three report files, and every other file in the project but key.txt."""
    searched.add("stdout", result.stdout.encode())
    searched.add("stderr", result.stderr.encode())
    searched.logs = len(searched.blobs["stdout"]) + len(searched.blobs["stderr"])
    for path in sorted(project.root.rglob("*")):
        if path.is_file() and path.name != "key.txt":
            data = path.read_bytes()
            searched.add(str(path.relative_to(project.root)), data)
            if path.name in OUTPUTS:
                searched.reports += len(data)
            else:
                searched.project_files += len(data)


def secret_project(root: Path, token: str, key: str) -> Project:
    """A base and a child whose build checks both secrets by digest and keeps only their lengths."""
    dockerfile = CHILD.replace("TOK_SHA", _sha(token)).replace("KEY_SHA", _sha(key))
    project = make_project(root, TARGETS, {"base": BASE, "child": dockerfile})
    (root / "key.txt").write_text(key)
    return project


def _sha(value: str) -> str:
    """The hex sha256 of a value (the Dockerfile checks what arrived against it)."""
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class Run:
    """One real build of the secret project: the project, what the command printed, and the two secret values."""

    project: Project
    result: subprocess.CompletedProcess[str]
    token: str
    key: str


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Build the secret project once, with debug logs as JSON and every report buildflow writes."""
    token, key = uuid.uuid4().hex, uuid.uuid4().hex
    project = secret_project(tmp_path_factory.mktemp("secrets"), token, key)
    result = project.build(
        "--debug", "--log-format", "json", "--junit", "J.xml", "--summary", "S.md", env={"BF_TEST_TOKEN": token}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return Run(project, result, token, key)


def test_secrets_reach_the_build(run: Run) -> None:
    """The child's build read both secrets: it kept their lengths (its RUN checked their digests)."""
    assert run_image(run.project.ref("child:1"), "cat", "/tok.len", "/key.len") == "32\n32\n"


def test_secrets_appear_nowhere_else(run: Run) -> None:
    """Neither value, as is or in base64, is in the output, the reports, the project, the registry or the image."""
    assert all((run.project.root / name).stat().st_size > 0 for name in OUTPUTS)
    searched = Searched()
    search_outputs(run.project, run.result, searched)
    search_registry(run.project.namespace, searched)
    references = [target["reference"] for target in run.project.targets().values()]
    assert {f"{reference.split('/', 1)[1]}.record record" for reference in references} <= set(searched.blobs)
    history = b'TOKEN=\\"$(cat /run/secrets/tok)\\"'  # the secret RUN, as the child's config records it
    assert [where for where, data in searched.blobs.items() if " config " in where and history in data]
    found = leaks([run.token, run.key], searched.blobs)
    print(searched.summary(found))
    assert found == []
    assert searched.layers >= 4 and searched.configs >= 2 and searched.records >= 2


def test_a_leaky_build_is_caught(tmp_path: Path) -> None:
    """The same search on a build that leaks: a secret copied into a file, the other passed as a build arg."""
    token, key = uuid.uuid4().hex, uuid.uuid4().hex
    project = secret_project(tmp_path, token, key)
    leaky = 'ARG KEY\nRUN --mount=type=secret,id=tok cp /run/secrets/tok /leak.txt && test -n "$KEY"\n'
    with (tmp_path / "child" / "Dockerfile").open("a") as dockerfile:
        dockerfile.write(leaky)
    with (tmp_path / "buildflow.yaml").open("a") as pipeline:
        pipeline.write(f"    args: {{KEY: {key}}}\n")
    result = project.build(env={"BF_TEST_TOKEN": token})
    assert result.returncode == 0, result.stdout + result.stderr
    searched = Searched()
    search_registry(project.namespace, searched)
    found = leaks([token, key], searched.blobs)
    assert any(" layer " in where and where.endswith("/leak.txt: value 1 (as is)") for where in found), found
    assert any("/child config " in where and where.endswith("value 2 (as is)") for where in found), found
    assert any(".record record: value 2 (as is)" in where for where in found), found


def test_debug_logs_carry_the_builder_output_searched_above(run: Run) -> None:
    """--debug logs BuildKit's own output, so that the search of stderr covers it too."""
    assert '"event": "build.output"' in run.result.stderr


def test_the_search_finds_a_value_in_every_form_and_place() -> None:
    """The search itself: a value in a gzipped layer is found in a file, as is and in base64 off a 3-byte boundary."""
    value = uuid.uuid4().hex
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w:gz") as archive:
        for name, content in [
            ("etc/plain", f"x{value}y".encode()),
            ("etc/encoded", base64.b64encode(b"z" + value.encode())),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    files = dict(tar_files(unpack(layer.getvalue(), "application/vnd.oci.image.layer.v1.tar+gzip")))
    assert leaks([value], files) == ["etc/plain: value 1 (as is)", "etc/encoded: value 1 (base64+1)"]
    assert leaks([value], {"stored": layer.getvalue()}) == []  # compressed: found only once unpacked
    assert leaks([uuid.uuid4().hex], files) == []


def test_a_secret_the_build_prints_is_masked_in_every_output(tmp_path: Path) -> None:
    """A RUN that prints a secret: BuildKit shows it, buildflow masks it in --debug logs and every report."""
    token = uuid.uuid4().hex
    printing = BASE + f"RUN --mount=type=secret,id=tok echo {uuid.uuid4().hex} && cat /run/secrets/tok && echo\n"
    targets = 'printing: {context: printing, tags: ["printing:1"], secrets: {tok: {env: BF_TEST_TOKEN}}}\n'
    project = make_project(tmp_path, targets, {"printing": printing})
    result = project.build(
        "--debug", "--log-format", "json", "--junit", "J.xml", "--summary", "S.md", env={"BF_TEST_TOKEN": token}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    printed = [json.loads(line) for line in result.stderr.splitlines() if '"build.output"' in line]
    assert any(event["line"].endswith("****") for event in printed)  # BuildKit printed it; the log masked it
    outputs = {name: (project.root / name).read_bytes() for name in OUTPUTS}
    assert leaks([token], {"stdout": result.stdout.encode(), "stderr": result.stderr.encode(), **outputs}) == []
