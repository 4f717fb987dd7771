"""Faults end to end: a callback target that fails or is down, and an agent stopped with scans in flight.

What must hold whatever happens: every accepted scan finishes, and each of its callbacks is acknowledged
by the receiver exactly once - never re-sent once the agent has recorded the acknowledgement, in order
(``result`` before ``done``). The receiver is the recorder on a fixed port (it plays the broker client);
it can fail requests on demand or be taken down and brought back on the same port.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.agent import AgentProcess, cr_credentials, read_state, running_agent
from tests.e2e.proxy import PausableProxy
from tests.e2e.support import (
    DONE,
    RESULT,
    assert_exactly_once,
    for_import,
    new_import_id,
    payload_of,
    scan_body,
)
from tests.harness.broker import make_cr_credentials
from tests.harness.procs import LOOPBACK, free_port
from tests.harness.recorder import RecordedRequest, SnykApiRecorder
from tests.harness.registry import RunningRegistry

SkopeoJson = Callable[..., Any]


class CallbackTarget:
    """The agent's ``BROKER_CLIENT_URL``: a recorder that can go down and come back on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self._current: SnykApiRecorder | None = None
        self._earlier: list[RecordedRequest] = []

    @property
    def api(self) -> SnykApiRecorder:
        assert self._current is not None, "the callback target is down"
        return self._current

    def up(self) -> SnykApiRecorder:
        self._current = SnykApiRecorder(port=self.port).start()
        return self._current

    def down(self) -> None:
        if self._current is not None:
            self._earlier += self._current.requests
            self._current.stop()
            self._current = None

    def requests_for(self, import_id: str) -> list[RecordedRequest]:
        """Every request of one scan, across up/down cycles, oldest first."""
        current = self._current.requests if self._current else []
        return [r for r in self._earlier + current if for_import(import_id)(r)]


@pytest.fixture(scope="module")
def target() -> Iterator[CallbackTarget]:
    callbacks = CallbackTarget()
    callbacks.up()
    yield callbacks
    callbacks.down()


@pytest.fixture(scope="module")
def agent(
    tmp_path_factory: pytest.TempPathFactory, agent_registry_env: dict[str, str], target: CallbackTarget
) -> Iterator[AgentProcess]:
    env = agent_registry_env | {"BROKER_CLIENT_URL": target.url}
    with running_agent(tmp_path_factory.mktemp("agent-faults"), env) as started:
        yield started


def _scan(agent: AgentProcess, registry: RunningRegistry, image: str, import_id: str) -> str:
    accepted = agent.post("/scan", json=scan_body(image, import_id, credentials=cr_credentials(registry)))
    assert accepted.status_code == 202, accepted.text
    return str(accepted.json()["scanId"])


def _settled(agent: AgentProcess, scan_ids: list[str], timeout: float = 30.0) -> None:
    """Wait until the agent's own outbox has no pending callback for these scans: nothing more can be sent."""
    deadline = time.monotonic() + timeout
    while True:
        _, outbox = read_state(agent.state_dir)
        rows = [row for row in outbox if row["scan_id"] in scan_ids]
        if rows and all(row["status"] != "pending" for row in rows):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"callbacks still pending after {timeout}s: {rows}")
        time.sleep(0.05)


def test_callbacks_retried_after_5xx_and_429_then_delivered_once(
    agent: AgentProcess, target: CallbackTarget, registry_basic: RunningRegistry
) -> None:
    import_id = new_import_id()
    result_of_this_scan = lambda r: for_import(import_id)(r) and r.path == RESULT  # noqa: E731
    done_of_this_scan = lambda r: for_import(import_id)(r) and r.path == DONE  # noqa: E731
    target.api.fail_next(500, when=result_of_this_scan)
    target.api.fail_next(429, headers={"Retry-After": "1"}, when=result_of_this_scan)
    target.api.fail_next(503, when=done_of_this_scan)

    scan_id = _scan(agent, registry_basic, "hello-world:latest", import_id)
    target.api.wait_for_count(lambda r: done_of_this_scan(r) and r.status == 200, 1, timeout=30)
    _settled(agent, [scan_id])

    seen = target.requests_for(import_id)
    assert [(r.path, r.status) for r in seen] == [
        (RESULT, 500),
        (RESULT, 429),
        (RESULT, 200),
        (DONE, 503),
        (DONE, 200),
    ]
    assert_exactly_once(seen, [RESULT, DONE])
    # A retry is the same callback: same id, same body.
    assert len({payload_of(r)["callbackId"] for r in seen if r.path == RESULT}) == 1
    assert len({r.body for r in seen if r.path == RESULT}) == 1


def test_refused_callback_is_not_retried_and_done_still_follows(
    agent: AgentProcess, target: CallbackTarget, registry_basic: RunningRegistry
) -> None:
    import_id = new_import_id()
    target.api.fail_next(400, when=lambda r: for_import(import_id)(r) and r.path == RESULT)
    scan_id = _scan(agent, registry_basic, "hello-world:latest", import_id)
    _settled(agent, [scan_id])
    seen = target.requests_for(import_id)
    assert [(r.path, r.status) for r in seen] == [(RESULT, 400), (DONE, 200)]
    _, outbox = read_state(agent.state_dir)
    assert [row["status"] for row in outbox if row["scan_id"] == scan_id] == ["rejected", "delivered"]


def test_callback_target_down_then_up(
    agent: AgentProcess, target: CallbackTarget, registry_token: RunningRegistry
) -> None:
    import_id = new_import_id()
    target.down()
    try:
        scan_id = _scan(agent, registry_token, "busybox:1.31.1", import_id)
        assert agent.wait_scan(scan_id)["status"] == "done"
        # The first delivery attempt has failed (connection refused) and is scheduled again.
        deadline = time.monotonic() + 15
        while not any(
            row["scan_id"] == scan_id and row["attempts"] >= 1 for row in read_state(agent.state_dir)[1]
        ):
            assert time.monotonic() < deadline, "no delivery attempt while the target was down"
            time.sleep(0.05)
    finally:
        target.up()
    callbacks = target.api.wait_for_count(for_import(import_id), 2, timeout=30)
    _settled(agent, [scan_id])
    assert_exactly_once(target.requests_for(import_id), [RESULT, DONE])
    assert payload_of(callbacks[0])["result"]["image"]["name"] == f"{registry_token.host}/busybox"


# -- restarts with scans in every state -------------------------------------------------------------------


@pytest.fixture
def slow_registry(registry_basic: RunningRegistry) -> Iterator[PausableProxy]:
    with PausableProxy(registry_basic.host) as proxy:
        yield proxy


@pytest.mark.parametrize("stop", ["sigterm", "sigkill", "worker-sigkill"])
def test_restart_finishes_every_scan_and_sends_each_callback_once(
    agent_factory: Callable[..., AgentProcess],
    agent_registry_env: dict[str, str],
    target: CallbackTarget,
    slow_registry: PausableProxy,
    registry_basic: RunningRegistry,
    skopeo_json: SkopeoJson,
    stop: str,
    tmp_path: Path,
) -> None:
    """Stopped with: A finished and acknowledged, E's result refused (429) and pending, B blocked inside a
    registry call, C and D queued. After the restart all five finish and every callback arrives once."""
    env = agent_registry_env | {
        "BROKER_CLIENT_URL": target.url,
        "INSECURE_REGISTRIES": f"{agent_registry_env['INSECURE_REGISTRIES']},{slow_registry.host}",
        "MAX_ACTIVE_OPERATIONS": "1",
    }
    agent = agent_factory(env)
    credentials = make_cr_credentials(
        "generic", registry_basic.username or "", registry_basic.password or "", slow_registry.host
    )
    ids = {name: new_import_id() for name in "ABCDE"}
    scans: dict[str, str] = {}

    def submit(name: str) -> None:
        body = scan_body("library/nginx:latest", ids[name], credentials=credentials)
        accepted = agent.post("/scan", json=body)
        assert accepted.status_code == 202, accepted.text
        scans[name] = accepted.json()["scanId"]

    refusing = threading.Event()
    refusing.set()
    target.api.fail_next(
        429,
        count=1_000_000,
        headers={"Retry-After": "1"},
        when=lambda r: refusing.is_set() and for_import(ids["E"])(r),
    )

    submit("A")
    _settled(agent, [scans["A"]])
    submit("E")
    target.api.wait_for(lambda r: for_import(ids["E"])(r) and r.status == 429)
    slow_registry.pause()
    for name in "BCD":
        submit(name)
    agent.wait_scan(scans["B"], states=("running",))

    if stop == "sigterm":
        agent.send_sigterm()
        # The worker is shutting down (no new claims); let B's registry call finish inside it.
        agent.wait_for_log("Worker exiting")
        slow_registry.resume()
        agent.wait_stopped()
    elif stop == "sigkill":
        agent.kill()
    else:
        # Only the worker, as the OOM killer would pick the process holding the image data.
        [worker] = agent.worker_pids()
        os.kill(worker, signal.SIGKILL)

    if stop != "worker-sigkill":
        jobs, outbox = read_state(agent.state_dir)
        # What the stop left behind, on disk: the restart has real work to do.
        assert jobs[scans["D"]]["status"] == "queued"
        assert jobs[scans["C"]]["status"] == "queued"
        if stop == "sigkill":
            assert jobs[scans["B"]]["status"] == "running"
        pending_e = [row for row in outbox if row["scan_id"] == scans["E"] and row["status"] == "pending"]
        assert [row["seq"] for row in pending_e] == [0, 1]
        assert all(row["status"] == "delivered" for row in outbox if row["scan_id"] == scans["A"])

    refusing.clear()
    slow_registry.resume()
    if stop == "worker-sigkill":
        # gunicorn replaces the worker; the new one recovers the queue without a restart of the agent.
        deadline = time.monotonic() + 20
        while agent.log_since_start().count("Booting worker") < 2:
            assert time.monotonic() < deadline, agent.log_tail()
            time.sleep(0.05)
    else:
        agent.start()

    for name in "ABCDE":
        status = agent.wait_scan(scans[name])
        assert status["status"] == "done", (name, status)
    _settled(agent, list(scans.values()))
    expected = skopeo_json(registry_basic, "inspect", "library/nginx:latest")["Digest"]
    for name in "ABCDE":
        seen = target.requests_for(ids[name])
        assert_exactly_once(seen, [RESULT, DONE])
        result = next(r for r in seen if r.status == 200 and r.path == RESULT)
        assert payload_of(result)["result"]["image"]["digest"] == expected
    # A was acknowledged before the stop: it was not sent again.
    assert len(target.requests_for(ids["A"])) == 2
    if stop in {"sigkill", "worker-sigkill"}:
        assert "requeued 1 scan(s) interrupted by a restart" in agent.log_text()


def test_agent_restarted_while_an_orphaned_worker_still_holds_the_queue(
    agent_factory: Callable[..., AgentProcess],
    agent_registry_env: dict[str, str],
    target: CallbackTarget,
    slow_registry: PausableProxy,
    registry_basic: RunningRegistry,
) -> None:
    """``kill -9`` of the master alone leaves its worker running, orphaned, finishing the scan it is in (and
    holding the scan-workers lock) while the agent is restarted. The new agent must take the queue over once
    the orphan is gone, not serve requests forever with no scan workers."""
    env = agent_registry_env | {
        "BROKER_CLIENT_URL": target.url,
        "INSECURE_REGISTRIES": f"{agent_registry_env['INSECURE_REGISTRIES']},{slow_registry.host}",
        "MAX_ACTIVE_OPERATIONS": "1",
    }
    agent = agent_factory(env)
    credentials = make_cr_credentials(
        "generic", registry_basic.username or "", registry_basic.password or "", slow_registry.host
    )
    ids = {name: new_import_id() for name in "BC"}
    scans = {}
    slow_registry.pause()
    for name in "BC":
        accepted = agent.post(
            "/scan", json=scan_body("hello-world:latest", ids[name], credentials=credentials)
        )
        assert accepted.status_code == 202, accepted.text
        scans[name] = accepted.json()["scanId"]
    agent.wait_scan(scans["B"], states=("running",))

    old_group = agent.kill_master()
    agent.start()  # same port and STATE_DIR; gunicorn retries the bind until the orphan lets go of it
    # The new worker found the lock taken: the orphan is still inside scan B's registry call.
    agent.wait_for_log("another process runs the scan workers")
    assert agent.group_alive(old_group), "the orphaned worker should still be finishing scan B"
    slow_registry.resume()

    for name in "BC":
        assert agent.wait_scan(scans[name], timeout=40)["status"] == "done", name
    _settled(agent, list(scans.values()))
    for name in "BC":
        assert_exactly_once(target.requests_for(ids[name]), [RESULT, DONE])
    # The orphan finished B and stopped; the new agent took the queue over and ran C.
    assert not agent.group_alive(old_group)
    after_contention = agent.log_since_start().split("another process runs the scan workers", 1)[1]
    assert "scan workers started" in after_contention
    assert f"scan {scans['C']} (scan) started" in after_contention
