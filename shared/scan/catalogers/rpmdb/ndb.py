"""Header blobs from rpm's native NDB database (``Packages.db``; SUSE/openSUSE, optional elsewhere).

Layout (rpm ``lib/backend/ndb/rpmpkg.c``; image-analysis.md §2.3), little-endian:

* file header, 32 bytes: magic ``RpmP``, version 0, generation, ``slotnpages`` (pages of 4096 bytes
  holding the header and the slot table);
* slots from byte 32, 16 bytes each, ``slotnpages * 256 - 2`` of them: magic ``Slot``, package
  index (0 = free slot), block offset and block count in 16-byte blocks;
* at ``blkoffset * 16`` a blob header of 16 bytes: magic ``BlbS``, package index (must match the
  slot), checksum, blob length; the header blob follows.

Every number is checked against the file before use; a slot whose blob is damaged is reported and
skipped. The blob checksum is not verified (rpm verifies it on write paths only when rebuilding).
"""

from __future__ import annotations

import struct

from shared.scan.catalogers.errors import CatalogerError

FILE_MAGIC = 0x506D7052  # "RpmP"
SLOT_MAGIC = 0x746F6C53  # "Slot"
BLOB_MAGIC = 0x53626C42  # "BlbS"
PAGE_SIZE = 4096
SLOT_SIZE = 16
BLOCK_SIZE = 16
HEADER_SIZE = 32


def is_ndb(data: bytes) -> bool:
    return len(data) >= HEADER_SIZE and struct.unpack_from("<I", data, 0)[0] == FILE_MAGIC


def read_blobs(data: bytes) -> tuple[list[bytes], list[str]]:
    """Every header blob in the file, and a description of each slot that could not be read."""
    if not is_ndb(data):
        raise CatalogerError("not an rpm NDB database (no 'RpmP' magic)")
    version, _generation, slot_pages = struct.unpack_from("<III", data, 4)
    if version != 0:
        raise CatalogerError(f"unsupported NDB version {version}")
    slot_area = slot_pages * PAGE_SIZE
    if slot_pages == 0 or slot_area > len(data):
        raise CatalogerError(f"NDB slot table of {slot_pages} pages does not fit in {len(data)} bytes")
    slot_count = slot_pages * (PAGE_SIZE // SLOT_SIZE) - 2
    blobs: list[bytes] = []
    errors: list[str] = []
    for slot in range(slot_count):
        magic, pkg_index, block_offset, block_count = struct.unpack_from(
            "<IIII", data, HEADER_SIZE + slot * SLOT_SIZE
        )
        if magic != SLOT_MAGIC:
            raise CatalogerError(f"NDB slot {slot} has a bad magic 0x{magic:08x}")
        if pkg_index == 0:
            continue
        try:
            blobs.append(_blob(data, pkg_index, block_offset, block_count))
        except CatalogerError as exc:
            errors.append(f"slot {slot} (package {pkg_index}): {exc}")
    return blobs, errors


def _blob(data: bytes, pkg_index: int, block_offset: int, block_count: int) -> bytes:
    start = block_offset * BLOCK_SIZE
    room = block_count * BLOCK_SIZE
    if start < HEADER_SIZE or start + 16 > len(data):
        raise CatalogerError(f"blob offset {start} outside the file")
    magic, blob_pkg, _checksum, length = struct.unpack_from("<IIII", data, start)
    if magic != BLOB_MAGIC:
        raise CatalogerError(f"blob at {start} has a bad magic 0x{magic:08x}")
    if blob_pkg != pkg_index:
        raise CatalogerError(f"blob at {start} belongs to package {blob_pkg}")
    if 16 + length > room or start + 16 + length > len(data):
        raise CatalogerError(f"blob length {length} exceeds its {room}-byte extent or the file")
    return data[start + 16 : start + 16 + length]
