"""Rebuilt layers compared with the registry's, file by file: content, mode, owner, added, removed, times apart."""

from __future__ import annotations

import gzip
import io
import tarfile

from buildflow.quality.reproduce import SHOWN_FILES, FileChange, Layers, compare, differences, listing


def layer(files: dict[str, tuple[bytes, int, int]], *, zipped: bool = True) -> bytes:
    """A layer tar: path -> (content, mode, mtime); gzip-compressed unless told."""
    stream = io.BytesIO()
    with tarfile.open(fileobj=stream, mode="w") as archive:
        for path, (content, mode, mtime) in files.items():
            member = tarfile.TarInfo(path)
            member.size, member.mode, member.mtime = len(content), mode, mtime
            archive.addfile(member, io.BytesIO(content))
    return gzip.compress(stream.getvalue(), mtime=0) if zipped else stream.getvalue()


def test_listings_of_gzip_and_plain_layers_agree() -> None:
    files = {"./stamp": (b"1", 0o644, 5), "bin/x": (b"x", 0o755, 5)}
    assert listing(io.BytesIO(layer(files))) == listing(io.BytesIO(layer(files, zipped=False)))
    assert set(listing(io.BytesIO(layer(files)))) == {"/stamp", "/bin/x"}


def test_changes_name_the_file_and_what_changed_and_count_times_apart() -> None:
    before = listing(io.BytesIO(layer({"a": (b"1", 0o644, 1), "b": (b"2", 0o644, 1), "c": (b"3", 0o644, 1)})))
    after = listing(
        io.BytesIO(layer({"a": (b"9", 0o644, 1), "b": (b"2", 0o755, 2), "c": (b"3", 0o644, 7), "d": (b"", 0o644, 1)}))
    )
    changes, times = compare(before, after)
    assert changes == [FileChange("/a", "content"), FileChange("/b", "mode"), FileChange("/d", "added")]
    assert times == 1
    assert compare(after, before)[0][-1] == FileChange("/d", "removed")


def test_only_layers_with_other_digests_are_read_and_long_lists_are_cut() -> None:
    blobs = {
        "same": layer({"x": (b"x", 0o644, 1)}),
        "old": layer({f"f{n:02}": (b"1", 0o644, 1) for n in range(SHOWN_FILES + 3)}),
        "new": layer({f"f{n:02}": (b"2", 0o644, 1) for n in range(SHOWN_FILES + 3)}),
        "old-time": layer({"t": (b"t", 0o644, 1)}),
        "new-time": layer({"t": (b"t", 0o644, 2)}),
    }
    opened: list[str] = []

    def open_blob(digest: str) -> io.BytesIO:
        opened.append(digest)
        return io.BytesIO(blobs[digest])

    found = differences(
        Layers(["same", "old", "old-time"], open_blob, ["COPY x /", "RUN a", "RUN b"]),
        Layers(["same", "new", "new-time"], open_blob),
    )
    assert "same" not in opened
    assert [(layer.index, layer.instruction, layer.content) for layer in found] == [
        (2, "RUN a", True),
        (3, "RUN b", False),
    ]
    assert len(found[0].files) == SHOWN_FILES and found[0].more_files == 3
    assert found[1].times_only == 1 and found[1].to_json()["files"] == []


def test_a_layer_only_one_side_has_is_all_added() -> None:
    found = differences(
        Layers([], lambda digest: io.BytesIO(b"")),
        Layers(["extra"], lambda digest: io.BytesIO(layer({"n": (b"n", 0o644, 1)}))),
    )
    assert found[0].registry == "" and found[0].files == (FileChange("/n", "added"),) and found[0].content
