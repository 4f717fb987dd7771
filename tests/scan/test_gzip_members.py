"""`shared.image.decompress.GzipMembers` reads gzip layers exactly as ``gzip.GzipFile`` did.

It replaced ``gzip.GzipFile`` for speed (bench/RESULTS.md). The oracles: Python's ``gzip`` module
(the reader it replaced) and GNU gzip (``gzip -dc``) on the same bytes, including several members,
zero padding between and after members, a truncated stream, a corrupted CRC and trailing garbage.
Chunk boundaries are varied so that a member boundary falls inside, at and across reads.
"""

from __future__ import annotations

import gzip
import io
import random
import subprocess
import zlib
from collections.abc import Iterator

import pytest

from shared import errors
from shared.image.decompress import ChunkReader, LayerStream

RNG = random.Random(7)
TEXT = b"".join(b"line %d of some text\n" % i for i in range(20000))
NOISE = RNG.randbytes(300_000)


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _read(data: bytes, chunk: int) -> bytes:
    stream = LayerStream(ChunkReader(_chunks(data, chunk)), limit=1 << 30, what="test layer")
    out = io.BytesIO()
    buffer = bytearray(70_000)
    while count := stream.readinto(buffer):
        out.write(buffer[:count])
    return out.getvalue()


def _gnu_gzip(data: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["gzip", "-dc"], input=data, capture_output=True, check=False)


CASES = {
    "one member": gzip.compress(TEXT),
    "stored blocks": gzip.compress(NOISE, compresslevel=0),
    "three members": gzip.compress(TEXT[:1000]) + gzip.compress(NOISE) + gzip.compress(TEXT),
    "empty member between": gzip.compress(TEXT[:50]) + gzip.compress(b"") + gzip.compress(TEXT[50:900]),
    "zero padding after": gzip.compress(TEXT) + bytes(5000),
}
ZERO_PADDING_BETWEEN = gzip.compress(TEXT[:100]) + bytes(3) + gzip.compress(TEXT[100:200])


def _with_name(data: bytes) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(filename="layer.tar", mode="wb", fileobj=out, mtime=0) as handle:
        handle.write(data)
    return out.getvalue()


CASES["file name in header"] = _with_name(TEXT)


@pytest.mark.parametrize("chunk", [1, 7, 4096, 65536, 1 << 20])
@pytest.mark.parametrize("name", sorted(CASES))
def test_same_bytes_as_gzip_module_and_gnu_gzip(name: str, chunk: int) -> None:
    if chunk == 1 and len(CASES[name]) > 20000:
        pytest.skip("one-byte chunks only on small inputs")
    data = CASES[name]
    expected = gzip.decompress(data)
    gnu = _gnu_gzip(data)
    assert gnu.returncode == 0 and gnu.stdout == expected
    assert _read(data, chunk) == expected


def test_zero_padding_between_members_is_read_past_as_the_gzip_module_does() -> None:
    """The oracles disagree: Python's gzip module skips zero bytes after a member and reads on; GNU
    gzip stops at them ("trailing garbage ignored", exit 2). RFC 1952 defines neither (a file is a
    series of members); the reader keeps the behaviour of the module it replaced, so no layer that
    scanned before reads differently now."""
    gnu = _gnu_gzip(ZERO_PADDING_BETWEEN)
    assert gnu.returncode == 2 and gnu.stdout == TEXT[:100] and b"trailing garbage" in gnu.stderr
    assert _read(ZERO_PADDING_BETWEEN, 4096) == gzip.decompress(ZERO_PADDING_BETWEEN) == TEXT[:200]


@pytest.mark.parametrize(
    "name, data",
    [
        ("truncated", gzip.compress(TEXT)[:-100]),
        ("truncated trailer", gzip.compress(TEXT)[:-3]),
        ("bad crc", gzip.compress(TEXT)[:-8] + b"\0\0\0\0" + gzip.compress(TEXT)[-4:]),
        ("garbage after member", gzip.compress(TEXT) + b"garbage"),
        ("half a magic after member", gzip.compress(TEXT) + b"\x1f"),
    ],
)
def test_broken_streams_fail_like_the_gzip_module(name: str, data: bytes) -> None:
    with pytest.raises((EOFError, OSError, zlib.error)):
        gzip.decompress(data)
    assert _gnu_gzip(data).returncode != 0
    with pytest.raises((EOFError, OSError, zlib.error, errors.CorruptLayer)):
        _read(data, 65536)
