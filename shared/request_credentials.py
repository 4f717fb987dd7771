"""Registry credentials carried by an incoming request (broker-protocol.md §4.4).

Snyk asks the broker client to substitute ``${CR_CREDENTIALS}`` into a header or a body field, so
the value can arrive in several places. They are tried in a fixed order and the first one present
decides; a malformed value is an error, never a silent fall-through to another source, so the
caller learns that what it sent was wrong. The agent's own ``CR_CREDENTIALS`` is the last resort.

``X-CR-Credentials`` is tried before ``Authorization`` because only the former is unambiguous: when
a function is deployed behind platform IAM, ``Authorization`` carries the platform's token.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from shared.credentials import (
    EcrCredentials,
    UserPassCredentials,
    encode_credentials,
    parse_credentials,
    parse_credentials_json,
)
from shared.errors import CredentialsError
from shared.settings import Settings, get_settings

log = logging.getLogger(__name__)

HEADER_SOURCES = ("X-CR-Credentials", "Authorization")
BODY_FIELD = "credentials"
SETTINGS_SOURCE = "settings"


@dataclass(frozen=True)
class RequestCredentials:
    credentials: UserPassCredentials | EcrCredentials
    source: str  # header name, "body" or "settings": safe to log
    encoded: str = field(repr=False)  # the base64 form, to hand on to a queued scan

    @property
    def from_request(self) -> bool:
        return self.source != SETTINGS_SOURCE

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every string that must not appear in a response or a log line."""
        return (*self.credentials.secrets, self.encoded)


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:  # plain dicts (tests, events) are not case-insensitive like werkzeug's Headers
        value = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
    return (value or "").strip()


def _check_substituted(value: str, where: str) -> None:
    # A literal placeholder means the broker client did not substitute it (x-broker-var-sub missing).
    if "${" in value:
        raise CredentialsError(f"{where} holds an unsubstituted broker variable; check x-broker-var-sub")


def _drop_scheme(value: str) -> str:
    # "Basic <b64>", "Bearer <b64>", "Token <b64>": the broker's credsFromHeader drops the first word too.
    parts = value.split(None, 1)
    return parts[1].strip() if len(parts) == 2 else value


def _from_body(value: Any) -> RequestCredentials:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, str):
        _check_substituted(value, "body field 'credentials'")
        return RequestCredentials(parse_credentials(value), "body", value.strip())
    if isinstance(value, Mapping):
        data = dict(value)
        return RequestCredentials(parse_credentials_json(data), "body", encode_credentials(data))
    raise CredentialsError("body field 'credentials' must be a base64 string or an object")


def credentials_from_request(
    headers: Mapping[str, str],
    body: Mapping[str, Any] | None = None,
    settings: Settings | None = None,
) -> RequestCredentials:
    """The registry credentials for this request; ``CredentialsError`` (400) if none or malformed."""
    for name in HEADER_SOURCES:
        value = _header(headers, name)
        if value:
            _check_substituted(value, f"header {name}")
            encoded = _drop_scheme(value) if name == "Authorization" else value
            found = RequestCredentials(parse_credentials(encoded), name, encoded)
            break
    else:
        if body is not None and body.get(BODY_FIELD) not in (None, ""):
            found = _from_body(body[BODY_FIELD])
        else:
            fallback = (settings or get_settings()).cr_credentials
            if fallback is None or not fallback.get_secret_value().strip():
                raise CredentialsError(
                    "no registry credentials: send X-CR-Credentials or Authorization, or set CR_CREDENTIALS"
                )
            encoded = fallback.get_secret_value().strip()
            found = RequestCredentials(parse_credentials(encoded), SETTINGS_SOURCE, encoded)
    log.debug("registry credentials (type %s) from %s", found.credentials.type, found.source)
    return found
