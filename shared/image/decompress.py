"""A layer's stored bytes as an uncompressed, size-capped, forward-only stream.

The compression is read from the first bytes, not from the media type (which Docker archives lack
and some registries get wrong): gzip ``1f 8b``, zstd ``28 b5 2f fd``, anything else is taken as a
plain tar. Every read asks the decompressor for at most what the caller wants, so a small blob that
inflates to terabytes (a decompression bomb) costs no more memory than a normal one, and the count
of uncompressed bytes stops it at the per-layer cap.

The uncompressed bytes are hashed as they pass, for the check against the config's ``diff_id``.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator
from gzip import BadGzipFile
from typing import Protocol

import zstandard
from isal import isal_zlib

from shared.errors import CorruptLayer, LayerTooLarge

GZIP_MAGIC = b"\x1f\x8b"
GZIP_WBITS = 16 + 15  # a gzip member around a deflate stream with a window of up to 32 KiB
# isal's stubs declare ``error`` as an instance; at run time it is the exception class.
INFLATE_ERROR: type[Exception] = isal_zlib.error  # type: ignore[assignment]
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_UNSUPPORTED = {b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz"}
# zstd frames may ask for a window up to 2 GiB; 128 MiB is zstd's own default limit for decoders and
# what `zstd --long` produces at most by default.
MAX_ZSTD_WINDOW = 1 << 27
READ_SIZE = 256 * 1024


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class ChunkReader(io.RawIOBase):
    """A file-like view of an iterator of byte chunks, reporting each chunk's size as it arrives."""

    def __init__(
        self, chunks: Iterator[bytes] | Iterator[memoryview], on_read: Callable[[int], None] | None = None
    ) -> None:
        self._chunks = chunks
        self._on_read = on_read
        self._buffer = memoryview(b"")

    def readable(self) -> bool:
        return True

    def _next(self) -> bool:
        for chunk in self._chunks:
            if chunk:
                if self._on_read is not None:
                    self._on_read(len(chunk))
                self._buffer = memoryview(chunk)
                return True
        return False

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        if not self._buffer and not self._next():
            return 0
        count = min(len(target), len(self._buffer))
        target[:count] = self._buffer[:count]
        self._buffer = self._buffer[count:]
        return count

    def prefix(self, size: int) -> bytes:
        """The first ``size`` bytes (fewer at the end of the stream), left in place to be read again."""
        held = bytes(self._buffer)
        while len(held) < size and self._next():
            held += bytes(self._buffer)
        self._buffer = memoryview(held)
        return held[:size]

    def drain(self) -> None:
        """Read to the end, so that the source's digest check (raised at its end) runs."""
        self._buffer = memoryview(b"")
        while self._next():
            self._buffer = memoryview(b"")


class GzipMembers:
    """gzip members one after another, as ``gzip.GzipFile`` reads them, inflated by ISA-L in C.

    Same results as ``gzip.GzipFile`` (several members make one stream; zero bytes after a member
    are padding; anything else after it must be another member; header, CRC-32 and length are
    checked, here by the inflater itself), but fed ``READ_SIZE`` input at a time: Python 3.11's gzip
    module feeds zlib 8 KiB per call and adds a Python CRC pass, which cost more than the inflation.
    The inflater is ISA-L's (package ``isal``), zlib-compatible and 2-3 times faster than zlib here
    (bench/RESULTS.md); its errors are reported as `BadGzipFile`.
    Output per call is capped at what the caller asked for (decompression bombs stay small).
    """

    def __init__(self, raw: _Readable) -> None:
        self._raw = raw
        self._inflate = isal_zlib.decompressobj(GZIP_WBITS)  # gzip wrapper: header, CRC, length checked
        self._input = b""
        self._done = False

    def _next_member(self) -> bool:
        """After a member: skip zero padding; True when another member starts."""
        rest = self._inflate.unused_data
        while True:
            rest = rest.lstrip(b"\0")
            if rest:
                break
            rest = self._raw.read(READ_SIZE)
            if not rest:
                return False
        if not rest.startswith(GZIP_MAGIC[:1]) or (len(rest) > 1 and not rest.startswith(GZIP_MAGIC)):
            raise BadGzipFile(f"not a gzip member after the end of the previous one ({rest[:2]!r})")
        self._inflate = isal_zlib.decompressobj(GZIP_WBITS)
        self._input = rest
        return True

    def read(self, size: int = READ_SIZE, /) -> bytes:
        while not self._done:
            if self._inflate.eof and not self._next_member():
                self._done = True
                break
            if not self._input:
                self._input = self._raw.read(READ_SIZE)
                if not self._input:
                    raise EOFError("Compressed file ended before the end-of-stream marker was reached")
            try:
                data = self._inflate.decompress(self._input, size)
            except INFLATE_ERROR as failure:
                raise BadGzipFile(f"invalid deflate data ({failure})") from None
            self._input = self._inflate.unconsumed_tail
            if data:
                return data
        return b""


class LayerStream(io.RawIOBase):
    """The uncompressed layer: counted, capped at ``limit`` bytes, hashed."""

    def __init__(self, raw: ChunkReader, *, limit: int, what: str) -> None:
        self.raw = raw
        self.what = what
        self.limit = limit
        self.count = 0
        self.hasher = hashlib.sha256()
        head = raw.prefix(8)
        self.compression = "plain"
        inner: _Readable = raw
        if head.startswith(GZIP_MAGIC):
            self.compression = "gzip"
            inner = GzipMembers(raw)
        elif head.startswith(ZSTD_MAGIC):
            self.compression = "zstd"
            inner = zstandard.ZstdDecompressor(max_window_size=MAX_ZSTD_WINDOW).stream_reader(
                io.BufferedReader(raw, READ_SIZE), read_size=READ_SIZE, read_across_frames=True, closefd=False
            )
        else:
            for magic, name in _UNSUPPORTED.items():
                if head.startswith(magic):
                    raise CorruptLayer(f"{what}: {name} compression is not an OCI layer format")
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(min(len(target), READ_SIZE))
        self._passed(data)
        target[: len(data)] = data
        return len(data)

    def _passed(self, data: bytes) -> None:
        self.count += len(data)
        if self.count > self.limit:
            raise LayerTooLarge(
                f"{self.what}: more than {self.limit} bytes uncompressed (SCAN_MAX_LAYER_BYTES); "
                "a decompression bomb or an oversized layer"
            )
        self.hasher.update(data)

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.count

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Forward only: skipping file data the catalogers did not ask for reads it in large blocks
        (through the cap and the hash), instead of tarfile's stream mode's 10 KiB records."""
        target = offset if whence == io.SEEK_SET else self.count + offset if whence == io.SEEK_CUR else -1
        if target < self.count:
            raise io.UnsupportedOperation(f"{self.what}: a layer stream cannot seek back or from its end")
        while self.count < target:
            if not self._skip(target - self.count):
                break  # past the end: the next read returns nothing and the tar reader reports it
        return self.count

    def _skip(self, size: int) -> int:
        """Pass over at most ``size`` bytes: counted and hashed, not copied anywhere."""
        data = self._inner.read(min(size, READ_SIZE))
        self._passed(data)
        return len(data)

    def drain(self) -> None:
        """Read what the tar reader left (end-of-archive padding, trailing frames), then the source."""
        while self._skip(READ_SIZE):
            pass
        self.raw.drain()

    @property
    def diff_id(self) -> str:
        return "sha256:" + self.hasher.hexdigest()
