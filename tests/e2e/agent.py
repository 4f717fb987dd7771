"""The REAL agent as a subprocess (``python -m emulator`` or ``registry-agent serve``) on loopback.

The e2e tests must see what production sees: gunicorn's master and worker processes, the scan workers
and callback sender started after the fork, settings read from the environment, the durable queue in
``STATE_DIR``. So the agent is never imported here; it is started as a program, configured only through
its environment, and judged only by what it answers, what it posts and what it logs.

Each agent gets a hand-built environment (no developer ``CR_CREDENTIALS``, proxies or ``STATE_DIR`` leak
in), its own process group (``stop``/``kill`` signal exactly the processes started here), and one log
file that collects stdout and stderr across restarts, so a test can grep every line it ever wrote.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.harness.broker import make_cr_credentials
from tests.harness.procs import LOOPBACK, free_port
from tests.harness.registry import RunningRegistry

PROJECT_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0

# Two ways production starts the same server; tests use both so neither rots.
EMULATOR_MODULE = (sys.executable, "-m", "emulator")
AGENT_CLI = (str(Path(sys.executable).with_name("registry-agent")), "serve")


class AgentStartError(RuntimeError):
    """The agent died or never answered /healthcheck; the message carries its log tail."""


def registry_env(registries: Sequence[RunningRegistry]) -> dict[str, str]:
    """What one agent needs to reach every given harness registry: plain-HTTP hosts and the test CA."""
    env = {"INSECURE_REGISTRIES": ",".join(r.host for r in registries if r.scheme == "http")}
    cas = {str(r.ca_file) for r in registries if r.ca_file is not None}
    if len(cas) > 1:
        raise ValueError("the harness registries must share one test CA")
    if cas:
        env["REQUESTS_CA_BUNDLE"] = cas.pop()
    return env


def cr_credentials(
    registry: RunningRegistry,
    password: str | None = None,
    *,
    username: str | None = None,
    cr_type: str = "generic",
) -> str:
    """``CR_CREDENTIALS`` for a harness registry, byte for byte as the broker's entrypoint builds it.

    ``generic``: the harness registries are plain CNCF distribution; a vendor type (``harbor-cr`` ...)
    would send the agent to that vendor's own API first, which these registries do not have.
    """
    return make_cr_credentials(
        cr_type,
        username if username is not None else registry.username or "",
        password if password is not None else registry.password or "",
        registry.host,
    )


def loopback_session() -> requests.Session:
    """A session that never routes 127.0.0.1 through a proxy from the environment."""
    session = requests.Session()
    session.trust_env = False
    return session


# Started and not yet stopped: an aborted session (Ctrl-C, a crash in a fixture) still ends them.
_LIVE: set[AgentProcess] = set()


@dataclass(eq=False)
class AgentProcess:
    """One agent: a gunicorn master plus its worker, in a process group of their own."""

    workdir: Path
    env: dict[str, str]
    command: tuple[str, ...] = EMULATOR_MODULE
    port: int = 0
    _proc: subprocess.Popen[bytes] | None = None
    _session: requests.Session | None = None

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.state_dir = self.workdir / "state"
        self.log_path = self.workdir / "agent.log"
        self._fixed_port = self.port != 0
        self.starts = 0
        self._orphans: list[int] = []  # process groups of masters killed alone

    # -- lifecycle ---------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _environment(self) -> dict[str, str]:
        home = self.workdir / "home"
        home.mkdir(exist_ok=True)
        base = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": str(home),
            "LANG": "C.UTF-8",
            # Every line reaches the log file at once: tests wait on log lines and grep them for secrets.
            "PYTHONUNBUFFERED": "1",
            "AGENT_HOST": LOOPBACK,
            "SNYK_PORT": str(self.port),
            "STATE_DIR": str(self.state_dir),
            # Debug is the level most likely to leak a secret, so it is the level the e2e tests run at.
            "LOG_LEVEL": "debug",
            "REGISTRY_MAX_RETRIES": "1",
        }
        return base | self.env

    def _spawn(self) -> None:
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts + 1}: {' '.join(self.command)} on port {self.port}\n".encode())
            log.flush()
            self._log_offset = log.tell()
            self._proc = subprocess.Popen(
                list(self.command),
                cwd=self.workdir,
                env=self._environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Own session => own process group (id == pid): stop()/kill() reach exactly our processes.
                start_new_session=True,
            )
        self.starts += 1
        _LIVE.add(self)

    def start(self, timeout: float = START_TIMEOUT) -> AgentProcess:
        """Start (or restart: same port, same STATE_DIR) and wait until /healthcheck answers 200."""
        if self.running:
            raise RuntimeError("the agent is already running")
        for attempt in range(3):
            if not self._fixed_port:
                self.port = free_port()
            self._spawn()
            try:
                self._wait_healthy(timeout)
            except AgentStartError:
                in_use = "Address already in use" in self.log_since_start()
                self.stop()
                # Someone took the free port before gunicorn bound it: pick another (unless it is pinned,
                # e.g. a broker client already points at it; gunicorn itself retries a busy bind).
                if in_use and not self._fixed_port and attempt < 2:
                    continue
                raise
            # Restarts must come back on the same port: the broker client's CR_AGENT_URL points at it.
            self._fixed_port = True
            return self
        raise AssertionError("unreachable")

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        # Our own master must have bound the port (gunicorn logs its pid): until then an orphaned worker
        # of an earlier run may still be answering on the same port.
        bound = f"Listening at: {self.url} ({self.pid})"
        while True:
            if not self.running:
                code = self._proc.returncode if self._proc else None
                raise AgentStartError(f"agent exited during start-up (code {code}):\n{self.log_tail()}")
            try:
                if bound in self.log_since_start() and self.get("/healthcheck", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise AgentStartError(f"agent not healthy within {timeout}s:\n{self.log_tail()}")
            time.sleep(0.05)

    @staticmethod
    def _group_alive(pgid: int) -> bool:
        """Any process of the group still running? Zombies do not count: they hold no port, lock or file,
        and an orphaned one waits for PID 1 to reap it, which can take a second in a container."""
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                text = stat.read_text()
            except OSError:  # exited while we looked
                continue
            # "pid (comm) state ppid pgrp ...": comm may contain spaces, so split after its closing paren.
            fields = text[text.rindex(")") + 2 :].split()
            if int(fields[2]) == pgid and fields[0] not in {"Z", "X"}:
                return True
        return False

    def _wait_group_gone(self, proc: subprocess.Popen[bytes], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None and not self._group_alive(proc.pid):
                return True
            time.sleep(0.02)
        return False

    def send_sigterm(self) -> None:
        """Ask for gunicorn's graceful shutdown (SIGTERM to the master) without waiting for it."""
        # gunicorn's graceful stop waits for idle keep-alive connections: ours would add ~2 s to each stop.
        self._close_session()
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(signal.SIGTERM)

    def wait_stopped(self, timeout: float = 15.0) -> None:
        """Wait until the master and every process of its group have exited."""
        proc = self._proc
        if proc is None:
            return
        if not self._wait_group_gone(proc, timeout):
            raise TimeoutError(f"agent still running {timeout}s after SIGTERM:\n{self.log_tail()}")
        _LIVE.discard(self)
        self._proc = None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the master (gunicorn's graceful shutdown), SIGKILL the whole group if it lingers."""
        proc = self._proc
        if proc is None:
            return
        self.send_sigterm()
        try:
            self.wait_stopped(timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout)
            self._wait_group_gone(proc, timeout)
            _LIVE.discard(self)
            self._proc = None

    def kill(self) -> None:
        """A crash: SIGKILL the master and its worker at once, as a container runtime does."""
        proc = self._proc
        if proc is None:
            return
        self._close_session()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        self._wait_group_gone(proc, 10)
        _LIVE.discard(self)
        self._proc = None

    def kill_master(self) -> int:
        """SIGKILL the master alone (``kill -9 <pid>`` by hand): its worker lives on, orphaned, until it
        notices. Returns the old process group, which ``close()`` makes sure is gone."""
        proc = self._proc
        assert proc is not None, "the agent is not running"
        self._close_session()
        proc.kill()
        proc.wait(10)
        self._orphans.append(proc.pid)
        self._proc = None  # stays in _LIVE: the orphan must be cleaned up even if the session is aborted
        return proc.pid

    def group_alive(self, pgid: int) -> bool:
        return self._group_alive(pgid)

    def worker_pids(self) -> list[int]:
        """The gunicorn worker(s): the master's children."""
        if self._proc is None:
            return []
        children = Path(f"/proc/{self._proc.pid}/task/{self._proc.pid}/children")
        try:
            return [int(pid) for pid in children.read_text().split()]
        except FileNotFoundError:
            return []

    def restart(self, timeout: float = START_TIMEOUT) -> AgentProcess:
        """Stop (if still running) and start again on the same port with the same STATE_DIR."""
        self.stop()
        return self.start(timeout)

    def close(self) -> None:
        self.stop()
        for pgid in self._orphans:
            # Only if a process of that group is still running: the id cannot have been reused meanwhile.
            if self._group_alive(pgid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
        self._orphans.clear()
        _LIVE.discard(self)

    def _close_session(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    # -- HTTP --------------------------------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        if self._session is None:
            self._session = loopback_session()
        kwargs.setdefault("timeout", 30)
        return self._session.request(method, self.url + path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def wait_scan(
        self, scan_id: str, timeout: float = 30.0, states: Sequence[str] = ("done", "failed")
    ) -> Any:
        """Poll GET /scan/<id> until its status is one of ``states``; return the body."""
        deadline = time.monotonic() + timeout
        body: Any = None
        while time.monotonic() < deadline:
            answer = self.get(f"/scan/{scan_id}", timeout=5)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            if body["status"] in states:
                return body
            time.sleep(0.05)
        raise TimeoutError(f"scan {scan_id} not in {states} after {timeout}s; last: {body}")

    # -- logs --------------------------------------------------------------------------------------------

    def log_text(self) -> str:
        """Everything every run of this agent wrote (stdout and stderr)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_since_start(self) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(getattr(self, "_log_offset", 0))
                return log.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_since_start().splitlines()[-lines:]) or "(empty log)"

    def wait_recorded(self, callback: Mapping[str, Any], timeout: float = 20.0) -> None:
        """Wait until the agent has recorded the acknowledgement of this callback (its JSON payload) in its
        outbox: from then on the outbox will never send it again, so counting at the receiver is final."""
        self.wait_for_log(f"callback {callback['callbackId']} (scan {callback['scanId']}) delivered", timeout)

    def wait_for_log(self, text: str, timeout: float = 20.0) -> None:
        """Block until the current run has logged ``text``."""
        deadline = time.monotonic() + timeout
        while text not in self.log_since_start():
            if time.monotonic() > deadline:
                raise TimeoutError(f"agent did not log {text!r} within {timeout}s:\n{self.log_tail()}")
            time.sleep(0.05)


@atexit.register
def _stop_leftovers() -> None:
    for agent in list(_LIVE):
        agent.close()


@contextlib.contextmanager
def running_agent(
    workdir: Path,
    env: Mapping[str, str],
    *,
    command: tuple[str, ...] = EMULATOR_MODULE,
    port: int = 0,
) -> Iterator[AgentProcess]:
    """A started agent, stopped (by PID) on exit. ``port=0`` picks a free one."""
    agent = AgentProcess(workdir, dict(env), command, port)
    try:
        yield agent.start()
    finally:
        agent.close()


# -- the agent's durable state, read directly -------------------------------------------------------------


def read_state(state_dir: Path) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """(jobs by id, outbox rows) of a state directory, read-only: what survives a crash, as it is on disk."""
    path = state_dir / "jobs.sqlite3"
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        conn.row_factory = sqlite3.Row
        jobs = {row["id"]: dict(row) for row in conn.execute("SELECT id, kind, status, attempts FROM jobs")}
        outbox = [
            dict(row)
            for row in conn.execute(
                "SELECT id, scan_id, seq, url, status, attempts FROM outbox ORDER BY scan_id, seq"
            )
        ]
    finally:
        conn.close()
    return jobs, outbox
