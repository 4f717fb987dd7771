"""The registry client shared by every function.

``client_for(credentials)`` gives a ``RegistryClient`` for the registry the credentials name: the
vendor class registered for the credentials' type (``shared.registry.vendors``), which is the
generic OCI client plus that vendor's listing and authentication::

    with client_for(parse_credentials(value)) as client:
        tags = client.list_tags("library/nginx")
        image = client.resolve("library/nginx", "1.25", Platform.parse("linux/arm64"))
"""

from __future__ import annotations

from shared.credentials import EcrCredentials, UserPassCredentials
from shared.registry.client import RegistryClient
from shared.registry.models import Descriptor, Manifest, ResolvedImage, TagInfo, TagPage
from shared.registry.platform import DEFAULT_PLATFORM, Platform
from shared.registry.reference import ImageRef, parse_image
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
    "Transport",
    "client_for",
    "parse_image",
]


def client_for(
    credentials: UserPassCredentials | EcrCredentials, settings: Settings | None = None
) -> RegistryClient:
    """The client for the credentials' registry type; an unknown type is a 400 naming the known ones."""
    # Imported here: vendor modules import the AWS, Azure and Google plumbing, which itself uses
    # this package's leaf modules; importing them at package import time would be circular.
    from shared.registry.vendors import vendor_class

    return vendor_class(credentials.type)(credentials, settings or get_settings())
