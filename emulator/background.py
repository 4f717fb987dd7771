"""The emulator process's background threads: scan workers and the callback sender.

They must exist exactly once per state directory: two sets would race to requeue each other's
running jobs. Within a process ``start_background`` is idempotent; across processes an exclusive
lock on ``STATE_DIR/workers.lock`` decides. A process that cannot take it serves requests (scans it
accepts are queued) and keeps trying the lock in a waiter thread, taking over the queue and the
outbox as soon as the holder is gone: the holder may be a worker orphaned by a ``kill -9`` of its
gunicorn master, still finishing its scan while the agent is restarted, and without the takeover
the new agent would run no workers at all until its next restart. The gunicorn server runs one
worker process and starts these threads in it after the fork (threads do not survive a fork).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from functions._callbacks import callbacks_for, send_message
from functions.scan_work import run_scan
from shared.jobs import Outbox, OutboxSender, ScanQueue, ScanWorkers, open_store
from shared.jobs.queue import RETENTION_SECONDS
from shared.settings import Settings

log = logging.getLogger(__name__)

LOCK_FILE = "workers.lock"
# How often a process without the lock tries it again; the takeover delay after the holder exits.
LOCK_RETRY_SECONDS = 1.0


@dataclass
class Background:
    workers: ScanWorkers
    sender: OutboxSender
    lock_fd: int

    def stop(self, timeout: float = 10.0) -> None:
        self.workers.stop(timeout)
        self.sender.stop(timeout)
        os.close(self.lock_fd)  # releases the flock


_current: Background | None = None
_waiter: threading.Thread | None = None
_stopping = threading.Event()
_guard = threading.Lock()


def _take_lock(state_dir: Path) -> int | None:
    fd = os.open(state_dir / LOCK_FILE, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _try_start(settings: Settings) -> Background | None:
    """Start the workers and the sender if the lock is free; the caller holds ``_guard``."""
    global _current
    store = open_store(settings.state_dir)
    lock_fd = _take_lock(store.path.parent)
    if lock_fd is None:
        return None
    try:
        queue, outbox = ScanQueue(store), Outbox(store)
        queue.purge_finished(RETENTION_SECONDS)
        outbox.purge_settled(RETENTION_SECONDS)
        workers = ScanWorkers(queue, run_scan, callbacks_for)
        sender = OutboxSender(outbox, send_message)
        workers.start(settings.max_active_operations)
        sender.start()
    except BaseException:
        os.close(lock_fd)  # a lock held with no workers behind it would stall every other process too
        raise
    log.info("scan workers started: %d (state dir %s)", settings.max_active_operations, store.path.parent)
    _current = Background(workers, sender, lock_fd)
    return _current


def _wait_for_lock(settings: Settings) -> None:
    while not _stopping.wait(LOCK_RETRY_SECONDS):
        with _guard:
            if _stopping.is_set() or _current is not None:
                return
            try:
                if _try_start(settings) is not None:
                    return
            except Exception:  # e.g. the database is briefly locked: try again on the next round
                log.exception("taking over the scan workers failed; retrying")


def start_background(settings: Settings) -> Background | None:
    """Start the workers and the sender once; None when not this process's job (yet)."""
    global _waiter
    with _guard:
        if _current is not None:
            return _current
        if settings.scan_dispatch != "local":
            log.info("SCAN_DISPATCH=%s: no local scan workers", settings.scan_dispatch)
            return None
        started = _try_start(settings)
        if started is None and (_waiter is None or not _waiter.is_alive()):
            log.warning(
                "another process runs the scan workers of %s; taking over when it stops",
                Path(settings.state_dir).resolve(),
            )
            _stopping.clear()
            _waiter = threading.Thread(
                target=_wait_for_lock, args=(settings,), name="workers-lock-waiter", daemon=True
            )
            _waiter.start()
        return started


def stop_background(timeout: float = 10.0) -> None:
    global _current, _waiter
    _stopping.set()  # first, so a waiter cannot start workers behind our back
    with _guard:
        if _current is not None:
            _current.stop(timeout)
            _current = None
        waiter, _waiter = _waiter, None
    if waiter is not None:
        waiter.join(timeout)
