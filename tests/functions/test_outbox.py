"""The callback outbox: kept while the broker client is down, delivered exactly once when it acknowledges."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import responses

from functions._callbacks import callbacks_for, send_message
from shared.jobs import JobStore, Outbox, OutboxSender, Outcome, ScanQueue
from tests.functions.conftest import Receiver

LATER = time.time() + 3600  # "now" far enough ahead that every backoff has expired


def _finished_scan(store: JobStore, outcome: Outcome, request: dict[str, str] | None = None) -> str:
    queue = ScanQueue(store)
    job_id = queue.enqueue("scan", request or {"image": "library/nginx:1.25", "importId": "imp-1"})
    job = queue.claim()
    assert job is not None
    queue.finish(job.id, outcome, callbacks_for(job, outcome))
    return job_id


def test_target_down_then_up_delivers_each_callback_once_in_order(
    tmp_path: Path, receiver: Receiver, agent_env: Callable[..., None]
) -> None:
    agent_env(BROKER_CLIENT_URL=receiver.url)
    store = JobStore(tmp_path)
    outbox = Outbox(store)
    sender = OutboxSender(outbox, send_message)
    scan_id = _finished_scan(store, Outcome.done({"image": {"digest": "sha256:abc"}}))

    # The broker client is down: the result callback is kept and rescheduled; done waits behind it.
    assert sender.drain_once() == 1
    result, done = outbox.for_scan(scan_id)
    assert (result.status, result.attempts, result.last_error) == ("pending", 1, "ConnectionError")
    assert result.next_attempt_at > time.time()
    assert sender.drain_once() == 0  # not due yet

    # Abandon everything, as a restart would; the outbox is durable.
    outbox = Outbox(JobStore(tmp_path))
    sender = OutboxSender(outbox, send_message)
    receiver.start()
    assert sender.drain_once(now=LATER) == 1  # the result...
    assert sender.drain_once(now=LATER) == 1  # ...then, unblocked, the done
    assert sender.drain_once(now=LATER) == 0  # and nothing ever again
    assert [r["path"] for r in receiver.received] == ["/api/v2/import/result", "/api/v2/import/done"]
    assert [m.status for m in outbox.for_scan(scan_id)] == ["delivered", "delivered"]

    first, second = (r["body"] for r in receiver.received)
    assert first["callbackId"] == result.id == receiver.received[0]["headers"]["Idempotency-Key"]
    assert (first["scanId"], first["status"], first["importId"]) == (scan_id, "done", "imp-1")
    assert first["result"] == {"image": {"digest": "sha256:abc"}}
    assert (second["callbackId"], second["status"], second["importId"]) == (done.id, "done", "imp-1")


def test_sender_thread_delivers_as_soon_as_a_scan_finishes(
    tmp_path: Path, receiver: Receiver, agent_env: Callable[..., None]
) -> None:
    agent_env(BROKER_CLIENT_URL=receiver.url)
    receiver.start()
    store = JobStore(tmp_path)
    sender = OutboxSender(Outbox(store), send_message, poll_seconds=5)
    sender.start()
    try:
        _finished_scan(store, Outcome.failed("NOT_FOUND", "manifest not found"))
        deadline = time.monotonic() + 5  # well under the poll interval: the wake-up signal works
        while len(receiver.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        sender.stop()
    assert [r["body"]["status"] for r in receiver.received] == ["failed", "failed"]
    assert receiver.received[0]["body"]["error"] == {"code": "NOT_FOUND", "message": "manifest not found"}


@responses.activate
def test_retry_on_429_and_5xx_and_reject_on_other_4xx(tmp_path: Path, agent_env: Callable[..., None]) -> None:
    base = "http://broker-client.test:8000"
    agent_env(BROKER_CLIENT_URL=base)
    store = JobStore(tmp_path)
    outbox = Outbox(store)
    responses.post(f"{base}/api/v2/import/result", status=503)
    responses.post(f"{base}/api/v2/import/result", status=429, headers={"Retry-After": "7"})
    responses.post(f"{base}/api/v2/import/result", status=200)
    responses.post(f"{base}/api/v2/import/done", status=401, json={"code": "FILTER_BLOCKED"})
    sender = OutboxSender(outbox, send_message)
    scan_id = _finished_scan(store, Outcome.done({}))

    sender.drain_once()
    assert outbox.for_scan(scan_id)[0].last_error == "HTTP 503"
    sender.drain_once(now=LATER)
    result = outbox.for_scan(scan_id)[0]
    assert result.last_error == "HTTP 429"
    assert result.next_attempt_at == pytest.approx(LATER + 7)  # Retry-After honoured
    sender.drain_once(now=LATER + 3600)
    sender.drain_once(now=LATER + 3600)
    result, done = outbox.for_scan(scan_id)
    assert (result.status, result.attempts) == ("delivered", 3)
    assert (done.status, done.last_error) == ("rejected", "HTTP 401")  # no retry can change a refusal
    assert sender.drain_once(now=LATER * 2) == 0


def test_a_target_outside_broker_client_url_is_never_contacted(
    tmp_path: Path, receiver: Receiver, agent_env: Callable[..., None]
) -> None:
    agent_env(BROKER_CLIENT_URL=receiver.url)
    receiver.start()
    store = JobStore(tmp_path)
    scan_id = _finished_scan(store, Outcome.done({}))
    agent_env(BROKER_CLIENT_URL="http://somewhere-else.test:8000")  # changed since the scan was accepted
    OutboxSender(Outbox(store), send_message).drain_once()
    assert receiver.received == []
    assert Outbox(store).for_scan(scan_id)[0].status == "rejected"


@pytest.mark.parametrize(
    ("callback_url", "paths"),
    [
        (None, ["/api/v2/import/result", "/api/v2/import/done"]),
        ("{base}/v2/import/result", ["/v2/import/result", "/v2/import/done"]),
        ("{base}/api/v2/import/done", ["/api/v2/import/result", "/api/v2/import/done"]),
        ("{base}/rest/scan/result", ["/rest/scan/result"]),
    ],
)
def test_callback_url_picks_the_path_family(
    tmp_path: Path, agent_env: Callable[..., None], callback_url: str | None, paths: list[str]
) -> None:
    base = "https://broker-client.test:8443/prefix"
    agent_env(BROKER_CLIENT_URL=base)
    request = {"image": "a/b"} | ({"callbackUrl": callback_url.format(base=base)} if callback_url else {})
    store = JobStore(tmp_path)
    scan_id = _finished_scan(store, Outcome.done({}), request)
    assert [m.url for m in Outbox(store).for_scan(scan_id)] == [base + p for p in paths]
