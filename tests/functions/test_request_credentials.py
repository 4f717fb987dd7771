"""Where a request's registry credentials come from (broker-protocol.md §4.4)."""

from __future__ import annotations

import base64
import json

import pytest

from shared.credentials import encode_credentials
from shared.errors import CredentialsError
from shared.request_credentials import credentials_from_request
from shared.settings import Settings
from tests.functions.fakes import CREDENTIALS, ENCODED, PASSWORD

OTHER = encode_credentials({**CREDENTIALS, "username": "other"})
NO_FALLBACK = Settings(cr_credentials=None)


@pytest.mark.parametrize(
    "value", [ENCODED, f"Basic {ENCODED}", f"Bearer {ENCODED}", f"Token {ENCODED}", f"  {ENCODED}\n"]
)
def test_authorization_header_raw_or_after_a_scheme_word(value: str) -> None:
    found = credentials_from_request({"authorization": value}, settings=NO_FALLBACK)
    assert (found.source, found.credentials.username, found.encoded) == ("Authorization", "robot", ENCODED)


def test_x_cr_credentials_wins_over_authorization() -> None:
    # Authorization may carry a platform token when the function sits behind IAM.
    found = credentials_from_request(
        {"Authorization": "Bearer eyJhbGciOi.platform.token", "X-CR-Credentials": ENCODED},
        settings=NO_FALLBACK,
    )
    assert found.source == "X-CR-Credentials"


def test_body_field_string_or_object() -> None:
    assert credentials_from_request({}, {"credentials": ENCODED}, NO_FALLBACK).source == "body"
    found = credentials_from_request({}, {"credentials": CREDENTIALS}, NO_FALLBACK)
    assert found.credentials.password.get_secret_value() == PASSWORD
    assert json.loads(base64.b64decode(found.encoded)) == CREDENTIALS


def test_headers_win_over_body_and_settings() -> None:
    found = credentials_from_request(
        {"X-CR-Credentials": OTHER}, {"credentials": ENCODED}, Settings(cr_credentials=ENCODED)
    )
    assert found.credentials.username == "other"


def test_settings_are_the_last_resort() -> None:
    found = credentials_from_request({}, {}, Settings(cr_credentials=ENCODED))
    assert (found.source, found.from_request) == ("settings", False)


def test_a_malformed_header_does_not_fall_through() -> None:
    with pytest.raises(CredentialsError):
        credentials_from_request({"Authorization": "garbage"}, settings=Settings(cr_credentials=ENCODED))


@pytest.mark.parametrize(
    ("headers", "body"), [({}, None), ({}, {"credentials": ""}), ({"Authorization": "   "}, {})]
)
def test_nothing_anywhere_is_a_400(headers: dict[str, str], body: dict[str, str] | None) -> None:
    with pytest.raises(CredentialsError) as caught:
        credentials_from_request(headers, body, NO_FALLBACK)
    assert caught.value.status == 400


def test_unsubstituted_placeholder_is_named() -> None:
    with pytest.raises(CredentialsError, match="x-broker-var-sub"):
        credentials_from_request({"X-CR-Credentials": "${CR_CREDENTIALS}"}, settings=NO_FALLBACK)


def test_secrets_cover_password_and_encoded_value_and_repr_hides_them() -> None:
    found = credentials_from_request({"Authorization": ENCODED}, settings=NO_FALLBACK)
    assert PASSWORD in found.secrets and ENCODED in found.secrets
    assert PASSWORD not in repr(found) and ENCODED not in repr(found)
