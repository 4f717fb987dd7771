"""callback: deliver one finished scan to the broker client, with in-call retries."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import requests
import responses

from functions._callbacks import callback_id
from functions.callback import callback
from tests.functions.conftest import call

BASE = "http://broker-client.test:8000"
REQUEST: dict[str, Any] = {
    "scanId": "scan-1",
    "api": "v2",
    "image": "library/nginx:1.25",
    "status": "done",
    "result": {"digest": "sha256:abc"},
    "context": {"importId": "imp-1"},
}


@pytest.fixture(autouse=True)
def broker_client_url(agent_env: Callable[..., None]) -> None:
    agent_env(BROKER_CLIENT_URL=BASE)


@responses.activate
def test_v2_posts_result_then_done() -> None:
    responses.post(f"{BASE}/api/v2/import/result")
    responses.post(f"{BASE}/api/v2/import/done")
    response = call(callback, "POST", "/callback", json=REQUEST)
    assert response.status_code == 200
    ids = [callback_id("scan-1", "result"), callback_id("scan-1", "done")]
    assert response.get_json() == {"delivered": ids}
    sent = [json.loads(c.request.body) for c in responses.calls]
    assert [c.request.url for c in responses.calls] == [
        f"{BASE}/api/v2/import/result",
        f"{BASE}/api/v2/import/done",
    ]
    assert sent[0] == {
        "importId": "imp-1",
        "callbackId": ids[0],
        "scanId": "scan-1",
        "status": "done",
        "image": "library/nginx:1.25",
        "result": {"digest": "sha256:abc"},
        "error": None,
    }
    assert sent[1] == {"importId": "imp-1", "callbackId": ids[1], "scanId": "scan-1", "status": "done"}
    assert [c.request.headers["Idempotency-Key"] for c in responses.calls] == ids


@responses.activate
def test_v1_posts_dependencies() -> None:
    responses.post(f"{BASE}/api/v1/recurring-tests/dependencies")
    response = call(callback, "POST", "/callback", json=REQUEST | {"api": "v1"})
    assert response.get_json() == {"delivered": [callback_id("scan-1", "dependencies")]}


@responses.activate
def test_retries_with_backoff_on_connection_errors_429_and_5xx(no_backoff_sleep: list[float]) -> None:
    responses.post(f"{BASE}/api/v2/import/result", body=requests.ConnectionError("refused"))
    responses.post(f"{BASE}/api/v2/import/result", status=502)
    responses.post(f"{BASE}/api/v2/import/result", status=429, headers={"Retry-After": "3"})
    responses.post(f"{BASE}/api/v2/import/result", status=200)
    responses.post(f"{BASE}/api/v2/import/done", status=200)
    assert call(callback, "POST", "/callback", json=REQUEST).status_code == 200
    assert len(no_backoff_sleep) == 3
    assert no_backoff_sleep[2] == 3  # Retry-After wins over the computed delay
    assert no_backoff_sleep[0] < no_backoff_sleep[1] * 1.5  # growing, give or take the jitter


@responses.activate
def test_gives_up_after_the_attempts() -> None:
    responses.post(f"{BASE}/api/v2/import/result", status=503)
    response = call(callback, "POST", "/callback", json=REQUEST)
    assert response.status_code == 502
    assert response.get_json()["error"] == {
        "code": "CALLBACK_FAILED",
        "message": "callback to /api/v2/import/result failed 5 times, last: HTTP 503",
    }
    assert len(responses.calls) == 5


@responses.activate
def test_a_refusal_is_not_retried() -> None:
    responses.post(f"{BASE}/api/v2/import/result", status=401, json={"code": "FILTER_BLOCKED"})
    response = call(callback, "POST", "/callback", json=REQUEST)
    assert (response.status_code, response.get_json()["error"]["code"]) == (502, "CALLBACK_FAILED")
    assert len(responses.calls) == 1


@pytest.mark.parametrize(
    "callback_url",
    [
        "http://evil.test:8000/api/v2/import/result",  # another host
        "https://broker-client.test:8000/api/v2/import/result",  # another scheme
        f"{BASE.replace(':8000', ':8001')}/api/v2/import/result",  # another port
        "http://user:pw@broker-client.test:8000/api/v2/import/result",
        f"{BASE}/api/v2/import/../../admin",
        f"{BASE}/api/v2/import/%2e%2e/result",
        f"{BASE}/api/v2/not-allowed",  # not a public accept rule
        f"{BASE}/api/v2/import/result?x=1",
    ],
)
@responses.activate
def test_targets_outside_broker_client_url_are_refused(callback_url: str) -> None:
    response = call(callback, "POST", "/callback", json=REQUEST | {"callbackUrl": callback_url})
    assert (response.status_code, response.get_json()["error"]["code"]) == (400, "CALLBACK_REFUSED")
    assert callback_url not in response.get_data(as_text=True)
    assert len(responses.calls) == 0


def test_no_broker_client_url_means_no_callback(
    agent_env: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BROKER_CLIENT_URL")
    agent_env()
    response = call(
        callback, "POST", "/callback", json=REQUEST | {"callbackUrl": f"{BASE}/api/v2/import/result"}
    )
    assert (response.status_code, response.get_json()["error"]["code"]) == (400, "CALLBACK_REFUSED")
    assert call(callback, "POST", "/callback", json=REQUEST).status_code == 400


def test_invalid_body_is_422() -> None:
    response = call(callback, "POST", "/callback", json={"scanId": "x", "api": "v3"})
    assert response.status_code == 422
    assert "api" in response.get_json()["error"]["message"]
