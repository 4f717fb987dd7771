"""Process and port helpers: every process the harness starts is stopped by its own PID."""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

LOOPBACK = "127.0.0.1"

# Every live child, so an aborted session (Ctrl-C, crash) still stops them at interpreter exit.
_LIVE: list[subprocess.Popen[bytes]] = []


def free_port() -> int:
    """Ask the kernel for a free loopback port (tiny race until the child binds it; callers retry)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def start_process(
    argv: Sequence[str], log_file: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a child whose output goes to a file (a PIPE nobody reads would block the child)."""
    with log_file.open("ab") as log:
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
        )
    _LIVE.append(proc)
    return proc


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """SIGTERM this PID, SIGKILL it if it has not exited after `timeout` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
    if proc in _LIVE:
        _LIVE.remove(proc)


@atexit.register
def _stop_all_started() -> None:
    for proc in list(_LIVE):
        stop_process(proc, timeout=2.0)


def wait_until(check: Callable[[], bool], timeout: float, what: str, alive: Callable[[], bool]) -> None:
    """Poll `check` until true; fail fast if the process died (e.g. port taken) instead of waiting out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"{what} exited during start-up")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not become ready within {timeout}s")


def is_alive(pid: int) -> bool:
    """Whether a process with this id exists (a reaped child does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
