"""The durable callback outbox: every callback is stored before it is sent and kept until acknowledged.

A callback has a stable id (the receiver can deduplicate on it) and is marked delivered only when the
target acknowledges with 2xx, after which it is never sent again. Connection errors, 429 and 5xx
reschedule it with exponential backoff, without limit; any other answer means the target refuses
it, which no retry will change, so it is marked rejected. Within one scan the callbacks go out in
order: 'done' is not sent before its 'result' has been delivered (or rejected).

A crash between the target's acknowledgement and the database update sends that one callback
again after the restart; the id is what makes this harmless.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from shared.jobs.backoff import Backoff
from shared.jobs.store import JobStore


@dataclass(frozen=True)
class NewCallback:
    id: str
    url: str
    payload: dict[str, Any]
    request_id: str | None = None  # the scan request's id, sent along as snyk-request-id


@dataclass(frozen=True)
class OutboxMessage:
    id: str
    scan_id: str
    seq: int
    url: str
    payload: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: float
    last_error: str | None
    request_id: str | None = None


@dataclass(frozen=True)
class DeliveryResult:
    outcome: Literal["delivered", "retry", "rejected"]
    detail: str = ""  # status code or error class, for the log and last_error; never a body
    retry_after: float | None = None


def add_callbacks(conn: sqlite3.Connection, scan_id: str, callbacks: Sequence[NewCallback]) -> None:
    """Insert within the caller's transaction (the queue finishes a job and adds its callbacks at once)."""
    now = time.time()
    conn.executemany(
        "INSERT OR IGNORE INTO outbox"
        " (id, scan_id, seq, url, payload, status, next_attempt_at, created_at, request_id)"
        " VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
        [
            (cb.id, scan_id, seq, cb.url, json.dumps(cb.payload), now, now, cb.request_id)
            for seq, cb in enumerate(callbacks)
        ],
    )


def _message(row: sqlite3.Row) -> OutboxMessage:
    return OutboxMessage(
        id=row["id"],
        scan_id=row["scan_id"],
        seq=row["seq"],
        url=row["url"],
        payload=json.loads(row["payload"]),
        status=row["status"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_error=row["last_error"],
        request_id=row["request_id"],
    )


class Outbox:
    def __init__(self, store: JobStore, backoff: Backoff | None = None) -> None:
        self.store = store
        self.backoff = backoff or Backoff()

    def add(self, scan_id: str, callbacks: Sequence[NewCallback]) -> None:
        with self.store.transaction() as conn:
            add_callbacks(conn, scan_id, callbacks)
        self.store.callbacks_available.set()

    def due(self, now: float | None = None, limit: int = 100) -> list[OutboxMessage]:
        """Pending callbacks that are due and whose predecessors in the same scan are no longer pending."""
        with self.store.connect() as conn:
            rows = conn.execute(
                "SELECT * FROM outbox o WHERE o.status = 'pending' AND o.next_attempt_at <= ?"
                " AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.scan_id = o.scan_id AND p.seq < o.seq"
                "                 AND p.status = 'pending')"
                " ORDER BY o.next_attempt_at, o.created_at, o.seq LIMIT ?",
                (time.time() if now is None else now, limit),
            ).fetchall()
        return [_message(row) for row in rows]

    def record(self, message: OutboxMessage, result: DeliveryResult, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self.store.transaction() as conn:
            if result.outcome == "delivered":
                conn.execute(
                    "UPDATE outbox SET status = 'delivered', attempts = attempts + 1,"
                    " delivered_at = ?, last_error = NULL WHERE id = ?",
                    (now, message.id),
                )
            elif result.outcome == "rejected":
                conn.execute(
                    "UPDATE outbox SET status = 'rejected', attempts = attempts + 1, last_error = ?"
                    " WHERE id = ?",
                    (result.detail, message.id),
                )
            else:
                delay = self.backoff.delay(message.attempts + 1, result.retry_after)
                conn.execute(
                    "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?"
                    " WHERE id = ?",
                    (now + delay, result.detail, message.id),
                )

    def get(self, callback_id: str) -> OutboxMessage | None:
        with self.store.connect() as conn:
            row = conn.execute("SELECT * FROM outbox WHERE id = ?", (callback_id,)).fetchone()
        return _message(row) if row else None

    def for_scan(self, scan_id: str) -> list[OutboxMessage]:
        with self.store.connect() as conn:
            rows = conn.execute("SELECT * FROM outbox WHERE scan_id = ? ORDER BY seq", (scan_id,)).fetchall()
        return [_message(row) for row in rows]

    def purge_settled(self, older_than_seconds: float) -> int:
        """Delete delivered and rejected callbacks older than the given age."""
        with self.store.transaction() as conn:
            return conn.execute(
                "DELETE FROM outbox WHERE status IN ('delivered', 'rejected') AND created_at < ?",
                (time.time() - older_than_seconds,),
            ).rowcount
