"""The SQLite file under ``STATE_DIR`` that holds the scan queue and the callback outbox.

Both tables live in one file so that finishing a scan and queueing its callbacks is one
transaction: a crash loses neither. Each operation opens its own short-lived connection, which
keeps the store safe to share between request threads and worker threads.

The file holds registry credentials while their scan waits, so the directory is private (0700),
the file 0600, freed pages are zeroed (``secure_delete``) and the write-ahead log is truncated
once a job's credentials are gone.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FILE_NAME = "jobs.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,                -- 'scan' (v2) or 'discover' (v1)
    request     TEXT NOT NULL,                -- the scan request as JSON, without credentials
    credentials TEXT,                         -- base64 CR_CREDENTIALS; NULL once the job is finished
    status      TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,   -- times a worker claimed it (a crash leaves it 'running')
    result      TEXT,
    error       TEXT,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    request_id  TEXT                          -- the broker's request id, carried into logs and callbacks
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, created_at);

CREATE TABLE IF NOT EXISTS outbox (
    id              TEXT PRIMARY KEY,         -- the callback id the receiver can deduplicate on
    scan_id         TEXT NOT NULL,
    seq             INTEGER NOT NULL,         -- order within one scan: result before done
    url             TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'rejected')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error      TEXT,
    created_at      REAL NOT NULL,
    delivered_at    REAL,
    request_id      TEXT                      -- sent as snyk-request-id with the callback
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_attempt_at);
"""


# Columns added after the first release: a STATE_DIR written by an older agent gains them on open.
_ADDED_COLUMNS = (("jobs", "request_id", "TEXT"), ("outbox", "request_id", "TEXT"))


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    for table, column, declaration in _ADDED_COLUMNS:
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            try:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
            except sqlite3.OperationalError as error:  # another process added it a moment ago
                if "duplicate column" not in str(error):
                    raise


def _private_file(path: Path) -> None:
    # Only a directory we create is made private: STATE_DIR may point at an existing shared one.
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    os.chmod(path, 0o600)


class JobStore:
    """One state directory's database, plus in-process wake-up signals for its consumers."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / FILE_NAME
        _private_file(self.path)
        # Set when a job is queued / a callback is added, so idle threads need not wait for their poll.
        self.work_available = threading.Event()
        self.callbacks_available = threading.Event()
        with self.connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            _add_missing_columns(conn)

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA secure_delete=ON")
            yield conn
        finally:
            conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; IMMEDIATE so two claimers never pick the same row."""
        with self.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def truncate_log(self) -> None:
        """Fold the write-ahead log into the database and empty it (old row images go with it)."""
        with self.connect() as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


_stores: dict[Path, JobStore] = {}
_stores_lock = threading.Lock()


def open_store(state_dir: Path) -> JobStore:
    """The process-wide store of a state directory: the scan function and the workers share it."""
    key = Path(state_dir).resolve()
    with _stores_lock:
        if key not in _stores:
            _stores[key] = JobStore(key)
        return _stores[key]
