"""The scan queue's bound (MAX_QUEUED_SCANS), the request id a job keeps, and the schema upgrade of a
STATE_DIR written before the request id existed."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from shared.jobs import LocalDispatcher, NewJob, QueueFull, ScanQueue
from shared.jobs.store import FILE_NAME, JobStore


def test_the_queue_refuses_past_its_bound_and_counts_only_waiting_jobs(tmp_path: Path) -> None:
    queue = ScanQueue(JobStore(tmp_path))
    dispatcher = LocalDispatcher(queue, max_queued=2)
    for number in range(2):
        dispatcher.dispatch(NewJob(f"j{number}", "scan", {"image": "a"}, None, request_id=f"r{number}"))
    with pytest.raises(QueueFull) as full:
        dispatcher.dispatch(NewJob("j2", "scan", {"image": "a"}, None))
    assert full.value.status == 429 and int(full.value.headers["Retry-After"]) > 0
    claimed = queue.claim()
    assert claimed is not None and claimed.request_id == "r0"
    dispatcher.dispatch(NewJob("j3", "scan", {"image": "a"}, None))  # a running job no longer waits


def test_concurrent_submissions_never_overshoot_the_bound(tmp_path: Path) -> None:
    dispatcher = LocalDispatcher(ScanQueue(JobStore(tmp_path)), max_queued=5)

    def submit(number: int) -> bool:
        try:
            dispatcher.dispatch(NewJob(f"j{number}", "scan", {"image": "a"}, None))
        except QueueFull:
            return False
        return True

    with ThreadPoolExecutor(max_workers=8) as pool:
        accepted = sum(pool.map(submit, range(40)))
    assert accepted == 5


def test_an_older_state_dir_gains_the_request_id_columns(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / FILE_NAME)
    conn.executescript(
        "CREATE TABLE jobs (id TEXT PRIMARY KEY, kind TEXT NOT NULL, request TEXT NOT NULL, credentials TEXT,"
        " status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, result TEXT, error TEXT,"
        " created_at REAL NOT NULL, updated_at REAL NOT NULL);"
        "INSERT INTO jobs VALUES ('old', 'scan', '{}', NULL, 'queued', 0, NULL, NULL, 1, 1);"
        "CREATE TABLE outbox (id TEXT PRIMARY KEY, scan_id TEXT NOT NULL, seq INTEGER NOT NULL,"
        " url TEXT NOT NULL, payload TEXT NOT NULL, status TEXT NOT NULL,"
        " attempts INTEGER NOT NULL DEFAULT 0,"
        " next_attempt_at REAL NOT NULL, last_error TEXT, created_at REAL NOT NULL, delivered_at REAL);"
    )
    conn.close()
    queue = ScanQueue(JobStore(tmp_path))
    old = queue.get("old")
    assert old is not None and old.request_id is None
    queue.enqueue("scan", {}, job_id="new", request_id="req-9")
    assert queue.get("new").request_id == "req-9"  # type: ignore[union-attr]
