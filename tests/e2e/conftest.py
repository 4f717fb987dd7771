"""Fixtures of the end-to-end tests: the real agent process, the real broker, the recording Snyk API.

* ``registries``: the four session registries by mode (noauth, basic, token, tls), same seeded content.
* ``agent_registry_env``: environment that lets one agent reach all four (insecure hosts + test CA).
* ``agent_factory``: ``agent_factory(env=..., command=..., port=...)`` -> a started `AgentProcess` in
  ``tmp_path``, stopped by PID after the test.
* ``broker_install``, ``snyk_api``, ``broker_factory``: the real snyk-broker pair (tests/harness/broker.py);
  skipped, not failed, when node/npm are missing.

Module-scoped agents and brokers are built in the test modules from the same context managers, so
that one process serves every test of a module (start-up costs ~1-2 s each).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.agent import EMULATOR_MODULE, AgentProcess, registry_env
from tests.harness.broker import BrokerPair, BrokerUnavailable, ensure_broker_installed, running_broker
from tests.harness.recorder import SnykApiRecorder
from tests.harness.registry import Mode, RunningRegistry


@pytest.fixture(scope="session")
def registries(
    registry_noauth: RunningRegistry,
    registry_basic: RunningRegistry,
    registry_token: RunningRegistry,
    registry_tls: RunningRegistry,
) -> dict[Mode, RunningRegistry]:
    return {
        Mode.NOAUTH: registry_noauth,
        Mode.BASIC: registry_basic,
        Mode.TOKEN: registry_token,
        Mode.TLS: registry_tls,
    }


@pytest.fixture(scope="session")
def agent_registry_env(registries: dict[Mode, RunningRegistry]) -> dict[str, str]:
    return registry_env(list(registries.values()))


@pytest.fixture
def agent_factory(tmp_path: Path) -> Iterator[Callable[..., AgentProcess]]:
    started: list[AgentProcess] = []

    def start(
        env: dict[str, str], *, command: tuple[str, ...] = EMULATOR_MODULE, port: int = 0
    ) -> AgentProcess:
        agent = AgentProcess(tmp_path / f"agent-{len(started)}", dict(env), command, port)
        started.append(agent)
        return agent.start()

    yield start
    for agent in started:
        agent.close()


@pytest.fixture(scope="session")
def broker_install() -> Path:
    try:
        return ensure_broker_installed()
    except BrokerUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def snyk_api() -> Iterator[SnykApiRecorder]:
    with SnykApiRecorder() as api:
        yield api


@pytest.fixture
def broker_factory(
    broker_install: Path, tmp_path: Path, snyk_api: SnykApiRecorder
) -> Iterator[Callable[..., BrokerPair]]:
    counter = itertools.count()
    with contextlib.ExitStack() as stack:

        def start(agent_url: str, *, credentials: str | None = None, **kwargs: Any) -> BrokerPair:
            workdir = tmp_path / f"broker-{next(counter)}"
            return stack.enter_context(
                running_broker(
                    agent_url, credentials=credentials, workdir=workdir, snyk_api=snyk_api, **kwargs
                )
            )

        yield start
