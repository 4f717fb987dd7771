"""The layer reader's own tar reader (`shared.image.tar`) against independent tools.

Archives are written by GNU tar (every format it writes: gnu, oldgnu, posix/pax, ustar, v7, and its
sparse files) and by Python's tarfile (GNU, PAX, USTAR); the expected member lists and file
contents are what Python's tarfile reads from the very same bytes. Where this reader is stricter
than tarfile (a bad header after the first, data cut short), the test says so and why.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from shared import errors
from shared.image.decompress import ChunkReader, LayerStream
from shared.image.tar import BLOCK, Member, TarReader

MAX_METADATA = 1024 * 1024
LONG_DIR = "very-long-directory-name-" * 6  # 150 characters: beyond ustar's 100-byte name field
needs_gnu_tar = pytest.mark.skipif(shutil.which("tar") is None, reason="GNU tar is not installed")


def members(data: bytes, *, read: bool = True) -> list[tuple[str, str, int, int, str, bytes | None]]:
    """(name, kind, size, mode, link target, content of regular files) for every member."""
    # Through the layer stream the reader runs on in a scan: it seeks forward only, never past the end.
    stream = LayerStream(ChunkReader(iter([data])), limit=1 << 30, what="test")
    reader = TarReader(io.BufferedReader(stream), what="test", max_metadata=MAX_METADATA)
    found = []
    while (member := reader.next()) is not None:
        content = reader.read() if read and member.isreg() and not member.sparse else None
        name = member.name.rstrip("/")
        found.append((name, _kind(member), member.size, member.mode, member.linkname, content))
    return found


def _kind(member: Member | tarfile.TarInfo) -> str:
    if member.isdir():
        return "dir"
    if member.issym():
        return "symlink"
    if member.islnk():
        return "hardlink"
    if member.isreg():
        return "file"
    return "other"


def oracle(data: bytes) -> list[tuple[str, str, int, int, str, bytes | None]]:
    """The same list as Python's tarfile reads it."""
    found = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        for info in archive:
            content = archive.extractfile(info).read() if info.isreg() else None  # type: ignore[union-attr]
            size = info.size if info.isreg() else 0
            found.append((info.name.rstrip("/"), _kind(info), size, info.mode, info.linkname, content))
    return found


def _tree(root: Path) -> None:
    """Files of every kind a layer holds, with names and link targets too long for ustar's fields."""
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "os-release").write_text("ID=test\nVERSION_ID=1\n")
    deep = root / LONG_DIR / "sub"
    deep.mkdir(parents=True)
    (deep / ("file-with-a-long-name-" * 6 + ".txt")).write_bytes(os.urandom(3000))
    (root / "bin").mkdir()
    (root / "bin" / "tool").write_bytes(b"\x7fELF" + os.urandom(700))
    (root / "bin" / "tool").chmod(0o755)
    (root / "bin" / "link-to-tool").hardlink_to(root / "bin" / "tool")
    (root / "etc" / "short-link").symlink_to("os-release")
    (root / "etc" / "long-link").symlink_to("../" + LONG_DIR + "/sub/" + "target-" * 20)
    (root / "empty").write_bytes(b"")
    (root / "café-ünïcode.txt").write_text("names in UTF-8\n")
    os.mkfifo(root / "pipe")


@needs_gnu_tar
@pytest.mark.parametrize("fmt", ["gnu", "oldgnu", "posix", "ustar", "v7"])
def test_gnu_tar_archives_read_as_tarfile_reads_them(tmp_path: Path, fmt: str) -> None:
    _tree(tmp_path / "root")
    archive = tmp_path / "layer.tar"
    command = ["tar", f"--format={fmt}", "-cf", str(archive), "-C", str(tmp_path / "root"), "."]
    if fmt in ("ustar", "v7"):
        # These formats cannot hold the long names: GNU tar leaves those entries out (and says so).
        result = subprocess.run(command, capture_output=True, check=False)
        assert result.returncode in (0, 2), result.stderr
    else:
        subprocess.run(command, check=True)
    data = archive.read_bytes()
    found = members(data)
    assert found == oracle(data)
    names = {entry[0] for entry in found}
    assert {"./bin/tool", "./bin/link-to-tool", "./etc/short-link"} <= names
    if fmt not in ("ustar", "v7"):
        assert {f"./{LONG_DIR}/sub/{'file-with-a-long-name-' * 6}.txt", "./pipe"} <= names


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
def test_tarfile_archives(tmp_path: Path, fmt: int) -> None:
    _tree(tmp_path / "root")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as archive:
        for path in sorted((tmp_path / "root").rglob("*")):
            name = str(path.relative_to(tmp_path / "root"))
            if fmt == tarfile.USTAR_FORMAT and (LONG_DIR in name or name == "etc/long-link"):
                continue  # ustar cannot hold these names and link targets (tarfile refuses them)
            archive.add(path, arcname=name, recursive=False)
    data = buffer.getvalue()
    assert members(data) == oracle(data)


def test_a_pax_global_header_applies_to_the_members_after_it() -> None:
    buffer = io.BytesIO()
    pax = {"comment": "x", "path": "global-name"}
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT, pax_headers=pax) as tar:
        info = tarfile.TarInfo("a")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"1"))
    assert members(buffer.getvalue()) == oracle(buffer.getvalue())


@needs_gnu_tar
@pytest.mark.parametrize("fmt", ["gnu", "posix"])
def test_sparse_files_are_flagged_and_skipped_whole(tmp_path: Path, fmt: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    with (root / "a-sparse").open("wb") as sparse:  # holes between data: GNU tar stores a sparse map
        for offset in range(0, 40 * 1024 * 1024, 4 * 1024 * 1024):
            sparse.seek(offset)
            sparse.write(b"data" * 1024)
    (root / "b-after").write_text("after the sparse file\n")
    archive = tmp_path / "layer.tar"
    subprocess.run(
        ["tar", f"--format={fmt}", "--sparse", "-cf", str(archive), "-C", str(root), "a-sparse", "b-after"],
        check=True,
    )
    reader = TarReader(io.BufferedReader(io.FileIO(archive)), what="test", max_metadata=MAX_METADATA)
    first = reader.next()
    assert first is not None and first.sparse and first.isreg()
    second = reader.next()
    assert second is not None and second.name == "b-after" and not second.sparse
    assert reader.read() == b"after the sparse file\n"
    assert reader.next() is None


def _header(name: str, size: int, kind: bytes = b"0") -> bytearray:
    info = tarfile.TarInfo(name)
    info.size = size
    info.type = kind
    return bytearray(info.tobuf(format=tarfile.USTAR_FORMAT))


def _checksum(header: bytearray) -> bytearray:
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    return header


def _pad(data: bytes) -> bytes:
    return data + bytes(-len(data) % BLOCK)


def test_base_256_numbers_and_signed_checksums_are_read() -> None:
    header = _header("big", 5)
    header[124:136] = b"\x80" + (5).to_bytes(11, "big")  # GNU base-256 size
    header[0:6] = b"\xe9t\xe9big"  # high bytes: a signed-byte sum differs from the unsigned one
    header[148:156] = b" " * 8
    signed = sum(b - 256 if b > 127 else b for b in header)
    header[148:156] = b"%06o\0 " % signed
    data = bytes(header) + _pad(b"hello") + bytes(2 * BLOCK)
    [(name, kind, size, _, _, content)] = members(data)
    assert (kind, size, content) == ("file", 5, b"hello")
    assert name == b"\xe9t\xe9big".decode("utf-8", "surrogateescape")  # undecodable bytes kept


def test_an_archive_of_zero_blocks_is_empty_and_an_empty_stream_is_not_a_tar() -> None:
    assert members(bytes(2 * BLOCK)) == []
    with pytest.raises(errors.CorruptLayer, match="empty"):
        members(b"")


def test_a_bad_header_after_the_first_is_refused() -> None:
    # tarfile ends the archive quietly here, dropping every later entry; Go's archive/tar (what
    # container runtimes apply layers with) fails, and so does this reader.
    first = bytes(_checksum(_header("one", 3))) + _pad(b"abc")
    second = _header("two", 0)
    second[0] ^= 0xFF  # the checksum no longer adds up
    data = first + bytes(second) + bytes(2 * BLOCK)
    assert [m[0] for m in oracle(data)] == ["one"]
    with pytest.raises(errors.CorruptLayer, match="checksum"):
        members(data)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (bytes(_checksum(_header("cut", 2000))) + b"x" * 700, "inside an entry's data"),
        (bytes(_checksum(_header("cut", 0)))[:300], "inside a header"),
        (bytes(_checksum(_header("cut", 10)))[:148] + b"garbage!" + bytes(356), "octal number"),
    ],
)
def test_streams_cut_short_or_garbled_are_corrupt(data: bytes, reason: str) -> None:
    with pytest.raises(errors.CorruptLayer, match=reason):
        members(data, read=False)


def _record(body: bytes) -> bytes:
    """``"%d %s\n"`` where the number counts the whole record, its own digits included."""
    length = len(body) + 2
    while len(b"%d %s\n" % (length, body)) != length:
        length += 1
    return b"%d %s\n" % (length, body)


def _pax(records: bytes) -> bytes:
    return bytes(_checksum(_header("././@PaxHeader", len(records), b"x"))) + _pad(records)


def test_pax_records_override_name_and_size() -> None:
    pax = _pax(_record(b"path=" + b"p" * 200))
    data = pax + bytes(_checksum(_header("short", 1))) + _pad(b"z") + bytes(2 * BLOCK)
    assert members(data) == oracle(data) == [("p" * 200, "file", 1, 0o644, "", b"z")]


@pytest.mark.parametrize("records", [b"12 path=abc", b"x path=abc\n", b"99 path=abc\n", b"9 pathabc\n"])
def test_malformed_pax_records_are_corrupt(records: bytes) -> None:
    data = _pax(records) + bytes(_checksum(_header("f", 0))) + bytes(2 * BLOCK)
    with pytest.raises(errors.CorruptLayer, match="pax record"):
        members(data)


def test_oversized_metadata_is_refused_before_it_is_read() -> None:
    header = bytes(_checksum(_header("././@LongLink", MAX_METADATA + 1, b"L")))
    with pytest.raises(errors.HostileLayer, match="metadata header"):
        members(header)  # the data is not even there: the size alone refuses it
