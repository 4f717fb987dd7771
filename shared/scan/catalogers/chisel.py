"""Ubuntu packages in chiselled images, from chisel's manifest ``/var/lib/chisel/manifest.wall``.

Chisel installs slices of Ubuntu ``.deb`` packages without dpkg, so there is no dpkg database; it
writes a zstd-compressed "jsonwall" instead: one JSON object per line, the first a header
(``{"jsonwall": "1.0", ...}``), the rest entries with a ``kind`` of ``package``, ``slice``, ``path``
or ``content``. Only ``package`` entries are software (``name``, ``version``, ``arch``, ``sha256`` of
the .deb), as in snyk-docker-plugin's ``inputs/chisel``.

The decompressed size is capped (a manifest lists paths, so tens of MiB would already be a very
large image) to keep a zstd bomb from exhausting memory.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

import zstandard

from shared.scan.catalogers.errors import CatalogerError
from shared.scan.model import FileRecord, OSRelease, Package

NAME = "chisel"
MANIFEST = "/var/lib/chisel/manifest.wall"
MAX_COMPRESSED = 16 * 1024 * 1024
MAX_DECOMPRESSED = 64 * 1024 * 1024


class ChiselCataloger:
    name = NAME
    ecosystem = "os"

    def wants(self, path: str, size: int, mode: int) -> bool:
        return path == MANIFEST and size <= MAX_COMPRESSED

    def extract(self, path: str, data: bytes) -> Any:
        return parse_manifest(decompress(data))

    def catalog(self, files: Mapping[str, FileRecord], os_release: OSRelease | None) -> list[Package]:
        record = files.get(MANIFEST)
        if record is None:
            return []
        return [
            Package(
                name=entry["name"],
                version=entry.get("version", ""),
                type="deb",
                architecture=entry.get("arch") or None,
                location=record.path,
                layer_digest=record.layer_digest,
                metadata={"sha256": entry["sha256"]} if entry.get("sha256") else {},
            )
            for entry in record.value or []
        ]


def decompress(data: bytes, limit: int = MAX_DECOMPRESSED) -> bytes:
    """Decompress a zstd stream (all frames), refusing output beyond ``limit`` bytes."""
    out = bytearray()
    try:
        reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True)
        while chunk := reader.read(1024 * 1024):
            out += chunk
            if len(out) > limit:
                raise CatalogerError(f"chisel manifest decompresses to more than {limit} bytes")
    except zstandard.ZstdError as exc:
        raise CatalogerError(f"chisel manifest is not valid zstd: {exc}") from exc
    return bytes(out)


def parse_manifest(text: bytes) -> list[dict[str, str]]:
    """The ``kind == "package"`` entries, reduced to name, version, arch and sha256."""
    packages = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError as exc:
            raise CatalogerError(f"chisel manifest line {number} is not JSON: {exc}") from exc
        if isinstance(entry, dict) and entry.get("kind") == "package" and isinstance(entry.get("name"), str):
            packages.append({k: str(entry[k]) for k in ("name", "version", "arch", "sha256") if k in entry})
    packages.sort(key=lambda e: e["name"])
    return packages
