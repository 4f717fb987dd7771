"""Test doubles for the vendor tests: a registry speaking the distribution auth protocols, built
on ``responses`` callbacks, plus helpers to connect the agent exactly as the broker would.

``MockRegistry`` models what the specs say, not what the client does:

* distribution ``docs/spec/auth/token.md``: an unauthenticated request gets ``401`` with
  ``WWW-Authenticate: Bearer realm=...,service=...`` and an ``UNAUTHORIZED`` error body; the realm
  answers ``GET ?service=&scope=`` with Basic credentials by ``{"token", "expires_in"}``;
* RFC 7617 Basic registries (ECR, a Nexus without the token realm): ``401`` with
  ``WWW-Authenticate: Basic realm=...`` until the right ``Authorization: Basic`` arrives.

Tokens can be expired at will (``expire_tokens``), as a registry does when their lifetime ends.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
import responses

from shared.credentials import encode_credentials, parse_credentials
from shared.registry import RegistryClient, client_for
from shared.settings import Settings

Reply = tuple[int, dict[str, str], str]
Handler = Callable[[requests.PreparedRequest], Reply]

SETTINGS = Settings(registry_max_retries=3, registry_retry_budget_seconds=600, insecure_registries="")


def connect(
    type_: str,
    registry_base: str,
    username: str = "",
    password: str = "",
    sleeps: list[float] | None = None,
) -> RegistryClient:
    """A client built the way the agent builds one: broker JSON -> base64 -> parse -> client_for."""
    encoded = encode_credentials(
        {"type": type_, "username": username, "password": password, "registryBase": registry_base}
    )
    client = client_for(parse_credentials(encoded), SETTINGS)
    client.transport.sleep = (sleeps if sleeps is not None else []).append
    return client


def oci_error(code: str, message: str) -> str:
    return json.dumps({"errors": [{"code": code, "message": message, "detail": None}]})


def query(request: requests.PreparedRequest) -> dict[str, list[str]]:
    return parse_qs(urlsplit(request.url or "").query, keep_blank_values=True)


def form(request: requests.PreparedRequest) -> dict[str, list[str]]:
    """The request's ``application/x-www-form-urlencoded`` body."""
    body = request.body.decode() if isinstance(request.body, bytes) else request.body or ""
    return parse_qs(body, keep_blank_values=True)


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def decode_basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header.startswith("Basic "):
        return None
    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    return user, password


def json_reply(document: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(document)


class MockRegistry:
    """One registry host with either a Bearer token service or Basic authentication."""

    def __init__(
        self,
        rsps: responses.RequestsMock,
        host: str,
        *,
        accepts: Callable[[str, str], bool],
        realm: str | None = None,
        service: str | None = None,
        basic_realm: str = "Registry",
        token_body: Callable[[int], dict[str, Any]] | None = None,
        scope_ok: Callable[[list[str]], bool] = lambda scopes: True,
    ) -> None:
        self.rsps = rsps
        self.base = f"https://{host}"
        self.accepts = accepts
        self.realm = realm
        self.service = service or host
        self.basic_realm = basic_realm
        self.token_body = token_body or (lambda n: {"token": f"registry-token-{n}", "expires_in": 300})
        self.scope_ok = scope_ok
        self.valid: set[str] = set()
        self.issued = 0
        self.token_requests: list[requests.PreparedRequest] = []
        if realm:
            rsps.add_callback(responses.GET, realm, callback=self._token)

    def _token(self, request: requests.PreparedRequest) -> Reply:
        self.token_requests.append(request)
        if not self.scope_ok(query(request).get("scope", [])):
            return json_reply({"error": "Unable to decode repository and actions"}, 400)
        # No Authorization asks for an anonymous token, which only public registries grant.
        found = decode_basic(request.headers.get("Authorization")) or ("", "")
        if not self.accepts(*found):
            return json_reply({"details": "incorrect username or password"}, 401)
        self.issued += 1
        body = self.token_body(self.issued)
        self.valid.add(body.get("token") or body["access_token"])
        return json_reply(body)

    def challenge(self, error: str | None = None) -> dict[str, str]:
        if self.realm:
            value = f'Bearer realm="{self.realm}",service="{self.service}"'
            if error:
                value += f',error="{error}"'
            return {"WWW-Authenticate": value}
        return {"WWW-Authenticate": f'Basic realm="{self.basic_realm}"'}

    def authorized(self, request: requests.PreparedRequest) -> bool:
        header = request.headers.get("Authorization", "")
        if self.realm:
            return header.startswith("Bearer ") and header[7:] in self.valid
        found = decode_basic(header)
        return found is not None and self.accepts(*found)

    def expire_tokens(self) -> None:
        """Every issued token stops working, as when its lifetime has passed."""
        self.valid.clear()

    def route(self, method: str, path: str, handler: Handler, anonymous: Handler | None = None) -> None:
        """``handler`` answers authorized requests to ``path`` (any query); others get the 401,
        or ``anonymous``'s answer for endpoints that serve anonymous callers something else."""

        def callback(request: requests.PreparedRequest) -> Reply:
            if not self.authorized(request):
                if anonymous is not None and "Authorization" not in request.headers:
                    return anonymous(request)
                return (
                    401,
                    {**self.challenge(), "Content-Type": "application/json"},
                    oci_error("UNAUTHORIZED", "authentication required"),
                )
            return handler(request)

        pattern = re.compile(re.escape(self.base + path) + r"(\?.*)?$")
        self.rsps.add_callback(method, pattern, callback=callback)

    def route_json(self, path: str, document: Any, headers: dict[str, str] | None = None) -> None:
        self.route("GET", path, lambda _: json_reply(document, headers=headers))


def link_pages(
    items: list[str],
    key: str,
    size: int,
    name: str | None = None,
    opaque: bool = False,
    cursor_param: str = "last",
) -> Handler:
    """A v2 listing (``_catalog``, tags/list) answered ``size`` at a time with ``Link`` rel="next"
    (distribution spec: relative link, ``n`` + ``last``). With ``opaque`` the cursor is a token, as
    ECR (in ``last``) and Quay (in ``next_page``) send it, which the client must pass back as is."""
    tokens = {f"tok{i:04d}X": i for i in range(0, len(items), size)}

    def handler(request: requests.PreparedRequest) -> Reply:
        cursor = query(request).get(cursor_param, [""])[0]
        if opaque:
            if cursor and cursor not in tokens:
                return 400, {}, oci_error("UNSUPPORTED", "Invalid parameter at 'NextToken'")
            start = tokens.get(cursor, 0)
        else:
            start = items.index(cursor) + 1 if cursor else 0
        page = items[start : start + size]
        headers = {}
        if start + size < len(items):
            following = f"tok{start + size:04d}X" if opaque else page[-1]
            headers["Link"] = (
                f'<{urlsplit(request.url or "").path}?n={size}&{cursor_param}={following}>; rel="next"'
            )
        document: dict[str, Any] = {key: page}
        if name:
            document["name"] = name
        return json_reply(document, headers=headers)

    return handler
