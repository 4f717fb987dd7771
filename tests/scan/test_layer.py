"""Reading one layer: compressions, caps, hostile and broken streams.

Every refused layer must end in an `AgentError` with a stable code, and nothing is ever written to
disk (checked by looking for the file a traversal entry names). Expected contents come from the tars
built in each test; compressed forms are produced by independent tools where the machine has them
(GNU gzip, the zstd CLI), so the reader is not only tested against its own library's output.
"""

from __future__ import annotations

import io
import mmap
import os
import shutil
import subprocess
import tarfile
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zstandard

from shared import errors
from shared.image import layer as layer_module
from shared.image import open_source
from shared.image.layer import LayerLimits, read_layer
from shared.image.paths import normalise
from shared.scan.catalogers.golang import GoBinaryCataloger
from shared.scan.catalogers.rust import RustBinaryCataloger
from shared.settings import Settings
from tests.scan.layers import (
    OCI_LAYER_TAR,
    OCI_LAYER_ZSTD,
    Everything,
    Wanting,
    analyse,
    gz,
    sha256,
    source_files,
    tar_bytes,
    write_layout,
)

SMALL = [("dir", "etc"), ("file", "etc/os-release", "ID=test\n"), ("exe", "usr/bin/tool", "#!/bin/sh\n")]
SMALL_FILES = {
    "/etc/os-release": Everything().extract("", b"ID=test\n"),
    "/usr/bin/tool": Everything().extract("", b"#!/bin/sh\n"),
}


def _read(blob: bytes, limits: LayerLimits | None = None) -> dict[str, str]:
    analysis = read_layer(iter([blob]), [Everything()], limits or LayerLimits(), digest=sha256(blob))
    return {p: str(v) for p, v in analysis.values["everything"].items()}


# -- names -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("./usr/bin/", "/usr/bin"),
        ("usr//lib/./x", "/usr/lib/x"),
        ("/etc/passwd", "/etc/passwd"),  # absolute: relative to the root, as tar and containerd do
        ("/../etc/x", "/etc/x"),  # ".." of the root is the root
        ("//etc/x", "/etc/x"),  # posixpath keeps a leading "//": must not survive
        ("a/b/../c", "/a/c"),
        (".", "/"),
    ],
)
def test_names_are_normalised(name: str, expected: str) -> None:
    assert normalise(name) == expected


@pytest.mark.parametrize("name", ["../evil", "a/../../evil", "..", "x\x00y", "a" * 5000])
def test_hostile_names_are_refused(name: str) -> None:
    with pytest.raises(errors.HostileLayer) as raised:
        normalise(name)
    assert raised.value.code == "LAYER_REFUSED"


def test_traversal_entry_refuses_the_layer_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    marker = f"traversal-{os.getpid()}-{id(tmp_path)}"
    blob = gz(tar_bytes([("file", "ok", "1"), ("file", f"../../{marker}", "pwned")]))
    with pytest.raises(errors.HostileLayer, match="path traversal"):
        analyse([blob], [Everything()])
    for directory in (tmp_path, tmp_path.parent, tmp_path.parent.parent, Path("/")):
        assert not (directory / marker).exists()
    hardlink = gz(tar_bytes([("hardlink", "bin/sh", "../../etc/shadow")]))
    with pytest.raises(errors.HostileLayer, match="hard link target"):
        analyse([hardlink], [Everything()])


def test_absolute_names_are_read_inside_the_image() -> None:
    blob = gz(tar_bytes([("file", "/etc/passwd", "root:x:0:0\n"), ("file", "/../etc/group", "root:x:0:\n")]))
    assert sorted(_read(blob)) == ["/etc/group", "/etc/passwd"]


# -- compressions ----------------------------------------------------------------------------------


def test_gzip_from_gnu_gzip_and_multi_member(tmp_path: Path) -> None:
    raw = tar_bytes(SMALL)
    gnu = subprocess.run(["gzip", "-c", "-9"], input=raw, capture_output=True, check=True).stdout
    assert _read(gnu) == SMALL_FILES
    # pigz and some registries' re-compressors write several gzip members: one stream to a reader.
    half = len(raw) // 2
    assert _read(gz(raw[:half]) + gz(raw[half:])) == SMALL_FILES


def test_zstd_layer(tmp_path: Path) -> None:
    raw = tar_bytes(SMALL)
    if shutil.which("zstd"):
        blob = subprocess.run(["zstd", "-q", "-c"], input=raw, capture_output=True, check=True).stdout
    else:  # the library is then the only producer at hand
        blob = zstandard.ZstdCompressor().compress(raw)
    assert blob[:4] == b"\x28\xb5\x2f\xfd"
    layout = write_layout(tmp_path / "zstd", [blob], media_types=[OCI_LAYER_ZSTD], diff_ids=[sha256(raw)])
    with open_source(f"oci-dir:{layout}") as source:
        assert source_files(source) == SMALL_FILES
    # Two frames, as BuildKit's estargz-like writers produce: one stream across frames.
    two = zstandard.ZstdCompressor().compress(raw[:700]) + zstandard.ZstdCompressor().compress(raw[700:])
    assert _read(two) == SMALL_FILES


def test_uncompressed_layer(tmp_path: Path) -> None:
    raw = tar_bytes(SMALL)
    layout = write_layout(tmp_path / "plain", [raw], media_types=[OCI_LAYER_TAR])
    with open_source(f"oci-dir:{layout}") as source:
        assert source.info.diff_ids == (source.info.layers[0].digest,)  # a plain tar is its own diff
        assert source_files(source) == SMALL_FILES


def test_foreign_compression_is_named() -> None:
    with pytest.raises(errors.CorruptLayer, match="bzip2"):
        _read(b"BZh91AY&SY" + b"\0" * 100)


# -- caps ------------------------------------------------------------------------------------------


def _zero_file_tar_gz(size: int) -> bytes:
    """A tar holding one file of ``size`` zero bytes, gzip-compressed without ever holding it whole."""
    header = tarfile.TarInfo("bomb")
    header.size = size
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [compressor.compress(header.tobuf(format=tarfile.USTAR_FORMAT))]
    zeros = bytes(1 << 20)
    for _ in range(size >> 20):
        out.append(compressor.compress(zeros))
    out.append(compressor.compress(bytes(1024)))  # end-of-archive blocks
    out.append(compressor.flush())
    return b"".join(out)


def test_gzip_bomb_stops_at_the_uncompressed_cap_with_little_memory() -> None:
    bomb = _zero_file_tar_gz(256 << 20)
    assert len(bomb) < 1 << 20  # 256 MiB of zeros in under 1 MiB
    limits = LayerLimits(max_layer_bytes=16 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(errors.LayerTooLarge) as raised:
            read_layer(iter([bomb]), [Wanting(frozenset())], limits, digest=sha256(bomb))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert raised.value.code == "LAYER_TOO_LARGE" and "decompression bomb" in raised.value.message
    assert peak < 4 << 20  # streamed: nowhere near the 16 MiB that passed through
    # A cataloger wanting the bomb's one file reads it, and is stopped by the same cap.
    with pytest.raises(errors.LayerTooLarge):
        read_layer(iter([bomb]), [Everything()], limits, digest=sha256(bomb))


def test_zstd_bomb_stops_at_the_uncompressed_cap() -> None:
    header = tarfile.TarInfo("bomb")
    header.size = 64 << 20
    compressor = zstandard.ZstdCompressor().compressobj()
    blob = compressor.compress(header.tobuf(format=tarfile.USTAR_FORMAT))
    for _ in range(64):
        blob += compressor.compress(bytes(1 << 20))
    blob += compressor.flush()
    with pytest.raises(errors.LayerTooLarge):
        read_layer(iter([blob]), [Everything()], LayerLimits(max_layer_bytes=8 << 20), digest=sha256(blob))


class _ManyEntries:
    """A tar stream of ``count`` empty files, generated header by header as it is read."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.generated = 0
        template = tarfile.TarInfo("f/0000000").tobuf(format=tarfile.USTAR_FORMAT)
        self.template = bytearray(template)

    def header(self, index: int) -> bytes:
        block = bytearray(self.template)
        block[0:9] = b"f/%07d" % index
        block[148:156] = b"        "  # checksum counted as spaces, then written as 6 octal digits
        block[148:156] = b"%06o\x00 " % sum(block)
        return bytes(block)

    def __iter__(self) -> Iterator[bytes]:
        batch = 256
        for start in range(0, self.count, batch):
            stop = min(self.count, start + batch)
            self.generated = stop
            yield b"".join(self.header(i) for i in range(start, stop))
        yield bytes(1024)


def test_a_million_entries_fail_at_the_entry_cap_without_reading_on() -> None:
    stream = _ManyEntries(1_000_000)
    tracemalloc.start()
    try:
        with pytest.raises(errors.LayerTooLarge, match="SCAN_MAX_LAYER_ENTRIES"):
            read_layer(
                iter(stream),
                [Wanting(frozenset())],
                LayerLimits(max_entries=20_000),
                digest="sha256:" + "0" * 64,
            )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stream.generated < 21_000  # stopped at the cap, not after reading the million
    # A reader that kept every header it read would hold 20,000 of them here (~12 MB with tarfile's).
    assert peak < 8 << 20


def test_default_caps_are_the_settings_defaults() -> None:
    assert LayerLimits.from_settings(Settings()) == LayerLimits()


def test_oversized_tar_metadata_header_is_refused() -> None:
    info = tarfile.TarInfo("x")
    info.pax_headers = {"comment": "y" * (2 << 20)}
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(errors.HostileLayer, match="metadata header"):
        _read(raw.getvalue(), LayerLimits())


def test_file_over_the_per_file_cap_is_skipped_with_a_warning() -> None:
    blob = gz(tar_bytes([("file", "big", "x" * 2000), ("file", "small", "y")]))
    analysis = read_layer(iter([blob]), [Everything()], LayerLimits(max_file_bytes=1000), digest=sha256(blob))
    assert sorted(analysis.values["everything"]) == ["/small"]
    assert any("/big: 2000 bytes" in w and "SCAN_MAX_FILE_BYTES" in w for w in analysis.warnings)


def test_extract_failure_is_a_warning_for_that_file() -> None:
    class Fussy(Everything):
        def extract(self, path: str, data: bytes) -> str:
            if path == "/bad":
                raise ValueError("not what the path promised")
            return super().extract(path, data)

    blob = gz(tar_bytes([("file", "bad", "?"), ("file", "good", "!")]))
    analysis = read_layer(iter([blob]), [Fussy()], LayerLimits(), digest=sha256(blob))
    assert sorted(analysis.values["everything"]) == ["/good"]
    assert any("/bad" in w and "not what the path promised" in w for w in analysis.warnings)


# -- broken streams --------------------------------------------------------------------------------


def test_truncated_stream_fails_clearly(tmp_path: Path) -> None:
    blob = gz(tar_bytes([("file", "a", "x" * 50_000), ("file", "b", "y")]))
    with pytest.raises(errors.CorruptLayer, match="corrupt or truncated"):
        _read(blob[: len(blob) // 2], LayerLimits())
    # Through a source whose manifest declares the full blob: the cut is caught either way.
    layout = write_layout(
        tmp_path / "cut", [blob[: len(blob) // 2]], sizes=[len(blob)], diff_ids=[sha256(b"")]
    )
    with open_source(f"oci-dir:{layout}") as source, pytest.raises(errors.AgentError) as raised:
        source_files(source)
    assert raised.value.code in {"LAYER_CORRUPT", "REGISTRY_PROTOCOL", "DIGEST_INVALID"}


def test_flipped_byte_in_plain_layer_is_caught_by_the_digest(tmp_path: Path) -> None:
    raw = tar_bytes([("file", "etc/passwd", "root:x:0:0\n")])
    layout = write_layout(tmp_path / "flip", [raw], media_types=[OCI_LAYER_TAR])
    blob_path = layout / "blobs/sha256" / sha256(raw).split(":")[1]
    damaged = bytearray(raw)
    damaged[raw.index(b"root")] ^= 0x20  # "Root": still a perfectly valid tar
    blob_path.write_bytes(bytes(damaged))
    with open_source(f"oci-dir:{layout}") as source, pytest.raises(errors.DigestMismatch) as raised:
        source_files(source)
    assert raised.value.code == "DIGEST_INVALID" and sha256(raw) in raised.value.message


def test_corrupted_gzip_fails_clearly() -> None:
    blob = bytearray(gz(tar_bytes([("file", "a", os.urandom(20_000).hex())])))
    blob[len(blob) // 2] ^= 0xFF
    with pytest.raises(errors.AgentError) as raised:
        _read(bytes(blob), LayerLimits())
    assert raised.value.code == "LAYER_CORRUPT"


def test_diff_id_mismatch_is_refused(tmp_path: Path) -> None:
    blob = gz(tar_bytes(SMALL))
    layout = write_layout(tmp_path / "diff", [blob], diff_ids=[sha256(b"something else")])
    with open_source(f"oci-dir:{layout}") as source, pytest.raises(errors.DigestMismatch, match="diff_id"):
        source_files(source)


def test_not_a_tar_is_corrupt() -> None:
    with pytest.raises(errors.CorruptLayer):
        _read(gz(b"this is not a tar archive, just text " * 40), LayerLimits())


# -- large programs ----------------------------------------------------------------------------------

BINARIES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "binaries"


def _program_layer(programs: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in programs.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return gz(raw.getvalue())


@pytest.mark.parametrize(
    ("fixture", "cataloger"),
    [("go-buildinfo.elf", GoBinaryCataloger), ("rust-cargo-auditable.elf", RustBinaryCataloger)],
)
def test_large_programs_are_mapped_from_a_temporary_file_with_the_same_result(
    monkeypatch: pytest.MonkeyPatch, fixture: str, cataloger: type[GoBinaryCataloger | RustBinaryCataloger]
) -> None:
    blob = _program_layer({"usr/local/bin/app": (BINARIES / fixture).read_bytes()})
    held = read_layer(iter([blob]), [cataloger()], LayerLimits(), digest=sha256(blob))
    given: list[type] = []

    class Recording(cataloger):  # type: ignore[valid-type,misc]
        def extract(self, path: str, data: bytes) -> Any:
            given.append(type(data))
            return super().extract(path, data)

    monkeypatch.setattr(layer_module, "SPOOL_ABOVE", 64 * 1024)  # the fixtures are 0.4 and 2.6 MB
    mapped = read_layer(iter([blob]), [Recording()], LayerLimits(), digest=sha256(blob))
    assert given == [mmap.mmap]
    assert mapped.values == held.values and held.values[cataloger.name]["/usr/local/bin/app"]
    assert not held.warnings and not mapped.warnings


def test_a_large_program_costs_little_memory() -> None:
    program = b"\x7fELF" + bytes(64 << 20)  # ELF magic, then 64 MiB: read whole, it would be held whole
    blob = _program_layer({"opt/big": program})
    tracemalloc.start()
    try:
        analysis = read_layer(iter([blob]), [GoBinaryCataloger()], LayerLimits(), digest=sha256(blob))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "/opt/big" in analysis.files  # it was read (and found not to be a valid ELF program)
    assert peak < 16 << 20
