"""A Docker-registry token server (distribution `auth.token`) for the `token` harness mode.

Protocol (distribution docs `spec/auth/token.md` and `oauth.md`, summarised in
shared/docs/registries.md §1.1):

* ``GET /token?service=S&scope=A&scope=B[&offline_token=true][&account=U][&client_id=C]`` with
  ``Authorization: Basic ...`` or anonymous. Several ``scope`` parameters are allowed; a parameter holding
  space-separated scopes is split too.
* ``POST /token`` (OAuth2 form): ``grant_type=password`` (``username``, ``password``) or
  ``grant_type=refresh_token`` (``refresh_token``), ``service``, ``client_id`` (required), ``scope`` (one
  field, space-separated), ``access_type=offline`` for a refresh token. ``post_enabled = False`` answers
  404 instead, so clients' "POST 404 -> fall back to GET" path can be tested.

Policy:

* Wrong Basic credentials -> 401. A ``service`` other than ours -> 400.
* Known users get the requested actions they are allowed (``tester``: everything, including
  ``registry:catalog:*``; ``reader``: ``pull`` only, no catalog).
* Anonymous requests get a token **with no access** (so the registry answers 401 ``insufficient_scope``),
  or ``pull`` on repositories when ``anonymous_pull`` is set.

Tokens are ES256 JWTs whose ``x5c`` header carries the signing certificate; distribution 2.8 verifies
that chain against ``rootcertbundle`` (the test CA).

Every request is recorded (``requests``, ``scope_counts``) so tests can assert the client caches tokens.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import secrets
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt

from .certs import Issued
from .procs import LOOPBACK

ALL_ACTIONS = frozenset({"pull", "push", "delete", "*"})


@dataclass(frozen=True)
class User:
    password: str
    # Actions this user may be granted on any resource; "registry:catalog:*" needs "*".
    actions: frozenset[str]


@dataclass(frozen=True)
class Scope:
    """One parsed scope ``type[(class)]:name:actions``; the name may itself contain ':' (host:port)."""

    type: str
    name: str
    actions: tuple[str, ...]
    resource_class: str | None = None

    @classmethod
    def parse(cls, text: str) -> Scope:
        rtype, sep, rest = text.partition(":")
        name, sep2, actions = rest.rpartition(":")
        if not sep or not sep2 or not rtype or not name:
            raise ValueError(f"malformed scope {text!r}")
        resource_class = None
        if rtype.endswith(")") and "(" in rtype:
            rtype, _, resource_class = rtype[:-1].partition("(")
        return cls(rtype, name, tuple(a for a in actions.split(",") if a), resource_class)


@dataclass(frozen=True)
class TokenRequest:
    """What the server saw; tests assert on these."""

    method: str
    scopes: tuple[str, ...]
    username: str | None  # None = anonymous
    service: str | None
    grant_type: str | None  # None for GET
    status: int
    params: dict[str, list[str]] = field(default_factory=dict)


def _first(params: dict[str, list[str]], key: str) -> str | None:
    values = params.get(key)
    return values[0] if values else None


def _split_scopes(values: list[str]) -> list[str]:
    return [s for v in values for s in v.split() if s]


class TokenServer:
    """Threaded stdlib HTTP token server on a free loopback port; ``stop()`` joins its thread."""

    def __init__(
        self,
        signer: Issued,
        *,
        service: str = "harness-registry",
        issuer: str = "harness-token-issuer",
        users: dict[str, User] | None = None,
        expires_in: int = 300,
    ) -> None:
        self.signer = signer
        self.service = service
        self.issuer = issuer
        self.users = users if users is not None else default_users()
        # Mutable knobs, read per request, so a test may change them (restore them afterwards).
        self.expires_in = expires_in
        self.anonymous_pull = False
        self.post_enabled = True
        self.requests: list[TokenRequest] = []
        self.scope_counts: Counter[str] = Counter()
        self._refresh_tokens: dict[str, str] = {}
        self._lock = threading.Lock()
        self._x5c = [base64.b64encode(signer.cert_der()).decode()]
        self._httpd = ThreadingHTTPServer((LOOPBACK, 0), _make_handler(self))
        self._httpd.daemon_threads = True
        # Short poll interval: shutdown() waits for the serve loop to notice (default 0.5 s per stop).
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="token-server", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def realm(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/token"

    def start(self) -> TokenServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def reset(self) -> None:
        """Forget recorded requests (call at the start of a caching test); refresh tokens stay valid."""
        with self._lock:
            self.requests.clear()
            self.scope_counts.clear()

    def count(self, scope: str | None = None) -> int:
        """Token requests seen, in total or for one exact scope string."""
        with self._lock:
            return len(self.requests) if scope is None else self.scope_counts[scope]

    # -- issuing -----------------------------------------------------------------------------------

    def mint(self, scopes: list[str], subject: str = "tester") -> str:
        """Sign a token directly (not recorded): the harness uses it to seed through the HTTP API."""
        access = self._grant(subject, [Scope.parse(s) for s in scopes])
        return self._sign(subject, access, time.time())

    def _grant(self, username: str | None, scopes: list[Scope]) -> list[dict[str, Any]]:
        if username is None:
            allowed = frozenset({"pull"}) if self.anonymous_pull else frozenset()
        else:
            allowed = self.users[username].actions
        access = []
        for scope in scopes:
            if username is None and scope.type != "repository":
                continue
            actions = [a for a in scope.actions if a in allowed]
            if actions:
                entry: dict[str, Any] = {"type": scope.type, "name": scope.name, "actions": actions}
                if scope.resource_class:
                    entry["class"] = scope.resource_class
                access.append(entry)
        return access

    def _sign(self, subject: str | None, access: list[dict[str, Any]], now: float) -> str:
        claims = {
            "iss": self.issuer,
            "sub": subject or "",
            # A string, not a list: distribution 2.8 is the lowest common denominator here.
            "aud": self.service,
            "exp": int(now) + self.expires_in,
            # nbf a little in the past: distribution allows only small clock skew.
            "nbf": int(now) - 5,
            "iat": int(now),
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        return jwt.encode(claims, self.signer.key, algorithm="ES256", headers={"x5c": self._x5c})

    def _response(
        self, subject: str | None, scopes: list[str], *, offline: bool, oauth: bool
    ) -> dict[str, Any]:
        now = time.time()
        token = self._sign(subject, self._grant(subject, [Scope.parse(s) for s in scopes]), now)
        body: dict[str, Any] = {
            "access_token": token,
            "expires_in": self.expires_in,
            "issued_at": dt.datetime.fromtimestamp(int(now), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if oauth:
            body["scope"] = " ".join(scopes)
        else:
            body["token"] = token
        if offline and subject is not None:
            refresh = secrets.token_urlsafe(24)
            with self._lock:
                self._refresh_tokens[refresh] = subject
            body["refresh_token"] = refresh
        return body

    def _record(self, req: TokenRequest) -> None:
        with self._lock:
            self.requests.append(req)
            self.scope_counts.update(req.scopes)

    # -- request handling (called from handler threads) ---------------------------------------------

    def handle_get(
        self, query: dict[str, list[str]], authorization: str | None
    ) -> tuple[int, dict[str, Any]]:
        scopes = _split_scopes(query.get("scope", []))
        service = _first(query, "service")
        username: str | None = None
        status, body = HTTPStatus.OK, {}
        try:
            if authorization is not None:
                username = self._check_basic(authorization)
            if service != self.service:
                status, body = (
                    HTTPStatus.BAD_REQUEST,
                    _error("INVALID_REQUEST", f"unknown service {service!r}"),
                )
            else:
                offline = _first(query, "offline_token") == "true"
                body = self._response(username, scopes, offline=offline, oauth=False)
        except PermissionError as exc:
            status, body = HTTPStatus.UNAUTHORIZED, _error("UNAUTHORIZED", str(exc))
        except ValueError as exc:
            status, body = HTTPStatus.BAD_REQUEST, _error("INVALID_REQUEST", str(exc))
        self._record(TokenRequest("GET", tuple(scopes), username, service, None, status, query))
        return status, body

    def handle_post(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        def one(key: str) -> str | None:
            return _first(form, key)

        scopes = _split_scopes(form.get("scope", []))
        grant_type, service = one("grant_type"), one("service")
        username: str | None = None
        status, body = HTTPStatus.OK, {}
        try:
            if not one("client_id"):
                raise ValueError("client_id is required")
            if service != self.service:
                raise ValueError(f"unknown service {service!r}")
            if grant_type == "password":
                username = self._check_password(one("username") or "", one("password") or "")
            elif grant_type == "refresh_token":
                with self._lock:
                    username = self._refresh_tokens.get(one("refresh_token") or "")
                if username is None:
                    raise PermissionError("unknown refresh token")
            else:
                raise ValueError(f"unsupported grant_type {grant_type!r}")
            offline = one("access_type") == "offline"
            body = self._response(username, scopes, offline=offline, oauth=True)
        except PermissionError as exc:
            status, body = HTTPStatus.UNAUTHORIZED, {"error": "invalid_grant", "error_description": str(exc)}
        except ValueError as exc:
            status, body = HTTPStatus.BAD_REQUEST, {"error": "invalid_request", "error_description": str(exc)}
        self._record(TokenRequest("POST", tuple(scopes), username, service, grant_type, status, form))
        return status, body

    def _check_basic(self, authorization: str) -> str:
        kind, _, encoded = authorization.partition(" ")
        if kind.lower() != "basic":
            raise PermissionError("only Basic credentials are accepted")
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise PermissionError("malformed Basic credentials") from exc
        return self._check_password(user, password)

    def _check_password(self, user: str, password: str) -> str:
        known = self.users.get(user)
        if known is None or not secrets.compare_digest(known.password, password):
            raise PermissionError("invalid username or password")
        return user


def default_users() -> dict[str, User]:
    return {
        "tester": User("tester-pass", ALL_ACTIONS),
        "reader": User("reader-pass", frozenset({"pull"})),
    }


def _error(code: str, message: str) -> dict[str, Any]:
    return {"errors": [{"code": code, "message": message, "detail": None}]}


def _make_handler(server: TokenServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path != "/token":
                self._send(HTTPStatus.NOT_FOUND, _error("NOT_FOUND", url.path))
                return
            status, body = server.handle_get(parse_qs(url.query), self.headers.get("Authorization"))
            self._send(status, body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            url = urlsplit(self.path)
            if url.path != "/token" or not server.post_enabled:
                self._send(HTTPStatus.NOT_FOUND, _error("NOT_FOUND", "POST not supported"))
                return
            status, body = server.handle_post(parse_qs(raw.decode()))
            self._send(status, body)

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status == HTTPStatus.UNAUTHORIZED:
                self.send_header("WWW-Authenticate", 'Basic realm="harness-token-server"')
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            # Silence per-request stderr lines; requests are recorded on the server object instead.
            pass

    return Handler
