"""Go modules compiled into ELF executables, from the build info the Go linker embeds.

Format (Go's ``debug/buildinfo`` behaviour, image-analysis.md §2.6):

1. The build info starts with the 14-byte magic ``\\xff Go buildinf:`` at a 16-byte-aligned offset
   of the ``.go.buildinfo`` section, or, when section headers are stripped, of the first read-write
   non-executable ``PT_LOAD`` segment (only its first 64 KiB are searched, as Go does).
2. Byte 14 is the pointer size (4 or 8), byte 15 the flags: bit 1 (0x2) means the strings follow
   inline (Go >= 1.18), each as a uvarint length and bytes, Go version first, then the module info.
   Otherwise (Go < 1.18) bytes 16 and 16+ptrSize hold pointers to two Go string headers
   ``{data pointer, length}``, read through the program headers; byte 15 non-zero means big-endian.
3. The module info is framed by 16 sentinel bytes on each side; it is only trusted when
   ``mod[len-17] == '\\n'``, as Go checks.
4. Tab-separated lines: ``path`` (main package), ``mod`` (main module), ``dep``, ``=>`` (replaces
   the line before), ``build`` (``key=value`` settings).

Packages: every ``dep`` (its replacement when it has one, as Syft and Trivy report what was
compiled; a local-directory replacement has no version, so the original path is kept with Go's
``(devel)``), the main module (version ``(devel)`` unless the ``-ldflags`` setting has
``-X <main package or module>.version=...``, given a ``v`` like module versions), and ``stdlib`` at
the Go version without the ``go`` prefix (``1.15.2``, the form vulnerability databases use).
Module paths are split purl-style: ``golang.org/x/xerrors`` has namespace ``golang.org/x`` and name
``xerrors``; ``depends`` of the main module lists full dependency paths.

The value kept per binary is the parsed module list; strings read through pointers are capped at
1 MiB so a forged length cannot allocate more.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping
from typing import Any

from shared.scan.catalogers.elf import ElfError, ElfFile
from shared.scan.catalogers.executables import ExecutableCataloger
from shared.scan.model import FileRecord, OSRelease, Package

NAME = "go-binary"
MAGIC = b"\xff Go buildinf:"
HEADER_SIZE = 32
ALIGN = 16
SEARCH_WINDOW = 64 * 1024
MAX_STRING = 1024 * 1024
FLAG_INLINE = 0x2
DEVEL = "(devel)"
_LDFLAGS_VERSION = re.compile(r"-X[= ]?['\"]?([^\s'\"=]+)\.([A-Za-z_]+)=([^\s'\"]+)")
_GO_VERSION = re.compile(r"^go(\d+(?:\.\d+)*)")


class GoBinaryCataloger(ExecutableCataloger):
    name = NAME
    ecosystem = "golang"

    def read_program(self, data: bytes) -> Any:
        version, modinfo = read_build_info(data)
        if version is None:
            return None
        return {"go_version": version, **parse_modinfo(modinfo)}

    def catalog(self, files: Mapping[str, FileRecord], os_release: OSRelease | None) -> list[Package]:
        packages: list[Package] = []
        for path in sorted(files):
            record = files[path]
            if isinstance(record.value, dict):
                packages.extend(packages_of(record.value, record))
        return packages


def read_build_info(data: bytes) -> tuple[str | None, str]:
    """(Go version, module info) of an ELF binary; (None, "") when it carries no Go build info."""
    try:
        elf = ElfFile(data)
        section = elf.section(".go.buildinfo")
        if section is not None:
            start, window = section.offset, elf.section_data(section, SEARCH_WINDOW)
        else:
            segment = elf.first_writable_segment()
            if segment is None:
                return None, ""
            start = segment.offset
            window = elf.file_bytes(start, min(segment.filesz, SEARCH_WINDOW, len(data) - start))
        offset = _find_magic(window)
        if offset < 0:
            return None, ""
        # Inline strings may run past the search window, so they are read from the whole file.
        return _decode(elf, start + offset)
    except struct.error as exc:
        raise ElfError(f"Go build info truncated: {exc}") from exc


def _find_magic(window: bytes) -> int:
    for offset in range(0, len(window) - HEADER_SIZE + 1, ALIGN):
        if window[offset : offset + len(MAGIC)] == MAGIC:
            return offset
    return -1


def _decode(elf: ElfFile, at: int) -> tuple[str | None, str]:
    data = elf.data
    header = data[at : at + HEADER_SIZE]
    if len(header) < HEADER_SIZE:
        raise ElfError("Go build info header truncated")
    ptr_size, flags = header[14], header[15]
    if flags & FLAG_INLINE:
        version, pos = _uvarint_string(data, at + HEADER_SIZE)
        modinfo, _ = _uvarint_string(data, pos)
    else:
        if ptr_size not in (4, 8):
            raise ElfError(f"Go build info pointer size {ptr_size} is neither 4 nor 8")
        order = ">" if flags else "<"
        fmt = order + ("Q" if ptr_size == 8 else "I")
        version = _read_go_string(elf, fmt, ptr_size, struct.unpack_from(fmt, header, 16)[0])
        modinfo = _read_go_string(elf, fmt, ptr_size, struct.unpack_from(fmt, header, 16 + ptr_size)[0])
    if not version:
        return None, ""
    if len(modinfo) >= 33 and modinfo[-17] == "\n":
        modinfo = modinfo[16:-16]
    else:
        modinfo = ""
    return version, modinfo


def _uvarint_string(data: bytes, pos: int) -> tuple[str, int]:
    length = shift = 0
    for _ in range(10):  # a uvarint of a 64-bit value has at most 10 bytes
        if pos >= len(data):
            raise ElfError("Go build info string length runs past the file")
        byte = data[pos]
        pos += 1
        length |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            break
    else:
        raise ElfError("Go build info string length is not a valid uvarint")
    if length > MAX_STRING or pos + length > len(data):
        raise ElfError(f"Go build info string of {length} bytes runs past the file or the cap")
    return data[pos : pos + length].decode("utf-8", errors="replace"), pos + length


def _read_go_string(elf: ElfFile, fmt: str, ptr_size: int, addr: int) -> str:
    header = elf.read_virtual(addr, 2 * ptr_size)
    data_addr, length = struct.unpack_from(fmt, header, 0)[0], struct.unpack_from(fmt, header, ptr_size)[0]
    if length == 0:
        return ""
    if length > MAX_STRING:
        raise ElfError(f"Go build info string of {length} bytes exceeds the {MAX_STRING}-byte cap")
    return elf.read_virtual(data_addr, length).decode("utf-8", errors="replace")


def parse_modinfo(modinfo: str) -> dict[str, Any]:
    """``{"path", "main": {path, version, sum}, "deps": [{path, version, sum, replace?}], "build"}``."""
    result: dict[str, Any] = {"path": "", "main": None, "deps": [], "build": {}}
    last: dict[str, Any] | None = None
    for line in modinfo.splitlines():
        fields = line.split("\t")
        kind = fields[0]
        if kind == "path" and len(fields) >= 2:
            result["path"] = fields[1]
        elif kind in ("mod", "dep") and len(fields) >= 3:
            module = {"path": fields[1], "version": fields[2], "sum": fields[3] if len(fields) > 3 else ""}
            if kind == "mod":
                result["main"] = module
            else:
                result["deps"].append(module)
            last = module
        elif kind == "=>" and len(fields) >= 2 and last is not None:
            last["replace"] = {
                "path": fields[1],
                "version": fields[2] if len(fields) > 2 else "",
                "sum": fields[3] if len(fields) > 3 else "",
            }
        elif kind == "build" and len(fields) >= 2:
            key, _, value = "\t".join(fields[1:]).partition("=")
            result["build"][key] = value
    return result


def split_module_path(path: str) -> tuple[str | None, str]:
    namespace, _, name = path.rpartition("/")
    return namespace or None, name


def ldflags_version(info: Mapping[str, Any]) -> str | None:
    """A version set with ``-ldflags "-X main.version=1.2.3"`` (or on the main module's package)."""
    ldflags = info.get("build", {}).get("-ldflags", "")
    main_path = (info.get("main") or {}).get("path", "")
    owners = {"main", info.get("path", ""), main_path}
    for match in _LDFLAGS_VERSION.finditer(ldflags):
        owner, var, value = match.groups()
        if var.lower() == "version" and (owner in owners or owner.endswith("/cmd")):
            # Module versions carry a "v"; "-X main.version=1.4.2" usually does not (Syft adds it too).
            return f"v{value}" if value[:1].isdigit() else value
    return None


def packages_of(info: Mapping[str, Any], record: FileRecord) -> list[Package]:
    packages: list[Package] = []

    def add(path: str, version: str, metadata: dict[str, Any], depends: tuple[str, ...] = ()) -> None:
        namespace, name = split_module_path(path)
        packages.append(
            Package(
                name=name,
                namespace=namespace,
                version=version,
                type="golang",
                location=record.path,
                layer_digest=record.layer_digest,
                depends=depends,
                metadata=metadata,
            )
        )

    dep_paths: list[str] = []
    for dep in info.get("deps", []):
        replace = dep.get("replace")
        if replace and replace.get("version"):
            add(replace["path"], replace["version"], {"replaces": dep["path"], "sum": replace.get("sum", "")})
            dep_paths.append(replace["path"])
        elif replace:
            add(dep["path"], DEVEL, {"replaced_by": replace["path"]})
            dep_paths.append(dep["path"])
        else:
            add(dep["path"], dep["version"], {"sum": dep.get("sum", "")})
            dep_paths.append(dep["path"])
    main = info.get("main")
    if main:
        version = main.get("version") or DEVEL
        if version == DEVEL:
            version = ldflags_version(info) or DEVEL
        add(main["path"], version, {"main": True, "package": info.get("path", "")}, tuple(dep_paths))
    go_version = info.get("go_version", "")
    match = _GO_VERSION.match(go_version)
    if match:
        packages.append(
            Package(
                name="stdlib",
                version=match.group(1),
                type="golang",
                location=record.path,
                layer_digest=record.layer_digest,
                metadata={"go_version": go_version},
            )
        )
    return packages
