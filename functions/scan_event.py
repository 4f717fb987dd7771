"""Function ``scan_event``: run a scan published to Pub/Sub (``SCAN_DISPATCH=pubsub``) and deliver it.

Triggered per message (CloudEvent ``google.cloud.pubsub.topic.v1.messagePublished``). A failed scan is
still a result and is delivered as such; only a failed delivery raises, so Pub/Sub redelivers the
message (the callback ids stay the same, so the receiver can drop repeats). A message that is not a
scan job (or names a callback target the agent refuses) is logged and acknowledged: redelivering it
could never succeed.
"""

from __future__ import annotations

import logging

import functions_framework
from cloudevents.http import CloudEvent

from functions._callbacks import CallbackRefused, api_of, build_callbacks, callback_targets, deliver_now
from functions.scan_work import run_scan
from shared.api import ScanRequest
from shared.errors import AgentError
from shared.jobs import Outcome
from shared.jobs.pubsub import decode_job
from shared.logs import log_context
from shared.settings import get_settings

log = logging.getLogger(__name__)


@functions_framework.cloud_event
def scan_event(event: CloudEvent) -> None:
    message = (event.data or {}).get("message") or {}
    try:
        job = decode_job(message.get("data") or "")
        request = ScanRequest.model_validate(job.request)  # pydantic's ValidationError is a ValueError
        targets = callback_targets(api_of(job.kind), request.callback_url, get_settings())
    except (ValueError, CallbackRefused) as error:
        log.error("dropping Pub/Sub message %s: %s", message.get("messageId", "?"), type(error).__name__)
        return
    with log_context(job.request_id):
        try:
            outcome = Outcome.done(run_scan(job))
        except AgentError as error:
            outcome = Outcome.failed(error.code, error.message)
        callbacks = build_callbacks(job.id, targets, request.image, outcome, request.context, job.request_id)
        delivered = deliver_now(callbacks)
        log.info("scan %s %s, %d callback(s) delivered", job.id, outcome.status, len(delivered))
