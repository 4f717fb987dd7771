"""A stand-in for the Snyk API behind the broker server (the "private origin" of its accept rules).

Agent callbacks (``POST <BROKER_CLIENT_URL>/api/v2/import/result`` etc.) travel agent -> broker client ->
websocket -> broker server -> here. Tests assert on what arrived and inject faults (500, 429) to check how
the agent reacts when Snyk is unhappy. Stdlib only, so the harness has no extra dependencies, and bound to
127.0.0.1 only.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

JsonValue = Any
Predicate = Callable[["RecordedRequest"], bool]

_DEFAULT_BODY: bytes = b'{"ok":true}'


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the recorder saw it (after the broker server relayed it)."""

    method: str
    target: str  # path plus query string, exactly as received
    headers: dict[str, str]  # names lower-cased: HTTP header names are case-insensitive
    body: bytes
    status: int  # what the recorder answered (200, or an injected fault)
    received_at: float = field(default_factory=time.monotonic)

    @property
    def path(self) -> str:
        """The path without the query string, which is what tests usually match on."""
        return urlsplit(self.target).path

    @property
    def query(self) -> str:
        return urlsplit(self.target).query

    @property
    def json(self) -> JsonValue | None:
        """The body parsed as JSON, or None when it is empty or not JSON."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None


@dataclass
class _Fault:
    status: int
    remaining: int
    body: bytes
    headers: dict[str, str]
    when: Predicate | None


class SnykApiRecorder:
    """Threaded HTTP server that records every request and answers 200 ``{"ok":true}`` unless told otherwise.

    Use as a context manager (``with SnykApiRecorder() as api: ...``) or call ``start()``/``stop()``.
    All public methods are thread-safe: requests arrive on server threads while the test thread reads.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._lock = threading.Condition()
        self._requests: list[RecordedRequest] = []
        self._faults: list[_Fault] = []
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        # Handler threads must never keep the test process alive.
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SnykApiRecorder:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, name=f"snyk-api-recorder:{self.port}", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> SnykApiRecorder:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- configuration -----------------------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        count: int = 1,
        *,
        body: JsonValue | None = None,
        headers: dict[str, str] | None = None,
        when: Predicate | None = None,
    ) -> None:
        """Answer ``status`` to the next ``count`` requests (that match ``when``, if given).

        ``headers`` lets a 429 carry ``Retry-After``. Faults queue up in call order; each request consumes
        at most one. Requests answered with a fault are still recorded (with that status), so tests can
        count retries.
        """
        if count < 1:
            raise ValueError("count must be >= 1")
        payload = body if body is not None else {"ok": False, "status": status, "injected": True}
        with self._lock:
            self._faults.append(
                _Fault(status, count, json.dumps(payload).encode(), dict(headers or {}), when)
            )

    def clear(self) -> None:
        """Forget recorded requests and pending faults (e.g. between phases of one test)."""
        with self._lock:
            self._requests.clear()
            self._faults.clear()

    # -- inspection --------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot copy, oldest first."""
        with self._lock:
            return list(self._requests)

    def matching(self, predicate: Predicate) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._requests if predicate(r)]

    def wait_for(self, predicate: Predicate, timeout: float = 10.0) -> RecordedRequest:
        """Block until a recorded request satisfies ``predicate``; return the first such request."""
        return self.wait_for_count(predicate, 1, timeout)[0]

    def wait_for_count(
        self, predicate: Predicate, count: int, timeout: float = 10.0
    ) -> list[RecordedRequest]:
        """Block until at least ``count`` recorded requests satisfy ``predicate``; return them all."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = [r for r in self._requests if predicate(r)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = (
                        ", ".join(f"{r.method} {r.target} -> {r.status}" for r in self._requests) or "nothing"
                    )
                    raise TimeoutError(
                        f"recorder: {len(found)}/{count} matching request(s) after {timeout}s; saw: {seen}"
                    )
                self._lock.wait(left)

    # -- server side -------------------------------------------------------------------------------------

    def _respond(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes, dict[str, str]]:
        """Pick the answer, record the request and wake waiters -- all under one lock so order is exact."""
        with self._lock:
            status, payload, extra = 200, _DEFAULT_BODY, {}
            probe = RecordedRequest(method, target, headers, body, 200)
            for fault in self._faults:
                if fault.when is None or fault.when(probe):
                    status, payload, extra = fault.status, fault.body, fault.headers
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    break
            self._requests.append(RecordedRequest(method, target, headers, body, status, probe.received_at))
            self._lock.notify_all()
        return status, payload, extra

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.0 (the default) closes the connection after each answer, so shutdown never waits on
            # an idle keep-alive socket from the broker server.
            def _handle(self) -> None:
                body = _read_body(self)
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, payload, extra = recorder._respond(self.command, self.path, headers, body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

            def log_message(self, format: str, *args: Any) -> None:
                # The recording is the log; stderr noise would only clutter pytest output.
                return

        return Handler


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """Read the request body, whether sized by Content-Length or chunked, and undo gzip/deflate."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks: list[bytes] = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                # Trailer section ends with an empty line.
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                break
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()  # CRLF after each chunk
        raw = b"".join(chunks)
    else:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
    encoding = handler.headers.get("Content-Encoding", "").lower()
    if encoding == "gzip":
        return gzip.decompress(raw)
    if encoding == "deflate":
        return zlib.decompress(raw)
    return raw
