"""Where an accepted scan goes: the local SQLite queue or a Pub/Sub topic (``SCAN_DISPATCH``).

The scan function only calls ``dispatcher_for(settings).dispatch(job)`` and ``.status(scan_id)``;
which backend answers is configuration.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from shared.errors import AgentError, ConfigurationError
from shared.jobs.queue import RETENTION_SECONDS, Job, JobKind, ScanQueue
from shared.jobs.store import open_store
from shared.settings import Settings


class ScanNotFound(AgentError):
    code = "SCAN_NOT_FOUND"
    status = 404


class DispatchFailed(AgentError):
    """The scan could not be handed to its backend; the caller may retry."""

    code = "DISPATCH_FAILED"
    status = 503


class StatusUnavailable(AgentError):
    code = "UNSUPPORTED"
    status = 501


@dataclass(frozen=True)
class NewJob:
    id: str
    kind: JobKind
    request: dict[str, Any]  # the scan request as JSON, without credentials
    credentials: str | None = field(repr=False)  # base64; None when the agent's own CR_CREDENTIALS apply
    request_id: str | None = None  # the broker's request id: the scan's log lines and callbacks carry it


class Dispatcher(Protocol):
    def dispatch(self, job: NewJob) -> None: ...
    def status(self, scan_id: str) -> Job: ...


class LocalDispatcher:
    """Queue in SQLite under STATE_DIR; the emulator process's workers drain it.

    The queue is bounded (``MAX_QUEUED_SCANS``): past it a scan is refused with 429 and
    ``Retry-After`` rather than accepted into a backlog that only grows.
    """

    def __init__(self, queue: ScanQueue, max_queued: int | None = None) -> None:
        self.queue = queue
        self.max_queued = max_queued

    def dispatch(self, job: NewJob) -> None:
        self.queue.enqueue(
            job.kind,
            job.request,
            job.credentials,
            job_id=job.id,
            request_id=job.request_id,
            max_queued=self.max_queued,
        )

    def status(self, scan_id: str) -> Job:
        job = self.queue.get(scan_id)
        if job is None:
            days = RETENTION_SECONDS // 86400
            raise ScanNotFound(f"no scan with this id (finished scans are kept for {days} days)")
        return job


@functools.cache
def _local(state_dir: Path, max_queued: int) -> LocalDispatcher:
    return LocalDispatcher(ScanQueue(open_store(state_dir)), max_queued)


@functools.cache
def _pubsub(topic: str) -> Dispatcher:
    from shared.jobs.pubsub import PubSubDispatcher  # google-auth is only needed in this mode

    return PubSubDispatcher(topic)


def dispatcher_for(settings: Settings) -> Dispatcher:
    if settings.scan_dispatch == "pubsub":
        if not settings.pubsub_topic:
            raise ConfigurationError("SCAN_DISPATCH=pubsub needs PUBSUB_TOPIC")
        return _pubsub(settings.pubsub_topic)
    return _local(Path(settings.state_dir).resolve(), settings.max_queued_scans)
