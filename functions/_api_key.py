"""The optional API key (``AGENT_API_KEY``) every route but ``/healthcheck`` requires when it is set.

Where the key may travel:

* ``X-Agent-Api-Key: <key>``: for callers that can add a header (a reverse proxy, a sidecar, curl);
* ``Authorization: Bearer <key>``: the only header the broker client itself can add to what it
  relays, through an accept rule's ``auth`` block (docs/security.md). The broker then *replaces*
  the ``Authorization`` header Snyk sent, so registry credentials must come another way
  (``X-CR-Credentials``, the body's ``credentials``, or the agent's ``CR_CREDENTIALS``); a request
  whose ``Authorization`` is the key is therefore never read for credentials.

Comparison is constant-time (``hmac.compare_digest``) and the key is registered as a secret for the
request, so it can appear in no log line or response even when a caller puts it in a wrong place.
"""

from __future__ import annotations

import hmac
from typing import Protocol

from shared.errors import AgentError

HEADER = "X-Agent-Api-Key"
_BEARER = "bearer "


class ApiKeyInvalid(AgentError):
    code = "API_KEY_INVALID"
    status = 401


class HeaderLookup(Protocol):
    """werkzeug's (case-insensitive) ``Headers``, or any mapping with ``get``."""

    def get(self, key: str) -> str | None: ...


def _equal(given: str, key: str) -> bool:
    return hmac.compare_digest(given.strip().encode(), key.encode())


def key_in_authorization(headers: HeaderLookup, key: str) -> bool:
    """True when ``Authorization`` carries the agent's key (``Bearer <key>``) rather than credentials."""
    value = (headers.get("Authorization") or "").strip()
    return value[: len(_BEARER)].lower() == _BEARER and _equal(value[len(_BEARER) :], key)


def check_api_key(headers: HeaderLookup, key: str | None) -> None:
    """Nothing when no key is configured or the request carries it; ``ApiKeyInvalid`` (401) otherwise."""
    if not key:
        return
    given = headers.get(HEADER)
    if given is not None and _equal(given, key):
        return
    if key_in_authorization(headers, key):
        return
    raise ApiKeyInvalid(f"this agent requires its API key in the {HEADER} header")
