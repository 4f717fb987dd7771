"""The registry client shared by every function.

``client_for(credentials)`` gives a ``RegistryClient`` for the registry the credentials name::

    with client_for(parse_credentials(value)) as client:
        tags = client.list_tags("library/nginx")
        image = client.resolve("library/nginx", "1.25", Platform.parse("linux/arm64"))
"""

from __future__ import annotations

from shared import errors
from shared.credentials import EcrCredentials, UserPassCredentials
from shared.registry.client import RegistryClient
from shared.registry.models import Descriptor, Manifest, ResolvedImage, TagInfo, TagPage
from shared.registry.platform import DEFAULT_PLATFORM, Platform
from shared.registry.reference import ImageRef, parse_image
from shared.registry.retry import RetryPolicy
from shared.registry.transport import Transport
from shared.settings import Settings, get_settings

__all__ = [
    "DEFAULT_PLATFORM",
    "Descriptor",
    "ImageRef",
    "Manifest",
    "Platform",
    "RegistryClient",
    "ResolvedImage",
    "TagInfo",
    "TagPage",
    "client_for",
    "parse_image",
]


def base_url(host: str, settings: Settings) -> str:
    """HTTPS unless the operator listed the host as insecure, as Docker's daemon option does."""
    scheme = "http" if host.lower() in settings.insecure_hosts else "https"
    return f"{scheme}://{host}"


def client_for(
    credentials: UserPassCredentials | EcrCredentials, settings: Settings | None = None
) -> RegistryClient:
    settings = settings or get_settings()
    if isinstance(credentials, EcrCredentials):
        raise errors.Unsupported("registry type ecr is not supported yet")
    transport = Transport(
        base_url(credentials.host, settings),
        username=credentials.username,
        password=credentials.password.get_secret_value(),
        verify=settings.requests_ca_bundle or True,
        timeout=settings.registry_timeout_seconds,
        retry=RetryPolicy(
            max_retries=settings.registry_max_retries, budget_seconds=settings.registry_retry_budget_seconds
        ),
    )
    return RegistryClient(transport, path_prefix=credentials.path_prefix)
