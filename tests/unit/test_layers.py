"""Size and waste reports of images made of synthetic layers (tarfile in memory), and a registry on loopback."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import json
import tarfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO
from unittest import mock

import pytest

from buildflow.engine.base import EngineError
from buildflow.engine.registry import RegistryClient
from buildflow.quality.layers import (
    LayerCache,
    SizeReport,
    Waste,
    analyze,
    from_registry,
)
from buildflow.sizes import human, parse_size
from tests.conftest import serving

# A layer is {path: what}: an int is a regular file of that many bytes, "dir" a directory, "->x" a symlink to x,
# "=>x" a hard link to x. Whiteouts are the empty regular files OCI names them: "d/.wh.name", "d/.wh..wh..opq".
Layer = Mapping[str, int | str]


def tar_bytes(layer: Layer, *, compress: bool = True) -> bytes:
    """A layer blob: the tar of the members, gzip-compressed unless told otherwise."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path, what in layer.items():
            member = tarfile.TarInfo(path)
            data = b""
            if what == "dir":
                member.type = tarfile.DIRTYPE
            elif isinstance(what, str) and what.startswith("->"):
                member.type, member.linkname = tarfile.SYMTYPE, what[2:]
            elif isinstance(what, str) and what.startswith("=>"):
                member.type, member.linkname = tarfile.LNKTYPE, what[2:]
            else:
                data = b"x" * int(what)
                member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    return gzip.compress(buffer.getvalue()) if compress else buffer.getvalue()


class Image:
    """Layer blobs by digest, a history, and an open_layer that counts what it opens."""

    def __init__(self, *layers: Layer, compress: bool = True, history: list[dict[str, Any]] | None = None) -> None:
        self.blobs: dict[str, bytes] = {}
        self.layers: list[tuple[str, int]] = []
        for layer in layers:
            blob = tar_bytes(layer, compress=compress)
            digest = "sha256:" + hashlib.sha256(blob).hexdigest()
            self.blobs[digest] = blob
            self.layers.append((digest, len(blob)))
        self.history = history if history is not None else [{"created_by": f"RUN step {n}"} for n in range(len(layers))]
        self.open_layer = mock.Mock(side_effect=lambda digest: io.BytesIO(self.blobs[digest]))

    @property
    def digests(self) -> list[str]:
        return [digest for digest, _ in self.layers]

    def report(self, **options: Any) -> SizeReport:
        return analyze(self.layers, self.history, self.open_layer, reference="test/image:1", **options)


def waste_of(report: SizeReport) -> set[tuple[str, int, int, int, str]]:
    return {(w.path, w.bytes, w.written_in, w.removed_in, w.how) for w in report.waste}


def test_a_file_deleted_by_a_whiteout_in_a_later_layer_is_wasted() -> None:
    image = Image({"data": "dir", "data/big.bin": 3000, "keep": 7}, {"data": "dir", "data/.wh.big.bin": 0})
    report = image.report()
    assert waste_of(report) == {("/data/big.bin", 3000, 0, 1, "deleted")}
    assert report.wasted == 3000
    assert [layer.size for layer in report.layers] == [3007, 0]
    assert [layer.compressed for layer in report.layers] == [len(blob) for blob in image.blobs.values()]
    assert (report.size, report.compressed) == (3007, sum(len(blob) for blob in image.blobs.values()))


def test_an_overwritten_file_wastes_the_bytes_of_the_lower_copy() -> None:
    report = Image({"etc/conf": 500, "bin/tool": 10}, {"etc/conf": 80}, {"bin/tool": "->other"}).report()
    assert waste_of(report) == {("/etc/conf", 500, 0, 1, "overwritten"), ("/bin/tool", 10, 0, 2, "overwritten")}
    assert [layer.size for layer in report.layers] == [510, 80, 0]


def test_an_opaque_directory_hides_everything_lower_layers_had_there() -> None:
    report = Image(
        {"d/a": 10, "d/sub/b": 20, "d/sub/link": "->a", "e": 5},
        {"d/.wh..wh..opq": 0, "d/c": 1, "d/sub/b": 4},
    ).report()
    assert waste_of(report) == {("/d/a", 10, 0, 1, "deleted"), ("/d/sub/b", 20, 0, 1, "deleted")}


def test_a_whiteout_of_a_directory_removes_everything_beneath_it() -> None:
    report = Image({"d/x/y/z": 7, "d/w": 3, "d/x/l": "=>d/w", "dd/keep": 100}, {".wh.d": 0}).report()
    assert waste_of(report) == {("/d/x/y/z", 7, 0, 1, "deleted"), ("/d/w", 3, 0, 1, "deleted")}
    assert report.wasted == 10


def test_a_file_re_added_after_its_deletion_is_wasted_again_only_when_deleted_again() -> None:
    layers: list[Layer] = [{"a": 100}, {".wh.a": 0}, {"a": 50}]
    assert waste_of(Image(*layers).report()) == {("/a", 100, 0, 1, "deleted")}
    report = Image(*layers, {".wh.a": 0}).report()
    assert waste_of(report) == {("/a", 100, 0, 1, "deleted"), ("/a", 50, 2, 3, "deleted")}
    assert report.wasted == 150


def test_a_whiteout_hides_lower_layers_only_never_a_file_of_its_own_layer() -> None:
    report = Image({"a": 100, "d/f": 1}, {"a": 30, ".wh.a": 0, "d": "dir", "d/.wh..wh..opq": 0, "d/g": 2}).report()
    assert waste_of(report) == {("/a", 100, 0, 1, "overwritten"), ("/d/f", 1, 0, 1, "deleted")}
    assert waste_of(Image({"a": 1}, {"b": 2}, {".wh.a": 0, ".wh.b": 0}).report()) == {
        ("/a", 1, 0, 2, "deleted"),
        ("/b", 2, 1, 2, "deleted"),
    }


def test_a_file_written_over_a_directory_replaces_the_tree() -> None:
    report = Image({"opt/app/lib.so": 40, "opt/app/empty": 0}, {"opt/app": 3}).report()
    assert waste_of(report) == {("/opt/app/lib.so", 40, 0, 1, "deleted")}


def test_member_names_are_normalized() -> None:
    report = Image({"./usr/": "dir", "./usr/x": 9}, {"usr/.wh.x": 0}).report()
    assert waste_of(report) == {("/usr/x", 9, 0, 1, "deleted")}


def test_history_entries_map_to_layers_with_the_noise_left_out() -> None:
    history: list[dict[str, Any]] = [
        {"created_by": "ARG BASE_IMAGE=parent", "empty_layer": True},
        {"created_by": "COPY busybox /bin/busybox # buildkit"},
        {"created_by": "ENV A=1", "empty_layer": True},
        {"created_by": "RUN /bin/sh -c rm -rf /x # buildkit"},
        {"created_by": "RUN |2 BASE_IMAGE=parent B= /bin/sh -c echo $B > /y # buildkit"},
        {"created_by": "RUN /bin/busybox rm /big # buildkit"},
        {"created_by": "/bin/sh -c #(nop) ADD file:abc in / "},
        {"created_by": "/bin/sh -c apt-get update"},
    ]
    image = Image(*[{f"f{n}": 1} for n in range(7)], history=history)
    assert [layer.instruction for layer in image.report().layers] == [
        "COPY busybox /bin/busybox",
        "RUN rm -rf /x",
        "RUN echo $B > /y",
        "RUN /bin/busybox rm /big",
        "ADD file:abc in /",
        "RUN apt-get update",
        "",
    ]


def test_added_bytes_are_the_layers_after_the_prefix_shared_with_the_parent() -> None:
    image = Image({"base": 1000}, {"tools": 200, "tmp": 30}, {".wh.tmp": 0, "app": 7}, {".wh.base": 0})
    parent = image.digests[:2]
    report = image.report(parent_layers=parent)
    assert (report.added, report.added_layers) == (7, 2)
    assert report.wasted == 1030
    assert report.wasted_here == 1030
    assert image.report(parent_layers=[*parent[:1], "sha256:" + "0" * 64]).added_layers == 3
    assert image.report(parent_layers=["sha256:" + "1" * 64]).added == report.size
    assert (image.report().added, image.report(parent_layers=image.digests).added_layers) == (report.size, 0)


def test_wasted_here_counts_waste_removed_by_the_images_own_layers() -> None:
    image = Image({"a": 100, "b": 10}, {".wh.a": 0}, {".wh.b": 0})
    report = image.report(parent_layers=image.digests[:2])
    assert (report.wasted, report.wasted_here) == (110, 10)
    document = report.to_json()
    assert [entry["path"] for entry in document["waste"]] == ["/a", "/b"]
    assert document["waste"][1] == {
        "path": "/b",
        "bytes": 10,
        "how": "deleted",
        "written_in": 0,
        "written_by": "RUN step 0",
        "removed_in": 2,
        "removed_by": "RUN step 2",
        "here": True,
    }
    assert [layer["added"] for layer in document["layers"]] == [False, False, True]
    assert document["wasted_here"] == 10
    assert json.loads(json.dumps(document)) == document


def test_top_waste_is_largest_first() -> None:
    report = Image({f"f{n}": n + 1 for n in range(8)}, {f".wh.f{n}": 0 for n in range(8)}).report()
    assert [waste.bytes for waste in report.top_waste()] == [8, 7, 6, 5, 4]
    assert report.top_waste(2) == (Waste("/f7", 8, 0, 1, "deleted"), Waste("/f6", 7, 0, 1, "deleted"))


def test_uncompressed_layers_are_read_and_zstd_is_refused_clearly() -> None:
    plain = Image({"a": 5}, {".wh.a": 0}, compress=False)
    assert plain.report().wasted == 5
    zstd = Image({"a": 5})
    zstd.blobs[zstd.digests[0]] = b"\x28\xb5\x2f\xfd" + b"\0" * 100
    with pytest.raises(ValueError, match="zstd"):
        zstd.report()
    garbage = Image({"a": 5})
    garbage.blobs[garbage.digests[0]] = gzip.compress(b"not a tar" * 100)
    with pytest.raises(ValueError, match="not a readable tar"):
        garbage.report()


@pytest.mark.parametrize("blob", [b"", gzip.compress(b"")])
def test_an_empty_blob_is_an_empty_layer(blob: bytes) -> None:
    image = Image({"a": 5})
    image.blobs[image.digests[0]] = blob
    assert image.report().size == 0


def test_the_cache_reads_each_layer_once(tmp_path: Path) -> None:
    image = Image({"a": 100}, {".wh.a": 0})
    first = image.report(cache=LayerCache(tmp_path))
    assert image.open_layer.call_count == 2
    files = sorted(path.name for path in tmp_path.iterdir())
    assert files == sorted(digest.replace(":", "-") + ".json" for digest in image.digests)  # no temporary files left
    image.open_layer.reset_mock()
    assert image.report(cache=LayerCache(tmp_path)) == first  # a new cache object: read from the files
    image.open_layer.assert_not_called()
    memory = LayerCache()
    image.report(cache=memory)
    image.open_layer.reset_mock()
    assert image.report(cache=memory) == first
    image.open_layer.assert_not_called()


def test_the_cache_can_use_a_directory_of_its_own(tmp_path: Path) -> None:
    image = Image({"a": 100})
    image.report(cache=LayerCache(directory=tmp_path / "layers"))
    assert [path.suffix for path in (tmp_path / "layers").iterdir()] == [".json"]
    image.open_layer.reset_mock()
    image.report(cache=LayerCache(directory=tmp_path / "layers"))
    image.open_layer.assert_not_called()


def test_an_unreadable_cache_file_is_read_again(tmp_path: Path) -> None:
    image = Image({"a": 100})
    image.report(cache=LayerCache(tmp_path))
    (tmp_path / (image.digests[0].replace(":", "-") + ".json")).write_text("{broken")
    image.open_layer.reset_mock()
    assert image.report(cache=LayerCache(tmp_path)).size == 100
    image.open_layer.assert_called_once()


def test_a_layer_listed_twice_is_read_once_even_without_a_cache() -> None:
    image = Image({"a": 1})
    image.layers.append(image.layers[0])
    image.history.append({"created_by": "RUN again"})
    report = image.report()
    assert image.open_layer.call_count == 1
    assert waste_of(report) == {("/a", 1, 0, 1, "overwritten")}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (1234, 1234),
        ("1234", 1234),
        ("200MB", 200_000_000),
        ("1.5GB", 1_500_000_000),
        ("512KiB", 524_288),
        ("100 MB", 100_000_000),
        ("2k", 2000),
        ("3 mib", 3 * 1024**2),
        ("0", 0),
        (" 7 B ", 7),
        ("1.1GB", 1_100_000_000),
    ],
)
def test_parse_size(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "MB", "12 parsecs", "-5MB", "1.2.3GB", "5 M B", -1, True])
def test_parse_size_rejects_what_it_cannot_read_naming_the_units(text: Any) -> None:
    with pytest.raises(ValueError, match="invalid size") as error:
        parse_size(text)
    if isinstance(text, str):
        assert "MB" in str(error.value)
        assert "KiB" in str(error.value)


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (12, "12 B"),
        (999, "999 B"),
        (1000, "1.0 kB"),
        (340_000, "340 kB"),
        (1_234_567, "1.2 MB"),
        (9_960, "10 kB"),
        (999_999, "1.0 MB"),
        (5_000_000, "5.0 MB"),
        (3_000_000_000, "3.0 GB"),
        (-2500, "-2.5 kB"),
    ],
)
def test_human(size: int, text: str) -> None:
    assert human(size) == text


# ---- against a registry on loopback ---------------------------------------------------------------------------


class FakeRegistry(http.server.ThreadingHTTPServer):
    """Manifests and blobs of one repository, answered as a distribution registry does."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.manifests: dict[str, tuple[bytes, str]] = {}
        self.blobs: dict[str, bytes] = {}
        self.paths: list[str] = []

    def blob(self, data: bytes) -> dict[str, Any]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self.blobs[digest] = data
        return {"mediaType": "application/octet-stream", "digest": digest, "size": len(data)}

    def manifest(self, tag: str, document: Mapping[str, Any], media_type: str) -> dict[str, Any]:
        body = json.dumps(document).encode()
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        self.manifests[tag] = self.manifests[digest] = (body, media_type)
        return {"mediaType": media_type, "digest": digest, "size": len(body)}


class _Handler(http.server.BaseHTTPRequestHandler):
    server: FakeRegistry

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        kind, _, name = self.path.rpartition("/")
        found = self.server.manifests.get(name) if kind.endswith("/manifests") else None
        blob = self.server.blobs.get(name) if kind.endswith("/blobs") else None
        body, media_type = found or (blob, "application/octet-stream")
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", media_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    with serving(FakeRegistry()) as server:
        yield server


OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def push_image(registry: FakeRegistry, tag: str, *layers: Layer, history: list[dict[str, Any]]) -> list[str]:
    """An image of the layers under a tag, in an index with an attestation manifest (as buildx pushes them)."""
    config = registry.blob(json.dumps({"architecture": "amd64", "os": "linux", "history": history}).encode())
    descriptors = [registry.blob(tar_bytes(layer)) for layer in layers]
    image = registry.manifest(
        "image", {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": descriptors}, OCI_MANIFEST
    )
    attestation = registry.manifest(
        "attestation", {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": []}, OCI_MANIFEST
    )
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {**attestation, "platform": {"os": "unknown", "architecture": "unknown"}},
            {**image, "platform": {"os": "linux", "architecture": "amd64"}},
        ],
    }
    registry.manifest(tag, index, OCI_INDEX)
    return [descriptor["digest"] for descriptor in descriptors]


def test_from_registry_reads_an_index_and_streams_its_layers(registry: FakeRegistry, tmp_path: Path) -> None:
    history = [{"created_by": "COPY x / # buildkit"}, {"created_by": "RUN /bin/sh -c rm /x # buildkit"}]
    digests = push_image(registry, "t", {"x": 4096, "y": 1}, {".wh.x": 0}, history=history)
    reference = f"localhost:{registry.server_address[1]}/it/image:t"
    client = RegistryClient(timeout=10)
    assert client.layer_digests(reference) == tuple(digests)
    assert not any("/blobs/" in path for path in registry.paths)  # the manifest only
    report = from_registry(client, reference, parent_layers=digests[:1], cache=LayerCache(tmp_path))
    assert (report.reference, report.size, report.added, report.wasted_here) == (reference, 4097, 0, 4096)
    assert report.waste == (Waste("/x", 4096, 0, 1, "deleted"),)
    assert [layer.instruction for layer in report.layers] == ["COPY x /", "RUN rm /x"]
    registry.paths.clear()
    assert from_registry(client, reference, cache=LayerCache(tmp_path)) == SizeReport(
        reference, 4097, report.compressed, report.layers, 4097, 2, 4096, report.waste
    )
    assert sum("/blobs/" in path for path in registry.paths) == 1  # the config; the layers come from the cache


def test_a_blob_that_does_not_match_its_digest_fails_when_read_to_its_end(registry: FakeRegistry) -> None:
    digest = registry.blob(b"the real content")["digest"]
    registry.blobs[digest] = b"something else!!"
    client = RegistryClient(timeout=10)
    reference = f"localhost:{registry.server_address[1]}/it/image:t"
    stream: BinaryIO = client.blob(reference, digest)
    with stream, pytest.raises(EngineError, match="does not match its digest") as error:
        stream.read()
    assert not error.value.transient
    good = registry.blob(b"fine")["digest"]
    with client.blob(reference, good) as stream:
        assert stream.read() == b"fine"


def test_missing_manifests_and_blobs_are_engine_errors_naming_them(registry: FakeRegistry) -> None:
    client = RegistryClient(timeout=10)
    reference = f"localhost:{registry.server_address[1]}/it/image:gone"
    with pytest.raises(EngineError, match="it/image:gone is not in the registry") as error:
        from_registry(client, reference)
    assert not error.value.transient
    with pytest.raises(EngineError, match=r"sha256:0+ is not in the registry"):
        client.blob(reference, "sha256:" + "0" * 64)
