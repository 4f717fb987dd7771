"""Runs the REAL Snyk broker (npm ``snyk-broker``, pinned in package.json) server + client on loopback.

Topology in tests (see shared/docs/broker-protocol.md §1, §11)::

    test ("Snyk SaaS") --HTTP--> BrokerServer --websocket--> BrokerClient --HTTP--> agent under test
    agent --POST <BROKER_CLIENT_URL>/api/...--> BrokerClient --> BrokerServer --> SnykApiRecorder

Everything binds 127.0.0.1. Each broker process runs from its own empty temporary directory (the broker
loads ``.env`` from its cwd via dotenv) with a hand-built environment (the broker copies *every* environment
variable into its config, so a stray ``ACCEPT``/``BROKER_TOKEN``/proxy setting in the test runner would leak
in). Each process gets its own process group so ``stop()`` can end exactly what this module started.

Plain functions and context managers only; pytest wiring lives in conftest.py.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from .recorder import SnykApiRecorder

BROKER_VERSION = "5.22.14"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# The team's read-only material sits beside the project root (also in CI's fresh clone).
SHARED_BROKER_DIR = PROJECT_ROOT.parent / "shared" / "broker"
CRA_ACCEPT_PATH = SHARED_BROKER_DIR / "container-registry-agent.accept.json"
INSTALL_SCRIPT = Path(__file__).resolve().parent / "install_broker.sh"
BROKER_PACKAGE_DIR = PROJECT_ROOT / "node_modules" / "snyk-broker"
BROKER_CLI = BROKER_PACKAGE_DIR / "dist" / "cli" / "index.js"

LOOPBACK = "127.0.0.1"
DEFAULT_START_TIMEOUT = 30.0
# Debug logs are verbose but only land in files; they are what you need when an e2e test fails.
DEFAULT_LOG_LEVEL = os.environ.get("BROKER_HARNESS_LOG_LEVEL", "debug")
# The broker server forwards to an "HA primary" pod when the host name looks like a StatefulSet replica
# ending in -1 (server/routesHandlers/*.js); such hosts break the harness, so say so on failure.
_HA_HOSTNAME = re.compile(r"-[0-9]{1,2}-[0-1]")


class BrokerUnavailable(RuntimeError):
    """node/npm or the installed broker is missing; fixtures turn this into a pytest skip."""


class BrokerInstallError(RuntimeError):
    """``npm ci`` or the config copies failed, or the shared broker material is missing."""


class BrokerStartError(RuntimeError):
    """A broker process died or never became ready; the message carries the tail of its log."""


# -- installation ------------------------------------------------------------------------------------------


def broker_installed() -> bool:
    """True when the pinned package and the files the npm tarball lacks are all in place."""
    try:
        version = json.loads((BROKER_PACKAGE_DIR / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return False
    return (
        version == BROKER_VERSION
        and BROKER_CLI.is_file()
        and (BROKER_PACKAGE_DIR / "config.default.json").is_file()
        and (BROKER_PACKAGE_DIR / "defaultFilters" / "container-registry-agent.json").is_file()
    )


def ensure_broker_installed() -> Path:
    """Install the broker (``npm ci`` + config copies) unless already there; return the package dir.

    Raises BrokerUnavailable when node/npm are missing (callers skip), BrokerInstallError when the install
    itself fails (callers should fail: a broken install must not hide as a skip in CI).
    """
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise BrokerUnavailable("node and npm are required for the real-broker tests (not on PATH)")
    if not CRA_ACCEPT_PATH.is_file():
        raise BrokerInstallError(
            f"shared broker material missing: {CRA_ACCEPT_PATH} (expected ../shared/broker)"
        )
    # pytest-xdist workers may all get here at once; two concurrent `npm ci` runs would wreck node_modules.
    # (sha256, not hash(): str hashes are salted per process, and the name must agree across workers.)
    digest = hashlib.sha256(str(PROJECT_ROOT).encode()).hexdigest()[:16]
    lock_name = f"registry-agent-broker-install-{digest}.lock"
    with (Path(tempfile.gettempdir()) / lock_name).open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not broker_installed():
            result = subprocess.run(
                ["sh", str(INSTALL_SCRIPT)], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600
            )
            if result.returncode != 0 or not broker_installed():
                raise BrokerInstallError(
                    f"{INSTALL_SCRIPT} failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}"
                )
    return BROKER_PACKAGE_DIR


# -- small helpers -----------------------------------------------------------------------------------------


def free_port() -> int:
    """A currently free loopback port. The broker cannot report an ephemeral port back, so we pick one."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def make_cr_credentials(
    cr_type: str = "harbor-cr",
    username: str = "user",
    password: str = "pass",
    registry_base: str = "registry.example.test",
) -> str:
    """``CR_CREDENTIALS`` as the CRA docker-entrypoint builds it (§4.1): base64 of one JSON line.

    The entrypoint uses ``echo $JSON | base64 -w0``, so the decoded value ends with a newline; we keep that
    quirk so the agent is tested against what real brokers send.
    """
    line = (
        f'{{"type":"{cr_type}", "username":"{username}", "password":"{password}", '
        f'"registryBase":"{registry_base}"}}\n'
    )
    return base64.b64encode(line.encode()).decode()


def _base_env(workdir: Path) -> dict[str, str]:
    """Minimal environment: enough for node to run, nothing that the broker would pick up as config.

    HOME/TMPDIR point at a private sibling of the cwd, keeping both the cwd and the real HOME untouched.
    """
    home = workdir.parent / f"{workdir.name}-home"
    home.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home),
        "TMPDIR": str(home),
        "LANG": "C.UTF-8",
    }


# The broker calls ``server.listen(port)`` with no host (common/http/webserver.js), i.e. it binds every
# interface, and has no setting to change that. This preload pins any host-less listen to 127.0.0.1, so the
# test broker -- which relays to the agent with credentials -- is never reachable from the network.
_LOOPBACK_PRELOAD_JS = """\
'use strict';
const net = require('net');
const listen = net.Server.prototype.listen;
const isPort = (v) => typeof v === 'number' || (typeof v === 'string' && /^\\d+$/.test(v));
net.Server.prototype.listen = function (...args) {
  if (isPort(args[0]) && typeof args[1] !== 'string') {
    args.splice(1, 0, '127.0.0.1');
  } else if (args[0] && typeof args[0] === 'object' && 'port' in args[0] && !args[0].host) {
    args[0] = { ...args[0], host: '127.0.0.1' };
  }
  return listen.apply(this, args);
};
"""


def loopback_http(method: str, url: str, **kwargs: Any) -> requests.Response:
    """``requests.request`` that ignores HTTP(S)_PROXY/NO_PROXY and .netrc from the environment.

    A CI runner with a proxy configured would otherwise send our 127.0.0.1 calls to the proxy.
    """
    with requests.Session() as session:
        session.trust_env = False
        return session.request(method, url, **kwargs)


def _http_ok(url: str) -> bool:
    try:
        return loopback_http("GET", url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


# -- processes ---------------------------------------------------------------------------------------------

# Started and not yet stopped, so an aborted session (Ctrl-C in a fixture, crash) still ends them.
_LIVE: set[BrokerProcess] = set()


class BrokerProcess:
    """One ``broker server|client`` node process in its own cwd, process group and log file.

    ``start()`` spawns and waits for readiness; on failure it stops the process and raises BrokerStartError
    with the log tail. When the port was picked here (not given) and the broker reports EADDRINUSE (another
    process took the free port first), it retries with a fresh port.
    """

    role: str = "broker"
    start_attempts = 3

    def __init__(self, workdir: Path, port: int | None, env: Mapping[str, str]) -> None:
        self.workdir = workdir
        self._fixed_port = port is not None
        self._env = dict(env)
        # stdout+stderr of the process (bunyan JSON lines); read it when a test fails.
        self.log_path = workdir / f"broker-{self.role}.log"
        self._log_offset = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None
        self._use_port(port or free_port())

    def _use_port(self, port: int) -> None:
        self.port = port
        self.url = f"http://{LOOPBACK}:{port}"
        self._env["PORT"] = str(port)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, timeout: float = DEFAULT_START_TIMEOUT) -> BrokerProcess:
        began = time.monotonic()
        for attempt in range(1, self.start_attempts + 1):
            self._spawn()
            try:
                self._wait_ready(began + timeout)
                # A foreign process on "our" port could have answered; make sure ours is the one alive.
                self.check_alive()
            except BrokerStartError:
                self.stop()
                if self._fixed_port or attempt == self.start_attempts or "EADDRINUSE" not in self._run_log():
                    raise
                self._use_port(free_port())
                continue
            except BaseException:
                self.stop()
                raise
            self.startup_seconds = time.monotonic() - began
            return self
        raise AssertionError("unreachable")

    def _wait_ready(self, deadline: float) -> None:
        raise NotImplementedError

    def _wait_until(self, check: Callable[[], bool], deadline: float, what: str) -> None:
        while True:
            self.check_alive()
            if check():
                return
            if time.monotonic() > deadline:
                raise self.start_error(f"not ready in time: {what}")
            time.sleep(0.1)

    def _spawn(self) -> None:
        node = shutil.which("node")
        if node is None:
            raise BrokerUnavailable("node is not on PATH")
        self.workdir.mkdir(parents=True, exist_ok=True)
        # Beside the cwd, not in it: the cwd stays empty.
        preload = self.workdir.parent / f"{self.workdir.name}-loopback.cjs"
        preload.write_text(_LOOPBACK_PRELOAD_JS)
        with self.log_path.open("ab") as log:
            self._log_offset = log.tell()
            self._proc = subprocess.Popen(
                [node, "--require", str(preload), str(BROKER_CLI), self.role],
                cwd=self.workdir,
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # New session => new process group whose id is the child's pid; stop() signals only it.
                start_new_session=True,
            )
        _LIVE.add(self)

    def check_alive(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            code = None if self._proc is None else self._proc.returncode
            raise self.start_error(f"process exited (exit code {code})")

    def _run_log(self) -> str:
        """The log written by the latest spawn only (the file is appended to across restarts)."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_offset)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self._run_log().splitlines()[-lines:]) or "(empty log)"

    def start_error(self, reason: str) -> BrokerStartError:
        host, hint = socket.gethostname(), ""
        if _HA_HOSTNAME.search(host) and host.endswith("-1"):
            hint = f"\nnote: host name {host!r} triggers the broker server's HA-replica forwarding"
        return BrokerStartError(
            f"broker {self.role} on {self.url}: {reason}{hint}\nlog {self.log_path}:\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM our process group, SIGKILL it if it lingers. Never touches processes we did not start."""
        _LIVE.discard(self)
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            # The group leader is still alive, so the group id (== its pid) is certainly still ours.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout)


@atexit.register
def _stop_leftovers() -> None:
    for proc in list(_LIVE):
        proc.stop(timeout=2.0)


class BrokerServer(BrokerProcess):
    """Plays broker.snyk.io: permissive rules, every relayed request goes to ``snyk_api_url``."""

    role = "server"

    def __init__(
        self,
        snyk_api_url: str,
        workdir: Path,
        *,
        port: int | None = None,
        log_level: str = DEFAULT_LOG_LEVEL,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        # Outside the cwd on purpose: the cwd must stay empty, and ACCEPT must be absolute (a relative
        # path is resolved against the package dir, not the cwd).
        self.accept_path = workdir.parent / f"{workdir.name}-accept.json"
        self.accept_path.write_text(
            json.dumps(
                {
                    "public": [{"method": "any", "path": "/*"}],
                    "private": [{"method": "any", "path": "/*", "origin": snyk_api_url}],
                },
                indent=2,
            )
        )
        env = _base_env(workdir) | {"ACCEPT": str(self.accept_path), "LOG_LEVEL": log_level}
        super().__init__(workdir, port, env | dict(extra_env or {}))
        self.snyk_api_url = snyk_api_url

    def start(self, timeout: float = DEFAULT_START_TIMEOUT) -> BrokerServer:
        super().start(timeout)
        return self

    def _wait_ready(self, deadline: float) -> None:
        self._wait_until(lambda: _http_ok(f"{self.url}/healthcheck"), deadline, "GET /healthcheck")

    def connection_status(self, token: str) -> requests.Response:
        return loopback_http("GET", f"{self.url}/connection-status/{token}", timeout=5)


class BrokerClient(BrokerProcess):
    """The customer-side broker client, CRA flavour, with the real CRA accept rules (§3)."""

    role = "client"

    def __init__(
        self,
        server: BrokerServer,
        agent_url: str,
        credentials: str,
        workdir: Path,
        *,
        token: str | None = None,
        port: int | None = None,
        accept_path: Path = CRA_ACCEPT_PATH,
        validation_url: str | None = None,
        log_level: str = DEFAULT_LOG_LEVEL,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.server = server
        self.token = token or str(uuid.uuid4())
        self.agent_url = agent_url.rstrip("/")
        self.credentials = credentials
        env = _base_env(workdir) | {
            "BROKER_TOKEN": self.token,
            "BROKER_SERVER_URL": server.url,
            "CR_AGENT_URL": self.agent_url,
            "CR_CREDENTIALS": credentials,
            "ACCEPT": str(accept_path.resolve()),
            # The npm CLI, unlike the docker entrypoint, does not derive these from CR_* (§11.1).
            "BROKER_CLIENT_VALIDATION_URL": validation_url or f"{self.agent_url}/systemcheck",
            "BROKER_CLIENT_VALIDATION_AUTHORIZATION_HEADER": credentials,
            # Both would call out to the internet (broker.snyk.io / api.snyk.io / an IPv6 probe).
            "PREFLIGHT_CHECKS_ENABLED": "false",
            "IPV6_CONNECTIVITY_CHECK_ENABLED": "false",
            "LOG_LEVEL": log_level,
        }
        super().__init__(workdir, port, env | dict(extra_env or {}))

    def _use_port(self, port: int) -> None:
        super()._use_port(port)
        # The agent's callback base is the client's own listener, so it moves with the port.
        self._env["BROKER_CLIENT_URL"] = self.url

    def start(self, timeout: float = DEFAULT_START_TIMEOUT) -> BrokerClient:
        super().start(timeout)
        return self

    def _wait_ready(self, deadline: float) -> None:
        # Connected as the server sees it (the token is ours alone), then the client's own listener up with
        # its websocket open.
        self._wait_until(
            lambda: _http_ok(f"{self.server.url}/connection-status/{self.token}"),
            deadline,
            f"server GET /connection-status/{self.token}",
        )
        self._wait_until(lambda: _http_ok(f"{self.url}/healthcheck"), deadline, "client GET /healthcheck")

    def systemcheck(self) -> requests.Response:
        """The client's own ``/systemcheck``, which calls the agent's validation URL (§5)."""
        return loopback_http("GET", f"{self.url}/systemcheck", timeout=15)


# -- the pair, as a test sees it ---------------------------------------------------------------------------


def snyk_style_request(
    server_url: str,
    token: str,
    method: str,
    route: str,
    *,
    headers: Mapping[str, str] | None = None,
    json: dict[str, Any] | None = None,
    params: Mapping[str, str] | None = None,
    var_sub: bool = True,
    callback_path: str = "/api/v2/import/result",
    timeout: float = 30.0,
) -> requests.Response:
    """Send what Snyk SaaS would send to ``/broker/<token>/<route>`` (§4.4, §11.2).

    With ``var_sub`` (default) the client is asked to substitute its secrets, the way SaaS does:

    * header ``x-broker-var-sub: authorization`` + ``authorization: ${CR_CREDENTIALS}``, so the agent gets the
      raw base64 credentials in ``authorization`` (the best-guess convention, §4.4);
    * for a JSON object body: ``credentials: ${CR_CREDENTIALS}`` and
      ``callbackUrl: ${BROKER_CLIENT_URL}<callback_path>`` are added unless present, and listed in
      ``BROKER_VAR_SUB`` (which the client deletes before forwarding).

    Caller-given headers/fields win. ``var_sub=False`` sends exactly what the caller passed (negative tests).
    """
    hdrs: dict[str, str] = {"snyk-request-id": str(uuid.uuid4()), "user-agent": "snyk-saas-harness"}
    body = None if json is None else dict(json)
    if var_sub:
        hdrs |= {"x-broker-var-sub": "authorization", "authorization": "${CR_CREDENTIALS}"}
        if body is not None:
            body.setdefault("credentials", "${CR_CREDENTIALS}")
            body.setdefault("callbackUrl", "${BROKER_CLIENT_URL}" + callback_path)
            fields = list(body.get("BROKER_VAR_SUB", []))
            body["BROKER_VAR_SUB"] = fields + [f for f in ("credentials", "callbackUrl") if f not in fields]
    hdrs |= dict(headers or {})
    url = f"{server_url}/broker/{token}/{route.lstrip('/')}"
    return loopback_http(method, url, headers=hdrs, json=body, params=params, timeout=timeout)


@dataclass
class BrokerPair:
    """A connected server + client plus the Snyk API recorder behind the server."""

    server: BrokerServer
    client: BrokerClient
    snyk_api: SnykApiRecorder

    @property
    def token(self) -> str:
        return self.client.token

    @property
    def client_url(self) -> str:
        """``BROKER_CLIENT_URL``: where the agent posts callbacks."""
        return self.client.url

    def callback_url(self, path: str = "/api/v2/import/result") -> str:
        """Where an agent posts a callback for ``path`` (one of the public rules, §3.2)."""
        return f"{self.client.url}{path}"

    @property
    def log_paths(self) -> dict[str, Path]:
        return {"server": self.server.log_path, "client": self.client.log_path}

    def snyk_request(
        self,
        method: str,
        route: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: dict[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        var_sub: bool = True,
        callback_path: str = "/api/v2/import/result",
        timeout: float = 30.0,
    ) -> requests.Response:
        """See ``snyk_style_request``; addressed to this pair's server and token."""
        return snyk_style_request(
            self.server.url,
            self.token,
            method,
            route,
            headers=headers,
            json=json,
            params=params,
            var_sub=var_sub,
            callback_path=callback_path,
            timeout=timeout,
        )


@contextlib.contextmanager
def broker_server(snyk_api_url: str, workdir: Path, **kwargs: Any) -> Iterator[BrokerServer]:
    """A started BrokerServer, stopped on exit. ``kwargs`` go to BrokerServer (port, log_level, extra_env)."""
    server = BrokerServer(snyk_api_url, workdir, **kwargs)
    try:
        yield server.start()
    finally:
        server.stop()


@contextlib.contextmanager
def broker_client(
    server: BrokerServer, agent_url: str, credentials: str, workdir: Path, **kwargs: Any
) -> Iterator[BrokerClient]:
    """A started, connected BrokerClient, stopped on exit. ``kwargs`` go to BrokerClient."""
    client = BrokerClient(server, agent_url, credentials, workdir, **kwargs)
    try:
        yield client.start()
    finally:
        client.stop()


@contextlib.contextmanager
def running_broker(
    agent_url: str,
    *,
    credentials: str | None = None,
    workdir: Path | None = None,
    snyk_api: SnykApiRecorder | None = None,
    token: str | None = None,
    client_env: Mapping[str, str] | None = None,
    server_env: Mapping[str, str] | None = None,
) -> Iterator[BrokerPair]:
    """Server + connected client in front of ``agent_url``; everything torn down on exit.

    ``credentials`` defaults to ``make_cr_credentials()``. ``workdir`` (e.g. pytest's ``tmp_path``) holds the
    two empty cwds and the logs; without it a temporary directory is used and deleted afterwards, taking
    the logs with it. A ``snyk_api`` recorder is created (and stopped) here unless one is passed in.
    """
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="broker-harness-")))
        if snyk_api is None:
            snyk_api = stack.enter_context(SnykApiRecorder())
        server = stack.enter_context(broker_server(snyk_api.url, workdir / "server", extra_env=server_env))
        client = stack.enter_context(
            broker_client(
                server,
                agent_url,
                credentials or make_cr_credentials(),
                workdir / "client",
                token=token,
                extra_env=client_env,
            )
        )
        yield BrokerPair(server, client, snyk_api)
