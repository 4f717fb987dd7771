"""Header blobs from rpm's Berkeley DB hash database (``Packages``; RHEL/CentOS <= 8, Amazon Linux 2).

Layout (Berkeley DB ``hash`` access method; image-analysis.md §2.3). Page 0 is the hash metadata
page: magic ``0x00061561`` at byte 12 (read big-endian when the file was written on a big-endian
host), page size at 20, encryption at 24 (must be none), page type 8 at 25, last page number at 32.
Every page starts with a 26-byte header: next page number at 16, entry count (u16) at 20,
``hf_offset`` (u16, end of data on an overflow page) at 22, page type at 25.

Hash pages (type 13, or 2 for the unsorted pages of very old databases) hold an array of u16 item
offsets after the header, in key/value pairs. rpm's keys are package instance numbers and are
ignored; a value is either stored on the page (``H_KEYDATA`` = 1, running up to the previous item)
or, for anything bigger than a quarter page, which is nearly every header, moved to a chain of
overflow pages (``H_OFFPAGE`` = 3: first page number at +4, total length at +8). Each overflow page
(type 7) contributes ``[26:]``, the last one (next page 0) ``[26:26 + hf_offset]``.

Safety: page numbers are checked against the file, an overflow chain may not revisit a page (a
cycle) nor pass through a non-overflow page, and its length is bounded by its declared total; a bad
chain is reported and skipped, and the rest of the database is still read.
"""

from __future__ import annotations

import struct

from shared.scan.catalogers.errors import CatalogerError

HASH_MAGIC = 0x00061561
P_HASH_UNSORTED = 2
P_OVERFLOW = 7
P_HASHMETA = 8
P_HASH = 13
H_KEYDATA = 1
H_OFFPAGE = 3
PAGE_HEADER = 26
# A value shorter than an empty header (8 bytes of counts + one 16-byte entry) is not a package; rpm
# keeps such small bookkeeping records (the highest instance number under key 0) in the same file.
_MIN_HEADER = 24


def is_bdb_hash(data: bytes) -> bool:
    return len(data) >= 512 and HASH_MAGIC in (
        struct.unpack_from("<I", data, 12)[0],
        struct.unpack_from(">I", data, 12)[0],
    )


def read_blobs(data: bytes) -> tuple[list[bytes], list[str]]:
    """Every header blob in the file, and a description of each item that could not be read."""
    if len(data) < 512:
        raise CatalogerError(f"Berkeley DB file too short: {len(data)} bytes")
    if struct.unpack_from("<I", data, 12)[0] == HASH_MAGIC:
        order = "<"
    elif struct.unpack_from(">I", data, 12)[0] == HASH_MAGIC:
        order = ">"
    else:
        raise CatalogerError("not a Berkeley DB hash database (magic at byte 12 is not 0x00061561)")
    page_size = struct.unpack_from(order + "I", data, 20)[0]
    if page_size < 512 or page_size > 65536 or page_size & (page_size - 1):
        raise CatalogerError(f"Berkeley DB page size {page_size} is not a power of two in 512..65536")
    if data[24] != 0:
        raise CatalogerError("Berkeley DB file is encrypted")
    if data[25] != P_HASHMETA:
        raise CatalogerError(f"Berkeley DB page 0 has type {data[25]}, expected hash metadata ({P_HASHMETA})")
    pages_in_file = len(data) // page_size
    last_pgno = struct.unpack_from(order + "I", data, 32)[0]
    errors: list[str] = []
    if last_pgno >= pages_in_file:
        errors.append(f"metadata says the last page is {last_pgno} but the file holds {pages_in_file} pages")
        last_pgno = pages_in_file - 1

    reader = _Reader(data, order, page_size, pages_in_file)
    blobs: list[bytes] = []
    for pgno in range(1, last_pgno + 1):
        page = reader.page(pgno)
        if page[25] not in (P_HASH, P_HASH_UNSORTED):
            continue
        entries = struct.unpack_from(order + "H", page, 20)[0]
        max_entries = (page_size - PAGE_HEADER) // 2
        if entries > max_entries:
            errors.append(f"hash page {pgno} claims {entries} entries, at most {max_entries} fit")
            continue
        offsets = struct.unpack_from(f"{order}{entries}H", page, PAGE_HEADER)
        for index in range(1, entries, 2):  # odd indexes are the values of key/value pairs
            try:
                blob = reader.item(page, offsets, index)
            except CatalogerError as exc:
                errors.append(f"page {pgno} item {index}: {exc}")
                continue
            if blob is not None and len(blob) >= _MIN_HEADER:
                blobs.append(blob)
    return blobs, errors


class _Reader:
    def __init__(self, data: bytes, order: str, page_size: int, pages: int) -> None:
        self.data = data
        self.order = order
        self.page_size = page_size
        self.pages = pages

    def page(self, pgno: int) -> bytes:
        if not 0 < pgno < self.pages:
            raise CatalogerError(f"page number {pgno} outside the file's {self.pages} pages")
        return self.data[pgno * self.page_size : (pgno + 1) * self.page_size]

    def item(self, page: bytes, offsets: tuple[int, ...], index: int) -> bytes | None:
        offset = offsets[index]
        if not PAGE_HEADER <= offset < self.page_size:
            raise CatalogerError(f"item offset {offset} outside the page")
        kind = page[offset]
        if kind == H_KEYDATA:
            # Items are packed from the end of the page downwards: this one ends where the previous
            # index's item starts.
            end = offsets[index - 1] if index > 0 else self.page_size
            if not offset < end <= self.page_size:
                raise CatalogerError(f"on-page item bounds {offset}..{end} are inconsistent")
            return page[offset + 1 : end]
        if kind != H_OFFPAGE:
            return None
        if offset + 12 > self.page_size:
            raise CatalogerError("off-page item header runs past the page")
        pgno, total = struct.unpack_from(self.order + "II", page, offset + 4)
        return self.overflow_chain(pgno, total)

    def overflow_chain(self, pgno: int, total: int) -> bytes:
        if total > len(self.data):
            raise CatalogerError(f"overflow item claims {total} bytes, more than the whole file")
        chunks: list[bytes] = []
        collected = 0
        seen: set[int] = set()
        while pgno != 0:
            if pgno in seen:
                raise CatalogerError(f"overflow chain loops back to page {pgno}")
            seen.add(pgno)
            page = self.page(pgno)
            if page[25] != P_OVERFLOW:
                raise CatalogerError(f"overflow chain reaches page {pgno} of type {page[25]}")
            next_pgno = struct.unpack_from(self.order + "I", page, 16)[0]
            if next_pgno == 0:
                end = PAGE_HEADER + struct.unpack_from(self.order + "H", page, 22)[0]
                chunk = page[PAGE_HEADER : min(end, self.page_size)]
            else:
                chunk = page[PAGE_HEADER:]
            chunks.append(chunk)
            collected += len(chunk)
            if collected >= total:
                break
            pgno = next_pgno
        blob = b"".join(chunks)
        if len(blob) < total:
            raise CatalogerError(f"overflow chain ends after {len(blob)} of {total} bytes")
        return blob[:total]
