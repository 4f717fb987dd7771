"""deploy/compose.yaml wires the agent and the Snyk broker client as the broker documents it.

Parsed with PyYAML for the wiring, then validated by a real Compose implementation: Debian 12
packages only docker-compose 1.29 (the v2 plugin is not in bookworm), which checks the file
against the Compose specification schema and interpolates it, without needing a daemon.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from shared.settings import Settings
from tests.deploy.artifacts import ROOT

COMPOSE = ROOT / "deploy" / "compose.yaml"
ENV_EXAMPLE = ROOT / "deploy" / ".env.example"
BROKER_CREDENTIAL_VARIABLES = {"CR_TYPE", "CR_BASE", "CR_USERNAME", "CR_PASSWORD", "CR_CREDENTIALS"}


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert set(data["services"]) == {"agent", "broker"}
    return dict(data["services"])


def test_the_broker_client_reaches_the_agent_service_and_port(services: dict[str, Any]) -> None:
    agent, broker = services["agent"]["environment"], services["broker"]["environment"]
    agent_url = urlsplit(broker["CR_AGENT_URL"])
    assert (agent_url.scheme, agent_url.hostname, agent_url.port) == (
        "http",
        "agent",
        int(agent["SNYK_PORT"]),
    )
    assert str(agent_url.port) in services["agent"]["expose"]
    assert agent["AGENT_HOST"] == "0.0.0.0"  # the agent's default, loopback, is unreachable from the broker
    # The broker client's /systemcheck asks the agent's, which makes a real registry call.
    assert broker["BROKER_CLIENT_VALIDATION_URL"] == f"{broker['CR_AGENT_URL']}/systemcheck"
    assert services["broker"]["image"] == "snyk/broker:container-registry-agent"
    assert services["broker"]["depends_on"]["agent"]["condition"] == "service_healthy"


def test_callbacks_go_back_to_the_broker_client(services: dict[str, Any]) -> None:
    agent, broker = services["agent"]["environment"], services["broker"]["environment"]
    assert agent["BROKER_CLIENT_URL"] == broker["BROKER_CLIENT_URL"]
    client = urlsplit(broker["BROKER_CLIENT_URL"])
    assert (client.hostname, client.port) == ("broker", int(broker["PORT"]))


def test_registry_credentials_and_token_stay_with_the_broker_client(services: dict[str, Any]) -> None:
    agent, broker = services["agent"]["environment"], services["broker"]["environment"]
    # Interpolated from deploy/.env, never written in the file; the token is mandatory.
    assert broker["BROKER_TOKEN"].startswith("${BROKER_TOKEN:?")
    for name in BROKER_CREDENTIAL_VARIABLES:
        assert broker[name] == f"${{{name}:-}}"
    assert not BROKER_CREDENTIAL_VARIABLES & set(agent), (
        "the agent gets credentials per request, not from compose"
    )
    # Every variable compose reads is explained in the example file (as a setting or a comment).
    example = ENV_EXAMPLE.read_text(encoding="utf-8")
    for name in set(re.findall(r"\$\{([A-Z_]+)", COMPOSE.read_text(encoding="utf-8"))):
        assert re.search(rf"^#?\s*{name}=", example, re.M), f"{name} missing from deploy/.env.example"


def test_agent_runs_hardened_within_the_documented_size(services: dict[str, Any]) -> None:
    agent = services["agent"]
    limits = agent["deploy"]["resources"]["limits"]
    assert (float(limits["cpus"]), limits["memory"]) == (1.0, "2G")  # broker-protocol.md §7.2
    assert agent["read_only"] is True and agent["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in agent["security_opt"]
    assert "ports" not in agent  # only the broker client talks to it
    state = agent["environment"]["STATE_DIR"]
    assert f'VOLUME ["{state}"]' in (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert any(volume.endswith(f":{state}") for volume in agent["volumes"])
    assert (COMPOSE.parent / agent["build"]["context"] / agent["build"]["dockerfile"]).resolve().is_file()
    # Every setting given to the agent is one it knows (shared/settings.py).
    known = {name.upper() for name in Settings.model_fields}
    assert set(agent["environment"]) <= known


def test_docker_compose_accepts_the_file(tmp_path: Path) -> None:
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.skip("docker-compose not installed (apt-get install docker-compose): schema not checked")
    env_file = tmp_path / "compose.env"  # deterministic: not the developer's deploy/.env
    env_file.write_text("BROKER_TOKEN=00000000-0000-0000-0000-000000000000\nCR_TYPE=harbor-cr\n")
    argv = [compose, "--env-file", str(env_file), "--file", str(COMPOSE), "config"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert resolved["services"]["broker"]["environment"]["CR_TYPE"] == "harbor-cr"
    assert resolved["services"]["agent"]["deploy"]["resources"]["limits"]["memory"] == "2G"
    # Without the token compose refuses to start anything.
    env_file.write_text("CR_TYPE=harbor-cr\n")
    refused = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode != 0 and "set BROKER_TOKEN" in refused.stderr
