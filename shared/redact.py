"""Keep secrets out of text that leaves the process."""

from __future__ import annotations

from collections.abc import Iterable


def mask(value: str) -> str:
    """A recognisable but useless rendering of a secret, as the broker masks credentials."""
    if len(value) <= 8:
        return "***"
    return f"{value[:3]}***{value[-2:]}"


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each secret (longer than 3 characters) in ``text``."""
    # Longest first, so a secret that contains a shorter one is not left half-replaced.
    for secret in sorted(secrets, key=len, reverse=True):
        if secret and len(secret) > 3:
            text = text.replace(secret, "***")
    return text
