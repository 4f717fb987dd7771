"""The emulator process's background threads: scan workers and the callback sender.

They must exist exactly once per state directory: two sets would race to requeue each other's
running jobs. Within a process ``start_background`` is idempotent; across processes an exclusive
lock on ``STATE_DIR/workers.lock`` decides, and a process that cannot take it serves requests
(scans it accepts are queued) but runs no workers. The gunicorn server runs one worker process and
starts these threads in it after the fork (threads do not survive a fork).
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
_guard = threading.Lock()


def _take_lock(state_dir: Path) -> int | None:
    fd = os.open(state_dir / LOCK_FILE, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def start_background(settings: Settings) -> Background | None:
    """Start the workers and the sender once; None when not this process's job."""
    global _current
    with _guard:
        if _current is not None:
            return _current
        if settings.scan_dispatch != "local":
            log.info("SCAN_DISPATCH=%s: no local scan workers", settings.scan_dispatch)
            return None
        store = open_store(settings.state_dir)
        lock_fd = _take_lock(store.path.parent)
        if lock_fd is None:
            log.warning("another process runs the scan workers of %s; none here", store.path.parent)
            return None
        queue, outbox = ScanQueue(store), Outbox(store)
        queue.purge_finished(RETENTION_SECONDS)
        outbox.purge_settled(RETENTION_SECONDS)
        workers = ScanWorkers(queue, run_scan, callbacks_for)
        sender = OutboxSender(outbox, send_message)
        workers.start(settings.max_active_operations)
        sender.start()
        log.info("scan workers started: %d (state dir %s)", settings.max_active_operations, store.path.parent)
        _current = Background(workers, sender, lock_fd)
        return _current


def stop_background(timeout: float = 10.0) -> None:
    global _current
    with _guard:
        if _current is not None:
            _current.stop(timeout)
            _current = None
