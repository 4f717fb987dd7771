"""``shared.redact``: masking and scrubbing secrets from text that leaves the process.

Expected behaviour: broker-protocol.md §4.4 (``CR_CREDENTIALS`` is secret and in the broker's own
redaction list) and §5 (the broker masks credentials as ``"eyJ***n0="``: a short head, ``***``, a short
tail), and the module docstrings (secrets of 3 characters or fewer are not scrubbed, as replacing them
would mangle ordinary text).
"""

from __future__ import annotations

import pytest

from shared.redact import mask, scrub

PASSWORD = "S3cr3t-Pa55w0rd-XYZ"


@pytest.mark.parametrize("value", ["", "a", "12345678"])
def test_mask_short_values_completely(value: str) -> None:
    assert mask(value) == "***"


def test_mask_long_values_like_the_broker() -> None:
    assert mask("123456789") == "123***89"
    assert mask("eyJ0eXBlIjoiaGFyYm9yLWNyIn0=") == "eyJ***0="
    masked = mask(PASSWORD)
    assert masked == "S3c***YZ"
    assert PASSWORD not in masked


def test_scrub_replaces_every_occurrence() -> None:
    text = f"user:{PASSWORD} again {PASSWORD}"
    assert scrub(text, [PASSWORD]) == "user:*** again ***"


def test_scrub_several_secrets() -> None:
    assert scrub("a=secret-one b=secret-two", ["secret-one", "secret-two"]) == "a=*** b=***"


@pytest.mark.parametrize("secret", ["", "a", "abc"])
def test_scrub_ignores_short_secrets(secret: str) -> None:
    assert scrub("abc cab", [secret]) == "abc cab"


def test_scrub_four_characters_is_replaced() -> None:
    assert scrub("pin=1234", ["1234"]) == "pin=***"


def test_scrub_without_secrets_is_identity() -> None:
    assert scrub(PASSWORD, []) == PASSWORD
    assert scrub("", [PASSWORD]) == ""


@pytest.mark.parametrize("order", [["abcd", "abcdefgh"], ["abcdefgh", "abcd"]])
def test_scrub_overlapping_secrets_leaves_no_tail(order: list[str]) -> None:
    # A secret containing a shorter secret must be removed whole, whichever order they come in.
    out = scrub("token=abcdefgh", order)
    assert out == "token=***"
    assert "efgh" not in out


def test_scrub_accepts_a_generator() -> None:
    assert scrub(f"x{PASSWORD}x", (s for s in [PASSWORD])) == "x***x"
