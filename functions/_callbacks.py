"""Callbacks to the broker client: where they may go, what they carry, and how one is sent.

Targets: only under the agent's ``BROKER_CLIENT_URL`` and only on a path the broker's public accept
rules let through (broker-protocol.md §3.2); anything else is refused before a scan is accepted
and again before each send. The scan request's ``callbackUrl`` picks the path family (``/api/v2``,
``/v2``, ``/rest/scan/result``, v1 ...); without it the default family of the API version is used.

Each callback has an id derived from the scan id and its kind, so re-sending (after a crash, or a
Pub/Sub redelivery) produces the same id, sent as ``Idempotency-Key`` and ``callbackId``.
"""

from __future__ import annotations

import email.utils
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import SplitResult, urlsplit

import requests

from functions.scan_work import INVENTORY_KEY
from shared.api import DiscoverCallback, ScanDoneCallback, ScanRequest, ScanResultCallback
from shared.errors import AgentError, BadRequest
from shared.jobs import Backoff, DeliveryResult, NewCallback, Outcome, ScanJob
from shared.settings import Settings, get_settings

log = logging.getLogger(__name__)

Api = Literal["v1", "v2"]
Kind = Literal["result", "done", "dependencies"]

# v2: result path -> its done path, per family (broker-protocol.md §3.2).
_V2_FAMILIES = {"/api/v2/import/result": "/api/v2/import/done", "/v2/import/result": "/v2/import/done"}
_V2_RESULT_ONLY = frozenset({"/rest/scan/result"})  # code-lineage service: no done callback
_V1_PATHS = frozenset(
    {"/api/v1/recurring-tests/dependencies", "/v1/recurring-tests/dependencies", "/v1/import/app"}
)
_DEFAULT_V1 = "/api/v1/recurring-tests/dependencies"
_DEFAULT_PORTS = {"http": 80, "https": 443}

IN_CALL_ATTEMPTS = 5
IN_CALL_BACKOFF = Backoff(base=0.5, cap=8.0)
SEND_TIMEOUT_SECONDS = 30.0

sleep: Callable[[float], None] = time.sleep  # replaced in tests


class CallbackRefused(BadRequest):
    code = "CALLBACK_REFUSED"


class CallbackFailed(AgentError):
    code = "CALLBACK_FAILED"
    status = 502


@dataclass(frozen=True)
class Target:
    kind: Kind
    url: str


def api_of(kind: str) -> Api:
    """/discover is the v1 API, /scan the v2 one."""
    return "v1" if kind == "discover" else "v2"


def _origin(url: SplitResult) -> tuple[str, str | None, int | None]:
    scheme = url.scheme.lower()
    return scheme, (url.hostname or "").lower() or None, url.port or _DEFAULT_PORTS.get(scheme)


def _path_under_base(url: str, base: str) -> str:
    """The path of ``url`` relative to ``base``; ``CallbackRefused`` unless it really lies under it."""
    refused = CallbackRefused("callbackUrl must lie under the agent's BROKER_CLIENT_URL")
    try:
        target, root = urlsplit(url.strip()), urlsplit(base.strip())
        same_origin = _origin(target) == _origin(root)
    except ValueError:  # e.g. a port that is not a number
        raise refused from None
    if (
        target.scheme.lower() not in _DEFAULT_PORTS
        or not same_origin
        or target.username
        or target.password
        or target.query
        or target.fragment
    ):
        raise refused
    prefix = root.path.rstrip("/")
    if not (target.path == prefix or target.path.startswith(prefix + "/")):
        raise refused
    rest = target.path[len(prefix) :]
    # Dot segments and escapes could walk out of the prefix once the broker normalises the path.
    if "%" in rest or "\\" in rest or any(seg in {".", ".."} for seg in rest.split("/")):
        raise refused
    return rest


def callback_targets(api: Api, callback_url: str | None, settings: Settings) -> list[Target]:
    """Where the callbacks of one scan go, in order; [] when no callback is configured at all."""
    base = settings.broker_client_url
    if not base:
        if callback_url:
            raise CallbackRefused("callbacks are refused: BROKER_CLIENT_URL is not set on the agent")
        return []
    path = _path_under_base(callback_url, base) if callback_url else ""
    paths: list[tuple[Kind, str]]
    if api == "v1":
        if path not in _V1_PATHS and path not in {"", "/"}:
            raise CallbackRefused("callbackUrl is not a v1 callback path the broker accepts")
        paths = [("dependencies", path if path in _V1_PATHS else _DEFAULT_V1)]
    elif path in {"", "/"}:
        paths = [("result", "/api/v2/import/result"), ("done", "/api/v2/import/done")]
    elif path in _V2_FAMILIES:
        paths = [("result", path), ("done", _V2_FAMILIES[path])]
    elif path in _V2_FAMILIES.values():
        result = next(r for r, d in _V2_FAMILIES.items() if d == path)
        paths = [("result", result), ("done", path)]
    elif path in _V2_RESULT_ONLY:
        paths = [("result", path)]
    else:
        raise CallbackRefused("callbackUrl is not a v2 callback path the broker accepts")
    return [Target(kind, base.rstrip("/") + p) for kind, p in paths]


def callback_id(scan_id: str, kind: Kind) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"registry-agent:callback:{scan_id}:{kind}"))


def callback_result(result: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What goes back through the broker: everything but the inventory kept for ``?format=``."""
    return None if result is None else {k: v for k, v in result.items() if k != INVENTORY_KEY}


def build_callbacks(
    scan_id: str,
    targets: Sequence[Target],
    image: str,
    outcome: Outcome,
    context: Mapping[str, Any],
    request_id: str | None = None,
) -> list[NewCallback]:
    callbacks = []
    for target in targets:
        common: dict[str, Any] = {
            "callback_id": callback_id(scan_id, target.kind),
            "scan_id": scan_id,
            "status": outcome.status,
        }
        details = {"image": image, "result": callback_result(outcome.result), "error": outcome.error}
        model = (
            ScanDoneCallback(**common)
            if target.kind == "done"
            else ScanResultCallback(**common, **details)
            if target.kind == "result"
            else DiscoverCallback(**common, **details)
        )
        # Snyk's own identifiers first, so they can never overwrite the agent's fields.
        payload = {**context, **model.model_dump(by_alias=True, mode="json")}
        callbacks.append(
            NewCallback(id=payload["callbackId"], url=target.url, payload=payload, request_id=request_id)
        )
    return callbacks


def callbacks_for(job: ScanJob, outcome: Outcome) -> list[NewCallback]:
    """The callbacks of a finished job (the worker pool's ``callbacks_for``, also used by ``scan_event``)."""
    request = ScanRequest.model_validate(job.request)
    targets = callback_targets(api_of(job.kind), request.callback_url, get_settings())
    return build_callbacks(job.id, targets, request.image, outcome, request.context, job.request_id)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def post_callback(
    callback_id: str, url: str, payload: Mapping[str, Any], request_id: str | None = None
) -> DeliveryResult:
    """Send one callback once and classify the answer: delivered, retry later, or rejected for good.

    ``request_id`` (the scan request's) goes along as ``snyk-request-id``, so the broker and Snyk can
    tie the result to the request that asked for it.
    """
    base = get_settings().broker_client_url
    try:
        if not base:
            raise CallbackRefused("BROKER_CLIENT_URL is not set")
        _path_under_base(url, base)
    except CallbackRefused as refused:
        return DeliveryResult("rejected", refused.message)
    headers = {"Idempotency-Key": callback_id, "User-Agent": "registry-agent"}
    if request_id:
        headers["snyk-request-id"] = request_id
    try:
        response = requests.post(
            url, json=dict(payload), timeout=SEND_TIMEOUT_SECONDS, allow_redirects=False, headers=headers
        )
    except requests.RequestException as error:
        return DeliveryResult("retry", type(error).__name__)
    status = response.status_code
    if 200 <= status < 300:
        return DeliveryResult("delivered", f"HTTP {status}")
    if status == 429 or status >= 500:
        return DeliveryResult("retry", f"HTTP {status}", _retry_after(response))
    return DeliveryResult("rejected", f"HTTP {status}")


def send_message(message: Any) -> DeliveryResult:
    """The outbox sender's ``send``: one attempt per message (the outbox schedules the retries)."""
    return post_callback(message.id, message.url, message.payload, getattr(message, "request_id", None))


def deliver_now(callbacks: Sequence[NewCallback], attempts: int = IN_CALL_ATTEMPTS) -> list[str]:
    """Send the callbacks in order, retrying each with backoff; ``CallbackFailed`` when one cannot go."""
    delivered = []
    for callback in callbacks:
        for attempt in range(1, attempts + 1):
            result = post_callback(callback.id, callback.url, callback.payload, callback.request_id)
            if result.outcome == "delivered":
                delivered.append(callback.id)
                break
            path = urlsplit(callback.url).path
            if result.outcome == "rejected":
                raise CallbackFailed(f"callback to {path} was refused: {result.detail}")
            if attempt == attempts:
                raise CallbackFailed(f"callback to {path} failed {attempts} times, last: {result.detail}")
            log.info("callback %s: %s, retrying", callback.id, result.detail)
            sleep(IN_CALL_BACKOFF.delay(attempt, result.retry_after))
    return delivered
