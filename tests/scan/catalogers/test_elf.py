"""The minimal ELF reader and the executable-candidate rule.

Oracle for the reader: binutils ``readelf`` on the fixtures (section names, offsets and sizes as
binutils parses them). The candidate rule is checked against its documented cases.
"""

from __future__ import annotations

import re
import struct

import pytest

from shared.scan.catalogers.elf import ElfError, ElfFile, is_elf
from shared.scan.catalogers.executables import is_candidate
from tests.scan.catalogers.elfbuild import BASE, build_elf
from tests.scan.catalogers.helpers import fixture_path, require_tool, run_tool

_SECTION = re.compile(r"\[\s*[1-9]\d*\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)")


@pytest.mark.parametrize("name", ["go-buildinfo.elf", "rust-cargo-auditable.elf"])
def test_sections_match_readelf(name: str) -> None:
    path = fixture_path("binaries", name)
    listing = run_tool([require_tool("readelf"), "-S", "-W", str(path)])
    expected = {
        m.group(1): (int(m.group(2), 16), int(m.group(3), 16), int(m.group(4), 16))
        for m in _SECTION.finditer(listing)
    }
    elf = ElfFile(path.read_bytes())
    ours = {s.name: (s.addr, s.offset, s.size) for s in elf.sections if s.name}
    assert ours == expected and len(ours) > 10


def test_virtual_addresses_map_through_load_segments() -> None:
    elf = ElfFile(build_elf([(".data", b"0123456789abcdef" + b"hello")]))
    section = elf.section(".data")
    assert section is not None and section.addr == BASE + section.offset
    assert elf.read_virtual(section.addr + 16, 5) == b"hello"
    with pytest.raises(ElfError, match="not mapped"):
        elf.read_virtual(0x10, 4)


def test_damaged_headers_raise_elf_errors() -> None:
    good = bytearray(build_elf([(".data", b"x" * 32)]))
    with pytest.raises(ElfError, match="not an ELF"):
        ElfFile(b"\x7fELF")
    bad_class = bytearray(good)
    bad_class[4] = 7
    with pytest.raises(ElfError, match="class"):
        ElfFile(bytes(bad_class))
    bad_table = bytearray(good)
    struct.pack_into("<Q", bad_table, 40, len(good) - 8)  # section table starts near the end
    with pytest.raises(ElfError, match="runs past the file"):
        ElfFile(bytes(bad_table))
    small_entries = bytearray(good)
    struct.pack_into("<H", small_entries, 58, 8)  # e_shentsize smaller than a section header
    with pytest.raises(ElfError, match="entry size"):
        ElfFile(bytes(small_entries))
    assert not is_elf(b"MZ\x90\x00") and is_elf(bytes(good))


@pytest.mark.parametrize(
    ("path", "size", "mode", "expected"),
    [
        ("/usr/local/bin/kubectl", 50_000_000, 0o755, True),  # execute bit
        ("/app/server", 10_000_000, 0o644, True),  # no extension, outside skipped dirs (Snyk's rule)
        ("/etc/alternatives/thing", 10_000, 0o644, False),  # /etc is skipped without an execute bit
        ("/usr/share/zoneinfo/UTC", 114, 0o644, False),
        ("/usr/lib/x86_64-linux-gnu/libssl.so.3", 600_000, 0o755, False),  # shared library by name
        ("/usr/bin/script.sh", 600, 0o755, False),
        ("/app/data.bin", 600, 0o644, False),  # has an extension and no execute bit
        ("/usr/bin/tiny", 10, 0o755, False),  # smaller than an ELF header
        ("/usr/bin/huge", 1 << 40, 0o755, False),
    ],
)
def test_executable_candidates(path: str, size: int, mode: int, expected: bool) -> None:
    assert is_candidate(path, size, mode) is expected
