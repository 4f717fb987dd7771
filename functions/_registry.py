"""The one seam between the functions and the registry client (``shared.registry``).

Every function gets its client from ``open_client``, which calls the module attribute
``client_factory`` at call time. A test replaces that attribute (monkeypatch) with a fake that
returns the client package's own result types, and every function - called directly, through
functions-framework or through the emulator router - then talks to the fake.
"""

from __future__ import annotations

from collections.abc import Callable

from shared.credentials import EcrCredentials, UserPassCredentials
from shared.errors import ForeignRegistry
from shared.registry import ImageRef, Platform, RegistryClient, client_for, parse_image
from shared.settings import Settings, get_settings

Credentials = UserPassCredentials | EcrCredentials

# Injection point for tests: (credentials, settings) -> a client usable as a context manager.
client_factory: Callable[[Credentials, Settings], RegistryClient] = client_for


def open_client(credentials: Credentials) -> RegistryClient:
    return client_factory(credentials, get_settings())


def _without_default_port(host: str) -> str:
    # Every registry is HTTPS unless listed as insecure: "host:443" names the same registry as "host".
    return host[: -len(":443")] if host.endswith(":443") else host


def image_for(text: str, credentials: Credentials) -> ImageRef:
    """Parse an image reference and refuse one that names another registry than the credentials'."""
    return check_registry(parse_image(text), credentials)


def check_registry(ref: ImageRef, credentials: Credentials) -> ImageRef:
    """``ref`` if it names no registry or the credentials' own; ``ForeignRegistry`` (400) otherwise.

    The agent talks only to the credentials' registry; a host in the reference that is not that
    registry would otherwise be ignored and a different image scanned under the named one.
    """
    if ref.registry is None:
        return ref
    # Imported here for the same reason as in ``client_for``: vendor modules import this package.
    from shared.registry.vendors import vendor_class

    allowed = {_without_default_port(h) for h in vendor_class(credentials.type).registry_names(credentials)}
    if _without_default_port(ref.registry.lower()) not in allowed:
        raise ForeignRegistry(
            f"the image names registry {ref.registry}, but the credentials are for "
            f"{', '.join(sorted(allowed))}; this agent only reaches its credentials' registry"
        )
    return ref


def parse_platform(text: str | None) -> Platform | None:
    """``os/arch[/variant]``, or None when not given; ``BadRequest`` (400) when malformed."""
    return Platform.parse(text) if text else None


__all__ = [
    "Credentials",
    "ImageRef",
    "check_registry",
    "client_factory",
    "image_for",
    "open_client",
    "parse_image",
    "parse_platform",
]
