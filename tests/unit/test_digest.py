"""``shared.registry.digest``: computing and verifying content digests, also while streaming.

Expected behaviour: registries.md §1.4 (for a digest reference verify the body hash; when
``Docker-Content-Digest`` is missing assume sha256 and hash the body), §1.5 (blobs by digest), the
OCI image-spec descriptor rules (``size`` is the exact byte count, ``digest`` algorithm:hex) and the
docstring of ``verified_chunks``: every chunk passes through once, and a digest or length problem is
raised when the stream ends, before the consumer can treat the content as complete.

Length problems: a short stream is ``ProtocolError`` (registry-side truncation); a stream longer than
the descriptor's size raises ``DigestMismatch`` as soon as the excess byte arrives, so no chunk that
would carry the consumer past the declared size is ever handed over.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from shared.errors import DigestMismatch, InvalidReference, ProtocolError
from shared.registry.digest import compute, verified_chunks, verify

CHUNKS = [b"layer-", b"bytes-", b"", b"in-four-chunks"]
BODY = b"".join(CHUNKS)
SHA256 = "sha256:" + hashlib.sha256(BODY).hexdigest()
SHA512 = "sha512:" + hashlib.sha512(BODY).hexdigest()
WRONG = "sha256:" + hashlib.sha256(b"something else").hexdigest()


def consume(stream: Iterator[bytes]) -> tuple[list[bytes], BaseException | None]:
    """Pull every chunk, recording what arrived before any error."""
    received: list[bytes] = []
    try:
        for chunk in stream:
            received.append(chunk)
    except (DigestMismatch, ProtocolError) as error:
        return received, error
    return received, None


class Source:
    """A chunk source that records how far it was read."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.pulled = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.pulled += 1
            yield chunk


def test_compute() -> None:
    assert compute(b"") == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert compute(BODY, "sha512") == SHA512


def test_verify_accepts_matching_content() -> None:
    verify(BODY, SHA256, "blob")
    verify(BODY, SHA512, "blob")


def test_verify_rejects_other_content() -> None:
    with pytest.raises(DigestMismatch) as caught:
        verify(BODY, WRONG, "manifest app:1")
    assert caught.value.message == f"manifest app:1: content digest is {SHA256}, expected {WRONG}"
    assert caught.value.code == "DIGEST_INVALID"


@pytest.mark.parametrize("expected", ["sha256:abc", "md5:" + "a" * 32, "sha256:" + "A" * 64])
def test_verify_rejects_malformed_expected_digest(expected: str) -> None:
    with pytest.raises(InvalidReference):
        verify(BODY, expected, "blob")


@pytest.mark.parametrize("size", [len(BODY), None])
@pytest.mark.parametrize("digest", [SHA256, SHA512])
def test_verified_chunks_success(size: int | None, digest: str) -> None:
    received, error = consume(verified_chunks(CHUNKS, digest, size, "blob"))
    assert error is None
    assert received == CHUNKS


def test_wrong_digest_is_raised_only_after_every_chunk() -> None:
    source = Source(CHUNKS)
    received, error = consume(verified_chunks(source, WRONG, len(BODY), "layer sha256:x"))

    assert received == CHUNKS
    assert source.pulled == len(CHUNKS)
    assert isinstance(error, DigestMismatch)
    assert SHA256 in str(error) and WRONG in str(error)
    assert str(error).startswith("layer sha256:x: ")


def test_wrong_digest_without_size() -> None:
    received, error = consume(verified_chunks(CHUNKS, WRONG, None, "blob"))
    assert received == CHUNKS
    assert isinstance(error, DigestMismatch)


def test_truncated_stream_is_a_protocol_error_after_every_chunk() -> None:
    # The right prefix, cut short: every chunk that did arrive is passed on, then the error.
    short = CHUNKS[:2]
    received, error = consume(verified_chunks(short, SHA256, len(BODY), "blob"))

    assert received == short
    assert isinstance(error, ProtocolError)
    assert not isinstance(error, DigestMismatch)
    assert f"truncated after {len(b''.join(short))} of {len(BODY)} bytes" in str(error)


def test_empty_stream_with_declared_size_is_truncated() -> None:
    received, error = consume(verified_chunks([], SHA256, len(BODY), "blob"))
    assert received == []
    assert isinstance(error, ProtocolError)


def test_too_long_stream_is_a_digest_mismatch() -> None:
    extra = [*CHUNKS, b"-and-more"]
    received, error = consume(verified_chunks(extra, SHA256, len(BODY), "blob"))

    assert received == CHUNKS  # everything up to the declared size was handed over
    assert isinstance(error, DigestMismatch)
    assert f"more than the {len(BODY)} bytes" in str(error)


def test_too_long_stream_never_hands_over_bytes_past_the_declared_size() -> None:
    # The excess arrives inside a chunk: that chunk is withheld and reading stops there, so a
    # registry streaming without end cannot make us read (or store) more than size bytes.
    chunks = [b"12345", b"67890", b"ABC", b"never-read"]
    source = Source(chunks)
    digest = "sha256:" + hashlib.sha256(b"12345678").hexdigest()
    received, error = consume(verified_chunks(source, digest, 8, "blob"))

    assert received == [b"12345"]
    assert sum(map(len, received)) <= 8
    assert source.pulled == 2
    assert isinstance(error, DigestMismatch)


def test_nothing_is_raised_before_the_consumer_reads_to_the_end() -> None:
    stream = verified_chunks(CHUNKS, WRONG, len(BODY), "blob")
    first = [next(stream) for _ in range(len(CHUNKS))]
    assert first == CHUNKS
    with pytest.raises(DigestMismatch):
        next(stream)


def test_abandoned_stream_raises_nothing() -> None:
    stream = verified_chunks(CHUNKS, WRONG, len(BODY), "blob")
    assert next(stream) == CHUNKS[0]
    stream.close()  # consumer gave up early: no verdict, no error


def test_malformed_expected_digest_fails_before_any_chunk() -> None:
    source = Source(CHUNKS)
    stream = verified_chunks(source, "sha256:short", None, "blob")
    with pytest.raises(InvalidReference):
        next(stream)
    assert source.pulled == 0
