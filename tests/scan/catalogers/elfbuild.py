"""A minimal ELF64 little-endian executable builder for synthetic binaries (written from elf(5)).

Layout: file header, one read-write ``PT_LOAD`` segment mapping the whole file at ``BASE``, the given
sections, ``.shstrtab``, then the section header table. Enough for Go's ``debug/elf`` (and so
syft) and for our reader to find sections and map virtual addresses.
"""

from __future__ import annotations

import struct

BASE = 0x400000
PF_R, PF_W = 4, 2
SHT_PROGBITS, SHT_STRTAB = 1, 3
SHF_WRITE, SHF_ALLOC = 1, 2


def build_elf(sections: list[tuple[str, bytes]], align: int = 16) -> bytes:
    header_size, phdr_size, shdr_size = 64, 56, 64
    body = bytearray()
    placed: list[tuple[str, int, int]] = []  # (name, file offset, size)
    offset = header_size + phdr_size
    for name, data in sections:
        padding = -offset % align
        body += b"\0" * padding
        offset += padding
        placed.append((name, offset, len(data)))
        body += data
        offset += len(data)
    names = b"\0" + b"".join(n.encode() + b"\0" for n, _ in sections) + b".shstrtab\0"
    shstrtab_offset = offset
    body += names
    offset += len(names)
    offset += -offset % 8
    body += b"\0" * (offset - header_size - phdr_size - len(body))
    shoff = offset
    section_count = len(sections) + 2  # null section, the sections, .shstrtab

    tables = bytearray(b"\0" * shdr_size)  # SHN_UNDEF
    name_offset = 1
    for name, at, size in placed:
        tables += struct.pack(
            "<IIQQQQIIQQ", name_offset, SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, BASE + at, at, size, 0, 0, 16, 0
        )
        name_offset += len(name) + 1
    tables += struct.pack(
        "<IIQQQQIIQQ", name_offset, SHT_STRTAB, 0, 0, shstrtab_offset, len(names), 0, 0, 1, 0
    )

    total = shoff + len(tables)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    header = ident + struct.pack(
        "<HHIQQQIHHHHHH",
        2,
        62,
        1,
        BASE,
        header_size,
        shoff,
        0,
        header_size,
        phdr_size,
        1,
        shdr_size,
        section_count,
        section_count - 1,
    )
    phdr = struct.pack("<IIQQQQQQ", 1, PF_R | PF_W, 0, BASE, BASE, total, total, 0x1000)
    return bytes(header + phdr + body + tables)
