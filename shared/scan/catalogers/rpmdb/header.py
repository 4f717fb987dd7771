"""rpm package headers as stored in the rpm database (rpm's ``headerImport`` layout).

A stored header is big-endian: ``il`` (int32, number of index entries), ``dl`` (int32, length of the
data store), ``il`` entries of 16 bytes ``{tag i32, type u32, offset i32, count u32}``, then ``dl``
bytes of data that the entries point into. There is no leading magic in the database copy (the
8-byte header magic exists only in ``.rpm`` files).

Only the tags a package inventory needs are decoded; each is bounds-checked against the data store
and a malformed one raises `RpmHeaderError` naming the tag and offset. The limits on ``il`` and
``dl`` are rpm's own sanity limits (``hdrchkTags``: fewer than 0x10000 entries; ``hdrchkData``:
under 256 MiB of data), so a corrupted length cannot make the parser allocate or loop without end.
"""

from __future__ import annotations

import struct
from typing import Any

from shared.scan.catalogers.errors import CatalogerError

TAG_NAME = 1000
TAG_VERSION = 1001
TAG_RELEASE = 1002
TAG_EPOCH = 1003
TAG_VENDOR = 1011
TAG_LICENSE = 1014
TAG_ARCH = 1022
TAG_SOURCERPM = 1044
TAG_MODULARITYLABEL = 5096

TYPE_INT8 = 2
TYPE_INT16 = 3
TYPE_INT32 = 4
TYPE_INT64 = 5
TYPE_STRING = 6
TYPE_BIN = 7
TYPE_STRING_ARRAY = 8
TYPE_I18NSTRING = 9
_MAX_TYPE = 9

MAX_INDEX_ENTRIES = 0xFFFF
MAX_DATA_LENGTH = 0x0FFFFFFF

_STRING_TAGS = {
    TAG_NAME: "name",
    TAG_VERSION: "version",
    TAG_RELEASE: "release",
    TAG_VENDOR: "vendor",
    TAG_LICENSE: "license",
    TAG_ARCH: "arch",
    TAG_SOURCERPM: "sourcerpm",
    TAG_MODULARITYLABEL: "modularitylabel",
}
_INT_SIZES = {TYPE_INT8: 1, TYPE_INT16: 2, TYPE_INT32: 4, TYPE_INT64: 8}
_INT_FORMATS = {1: ">b", 2: ">h", 4: ">i", 8: ">q"}


class RpmHeaderError(CatalogerError):
    """An rpm header blob is malformed."""


def parse_header(blob: bytes) -> dict[str, Any]:
    """The package fields of one stored header: name, version, release, epoch, arch, sourcerpm,
    license, vendor, modularitylabel (absent tags are left out; epoch is an int)."""
    if len(blob) < 8:
        raise RpmHeaderError(f"rpm header too short: {len(blob)} bytes, need at least 8")
    il, dl = struct.unpack_from(">ii", blob, 0)
    if not 0 < il <= MAX_INDEX_ENTRIES:
        raise RpmHeaderError(f"rpm header index count {il} out of range 1..{MAX_INDEX_ENTRIES}")
    if not 0 <= dl <= MAX_DATA_LENGTH:
        raise RpmHeaderError(f"rpm header data length {dl} out of range 0..{MAX_DATA_LENGTH}")
    data_start = 8 + 16 * il
    if data_start + dl > len(blob):
        raise RpmHeaderError(
            f"rpm header claims {il} entries and {dl} data bytes ({data_start + dl} bytes) "
            f"but the blob has {len(blob)}"
        )
    data = blob[data_start : data_start + dl]
    fields: dict[str, Any] = {}
    for index in range(il):
        tag, kind, offset, count = struct.unpack_from(">iIiI", blob, 8 + 16 * index)
        if kind > _MAX_TYPE:
            raise RpmHeaderError(f"rpm header entry {index} (tag {tag}) has unknown type {kind}")
        if not 0 <= offset <= dl:
            raise RpmHeaderError(f"rpm header tag {tag} offset {offset} outside the {dl}-byte data store")
        if tag in _STRING_TAGS:
            fields[_STRING_TAGS[tag]] = _first_string(data, tag, kind, offset, count)
        elif tag == TAG_EPOCH:
            fields["epoch"] = _first_int(data, tag, kind, offset, count)
    return fields


def _first_string(data: bytes, tag: int, kind: int, offset: int, count: int) -> str:
    if kind not in (TYPE_STRING, TYPE_STRING_ARRAY, TYPE_I18NSTRING):
        raise RpmHeaderError(f"rpm header tag {tag} should be a string but has type {kind}")
    if count < 1:
        raise RpmHeaderError(f"rpm header tag {tag} is a string with count {count}")
    end = data.find(b"\0", offset)
    if end < 0:
        raise RpmHeaderError(f"rpm header tag {tag} string at offset {offset} is not NUL-terminated")
    return data[offset:end].decode("utf-8", errors="replace")


def _first_int(data: bytes, tag: int, kind: int, offset: int, count: int) -> int:
    size = _INT_SIZES.get(kind)
    if size is None:
        raise RpmHeaderError(f"rpm header tag {tag} should be an integer but has type {kind}")
    if count < 1 or offset + size > len(data):
        raise RpmHeaderError(f"rpm header tag {tag} integer at offset {offset} runs past the data store")
    return int(struct.unpack_from(_INT_FORMATS[size], data, offset)[0])


def split_source_rpm(sourcerpm: str) -> tuple[str, str] | None:
    """``util-linux-2.32.1-42.el8_8.src.rpm`` -> (``util-linux``, ``2.32.1-42.el8_8``).

    The name may contain dashes, the version and release may not, so the last two dashes split it.
    """
    stem = sourcerpm
    for suffix in (".src.rpm", ".nosrc.rpm"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    else:
        return None
    parts = stem.rsplit("-", 2)
    if len(parts) != 3 or not all(parts):
        return None
    return parts[0], f"{parts[1]}-{parts[2]}"
