"""Connecting the agent's registry client to a harness registry."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from shared.credentials import UserPassCredentials, parse_credentials_json
from shared.registry import RegistryClient, client_for
from shared.settings import Settings
from tests.harness.registry import RunningRegistry


def settings_for(registry: RunningRegistry) -> Settings:
    """HTTP modes are listed as insecure; the TLS mode trusts the harness CA, nothing else."""
    return Settings(
        insecure_registries=registry.host if registry.scheme == "http" else "",
        requests_ca_bundle=str(registry.ca_file) if registry.ca_file else None,
        registry_max_retries=1,
    )


def credentials_for(registry: RunningRegistry, password: str | None = None) -> UserPassCredentials:
    creds = parse_credentials_json(
        {
            "type": "generic",
            "username": registry.username or "",
            "password": password if password is not None else registry.password or "",
            "registryBase": registry.host,
        }
    )
    assert isinstance(creds, UserPassCredentials)
    return creds


@pytest.fixture
def connect() -> Iterator[Callable[..., RegistryClient]]:
    """``connect(registry, password=None)``: a client for a harness registry, closed after the test."""
    opened: list[RegistryClient] = []

    def open_client(registry: RunningRegistry, password: str | None = None) -> RegistryClient:
        client = client_for(credentials_for(registry, password), settings_for(registry))
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        client.close()
