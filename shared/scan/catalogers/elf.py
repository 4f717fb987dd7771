"""Just enough of the ELF format to find sections and read data by virtual address.

Written from the System V ABI (``elf(5)``): the file header gives the class (32/64-bit), byte order
and the offsets of the section and program header tables. Sections are found by name through the
section-name string table; ``read_virtual`` maps a virtual address to file bytes through the
``PT_LOAD`` segments, which is how Go's pre-1.18 build info points at its strings.

Every offset and count is checked against the file size; table sizes are bounded by what the file
can hold, so a hostile header cannot cause large allocations or long loops. Anything malformed
raises `ElfError` (a `CatalogerError`); callers sniff `is_elf` first so non-ELF files cost nothing.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from shared.scan.catalogers.errors import CatalogerError

ELF_MAGIC = b"\x7fELF"
PT_LOAD = 1
PF_X = 1
PF_W = 2
SHT_NOBITS = 8
SHN_XINDEX = 0xFFFF
PN_XNUM = 0xFFFF


class ElfError(CatalogerError):
    """The file starts like ELF but its tables are inconsistent."""


def is_elf(data: bytes) -> bool:
    return data[:4] == ELF_MAGIC


@dataclass(frozen=True)
class Section:
    name: str
    type: int
    addr: int
    offset: int
    size: int


@dataclass(frozen=True)
class Segment:
    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int


class ElfFile:
    def __init__(self, data: bytes) -> None:
        if len(data) < 52 or not is_elf(data):
            raise ElfError("not an ELF file")
        elf_class, encoding = data[4], data[5]
        if elf_class not in (1, 2):
            raise ElfError(f"unknown ELF class {elf_class}")
        if encoding not in (1, 2):
            raise ElfError(f"unknown ELF data encoding {encoding}")
        self.data = data
        self.is64 = elf_class == 2
        self.order = "<" if encoding == 1 else ">"
        self.ptr_size = 8 if self.is64 else 4
        if self.is64:
            if len(data) < 64:
                raise ElfError("ELF64 header truncated")
            phoff, shoff = struct.unpack_from(self.order + "QQ", data, 32)
            phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from(self.order + "HHHHH", data, 54)
        else:
            phoff, shoff = struct.unpack_from(self.order + "II", data, 28)
            phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from(self.order + "HHHHH", data, 42)
        self.sections = self._read_sections(shoff, shentsize, shnum, shstrndx)
        if phnum == PN_XNUM and self._raw_section0 is not None:
            phnum = self._raw_section0[2]  # sh_info holds the real count
        self.segments = self._read_segments(phoff, phentsize, phnum)

    _raw_section0: tuple[int, int, int] | None = None  # (sh_size, sh_link, sh_info) of section 0

    def _table(self, offset: int, entsize: int, count: int, minimum: int, what: str) -> int:
        if count == 0 or offset == 0:
            return 0
        if entsize < minimum:
            raise ElfError(f"{what} entry size {entsize} is smaller than {minimum}")
        if offset + entsize * count > len(self.data):
            raise ElfError(f"{what} table ({count} x {entsize} at {offset}) runs past the file")
        return count

    def _section_header(self, offset: int) -> tuple[int, int, int, int, int, int, int]:
        """(sh_name, sh_type, sh_addr, sh_offset, sh_size, sh_link, sh_info)."""
        if self.is64:
            name, kind, _flags, addr, off, size, link, info = struct.unpack_from(
                self.order + "IIQQQQII", self.data, offset
            )
        else:
            name, kind, _flags, addr, off, size, link, info = struct.unpack_from(
                self.order + "IIIIIIII", self.data, offset
            )
        return name, kind, addr, off, size, link, info

    def _read_sections(self, shoff: int, entsize: int, count: int, strndx: int) -> list[Section]:
        minimum = 64 if self.is64 else 40
        if shoff and shoff + minimum <= len(self.data):
            _, _, _, _, size0, link0, info0 = self._section_header(shoff)
            self._raw_section0 = (size0, link0, info0)
            if count == 0:
                count = size0  # extended numbering: the real count lives in section 0
            if strndx == SHN_XINDEX:
                strndx = link0
        count = self._table(shoff, entsize, count, minimum, "section header")
        raw = [self._section_header(shoff + i * entsize) for i in range(count)]
        if not raw:
            return []
        names = b""
        if 0 < strndx < len(raw):
            _, _, _, off, size, _, _ = raw[strndx]
            if off + size <= len(self.data):
                names = self.data[off : off + size]
        sections = []
        for name_off, kind, addr, off, size, _, _ in raw:
            end = names.find(b"\0", name_off) if name_off < len(names) else -1
            name = names[name_off:end].decode("ascii", errors="replace") if end >= 0 else ""
            sections.append(Section(name=name, type=kind, addr=addr, offset=off, size=size))
        return sections

    def _read_segments(self, phoff: int, entsize: int, count: int) -> list[Segment]:
        minimum = 56 if self.is64 else 32
        count = self._table(phoff, entsize, count, minimum, "program header")
        segments = []
        for i in range(count):
            base = phoff + i * entsize
            if self.is64:
                kind, flags, offset, vaddr, _paddr, filesz = struct.unpack_from(
                    self.order + "IIQQQQ", self.data, base
                )
            else:
                kind, offset, vaddr, _paddr, filesz, _memsz, flags = struct.unpack_from(
                    self.order + "IIIIIII", self.data, base
                )
            segments.append(Segment(type=kind, flags=flags, offset=offset, vaddr=vaddr, filesz=filesz))
        return segments

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    def section_data(self, section: Section, limit: int | None = None) -> bytes:
        if section.type == SHT_NOBITS:
            return b""
        size = section.size if limit is None else min(section.size, limit)
        if section.offset + size > len(self.data):
            raise ElfError(f"section {section.name} ({size} bytes at {section.offset}) runs past the file")
        return self.data[section.offset : section.offset + size]

    def read_virtual(self, addr: int, size: int) -> bytes:
        """``size`` bytes at virtual address ``addr``, from the PT_LOAD segment that maps it."""
        for seg in self.segments:
            if seg.type == PT_LOAD and seg.vaddr <= addr and addr + size <= seg.vaddr + seg.filesz:
                start = seg.offset + (addr - seg.vaddr)
                if start + size > len(self.data):
                    break
                return self.data[start : start + size]
        raise ElfError(f"virtual address 0x{addr:x} (+{size}) is not mapped by any loaded segment")

    def first_writable_segment(self) -> Segment | None:
        """The first loadable read-write, non-executable segment (where Go keeps its build info)."""
        for seg in self.segments:
            if seg.type == PT_LOAD and seg.flags & (PF_X | PF_W) == PF_W:
                return seg
        return None

    def file_bytes(self, offset: int, size: int) -> bytes:
        if offset < 0 or size < 0 or offset + size > len(self.data):
            raise ElfError(f"{size} bytes at file offset {offset} run past the file")
        return self.data[offset : offset + size]
