"""Content digests: computing, comparing and verifying while streaming."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

from shared.errors import DigestMismatch, ProtocolError
from shared.registry.reference import validate_digest

_ALGORITHMS = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}


def compute(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{_ALGORITHMS[algorithm](data).hexdigest()}"


def verify(data: bytes, expected: str, what: str) -> None:
    algorithm = validate_digest(expected).split(":", 1)[0]
    actual = compute(data, algorithm)
    if actual != expected:
        raise DigestMismatch(f"{what}: content digest is {actual}, expected {expected}")


def verified_chunks(chunks: Iterable[bytes], expected: str, size: int | None, what: str) -> Iterator[bytes]:
    """Pass ``chunks`` through, checking length and digest; the check fires at the end of the stream.

    A consumer therefore sees every byte once and learns of corruption before it can treat the
    content as complete.
    """
    algorithm = validate_digest(expected).split(":", 1)[0]
    hasher = _ALGORITHMS[algorithm]()
    seen = 0
    for chunk in chunks:
        seen += len(chunk)
        if size is not None and seen > size:
            raise DigestMismatch(f"{what}: more than the {size} bytes its descriptor declares")
        hasher.update(chunk)
        yield chunk
    if size is not None and seen != size:
        raise ProtocolError(f"{what}: truncated after {seen} of {size} bytes")
    actual = f"{algorithm}:{hasher.hexdigest()}"
    if actual != expected:
        raise DigestMismatch(f"{what}: content digest is {actual}, expected {expected}")
