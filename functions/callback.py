"""Function ``callback``: deliver one finished scan to the broker client.

v2 posts ``/api/v2/import/result`` then ``/api/v2/import/done`` (or the family ``callbackUrl``
names), v1 posts ``/api/v1/recurring-tests/dependencies``; each is retried with backoff on
connection errors, 429 and 5xx. Any target outside ``BROKER_CLIENT_URL`` is refused (400). The
emulator's outbox uses the same sending code, one attempt per wake-up, durably.
"""

from __future__ import annotations

import flask
import functions_framework

from functions._callbacks import CallbackRefused, build_callbacks, callback_targets, deliver_now
from functions._http import Routes, parse_model, read_json_object
from shared.api import CallbackDelivered, CallbackRequest
from shared.jobs import Outcome
from shared.logs import current_request_id
from shared.settings import get_settings

routes = Routes()

# A scan result can be large; 32 MiB is the request limit of the smallest platform we target (GCF gen 2).
MAX_RESULT_BYTES = 32 * 1024 * 1024


@routes.post("/callback")
def _deliver(request: flask.Request) -> CallbackDelivered:
    body = parse_model(CallbackRequest, read_json_object(request, MAX_RESULT_BYTES))
    targets = callback_targets(body.api, body.callback_url, get_settings())
    if not targets:
        raise CallbackRefused("no callback target: BROKER_CLIENT_URL is not set")
    error = body.error.model_dump() if body.error else None
    outcome = Outcome(body.status, result=body.result, error=error)
    callbacks = build_callbacks(
        body.scan_id, targets, body.image, outcome, body.context, current_request_id()
    )
    return CallbackDelivered(delivered=deliver_now(callbacks))


@functions_framework.http
def callback(request: flask.Request) -> flask.Response:
    return routes.handle(request)
