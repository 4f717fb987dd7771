"""``python -m emulator``: gunicorn in-process, one worker, scan workers started once, TLS, restart-safe."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
import requests

from emulator.server import gunicorn_options
from shared.credentials import encode_credentials
from shared.errors import ConfigurationError
from shared.jobs import JobStore, ScanQueue
from shared.settings import Settings
from tests.functions.conftest import Receiver
from tests.harness.certs import TestCA
from tests.harness.procs import free_port, start_process, stop_process, wait_until

PROJECT = Path(__file__).resolve().parents[2]
# A registry nobody listens on: every scan fails fast with REGISTRY_UNAVAILABLE (no registry needed).
DEAD_REGISTRY = encode_credentials(
    {"type": "harbor-cr", "username": "u", "password": "S3cr3t-Pa55w0rd", "registryBase": "127.0.0.1:1"}
)


def test_gunicorn_options() -> None:
    options = gunicorn_options(Settings(), "127.0.0.1", 8081, threads=8)
    assert (options["workers"], options["threads"], options["timeout"]) == (1, 8, 0)
    assert callable(options["post_worker_init"]) and callable(options["worker_exit"])
    assert "certfile" not in options
    tls = gunicorn_options(Settings(https_cert="/c.pem", https_key="/k.pem"), "0.0.0.0", 443, threads=2)
    assert (tls["certfile"], tls["keyfile"]) == ("/c.pem", "/k.pem")
    with pytest.raises(ConfigurationError):
        gunicorn_options(Settings(https_cert="/c.pem"), "127.0.0.1", 8081, threads=1)


def _wait_for(check: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise TimeoutError(what)


def test_live_server_over_tls(tmp_path: Path, receiver: Receiver) -> None:
    receiver.start()
    state = tmp_path / "state"
    # Accepted before the (re)start: the server's workers must pick it up.
    early = ScanQueue(JobStore(state)).enqueue(
        "scan", {"image": "library/nginx:1.25", "importId": "early"}, DEAD_REGISTRY
    )
    ca = TestCA()
    issued = ca.issue("agent", ips=("127.0.0.1",), server=True)
    (tmp_path / "cert.pem").write_bytes(issued.cert_pem())
    (tmp_path / "key.pem").write_bytes(issued.key_pem())
    root = ca.write_root(tmp_path / "ca.pem")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"CR_CREDENTIALS", "SCAN_DISPATCH"}}
    env.update(
        STATE_DIR=str(state),
        BROKER_CLIENT_URL=receiver.url,
        REGISTRY_MAX_RETRIES="0",
        REGISTRY_TIMEOUT_SECONDS="2",
        MAX_ACTIVE_OPERATIONS="2",
        HTTPS_CERT=str(tmp_path / "cert.pem"),
        HTTPS_KEY=str(tmp_path / "key.pem"),
        LOG_LEVEL="info",
    )
    log = tmp_path / "server.log"
    proc = start_process(
        [sys.executable, "-m", "emulator", "--host", "127.0.0.1", "--port", str(port)], log, env=env
    )
    base = f"https://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: requests.get(f"{base}/healthcheck", verify=root, timeout=2).ok,
            30,
            "emulator",
            lambda: proc.poll() is None,
        )

        accepted = requests.post(
            f"{base}/scan",
            json={"image": "team/app:v1", "importId": "late"},
            headers={"X-CR-Credentials": DEAD_REGISTRY},
            verify=root,
            timeout=5,
        )
        assert accepted.status_code == 202
        late = accepted.json()["scanId"]

        def finished(scan_id: str) -> bool:
            body = requests.get(f"{base}/scan/{scan_id}", verify=root, timeout=5).json()
            return body["status"] in {"done", "failed"}

        _wait_for(lambda: finished(early) and finished(late), "both scans finished")
        _wait_for(lambda: len(receiver.received) == 4, "four callbacks delivered")

        status = requests.get(f"{base}/scan/{late}", verify=root, timeout=5).json()
        assert status["status"] == "failed" and status["error"]["code"] == "REGISTRY_UNAVAILABLE"
        by_import = sorted((r["body"]["importId"], r["path"]) for r in receiver.received)
        assert by_import == [
            ("early", "/api/v2/import/done"),
            ("early", "/api/v2/import/result"),
            ("late", "/api/v2/import/done"),
            ("late", "/api/v2/import/result"),
        ]
        missing = requests.get(f"{base}/nothing-here", verify=root, timeout=5)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"
    finally:
        stop_process(proc)

    output = log.read_text()
    assert f"listening on https://127.0.0.1:{port}" in output
    assert f"state dir: {state}" in output
    assert "GET     /list/*" in output
    assert output.count("scan workers started: 2") == 1
    assert "Control socket" not in output  # it could change the worker count behind our back
    assert "S3cr3t-Pa55w0rd" not in output and DEAD_REGISTRY not in output
    queue = ScanQueue(JobStore(state))
    assert all(queue.get(i).credentials is None for i in (early, late))  # type: ignore[union-attr]
    assert json.dumps(receiver.received).count("S3cr3t-Pa55w0rd") == 0
