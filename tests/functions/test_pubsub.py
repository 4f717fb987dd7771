"""SCAN_DISPATCH=pubsub: publish over REST with google-auth, then scan_event runs the scan."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest
import requests
import responses
from cloudevents.http import CloudEvent
from google.auth.credentials import AnonymousCredentials
from google.auth.transport.requests import AuthorizedSession

import functions.scan
from functions.scan import scan
from functions.scan_event import scan_event
from shared.jobs import Dispatcher, DispatchFailed, NewJob
from shared.jobs.pubsub import PubSubDispatcher, decode_job, encode_job
from shared.settings import Settings
from tests.functions.conftest import call
from tests.functions.fakes import ENCODED, INDEX_DIGEST, PASSWORD, FakeRegistry

TOPIC = "projects/agent-project/topics/scans"
PUBLISH = f"https://pubsub.googleapis.com/v1/{TOPIC}:publish"
BASE = "http://broker-client.test:8000"


@pytest.fixture
def dispatcher(monkeypatch: pytest.MonkeyPatch, agent_env: Callable[..., None]) -> PubSubDispatcher:
    agent_env(SCAN_DISPATCH="pubsub", PUBSUB_TOPIC=TOPIC, BROKER_CLIENT_URL=BASE)
    pubsub = PubSubDispatcher(TOPIC, session=AuthorizedSession(AnonymousCredentials()))

    def factory(settings: Settings) -> Dispatcher:
        assert settings.scan_dispatch == "pubsub"
        return pubsub

    monkeypatch.setattr(functions.scan, "dispatcher_factory", factory)
    return pubsub


@responses.activate
def test_scan_is_published(dispatcher: PubSubDispatcher, fake_registry: FakeRegistry) -> None:
    responses.post(PUBLISH, json={"messageIds": ["42"]})
    response = call(
        scan,
        "POST",
        "/scan",
        headers={"Authorization": ENCODED},
        json={"image": "library/nginx:1.25", "importId": "imp-1"},
    )
    assert response.status_code == 202
    scan_id = response.get_json()["scanId"]
    [message] = json.loads(responses.calls[0].request.body)["messages"]
    assert message["attributes"] == {"scanId": scan_id, "kind": "scan"}
    job = decode_job(message["data"])
    assert (job.id, job.kind, job.credentials) == (scan_id, "scan", ENCODED)
    assert job.request["importId"] == "imp-1"
    assert fake_registry.calls == []


@responses.activate
def test_status_is_not_available(dispatcher: PubSubDispatcher) -> None:
    response = call(scan, "GET", "/scan/some-id")
    assert (response.status_code, response.get_json()["error"]["code"]) == (501, "UNSUPPORTED")


@responses.activate
@pytest.mark.parametrize(
    "failure",
    [
        {"status": 403, "json": {"error": {"message": "denied"}}},
        {"body": requests.ConnectionError("unreachable")},
    ],
)
def test_publish_failure_is_503(
    dispatcher: PubSubDispatcher, fake_registry: FakeRegistry, failure: dict[str, object]
) -> None:
    responses.post(PUBLISH, **failure)  # type: ignore[arg-type]
    response = call(
        scan, "POST", "/scan", headers={"Authorization": ENCODED}, json={"image": "library/nginx"}
    )
    assert (response.status_code, response.get_json()["error"]["code"]) == (503, "DISPATCH_FAILED")
    assert PASSWORD not in response.get_data(as_text=True)


def test_dispatch_failed_is_an_agent_error() -> None:
    assert DispatchFailed("x").status == 503


def _event(job: NewJob) -> CloudEvent:
    data = {"message": encode_job(job) | {"messageId": "42"}, "subscription": "projects/p/subscriptions/s"}
    return CloudEvent(
        {
            "type": "google.cloud.pubsub.topic.v1.messagePublished",
            "source": f"//pubsub.googleapis.com/{TOPIC}",
        },
        data,
    )


@responses.activate
def test_scan_event_runs_the_scan_and_delivers(
    fake_registry: FakeRegistry, agent_env: Callable[..., None]
) -> None:
    agent_env(BROKER_CLIENT_URL=BASE)
    responses.post(f"{BASE}/api/v2/import/result")
    responses.post(f"{BASE}/api/v2/import/done")
    scan_event(_event(NewJob("scan-7", "scan", {"image": "library/nginx:1.25", "importId": "i"}, ENCODED)))
    result = json.loads(responses.calls[0].request.body)
    assert (result["scanId"], result["status"], result["importId"]) == ("scan-7", "done", "i")
    assert result["result"]["image"]["indexDigest"] == INDEX_DIGEST
    assert len(responses.calls) == 2


@responses.activate
def test_scan_event_raises_when_delivery_fails_so_pubsub_redelivers(
    fake_registry: FakeRegistry, agent_env: Callable[..., None]
) -> None:
    agent_env(BROKER_CLIENT_URL=BASE)
    responses.post(f"{BASE}/api/v2/import/result", status=503)
    with pytest.raises(Exception, match="failed 5 times"):
        scan_event(_event(NewJob("scan-8", "scan", {"image": "library/nginx:1.25"}, ENCODED)))


def test_scan_event_drops_foreign_messages(fake_registry: FakeRegistry) -> None:
    event = CloudEvent(
        {"type": "google.cloud.pubsub.topic.v1.messagePublished", "source": "//x"},
        {"message": {"data": base64.b64encode(b"hello").decode()}},
    )
    scan_event(event)  # acknowledged (no exception): redelivering it could never succeed
    assert fake_registry.calls == []


def test_scan_event_drops_a_job_whose_callback_target_is_refused(fake_registry: FakeRegistry) -> None:
    # No BROKER_CLIENT_URL on this function: a callbackUrl can never be accepted, so no retry helps.
    job = NewJob(
        "scan-9", "scan", {"image": "library/nginx", "callbackUrl": f"{BASE}/api/v2/import/result"}, None
    )
    scan_event(_event(job))
    assert fake_registry.calls == []
