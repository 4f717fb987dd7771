"""An HTTP proxy in front of a real (plain-HTTP) registry that injects the faults real networks have.

The agent is given the proxy's ``127.0.0.1:PORT`` as its registry; every request is forwarded to the
registry unchanged unless a rule matches it. A rule names a method (or any), a path regex and a fault,
and applies to the next ``times`` matching requests (or all of them); rules are tried in order, and a
request that matches none passes through. Faults:

* ``Status(code, headers)``: answer that status without asking the registry (500 storms, 429 with
  ``Retry-After``); the body is an OCI error document, as the registry itself would send;
* ``Drop()``: close the connection without an answer;
* ``Delay(seconds)``: wait, then forward (past the agent's timeout: no answer in time);
* ``Truncate(after)``: the registry's headers (its ``Content-Length`` included), the first ``after``
  bytes of the body, then the connection closes;
* ``Stall(after, seconds)``: the first ``after`` bytes, then silence for ``seconds`` (mid-body timeout);
* ``Flip(offset)``: the whole body with the byte at ``offset`` inverted (a corrupted blob);
* ``Substitute(path, keep_digest_header)``: answer with what the registry says for another path (a tag
  that moved to another image); ``keep_digest_header`` keeps the original's ``Docker-Content-Digest``,
  so header and body disagree.

Bodies are read whole before they are sent on: the harness images are small, and a whole body is what
lets a fault cut or corrupt it at an exact byte. Every request is recorded (method, path, what was done)
so a test can tell what reached the registry. Stdlib only, bound to 127.0.0.1, stopped by ``stop()``.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from tests.harness.procs import LOOPBACK

# Hop-by-hop headers (RFC 9110 §7.6.1) and the ones the proxy recomputes.
_NOT_FORWARDED = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "host"})


@dataclass(frozen=True)
class Status:
    code: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Drop:
    pass


@dataclass(frozen=True)
class Delay:
    seconds: float


@dataclass(frozen=True)
class Truncate:
    after: int


@dataclass(frozen=True)
class Stall:
    after: int
    seconds: float


@dataclass(frozen=True)
class Flip:
    offset: int


@dataclass(frozen=True)
class Substitute:
    path: str
    keep_digest_header: bool = False


Fault = Status | Drop | Delay | Truncate | Stall | Flip | Substitute


@dataclass
class Rule:
    path: re.Pattern[str]
    fault: Fault
    method: str | None
    remaining: int | None  # None: every matching request

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and self.path.search(path) is not None


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    fault: str  # "pass" or the fault's class name
    at: float = field(default_factory=time.monotonic)


@dataclass
class _Upstream:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


class FaultProxy:
    def __init__(self, upstream_host: str) -> None:
        host, port = upstream_host.rsplit(":", 1)
        self._upstream = (host, int(port))
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self._seen: list[Seen] = []
        self._server = ThreadingHTTPServer((LOOPBACK, 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``: the registryBase to give the agent."""
        return f"{LOOPBACK}:{self._server.server_address[1]}"

    def start(self) -> FaultProxy:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, name="fault-proxy", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- rules and records ----------------------------------------------------------------------------------

    def add(self, path: str, fault: Fault, *, method: str | None = None, times: int | None = None) -> None:
        """Apply ``fault`` to the next ``times`` requests whose path matches the regex ``path``."""
        with self._lock:
            self._rules.append(Rule(re.compile(path), fault, method, times))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self._seen.clear()

    @property
    def seen(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    def _take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path) and (rule.remaining is None or rule.remaining > 0):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                    self._seen.append(Seen(method, path, type(rule.fault).__name__))
                    return rule.fault
            self._seen.append(Seen(method, path, "pass"))
            return None

    # -- forwarding -----------------------------------------------------------------------------------------

    def _forward(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes | None
    ) -> _Upstream:
        conn = http.client.HTTPConnection(*self._upstream, timeout=30)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", f"{self._upstream[0]}:{self._upstream[1]}")
            for name, value in headers:
                if name.lower() not in _NOT_FORWARDED and name.lower() != "content-length":
                    conn.putheader(name, value)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            response = conn.getresponse()
            data = response.read()
            return _Upstream(response.status, response.reason, response.getheaders(), data)
        finally:
            conn.close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                fault = proxy._take(self.command, self.path)
                if isinstance(fault, Drop):
                    self.close_connection = True
                    return
                if isinstance(fault, Status):
                    self._send_error(fault)
                    return
                if isinstance(fault, Delay):
                    time.sleep(fault.seconds)
                path = fault.path if isinstance(fault, Substitute) else self.path
                try:
                    upstream = proxy._forward(self.command, path, list(self.headers.items()), body)
                except OSError:
                    self.close_connection = True  # the registry is gone: so is this answer
                    return
                if isinstance(fault, Substitute) and fault.keep_digest_header:
                    original = proxy._forward(self.command, self.path, list(self.headers.items()), body)
                    digest = dict((k.lower(), v) for k, v in original.headers).get("docker-content-digest")
                    upstream.headers = [
                        (k, v) for k, v in upstream.headers if k.lower() != "docker-content-digest"
                    ]
                    if digest:
                        upstream.headers.append(("Docker-Content-Digest", digest))
                self._relay(upstream, fault)

            def _send_error(self, fault: Status) -> None:
                body = json.dumps(
                    {
                        "errors": [
                            {
                                "code": "UNAVAILABLE" if fault.code >= 500 else "TOOMANYREQUESTS",
                                "message": "injected by the fault proxy",
                                "detail": None,
                            }
                        ]
                    }
                ).encode()
                self.send_response(fault.code)
                for name, value in fault.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _relay(self, upstream: _Upstream, fault: Fault | None) -> None:
                body = upstream.body
                if isinstance(fault, Flip) and body:
                    at = min(fault.offset, len(body) - 1)
                    body = body[:at] + bytes([body[at] ^ 0xFF]) + body[at + 1 :]
                self.send_response(upstream.status, upstream.reason)
                declared = None
                for name, value in upstream.headers:
                    if name.lower() == "content-length":
                        declared = value
                    elif name.lower() not in _NOT_FORWARDED:
                        self.send_header(name, value)
                # HEAD keeps the registry's length (there is no body); otherwise the body's own length.
                length = declared if self.command == "HEAD" and declared else str(len(body))
                self.send_header("Content-Length", length)
                self.end_headers()
                if self.command == "HEAD":
                    return
                if isinstance(fault, Truncate):
                    self.wfile.write(body[: fault.after])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if isinstance(fault, Stall):
                    self.wfile.write(body[: fault.after])
                    self.wfile.flush()
                    time.sleep(fault.seconds)
                    self.close_connection = True
                    return
                self.wfile.write(body)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
