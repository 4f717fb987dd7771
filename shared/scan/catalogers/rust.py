"""Rust crates compiled into ELF executables built with cargo-auditable.

cargo-auditable stores the dependency tree in a ``.dep-v0`` section: zlib-compressed JSON
``{"packages": [{"name", "version", "source", "kind", "dependencies": [indexes], "root"}]}``
(rust-audit's format; ``kind`` defaults to ``runtime``). Decompression is capped (rust-audit uses
8 MiB, far above any real tree) so a hostile section cannot inflate without bound.

Reported: every crate whose ``kind`` is not ``build``. Build-time crates (build scripts,
proc-macros) run during compilation and are not part of the executable, so they cannot make it
vulnerable. ``depends`` lists the names of each crate's runtime dependencies; the ``root`` crate is
the program itself and is reported too (``metadata["root"]``), as Syft does.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from typing import Any

from shared.scan.catalogers.elf import ElfFile
from shared.scan.catalogers.errors import CatalogerError
from shared.scan.catalogers.executables import ExecutableCataloger
from shared.scan.model import FileRecord, OSRelease, Package

NAME = "rust-binary"
SECTIONS = (".dep-v0", ".rust-deps-v0")
MAX_COMPRESSED = 8 * 1024 * 1024
MAX_DECOMPRESSED = 8 * 1024 * 1024


class RustBinaryCataloger(ExecutableCataloger):
    name = NAME
    ecosystem = "cargo"

    def read_program(self, data: bytes) -> Any:
        elf = ElfFile(data)
        section = next((s for name in SECTIONS if (s := elf.section(name)) is not None), None)
        if section is None:
            return None
        if section.size > MAX_COMPRESSED:
            raise CatalogerError(f"{section.name} section of {section.size} bytes exceeds the cap")
        return parse_audit_data(inflate(elf.section_data(section)))

    def catalog(self, files: Mapping[str, FileRecord], os_release: OSRelease | None) -> list[Package]:
        packages: list[Package] = []
        for path in sorted(files):
            record = files[path]
            if not isinstance(record.value, list):
                continue
            crates = record.value
            for crate in crates:
                if crate.get("kind") == "build":
                    continue
                depends = []
                for index in crate.get("dependencies", []):
                    dep = crates[index]
                    if dep.get("kind") != "build" and dep["name"] not in depends:
                        depends.append(dep["name"])
                packages.append(
                    Package(
                        name=crate["name"],
                        version=crate["version"],
                        type="cargo",
                        location=path,
                        layer_digest=record.layer_digest,
                        depends=tuple(depends),
                        metadata={k: crate[k] for k in ("source", "root") if crate.get(k)},
                    )
                )
        return packages


def inflate(compressed: bytes, limit: int = MAX_DECOMPRESSED) -> bytes:
    decompressor = zlib.decompressobj()
    try:
        out = decompressor.decompress(compressed, limit)
    except zlib.error as exc:
        raise CatalogerError(f"cargo-auditable data is not valid zlib: {exc}") from exc
    if decompressor.unconsumed_tail or (len(out) >= limit and not decompressor.eof):
        raise CatalogerError(f"cargo-auditable data inflates to more than {limit} bytes")
    return out


def parse_audit_data(raw: bytes) -> list[dict[str, Any]]:
    """The crate list with each entry validated: name and version strings, in-range dependency indexes."""
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise CatalogerError(f"cargo-auditable data is not JSON: {exc}") from exc
    entries = document.get("packages") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise CatalogerError("cargo-auditable data has no 'packages' list")
    crates: list[dict[str, Any]] = []
    for number, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise CatalogerError(f"cargo-auditable package {number} has no name")
        deps = entry.get("dependencies", [])
        if not isinstance(deps, list) or not all(isinstance(i, int) and 0 <= i < len(entries) for i in deps):
            raise CatalogerError(f"cargo-auditable package {number} has invalid dependency indexes")
        crates.append(
            {
                "name": entry["name"],
                "version": str(entry.get("version", "")),
                "source": str(entry.get("source", "")),
                "kind": str(entry.get("kind", "runtime")),
                "root": entry.get("root") is True,
                "dependencies": deps,
            }
        )
    return crates
