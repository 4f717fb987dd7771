"""Every line the real agent writes is one JSON object, and the broker's request id follows each request:
into its own lines, into the scan it queued, the worker's lines about that scan, and the callbacks.

The agent runs at LOG_LEVEL=debug (the harness default), so gunicorn's own lines, the registry client's
debug lines and the scan workers' lines are all in the file that is parsed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.agent import AgentProcess, cr_credentials, running_agent
from tests.e2e.support import DONE, RESULT, callbacks_of, new_import_id, payload_of, scan_body
from tests.harness.recorder import SnykApiRecorder
from tests.harness.registry import RunningRegistry

REQUIRED = {"ts", "level", "logger", "message", "request_id"}


@pytest.fixture(scope="module")
def logged(
    tmp_path_factory: pytest.TempPathFactory, agent_registry_env: dict[str, str]
) -> Iterator[tuple[AgentProcess, SnykApiRecorder]]:
    with SnykApiRecorder() as callbacks:
        env = agent_registry_env | {"BROKER_CLIENT_URL": callbacks.url}
        with running_agent(tmp_path_factory.mktemp("logs"), env) as agent:
            yield agent, callbacks


def json_lines(agent: AgentProcess) -> list[dict[str, Any]]:
    """Every line the agent wrote, parsed; the harness's own "--- start" markers are not the agent's."""
    entries = []
    for number, line in enumerate(agent.log_text().splitlines(), 1):
        if line.startswith("--- start "):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            raise AssertionError(f"log line {number} is not JSON: {line[:300]!r}") from None
        assert isinstance(entry, dict) and REQUIRED <= set(entry), f"line {number}: {line[:300]}"
        entries.append(entry)
    return entries


def test_every_line_is_json_and_carries_its_request_id(
    logged: tuple[AgentProcess, SnykApiRecorder], registry_basic: RunningRegistry
) -> None:
    agent, callbacks = logged
    good = cr_credentials(registry_basic)
    wrong = cr_credentials(registry_basic, "not-the-password")
    sent: dict[str, tuple[int, str]] = {}  # request id -> (status, path)

    def call(method: str, path: str, expected: int, header: str = "snyk-request-id", **kwargs: Any) -> str:
        request_id = f"req-{uuid.uuid4()}"
        headers = {header: request_id, **kwargs.pop("headers", {})}
        answer = agent.request(method, path, headers=headers, **kwargs)
        assert answer.status_code == expected, (path, answer.text)
        assert answer.headers["X-Request-Id"] == request_id
        sent[request_id] = (expected, path.split("?", 1)[0])
        return request_id

    call("GET", "/list", 200, headers={"Authorization": good})
    call("GET", "/list/busybox", 401, headers={"Authorization": wrong})
    call(
        "GET",
        "/image-metadata/busybox?reference=1.31.1",
        200,
        header="x-request-id",
        headers={"Authorization": good},
    )
    call("GET", "/get-state-identifier?image=../x", 400, headers={"Authorization": good})
    call("GET", "/list", 400, headers={"Authorization": "not-credentials"})
    call("GET", "/healthcheck", 200)
    call("GET", "/no/such/route", 404)  # answered by the emulator router itself
    import_id = new_import_id()
    scan_request = call("POST", "/scan", 202, json=scan_body("busybox:1.31.1", import_id, credentials=good))
    failing_import = new_import_id()
    failing_request = call(
        "POST", "/scan", 202, json=scan_body("busybox:1.31.1", failing_import, credentials=wrong)
    )
    # No id, and an id that is not one (control characters, too long): a fresh id is made and returned.
    plain = agent.get("/list", headers={"Authorization": good})
    generated = plain.headers["X-Request-Id"]
    assert len(generated) == 36
    hostile = agent.get("/list", headers={"Authorization": good, "snyk-request-id": "x" * 300})
    assert hostile.headers["X-Request-Id"] != "x" * 300

    callbacks.wait_for_count(
        lambda r: payload_of(r).get("importId") in {import_id, failing_import}, 4, timeout=30
    )
    scan_ids = {}
    for imp, request_id in ((import_id, scan_request), (failing_import, failing_request)):
        seen = callbacks_of(callbacks, imp)
        assert [r.path for r in seen] == [RESULT, DONE]
        # The callbacks carry the id of the request that asked for the scan.
        assert {r.headers.get("snyk-request-id") for r in seen} == {request_id}
        scan_ids[request_id] = payload_of(seen[0])["scanId"]
        agent.wait_for_log(
            f"callback {payload_of(seen[1])['callbackId']} (scan {scan_ids[request_id]}) delivered"
        )

    entries = json_lines(agent)
    by_id: dict[str | None, list[dict[str, Any]]] = {}
    for entry in entries:
        by_id.setdefault(entry["request_id"], []).append(entry)
    for request_id, (status, path) in sent.items():
        lines = by_id.get(request_id, [])
        access = [e for e in lines if e.get("path") == path and e.get("status") == status]
        assert access, f"no access line for {path} ({status}) with its request id"
    assert by_id.get(generated), "a generated request id must appear in the log too"
    # Every line about a scan - worker, scan engine, registry client, callback sender - has the scan's id.
    for request_id, scan_id in scan_ids.items():
        about = [e for e in entries if scan_id in e["message"] or e.get("scan_id") == scan_id]
        assert len(about) >= 4, about  # accepted..., started, finished, callbacks delivered
        assert {e["request_id"] for e in about} == {request_id}, [
            e for e in about if e["request_id"] != request_id
        ]
    failed = [
        e for e in entries if e.get("scan_id") == scan_ids[failing_request] and e.get("status") == "failed"
    ]
    assert failed and failed[0]["code"] == "UNAUTHORIZED"
    # gunicorn's own lines are JSON too, and lines outside any request say so (null).
    assert any("Booting worker" in e["message"] and e["request_id"] is None for e in entries)
    assert {e["level"] for e in entries} >= {"debug", "info"}
