"""Fixtures for the function tests: a clean agent environment, the fake registry, callers."""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import flask
import pytest
from werkzeug.test import Client

import functions._callbacks
import functions._registry
from emulator.router import Router, build_router
from shared.settings import get_settings
from tests.functions.fakes import FakeRegistry

_AGENT_VARIABLES = (
    "CR_CREDENTIALS",
    "BROKER_CLIENT_URL",
    "SNYK_DISABLE_LIST_REPOS",
    "SCAN_DISPATCH",
    "PUBSUB_TOPIC",
    "MAX_ACTIVE_OPERATIONS",
    "SNYK_MAX_IMAGE_SIZE_IN_BYTES",
    "HTTPS_CERT",
    "HTTPS_KEY",
)


@pytest.fixture(autouse=True)
def agent_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Callable[..., None]]:
    """A clean environment with a private STATE_DIR; call it with NAME=value to change settings."""
    for name in _AGENT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STATE_DIR", str(tmp_path / "state"))
    get_settings.cache_clear()

    def set_env(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    yield set_env
    get_settings.cache_clear()


@pytest.fixture
def fake_registry(monkeypatch: pytest.MonkeyPatch) -> FakeRegistry:
    fake = FakeRegistry()
    monkeypatch.setattr(functions._registry, "client_factory", fake.factory)
    return fake


@pytest.fixture(autouse=True)
def no_backoff_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """In-call callback retries record their delays instead of sleeping."""
    delays: list[float] = []
    monkeypatch.setattr(functions._callbacks, "sleep", delays.append)
    return delays


def call(
    entry: Callable[[flask.Request], flask.Response], method: str, path: str, **kwargs: Any
) -> flask.Response:
    """Call a function directly, as a unit test would: a Flask request context and the entry point."""
    app = flask.Flask("direct-call")
    with app.test_request_context(path, method=method, **kwargs):
        return entry(flask.request)


@pytest.fixture(scope="session")
def router() -> Router:
    return build_router()


@pytest.fixture
def router_client(router: Router) -> Client:
    return Client(router)


@dataclass
class Receiver:
    """A tiny HTTP server standing in for the broker client; records every POST."""

    port: int
    status: int = 200
    received: list[dict[str, Any]] = field(default_factory=list)
    server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append(
                    {"path": self.path, "headers": dict(self.headers), "body": json.loads(body or b"null")}
                )
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """Not started: a test starts it when the 'broker client' should come up."""
    target = Receiver(free_port())
    yield target
    target.stop()
