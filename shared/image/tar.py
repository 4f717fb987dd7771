"""A forward-only reader of the tar format of image layers: POSIX ustar, pax and GNU extensions.

Written for the layer reader rather than taken from ``tarfile``: ``tarfile`` builds a full
``TarInfo`` per entry (every field decoded, several Python calls per field), which was the largest
piece of Python time in a scan; this reader decodes only what the layer reader uses (name, type,
size, mode, link target) and is stricter where a layer can hurt:

* a header whose checksum does not add up, a number that is not a number, a pax record that does
  not parse, or a stream that ends inside a header or inside an entry's data is `CorruptLayer`
  (``tarfile`` ends the archive silently at a bad header after the first one; Go's archive/tar,
  which container runtimes use to apply layers, refuses it);
* pax extended headers and GNU long names are read into memory, so each is capped
  (``max_metadata``) before it is read: `HostileLayer` above the cap.

Format facts (POSIX.1-2001 ``pax``, GNU tar manual "Basic Tar Format"): 512-byte blocks; a header
block holds name[100] mode[8] uid[8] gid[8] size[12] mtime[12] chksum[8] typeflag[1] linkname[100]
magic[6] version[2] uname[32] gname[32] devmajor[8] devminor[8] prefix[155] (ustar only: GNU puts
other fields there); numbers are octal text, or base-256 when the first byte has its high bit set
(GNU); the checksum is the sum of the header's bytes with the checksum field read as spaces (some
old tars summed signed bytes: both are accepted). Data follows in blocks, padded to 512; only
regular files and types this reader does not know carry data (links, directories, devices and
fifos are header-only, as in tarfile and archive/tar). A zero block ends the archive, and so does
the end of the stream at a header boundary.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from dataclasses import dataclass

from shared import errors

BLOCK = 512
ZERO_BLOCK = bytes(BLOCK)
REGULAR, CONTIGUOUS, OLD_REGULAR = b"0", b"7", b"\0"
HARD_LINK, SYMLINK, DIRECTORY = b"1", b"2", b"5"
CHAR_DEVICE, BLOCK_DEVICE, FIFO = b"3", b"4", b"6"
PAX, PAX_GLOBAL, GNU_LONG_NAME, GNU_LONG_LINK, GNU_SPARSE = b"x", b"g", b"L", b"K", b"S"
SOLARIS_PAX = b"X"  # an extended header by another name, as tarfile reads it
HEADER_ONLY = frozenset({HARD_LINK, SYMLINK, DIRECTORY, CHAR_DEVICE, BLOCK_DEVICE, FIFO})
_REGULAR = frozenset({REGULAR, CONTIGUOUS, OLD_REGULAR})
_USTAR = b"ustar\x0000"
_SIGNED = struct.Struct("148b8x356b")

Corrupt = Callable[[str], errors.CorruptLayer]


@dataclass(slots=True)
class Member:
    """One entry of the archive, with what the layer reader needs of its header."""

    name: str
    type: bytes  # the typeflag byte
    size: int  # bytes of data stored for it (0 for header-only types)
    mode: int  # permission bits as stored
    linkname: str
    sparse: bool = False  # GNU sparse: the stored data is not the file's bytes in order

    def isreg(self) -> bool:
        return self.type in _REGULAR or self.sparse

    def isdir(self) -> bool:
        return self.type == DIRECTORY

    def issym(self) -> bool:
        return self.type == SYMLINK

    def islnk(self) -> bool:
        return self.type == HARD_LINK


class TarReader:
    """Members of the tar in ``stream`` one after another; ``read`` reads the current one's data.

    ``stream`` is read forward only; data nobody reads is skipped with ``seek`` (relative), which
    a `shared.image.decompress.LayerStream` under a ``BufferedReader`` does without copying.
    """

    def __init__(self, stream: io.BufferedReader, *, what: str, max_metadata: int) -> None:
        self._stream = stream
        self._what = what
        self._max_metadata = max_metadata
        self._left = 0  # data bytes of the current member not yet read
        self._padding = 0  # zero bytes after them, up to the block boundary
        self._globals: dict[str, str] = {}  # pax global header values, for every later member
        self._started = False

    def _corrupt(self, reason: str) -> errors.CorruptLayer:
        return errors.CorruptLayer(f"{self._what}: not a valid tar ({reason})")

    def next(self) -> Member | None:
        """The next member, or None at the end of the archive."""
        self._skip(self._left + self._padding)
        self._left = self._padding = 0
        pending: dict[str, str] = {}
        while True:
            block = self._stream.read(BLOCK)
            if not block:
                if not self._started:
                    raise self._corrupt("empty")
                return None  # no end-of-archive blocks: archive/tar accepts this too
            if len(block) < BLOCK:
                raise self._corrupt("the stream ends inside a header")
            self._started = True
            if block == ZERO_BLOCK:
                return None
            member = self._parse(block)
            if member.type in (PAX, SOLARIS_PAX, PAX_GLOBAL):
                records = _pax_records(self._metadata(member), self._corrupt)
                (self._globals if member.type == PAX_GLOBAL else pending).update(records)
                continue
            if member.type == GNU_LONG_NAME:
                pending["path"] = _text(self._metadata(member))
                continue
            if member.type == GNU_LONG_LINK:
                pending["linkpath"] = _text(self._metadata(member))
                continue
            if member.type == GNU_SPARSE:
                member.sparse = True
                if block[482]:  # "isextended": more sparse map blocks follow the header
                    self._skip_sparse_map()
            self._apply({**self._globals, **pending}, member)
            if member.type in HEADER_ONLY:
                member.size = 0
            self._left, self._padding = member.size, -member.size % BLOCK
            return member

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all, when negative) of the current member's data."""
        count = self._left if size < 0 else min(size, self._left)
        data = self._stream.read(count)
        if len(data) != count:
            raise self._corrupt("the stream ends inside an entry's data")
        self._left -= count
        return data

    def _skip(self, count: int) -> None:
        if count:
            before = self._stream.tell()
            if self._stream.seek(count, io.SEEK_CUR) != before + count:
                raise self._corrupt("the stream ends inside an entry's data")

    def _metadata(self, member: Member) -> bytes:
        if member.size > self._max_metadata:
            raise errors.HostileLayer(
                f"{self._what}: tar metadata header of {member.size} bytes "
                f"(limit {self._max_metadata}): not a real layer"
            )
        self._left, self._padding = member.size, -member.size % BLOCK
        data = self.read()
        self._skip(self._padding)
        self._padding = 0
        return data

    def _skip_sparse_map(self) -> None:
        while True:
            block = self._stream.read(BLOCK)
            if len(block) < BLOCK:
                raise self._corrupt("the stream ends inside a sparse map")
            if not block[504]:
                return

    def _parse(self, block: bytes) -> Member:
        stored = _number(block[148:156], self._corrupt)
        if (
            stored != sum(block) - sum(block[148:156]) + 8 * 0x20
            and stored != sum(_SIGNED.unpack(block)) + 256
        ):
            raise self._corrupt("header checksum mismatch")
        name = _text(block[0:100])
        if block[257:265] == _USTAR:
            prefix = _text(block[345:500])
            if prefix:
                name = f"{prefix}/{name}"
        kind = block[156:157]
        if kind == OLD_REGULAR and name.endswith("/"):
            kind = DIRECTORY  # pre-POSIX tars mark directories by the trailing slash only
        size = _number(block[124:136], self._corrupt)
        if size < 0:
            raise self._corrupt("negative size")
        return Member(
            name=name,
            type=kind,
            size=size,
            mode=_number(block[100:108], self._corrupt),
            linkname=_text(block[157:257]),
        )

    def _apply(self, values: dict[str, str], member: Member) -> None:
        if "path" in values:
            member.name = values["path"]
        if "linkpath" in values:
            member.linkname = values["linkpath"]
        if "size" in values:
            try:
                member.size = int(values["size"])
            except ValueError:
                raise self._corrupt("pax size is not a number") from None
            if member.size < 0:
                raise self._corrupt("negative size")
        if any(key.startswith("GNU.sparse.") for key in values):
            member.sparse = True


def _text(field: bytes) -> str:
    """A NUL-terminated field as text: UTF-8, undecodable bytes kept as surrogates (as tarfile)."""
    end = field.find(0)
    return (field if end < 0 else field[:end]).decode("utf-8", "surrogateescape")


def _number(field: bytes, corrupt: Corrupt) -> int:
    if field[0] & 0x80:  # GNU base-256: big-endian two's complement, the first byte's high bit a flag
        value = int.from_bytes(field[1:], "big")
        if field[0] == 0xFF:
            value -= 1 << (8 * (len(field) - 1))
        return value
    end = field.find(0)
    digits = (field if end < 0 else field[:end]).strip()
    try:
        return int(digits, 8) if digits else 0
    except ValueError:
        raise corrupt(f"{digits[:20]!r} is not an octal number") from None


def _pax_records(data: bytes, corrupt: Corrupt) -> dict[str, str]:
    """``"%d %s=%s\\n"`` records, the length counting the whole record."""
    records: dict[str, str] = {}
    position = 0
    while position < len(data):
        if data[position] == 0:
            break  # NUL padding after the last record
        space = data.find(b" ", position)
        try:
            length = int(data[position:space])
        except ValueError:
            length = -1
        end = position + length
        if space < 0 or length <= space - position or end > len(data) or data[end - 1] != 0x0A:
            raise corrupt("a pax record does not parse")
        key, equals, value = data[space + 1 : end - 1].partition(b"=")
        if not equals:
            raise corrupt("a pax record has no '='")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        position = end
    return records
