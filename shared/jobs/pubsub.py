"""Dispatch scans to a Pub/Sub topic over REST, for one-function-per-deployment setups.

The ``scan_event`` function is subscribed to the topic and runs the scan. google-auth supplies the
token (Application Default Credentials: the function's service account on GCP). The message
carries the request's registry credentials when the request brought its own; a deployment that
must not put them in Pub/Sub gives the worker function ``CR_CREDENTIALS`` instead.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import google.auth
import google.auth.exceptions
import requests
from google.auth.transport.requests import AuthorizedSession

from shared.jobs.dispatch import DispatchFailed, NewJob, StatusUnavailable
from shared.jobs.queue import Job

log = logging.getLogger(__name__)

PUBSUB_API = "https://pubsub.googleapis.com/v1"
PUBSUB_SCOPE = "https://www.googleapis.com/auth/pubsub"


def encode_job(job: NewJob) -> dict[str, Any]:
    """The Pub/Sub message for a job (``data`` is base64 JSON, as the API requires)."""
    data = {
        "id": job.id,
        "kind": job.kind,
        "request": job.request,
        "credentials": job.credentials,
        "requestId": job.request_id,
    }
    return {
        "data": base64.b64encode(json.dumps(data).encode()).decode(),
        "attributes": {"scanId": job.id, "kind": job.kind},
    }


def decode_job(data: str | bytes) -> NewJob:
    """The job from a message's base64 ``data``; ``ValueError`` when it is not one of ours."""
    try:
        body = json.loads(base64.b64decode(data))
        return NewJob(
            id=str(body["id"]),
            kind=body["kind"],
            request=dict(body["request"]),
            credentials=body.get("credentials"),
            request_id=body.get("requestId"),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError("not a scan job message") from error


class PubSubDispatcher:
    def __init__(self, topic: str, session: requests.Session | None = None, timeout: float = 30.0) -> None:
        self.topic = topic  # projects/<project>/topics/<topic>
        self.timeout = timeout
        self._session = session

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            credentials, _ = google.auth.default(scopes=[PUBSUB_SCOPE])
            self._session = AuthorizedSession(credentials)
        return self._session

    def dispatch(self, job: NewJob) -> None:
        url = f"{PUBSUB_API}/{self.topic}:publish"
        try:
            response = self.session.post(url, json={"messages": [encode_job(job)]}, timeout=self.timeout)
        except (requests.RequestException, google.auth.exceptions.GoogleAuthError) as error:
            raise DispatchFailed(f"could not publish the scan to Pub/Sub ({type(error).__name__})") from None
        if not response.ok:
            raise DispatchFailed(f"Pub/Sub refused the scan (HTTP {response.status_code})")
        ids = response.json().get("messageIds") or []
        log.info("scan %s published to %s as message %s", job.id, self.topic, ids[0] if ids else "?")

    def status(self, scan_id: str) -> Job:
        raise StatusUnavailable("no scan status with SCAN_DISPATCH=pubsub; results arrive as callbacks")
