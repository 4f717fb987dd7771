"""The agent's API key carried by the real broker client, as docs/security.md tells an operator to set it up.

The broker client can add exactly one header to what it relays to the agent: ``Authorization``, from an
accept rule's ``auth`` block (``{"scheme": "bearer", "token": "${AGENT_API_KEY}"}``). That replaces the
``Authorization`` Snyk sent, so the agent reads its registry credentials from its own ``CR_CREDENTIALS``
(or a body's ``credentials``) instead. With the standard accept rules the key is missing: 401.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.agent import AgentProcess, cr_credentials
from tests.e2e.support import DONE, RESULT, for_import, new_import_id, scan_body
from tests.harness.broker import CRA_ACCEPT_PATH, BrokerPair, broker_client, broker_server
from tests.harness.procs import LOOPBACK, free_port
from tests.harness.recorder import SnykApiRecorder
from tests.harness.registry import RunningRegistry

API_KEY = f"broker-relayed-{uuid.uuid4().hex}"


def accept_rules_with_key(workdir: Path) -> Path:
    """The CRA accept rules with the key added to every private rule but /healthcheck."""
    rules: dict[str, Any] = json.loads(CRA_ACCEPT_PATH.read_text())
    for rule in rules["private"]:
        if rule["path"] != "/healthcheck":
            rule["auth"] = {"scheme": "bearer", "token": "${AGENT_API_KEY}"}
    path = workdir / "accept-with-agent-key.json"
    path.write_text(json.dumps(rules))
    return path


@contextlib.contextmanager
def stack(
    workdir: Path, env: dict[str, str], accept: Path, snyk_api: SnykApiRecorder
) -> Iterator[tuple[BrokerPair, AgentProcess]]:
    port = free_port()
    agent_url = f"http://{LOOPBACK}:{port}"
    credentials = env["CR_CREDENTIALS"]
    with (
        broker_server(snyk_api.url, workdir / "server") as server,
        broker_client(
            server,
            agent_url,
            credentials,
            workdir / "client",
            accept_path=accept,
            extra_env={"AGENT_API_KEY": API_KEY},
        ) as client,
    ):
        agent = AgentProcess(workdir / "agent", env | {"BROKER_CLIENT_URL": client.url}, port=port)
        try:
            agent.start()
            yield BrokerPair(server, client, snyk_api), agent
        finally:
            agent.close()


@pytest.mark.parametrize("rules", ["with-key", "standard"])
def test_the_broker_client_carries_the_api_key(
    broker_install: Path,
    tmp_path: Path,
    agent_registry_env: dict[str, str],
    registry_basic: RunningRegistry,
    snyk_api: SnykApiRecorder,
    rules: str,
) -> None:
    accept = accept_rules_with_key(tmp_path) if rules == "with-key" else CRA_ACCEPT_PATH
    env = agent_registry_env | {"AGENT_API_KEY": API_KEY, "CR_CREDENTIALS": cr_credentials(registry_basic)}
    with stack(tmp_path, env, accept, snyk_api) as (pair, agent):
        listing = pair.snyk_request("GET", "/list")
        import_id = new_import_id()
        scan = pair.snyk_request("POST", "/scan", json=scan_body("busybox:1.31.1", import_id))
        health = pair.snyk_request("GET", "/healthcheck")
        assert health.status_code == 200
        if rules == "standard":
            for answer in (listing, scan):
                assert answer.status_code == 401, answer.text
                assert answer.json()["error"]["code"] == "API_KEY_INVALID"
            return
        assert listing.status_code == 200 and "busybox" in listing.json(), listing.text
        assert scan.status_code == 202, scan.text
        callbacks = snyk_api.wait_for_count(for_import(import_id), 2, timeout=30)
        assert [r.path for r in callbacks] == [RESULT, DONE]
        agent.stop()
        log = agent.log_text()
        assert API_KEY not in log
