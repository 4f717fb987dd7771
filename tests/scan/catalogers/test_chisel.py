"""Ubuntu chisel manifests.

Oracle: there is no chiselled-image fixture, so the manifest is written here in chisel's jsonwall
layout (a header line, then one JSON object per line with ``kind`` package/slice/path/content, as
described in image-analysis.md §1.4) and zstd-compressed with the ``zstandard`` package; the
expected packages are the ``kind == "package"`` lines written.
"""

from __future__ import annotations

import json

import pytest
import zstandard

from shared.scan.catalogers.chisel import MANIFEST, ChiselCataloger, decompress
from shared.scan.catalogers.errors import CatalogerError
from tests.scan.catalogers.helpers import run_cataloger

LINES = [
    {"jsonwall": "1.0", "schema": "1.0", "count": 6},
    {"kind": "content", "slice": "libc6_libs", "path": "/usr/lib/x86_64-linux-gnu/libc.so.6"},
    {"kind": "package", "name": "libc6", "version": "2.35-0ubuntu3.8", "sha256": "ab" * 32, "arch": "amd64"},
    {"kind": "package", "name": "base-files", "version": "12ubuntu4.6", "sha256": "cd" * 32, "arch": "amd64"},
    {"kind": "path", "path": "/etc/os-release", "mode": "0644", "slices": ["base-files_release-info"]},
    {"kind": "slice", "name": "libc6_libs"},
]


def _manifest(lines: list[dict[str, object]]) -> bytes:
    text = "".join(json.dumps(line) + "\n" for line in lines).encode()
    return zstandard.ZstdCompressor().compress(text)


def test_package_entries_become_deb_packages() -> None:
    packages = run_cataloger(ChiselCataloger(), {MANIFEST: _manifest(LINES)})
    assert [(p.name, p.version, p.architecture, p.type) for p in packages] == [
        ("base-files", "12ubuntu4.6", "amd64", "deb"),
        ("libc6", "2.35-0ubuntu3.8", "amd64", "deb"),
    ]
    assert packages[1].metadata["sha256"] == "ab" * 32
    assert all(p.location == MANIFEST for p in packages)


def test_multiple_zstd_frames_are_read() -> None:
    first, second = _manifest(LINES[:3]), _manifest(LINES[3:])
    packages = run_cataloger(ChiselCataloger(), {MANIFEST: first + second})
    assert sorted(p.name for p in packages) == ["base-files", "libc6"]


def test_decompression_is_capped() -> None:
    bomb = zstandard.ZstdCompressor().compress(b"\n" * 100_000)
    assert len(bomb) < 100
    with pytest.raises(CatalogerError, match="more than 1000 bytes"):
        decompress(bomb, limit=1000)


def test_damaged_manifests_raise_clear_errors() -> None:
    with pytest.raises(CatalogerError, match="not valid zstd"):
        ChiselCataloger().extract(MANIFEST, b"\x28\xb5\x2f\xfd" + b"\xff" * 20)
    with pytest.raises(CatalogerError, match="line 2 is not JSON"):
        ChiselCataloger().extract(MANIFEST, zstandard.ZstdCompressor().compress(b"{}\n{nope\n"))


def test_wants_only_the_manifest() -> None:
    assert ChiselCataloger().wants(MANIFEST, 4096, 0o644)
    assert not ChiselCataloger().wants("/var/lib/chisel/other", 4096, 0o644)
