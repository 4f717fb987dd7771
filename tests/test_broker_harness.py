"""Proves the real-broker harness end to end with a tiny stdlib fake agent.

These tests check the harness and the broker's observed behaviour (broker-protocol.md §3-§6, §11), not the
agent: the fake agent only records what reached it and plays the callback the real one would make.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.harness.broker import (
    BrokerPair,
    BrokerUnavailable,
    ensure_broker_installed,
    make_cr_credentials,
    running_broker,
)
from tests.harness.recorder import SnykApiRecorder

# Never via a proxy from the environment: everything here is on 127.0.0.1.
urlopen = urllib.request.build_opener(urllib.request.ProxyHandler({})).open

CREDS = make_cr_credentials("harbor-cr", "alice", "s3cret", "reg.example.test")


class FakeAgent:
    """Records requests; on ``POST /scan`` posts a result to the body's ``callbackUrl`` like a real agent."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.callback_status: int | None = None
        self._lock = threading.Condition()
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw) if raw else None
                with agent._lock:
                    agent.requests.append(
                        {
                            "method": self.command,
                            "path": self.path,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "body": body,
                        }
                    )
                    agent._lock.notify_all()
                reply = json.dumps({"agent": True, "path": self.path}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)
                if self.command == "POST" and self.path == "/scan" and isinstance(body, dict):
                    # Asynchronous, after the ack, as the v2 flow is described (§6).
                    threading.Thread(target=agent._callback, args=(body,), daemon=True).start()

            do_GET = do_POST = _handle

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _callback(self, scan: dict[str, Any]) -> None:
        payload = json.dumps({"requestId": scan.get("requestId"), "result": {"ok": True}}).encode()
        req = urllib.request.Request(
            scan["callbackUrl"], data=payload, method="POST", headers={"Content-Type": "application/json"}
        )
        with urlopen(req, timeout=10) as resp:
            self.callback_status = resp.status

    def wait_for(self, method: str, path: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for r in self.requests:
                    if r["method"] == method and r["path"] == path:
                        return r
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"agent never got {method} {path}; got {self.requests}")
                self._lock.wait(left)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def broker_install() -> Path:
    # Same as the session fixture meant for conftest.py; this copy can go once conftest.py has it.
    try:
        return ensure_broker_installed()
    except BrokerUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def agent() -> Iterator[FakeAgent]:
    fake = FakeAgent()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def pair(
    broker_install: Path, agent: FakeAgent, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrokerPair]:
    began = time.monotonic()
    with running_broker(agent.url, credentials=CREDS, workdir=tmp_path_factory.mktemp("broker")) as p:
        # Start-up timing, visible with -rP / -s: server ready, client connected, total.
        print(
            f"\nbroker start-up: server {p.server.startup_seconds:.2f}s,"
            f" client {p.client.startup_seconds:.2f}s, total {time.monotonic() - began:.2f}s;"
            f" logs {p.log_paths}"
        )
        yield p


def test_list_reaches_agent_with_substituted_authorization(pair: BrokerPair, agent: FakeAgent) -> None:
    resp = pair.snyk_request("GET", "/list", params={"n": "10"})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"agent": True, "path": "/list?n=10"}  # relayed unchanged, query kept (§3.1)
    got = agent.wait_for("GET", "/list?n=10")
    assert got["headers"]["authorization"] == CREDS  # raw base64, no scheme (§4.4)
    assert json.loads(base64.b64decode(CREDS))["registryBase"] == "reg.example.test"
    assert got["headers"]["x-broker-var-sub"] == "authorization"  # left in place by the client


def test_multi_segment_repo_path_is_allowed(pair: BrokerPair, agent: FakeAgent) -> None:
    resp = pair.snyk_request("GET", "/list/library/nginx")
    assert resp.status_code == 200, resp.text
    agent.wait_for("GET", "/list/library/nginx")


def test_scan_body_substitution_and_callback_reach_snyk(pair: BrokerPair, agent: FakeAgent) -> None:
    resp = pair.snyk_request("POST", "/scan", json={"requestId": "req-42", "image": "library/nginx:1.25"})
    assert resp.status_code == 200, resp.text
    body = agent.wait_for("POST", "/scan")["body"]
    assert body == {
        "requestId": "req-42",
        "image": "library/nginx:1.25",
        "credentials": CREDS,
        "callbackUrl": f"{pair.client_url}/api/v2/import/result",
    }  # BROKER_VAR_SUB itself is removed by the client

    got = pair.snyk_api.wait_for(lambda r: r.method == "POST" and r.path == "/api/v2/import/result")
    assert got.json == {"requestId": "req-42", "result": {"ok": True}}
    assert got.headers["x-broker-token"] == pair.token  # added by the server (§6)


def test_snyk_api_fault_is_relayed_to_the_agent(pair: BrokerPair, agent: FakeAgent) -> None:
    pair.snyk_api.fail_next(429, headers={"Retry-After": "1"})
    req = urllib.request.Request(
        f"{pair.client_url}/api/v2/import/done",
        data=b'{"requestId":"req-43"}',
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urlopen(req, timeout=10)
    assert err.value.code == 429
    hit = pair.snyk_api.wait_for(lambda r: r.path == "/api/v2/import/done")
    assert hit.status == 429
    with urlopen(req, timeout=10) as resp:  # fault consumed: next one succeeds
        assert resp.status == 200


def test_disallowed_paths_are_blocked(pair: BrokerPair, agent: FakeAgent) -> None:
    before = len(agent.requests)
    resp = pair.snyk_request("GET", "/notallowed")
    assert resp.status_code == 401
    assert resp.json()["code"] == "FILTER_BLOCKED"
    assert pair.snyk_request("POST", "/list", json={}).status_code == 401  # wrong method (§3.3)
    assert pair.snyk_request("GET", "/systemcheck").status_code == 401  # not a private rule

    req = urllib.request.Request(f"{pair.client_url}/api/v2/not-allowed", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urlopen(req, timeout=10)
    assert err.value.code == 401
    assert json.loads(err.value.read())["code"] == "FILTER_BLOCKED"
    assert len(agent.requests) == before


def test_client_systemcheck_calls_agent_with_credentials(pair: BrokerPair, agent: FakeAgent) -> None:
    resp = pair.client.systemcheck()
    assert resp.status_code == 200, resp.text
    [check] = resp.json()
    assert check["ok"] is True
    # The client redacts config values in this report; CR_AGENT_URL is on its redaction list.
    assert check["brokerClientValidationUrl"] == "${CR_AGENT_URL}/systemcheck"
    assert check["maskedCredentials"] == f"{CREDS[:3]}***{CREDS[-3:]}"
    got = agent.wait_for("GET", "/systemcheck")
    assert got["headers"]["authorization"] == CREDS  # raw base64, no scheme (§5)


def test_recorder_fault_injection_and_wait_for() -> None:
    with SnykApiRecorder() as api:
        api.fail_next(500, count=2, when=lambda r: r.path == "/a")
        statuses = []
        for path in ("/b", "/a", "/a", "/a"):
            req = urllib.request.Request(f"{api.url}{path}?x=1", data=b'{"k":1}', method="POST")
            try:
                with urlopen(req, timeout=5) as resp:
                    statuses.append(resp.status)
            except urllib.error.HTTPError as exc:
                statuses.append(exc.code)
        assert statuses == [200, 500, 500, 200]
        assert [r.status for r in api.wait_for_count(lambda r: r.path == "/a", 3)] == [500, 500, 200]
        assert api.requests[0].json == {"k": 1} and api.requests[0].query == "x=1"
        with pytest.raises(TimeoutError):
            api.wait_for(lambda r: r.path == "/never", timeout=0.2)


def _listen_addresses(port: int) -> set[str]:
    """Local addresses listening on ``port``, from /proc/net/tcp{,6} (state 0A = LISTEN)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            for line in fh.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                addr, hexport = local.split(":")
                if state == "0A" and int(hexport, 16) == port:
                    found.add(addr)
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc/net/tcp")
def test_brokers_listen_on_loopback_only(pair: BrokerPair) -> None:
    # The broker itself binds every interface; the harness' preload pins it to 127.0.0.1 (little-endian hex).
    assert _listen_addresses(pair.server.port) == {"0100007F"}
    assert _listen_addresses(pair.client.port) == {"0100007F"}
