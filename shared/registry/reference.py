"""Image references, validated against the OCI distribution grammar before any URL is built.

Validating here (rather than escaping later) is what keeps ``..``, ``%2f`` and CRLF out of the
paths and headers the client sends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.errors import InvalidReference

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
# \Z, not $: "$" also matches before a trailing newline, which would let "name\n" through.
_NAME = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*\Z")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}\Z")
_SHA256 = re.compile(r"^sha256:[a-f0-9]{64}\Z")
_SHA512 = re.compile(r"^sha512:[a-f0-9]{128}\Z")
_HOST = re.compile(
    r"^(?:localhost|[A-Za-z0-9.-]+\.[A-Za-z0-9-]+|\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+:\d+)(?::\d+)?$"
)

MAX_NAME_LENGTH = 255


def validate_repository(name: str) -> str:
    if not name or len(name) > MAX_NAME_LENGTH or not _NAME.match(name):
        raise InvalidReference(
            "repository name must be lower-case path components of letters, digits and single "
            "separators (., _, __, -) joined by '/'"
        )
    return name


def validate_tag(tag: str) -> str:
    if not _TAG.match(tag):
        raise InvalidReference("tag must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
    return tag


def validate_digest(digest: str) -> str:
    if not _DIGEST.match(digest):
        raise InvalidReference("digest must be algorithm:hex, e.g. sha256:<64 hex digits>")
    algorithm = digest.split(":", 1)[0]
    if algorithm == "sha256" and not _SHA256.match(digest):
        raise InvalidReference("a sha256 digest has exactly 64 lower-case hex digits")
    if algorithm == "sha512" and not _SHA512.match(digest):
        raise InvalidReference("a sha512 digest has exactly 128 lower-case hex digits")
    if algorithm not in {"sha256", "sha512"}:
        raise InvalidReference(f"unsupported digest algorithm {algorithm!r}")
    return digest


def validate_reference(reference: str) -> str:
    """A tag or a digest, as used in ``/v2/<name>/manifests/<reference>``."""
    return validate_digest(reference) if ":" in reference else validate_tag(reference)


def is_digest(reference: str) -> bool:
    return ":" in reference


@dataclass(frozen=True)
class ImageRef:
    repository: str
    tag: str | None = None
    digest: str | None = None
    registry: str | None = None

    @property
    def reference(self) -> str:
        """What to ask the registry for: the digest when known, else the tag."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}" if self.registry else self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_image(image: str) -> ImageRef:
    """Parse ``[host/]repo[:tag][@digest]``; a bare repository means ``:latest``."""
    if not image or len(image) > 1024 or any(c.isspace() or ord(c) < 32 for c in image):
        raise InvalidReference("image must be [registry/]repository[:tag][@digest]")
    rest, _, digest = image.partition("@")
    registry = None
    first, slash, remainder = rest.partition("/")
    if slash and (first == "localhost" or "." in first or ":" in first) and _HOST.match(first):
        registry, rest = first.lower(), remainder
    name, tag = rest, None
    last_slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > last_slash:
        name, tag = rest[:colon], rest[colon + 1 :]
    validate_repository(name)
    if tag is not None:
        validate_tag(tag)
    if digest:
        validate_digest(digest)
    elif "@" in image:
        raise InvalidReference("digest after '@' is empty")
    if tag is None and not digest:
        tag = "latest"
    return ImageRef(repository=name, tag=tag, digest=digest or None, registry=registry)
