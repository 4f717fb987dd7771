"""The one seam between the functions and the registry client (``shared.registry``).

Every function gets its client from ``open_client``, which calls the module attribute
``client_factory`` at call time. A test replaces that attribute (monkeypatch) with a fake that
returns the client package's own result types, and every function - called directly, through
functions-framework or through the emulator router - then talks to the fake.
"""

from __future__ import annotations

from collections.abc import Callable

from shared.credentials import EcrCredentials, UserPassCredentials
from shared.registry import ImageRef, Platform, RegistryClient, client_for, parse_image
from shared.settings import Settings, get_settings

Credentials = UserPassCredentials | EcrCredentials

# Injection point for tests: (credentials, settings) -> a client usable as a context manager.
client_factory: Callable[[Credentials, Settings], RegistryClient] = client_for


def open_client(credentials: Credentials) -> RegistryClient:
    return client_factory(credentials, get_settings())


def parse_platform(text: str | None) -> Platform | None:
    """``os/arch[/variant]``, or None when not given; ``BadRequest`` (400) when malformed."""
    return Platform.parse(text) if text else None


__all__ = ["Credentials", "ImageRef", "client_factory", "open_client", "parse_image", "parse_platform"]
