"""Registry authentication: Basic, and Bearer tokens from the realm a challenge names.

Tokens are cached per (realm, service, scopes) until shortly before they expire, so a listing of
many pages costs one token per scope. The token endpoint is asked with GET first (distribution's
token spec) and with the OAuth2 POST form when GET is not served there; an identity token (an
OAuth2 refresh token, as ACR's AAD exchange yields) always goes by the POST form. The credential
itself comes from a ``Login``, which may mint it and can be asked for a new one after a refusal.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import requests

from shared import errors
from shared.registry.challenge import Challenge, preferred_challenge
from shared.registry.destinations import refuse_metadata_url
from shared.registry.login import Login, RegistryCredential

# Never trust a token issued for less than this (distribution's token spec says 60 s minimum).
MIN_TOKEN_LIFE = 60.0
# Renew this long before expiry, so a token does not lapse between sending and the registry's check.
EXPIRY_MARGIN = 10.0
MAX_TOKEN_BODY = 1024 * 1024

Send = Callable[..., requests.Response]


def _monotonic() -> float:
    # Looked up at call time, so a test that moves time.monotonic moves token expiry too.
    return time.monotonic()


@dataclass
class _Token:
    value: str
    expires_at: float


def basic_header(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _refuse_unsafe_realm(realm: str, registry_is_plain_http: bool) -> None:
    """A challenge must not steer us to cloud metadata services or to plain HTTP with our password."""
    parts = urlsplit(realm)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise errors.RefusedHost("token realm is not an http(s) URL")
    if parts.scheme == "http" and not registry_is_plain_http:
        raise errors.RefusedHost("token realm uses plain HTTP for a registry reached over HTTPS")
    refuse_metadata_url(realm, "token realm")


class Authenticator:
    """Produces the ``Authorization`` header for a request's scope and reacts to 401 challenges."""

    def __init__(
        self,
        login: Login,
        *,
        plain_http: bool,
        send: Send,
        clock: Callable[[], float] = _monotonic,
    ) -> None:
        self.login = login
        self._plain_http = plain_http
        self._send = send
        self.clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, str, tuple[str, ...]], _Token] = {}
        self._extra_scopes: dict[str, tuple[str, ...]] = {}
        self.challenge: Challenge | None = None
        self.token_requests = 0

    @property
    def has_credentials(self) -> bool:
        credential = self.login.current()
        return credential.has_basic or bool(credential.identity_token or credential.bearer)

    def header_for(self, scope: str | None) -> str | None:
        credential = self.login.current()
        if credential.bearer:
            # A ready-made token (Artifactory access token) needs no challenge round trip.
            return "Bearer " + credential.bearer
        challenge = self.challenge
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            return basic_header(credential.username, credential.password) if credential.has_basic else None
        if challenge.scheme == "bearer":
            return "Bearer " + self._token(challenge, self._scopes(scope))
        return None

    def on_unauthorized(self, response: requests.Response, scope: str | None, *, sent: bool = False) -> bool:
        """Learn from a 401; True when a retry with new credentials may succeed.

        ``sent`` tells whether the refused request carried our credentials: a refused Basic or
        ready-made token is worth retrying only when the login can mint a new one.
        """
        header = response.headers.get("WWW-Authenticate", "")
        # gcr.io answers 401 without a challenge on real requests: reuse the one from the ping.
        challenge = preferred_challenge(header) or self.challenge
        credential = self.login.current()
        if credential.bearer:
            return sent and self.login.renew()
        if challenge is None:
            return False
        if challenge.scheme == "basic":
            if not self.has_credentials:
                self.challenge = challenge
                return False
            refused_basic = sent and self.challenge is not None and self.challenge.scheme == "basic"
            self.challenge = challenge
            return self.login.renew() if refused_basic else True
        if challenge.error == "insufficient_scope" and scope:
            wider = tuple(s for s in challenge.scopes if s not in self._scopes(scope))
            if not wider:
                return False
            with self._lock:
                self._extra_scopes[scope] = self._extra_scopes.get(scope, ()) + wider
        elif self.challenge == challenge:
            # Same challenge as before: our cached token was refused, perhaps expired or revoked early.
            self._forget(challenge, self._scopes(scope))
        self.challenge = challenge
        return True

    def _scopes(self, scope: str | None) -> tuple[str, ...]:
        if not scope:
            return ()
        return tuple(sorted({scope, *self._extra_scopes.get(scope, ())}))

    def _forget(self, challenge: Challenge, scopes: tuple[str, ...]) -> None:
        with self._lock:
            self._tokens.pop((challenge.realm or "", challenge.service or "", scopes), None)

    def _token(self, challenge: Challenge, scopes: tuple[str, ...]) -> str:
        realm = challenge.realm
        if not realm:
            raise errors.ProtocolError("registry sent a Bearer challenge without a realm")
        key = (realm, challenge.service or "", scopes)
        with self._lock:
            cached = self._tokens.get(key)
            if cached and cached.expires_at > self.clock():
                return cached.value
            _refuse_unsafe_realm(realm, self._plain_http)
            token = self._fetch(realm, challenge.service, scopes)
            self._tokens[key] = token
            return token.value

    def _fetch(self, realm: str, service: str | None, scopes: tuple[str, ...]) -> _Token:
        for attempt in range(2):
            credential = self.login.current()
            response = self._request_token(realm, service, scopes, credential)
            if response.status_code in (401, 403):
                response.close()
                # A minted credential may have expired or been revoked early: mint once more.
                if attempt == 0 and self.login.renew():
                    continue
                raise errors.Unauthorized("the registry's token service refused the credentials")
            if response.status_code != 200:
                response.close()
                raise errors.RegistryError(f"token request: token service answered {response.status_code}")
            return self._parse(response)
        raise AssertionError("unreachable")  # pragma: no cover

    def _request_token(
        self, realm: str, service: str | None, scopes: tuple[str, ...], credential: RegistryCredential
    ) -> requests.Response:
        self.token_requests += 1
        if credential.identity_token:
            return self._send_oauth2(realm, service, scopes, credential)
        params: list[tuple[str, str]] = []
        if service:
            params.append(("service", service))
        params.extend(("scope", s) for s in scopes)
        headers = {"Accept": "application/json"}
        if credential.has_basic:
            params.append(("account", credential.username))
            headers["Authorization"] = basic_header(credential.username, credential.password)
        response = self._send("GET", realm, params=params, headers=headers, what="token request")
        if response.status_code in (400, 404, 405):
            response.close()
            response = self._send_oauth2(realm, service, scopes, credential)
        return response

    def _send_oauth2(
        self, realm: str, service: str | None, scopes: tuple[str, ...], credential: RegistryCredential
    ) -> requests.Response:
        form = {"client_id": "registry-agent", "access_type": "offline"}
        if credential.identity_token:
            form.update(grant_type="refresh_token", refresh_token=credential.identity_token)
        elif credential.has_basic:
            form.update(grant_type="password", username=credential.username, password=credential.password)
        else:
            raise errors.Unauthorized("the registry's token service needs credentials (OAuth2 form)")
        if service:
            form["service"] = service
        if scopes:
            form["scope"] = " ".join(scopes)
        return self._send(
            "POST", realm, data=form, headers={"Accept": "application/json"}, what="token request"
        )

    def _parse(self, response: requests.Response) -> _Token:
        with response:
            body = response.raw.read(MAX_TOKEN_BODY + 1, decode_content=True)
        if len(body) > MAX_TOKEN_BODY:
            raise errors.ProtocolError("token response is larger than 1 MiB")
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise errors.ProtocolError("token response is not JSON") from None
        value = document.get("token") or document.get("access_token") if isinstance(document, dict) else None
        if not isinstance(value, str) or not value:
            raise errors.ProtocolError("token response has neither token nor access_token")
        try:
            lifetime = float(document.get("expires_in") or MIN_TOKEN_LIFE)
        except (TypeError, ValueError):
            lifetime = MIN_TOKEN_LIFE
        lifetime = max(lifetime, MIN_TOKEN_LIFE)
        issued_at = document.get("issued_at")
        age = 0.0
        if isinstance(issued_at, str):
            try:
                issued = datetime.fromisoformat(issued_at.replace("Z", "+00:00")).timestamp()
                age = max(0.0, time.time() - issued)
                # A clock skewed either way would make every token look fresh or dead: trust our clock.
                if age >= lifetime - EXPIRY_MARGIN:
                    age = 0.0
            except ValueError:
                age = 0.0
        return _Token(value, self.clock() + lifetime - age - EXPIRY_MARGIN)
