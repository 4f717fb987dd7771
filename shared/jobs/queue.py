"""The durable scan queue: a job is queued, claimed by a worker, then finished as done or failed.

A job claimed by a process that then dies stays 'running'; the next worker pool to start puts it
back to 'queued' (``requeue_abandoned``), so an accepted scan survives a restart. ``attempts`` counts
claims, which lets the worker give up on a job that keeps crashing the process.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from shared.errors import AgentError
from shared.jobs.outbox import NewCallback, add_callbacks
from shared.jobs.store import JobStore

JobKind = Literal["scan", "discover"]

# Finished jobs (and settled callbacks) are kept this long, so their status can still be asked for.
RETENTION_SECONDS = 7 * 24 * 3600
# What a full queue asks the caller to wait: about one small scan's time per worker, not a promise.
QUEUE_FULL_RETRY_AFTER = 30


class ScanJob(Protocol):
    """What the scan work needs of a job, whether it came from the queue or from Pub/Sub."""

    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> JobKind: ...
    @property
    def request(self) -> dict[str, Any]: ...
    @property
    def credentials(self) -> str | None: ...
    @property
    def request_id(self) -> str | None: ...


@dataclass(frozen=True)
class Job:
    id: str
    kind: JobKind
    request: dict[str, Any]
    credentials: str | None = field(repr=False)
    status: str
    attempts: int
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    created_at: float
    updated_at: float
    request_id: str | None = None  # the broker's id of the request that queued it, for logs and callbacks


@dataclass(frozen=True)
class Outcome:
    """How a job ended; ``error`` is ``{"code", "message"}`` as in every API error."""

    status: Literal["done", "failed"]
    result: dict[str, Any] | None = None
    error: dict[str, str] | None = None

    @classmethod
    def done(cls, result: dict[str, Any]) -> Outcome:
        return cls("done", result=result)

    @classmethod
    def failed(cls, code: str, message: str) -> Outcome:
        return cls("failed", error={"code": code, "message": message})


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        kind=row["kind"],
        request=json.loads(row["request"]),
        credentials=row["credentials"],
        status=row["status"],
        attempts=row["attempts"],
        result=json.loads(row["result"]) if row["result"] else None,
        error=json.loads(row["error"]) if row["error"] else None,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        request_id=row["request_id"],
    )


class QueueFull(AgentError):
    """As many scans wait as ``MAX_QUEUED_SCANS`` allows: the caller should try again later."""

    code = "QUEUE_FULL"
    status = 429


class ScanQueue:
    def __init__(self, store: JobStore) -> None:
        self.store = store

    def enqueue(
        self,
        kind: JobKind,
        request: dict[str, Any],
        credentials: str | None = None,
        job_id: str | None = None,
        *,
        request_id: str | None = None,
        max_queued: int | None = None,
    ) -> str:
        """Queue a job; with ``max_queued``, ``QueueFull`` instead when that many already wait.

        Counting and inserting happen in one IMMEDIATE transaction, so concurrent requests cannot
        together overshoot the bound.
        """
        job_id = job_id or str(uuid.uuid4())
        now = time.time()
        with self.store.transaction() as conn:
            if max_queued is not None:
                waiting = conn.execute("SELECT COUNT(*) FROM jobs WHERE status = 'queued'").fetchone()[0]
                if waiting >= max_queued:
                    raise QueueFull(
                        f"{waiting} scans are waiting (MAX_QUEUED_SCANS={max_queued}); try again later",
                        headers={"Retry-After": str(QUEUE_FULL_RETRY_AFTER)},
                    )
            conn.execute(
                "INSERT INTO jobs"
                " (id, kind, request, credentials, status, created_at, updated_at, request_id)"
                " VALUES (?, ?, ?, ?, 'queued', ?, ?, ?)",
                (job_id, kind, json.dumps(request), credentials, now, now, request_id),
            )
        self.store.work_available.set()
        return job_id

    def claim(self) -> Job | None:
        """The oldest queued job, now 'running' and owned by the caller."""
        with self.store.transaction() as conn:
            row = conn.execute(
                "SELECT id FROM jobs WHERE status = 'queued' ORDER BY created_at LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, updated_at = ? WHERE id = ?",
                (time.time(), row["id"]),
            )
            return _job(conn.execute("SELECT * FROM jobs WHERE id = ?", (row["id"],)).fetchone())

    def finish(self, job_id: str, outcome: Outcome, callbacks: Sequence[NewCallback] = ()) -> None:
        """Record the outcome, forget the credentials and queue the callbacks, all or nothing."""
        with self.store.transaction() as conn:
            conn.execute(
                "UPDATE jobs SET status = ?, result = ?, error = ?, credentials = NULL, updated_at = ?"
                " WHERE id = ?",
                (
                    outcome.status,
                    json.dumps(outcome.result) if outcome.result is not None else None,
                    json.dumps(outcome.error) if outcome.error is not None else None,
                    time.time(),
                    job_id,
                ),
            )
            add_callbacks(conn, job_id, callbacks)
        self.store.truncate_log()
        if callbacks:
            self.store.callbacks_available.set()

    def get(self, job_id: str) -> Job | None:
        with self.store.connect() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def requeue_abandoned(self) -> int:
        """Put jobs left 'running' by a dead process back in the queue. Call only where no worker runs."""
        with self.store.transaction() as conn:
            count = conn.execute(
                "UPDATE jobs SET status = 'queued', updated_at = ? WHERE status = 'running'", (time.time(),)
            ).rowcount
        if count:
            self.store.work_available.set()
        return count

    def purge_finished(self, older_than_seconds: float) -> int:
        """Delete finished jobs (their status can no longer be asked for) older than the given age."""
        with self.store.transaction() as conn:
            return conn.execute(
                "DELETE FROM jobs WHERE status IN ('done', 'failed') AND updated_at < ?",
                (time.time() - older_than_seconds,),
            ).rowcount
