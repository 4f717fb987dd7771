"""The durable scan queue: a scan survives a crash, credentials live only as long as the job."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from typing import Any

from shared.errors import NotFound
from shared.jobs import JobStore, Outcome, ScanJob, ScanQueue, ScanWorkers
from tests.functions.fakes import ENCODED, PASSWORD

REQUEST = {"image": "library/nginx:1.25"}


def _no_callbacks(job: ScanJob, outcome: Outcome) -> list[Any]:
    return []


def _db_bytes(state: Path) -> bytes:
    return b"".join(p.read_bytes() for p in state.iterdir() if p.name.startswith("jobs.sqlite3"))


def test_a_running_job_survives_a_crash(tmp_path: Path) -> None:
    queue = ScanQueue(JobStore(tmp_path))
    job_id = queue.enqueue("scan", REQUEST, ENCODED)
    claimed = queue.claim()
    assert claimed is not None and claimed.id == job_id and claimed.status == "running"
    del queue, claimed  # the process dies mid-scan: nobody finishes the job

    reopened = ScanQueue(JobStore(tmp_path))
    ran: list[str] = []

    def run(job: ScanJob) -> dict[str, Any]:
        ran.append(job.id)
        assert job.credentials == ENCODED  # still there for the retry
        return {"ok": True}

    workers = ScanWorkers(reopened, run, _no_callbacks)
    workers.start(1)
    try:
        deadline = time.monotonic() + 10
        while (
            (job := reopened.get(job_id)) is not None and job.status != "done" and time.monotonic() < deadline
        ):
            time.sleep(0.02)
    finally:
        workers.stop()
    job = reopened.get(job_id)
    assert job is not None
    assert (job.status, job.attempts, job.result, job.credentials) == ("done", 2, {"ok": True}, None)
    assert ran == [job_id]


def test_a_queued_job_survives_a_restart(tmp_path: Path) -> None:
    job_id = ScanQueue(JobStore(tmp_path)).enqueue("discover", REQUEST)
    reopened = ScanQueue(JobStore(tmp_path))
    assert ScanWorkers(reopened, lambda job: {"kind": job.kind}, _no_callbacks).run_one()
    assert reopened.get(job_id).result == {"kind": "discover"}  # type: ignore[union-attr]


def test_credentials_are_erased_from_the_file(tmp_path: Path) -> None:
    queue = ScanQueue(JobStore(tmp_path))
    job_id = queue.enqueue("scan", REQUEST, ENCODED)
    assert ENCODED.encode() in _db_bytes(tmp_path)
    queue.claim()
    queue.finish(job_id, Outcome.done({}))
    assert ENCODED.encode() not in _db_bytes(tmp_path)
    assert PASSWORD.encode() not in _db_bytes(tmp_path)


def test_state_is_private(tmp_path: Path) -> None:
    state = tmp_path / "new-state"
    JobStore(state)
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(state / "jobs.sqlite3").st_mode) == 0o600


def test_failures_become_failed_outcomes(tmp_path: Path) -> None:
    queue = ScanQueue(JobStore(tmp_path))
    known = queue.enqueue("scan", REQUEST)
    buggy = queue.enqueue("scan", REQUEST)

    def run(job: ScanJob) -> dict[str, Any]:
        if job.id == known:
            raise NotFound("manifest not found")
        raise ZeroDivisionError

    workers = ScanWorkers(queue, run, _no_callbacks)
    assert workers.run_one() and workers.run_one() and not workers.run_one()
    assert queue.get(known).error == {"code": "NOT_FOUND", "message": "manifest not found"}  # type: ignore[union-attr]
    assert queue.get(buggy).error["code"] == "INTERNAL"  # type: ignore[union-attr,index]


def test_a_job_that_keeps_crashing_is_abandoned(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    job_id = ScanQueue(store).enqueue("scan", REQUEST, ENCODED)
    for _ in range(3):  # three claims, three crashes
        ScanQueue(store).claim()
        ScanQueue(store).requeue_abandoned()
    queue = ScanQueue(store)
    assert ScanWorkers(queue, lambda job: {}, _no_callbacks).run_one()
    job = queue.get(job_id)
    assert job is not None and job.status == "failed" and job.error["code"] == "ABANDONED"  # type: ignore[index]
    assert job.credentials is None


def test_jobs_are_claimed_once_and_oldest_first(tmp_path: Path) -> None:
    queue = ScanQueue(JobStore(tmp_path))
    first, second = queue.enqueue("scan", REQUEST), queue.enqueue("scan", REQUEST)
    assert [queue.claim().id, queue.claim().id, queue.claim()] == [first, second, None]  # type: ignore[union-attr]


def test_many_workers_run_each_job_exactly_once(tmp_path: Path) -> None:
    queue = ScanQueue(JobStore(tmp_path))
    ids = {queue.enqueue("scan", REQUEST) for _ in range(20)}
    ran: list[str] = []
    workers = ScanWorkers(queue, lambda job: ran.append(job.id) or {}, _no_callbacks, poll_seconds=0.05)
    workers.start(4)
    try:
        deadline = time.monotonic() + 10
        while len(ran) < len(ids) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        workers.stop()
    assert sorted(ran) == sorted(ids)
