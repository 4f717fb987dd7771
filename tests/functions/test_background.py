"""The scan workers' lock: a process that finds it taken takes over once the holder lets go.

The end-to-end case (a worker orphaned by ``kill -9`` of its master, still holding the lock while the
agent restarts) is in tests/e2e/test_faults.py; this is the same logic in-process, fast.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator import background
from shared.settings import Settings


@pytest.fixture
def fast_retry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(background, "LOCK_RETRY_SECONDS", 0.05)
    yield
    background.stop_background(timeout=5)


def _hold_lock(state_dir: Path) -> int:
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / background.LOCK_FILE, os.O_CREAT | os.O_RDWR, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _wait_started(timeout: float = 5.0) -> background.Background:
    deadline = time.monotonic() + timeout
    while background._current is None:
        assert time.monotonic() < deadline, "the waiter never took the workers over"
        time.sleep(0.01)
    return background._current


def test_takes_over_when_the_holder_lets_go(tmp_path: Path, fast_retry: None) -> None:
    held = _hold_lock(tmp_path)
    try:
        assert background.start_background(Settings(state_dir=tmp_path)) is None
        time.sleep(0.2)  # several retry rounds while the lock is still held
        assert background._current is None
    finally:
        os.close(held)
    started = _wait_started()
    assert started.workers.running == 1 and started.sender.running == 1
    # Idempotent once running: the same workers, no second set.
    assert background.start_background(Settings(state_dir=tmp_path)) is started


def test_stopping_ends_the_wait(tmp_path: Path, fast_retry: None) -> None:
    held = _hold_lock(tmp_path)
    try:
        assert background.start_background(Settings(state_dir=tmp_path)) is None
        background.stop_background(timeout=5)
    finally:
        os.close(held)
    time.sleep(0.2)
    assert background._current is None  # a stopped process does not start workers behind our back
