"""The agent behind the real broker pair, started in the only order that works.

The broker client needs the agent's URL (``CR_AGENT_URL``) and the agent needs the client's
(``BROKER_CLIENT_URL``, its callback base), so the agent's port is picked first, the pair started
against it, then the agent on that port. Another process may take the port in between; then the
whole stack is built again on a fresh one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path

from tests.e2e.agent import EMULATOR_MODULE, AgentProcess, AgentStartError
from tests.harness.broker import BrokerPair, running_broker
from tests.harness.procs import LOOPBACK, free_port
from tests.harness.recorder import SnykApiRecorder

ATTEMPTS = 3


@contextlib.contextmanager
def agent_behind_broker(
    workdir: Path,
    agent_env: Mapping[str, str],
    *,
    credentials: str,
    snyk_api: SnykApiRecorder,
    command: tuple[str, ...] = EMULATOR_MODULE,
) -> Iterator[tuple[BrokerPair, AgentProcess]]:
    """(pair, agent): Snyk -> server -> client -> agent, callbacks agent -> client -> server -> snyk_api."""
    for attempt in range(1, ATTEMPTS + 1):
        with contextlib.ExitStack() as stack:
            port = free_port()
            pair = stack.enter_context(
                running_broker(
                    f"http://{LOOPBACK}:{port}",
                    credentials=credentials,
                    workdir=workdir / f"broker-{attempt}",
                    snyk_api=snyk_api,
                )
            )
            env = dict(agent_env) | {"BROKER_CLIENT_URL": pair.client_url}
            agent = AgentProcess(workdir / f"agent-{attempt}", env, command, port)
            stack.callback(agent.close)
            try:
                agent.start()
            except AgentStartError:
                if attempt < ATTEMPTS and "Address already in use" in agent.log_text():
                    continue
                raise
            yield pair, agent
            return
