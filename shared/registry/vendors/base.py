"""The one interface every registry type implements, and the table of types.

A ``Vendor`` *is* a ``RegistryClient``: manifests, blobs, ``resolve`` and the plain v2 listing are
the shared OCI core. A vendor module subclasses it and overrides only the hooks where its
registry differs (registries.md §14, §16.1):

* ``host_of`` / ``v2_prefix``: where the v2 API lives for the broker's ``registryBase``, and
  ``registry_names``: the hosts an image reference may name for it;
* ``registry_login``: the credential the registry accepts, fixed or minted and renewed
  (``shared.registry.login``);
* ``response_policy``: rate-limit headers and waits (``shared.registry.policy``);
* ``list_repositories``, ``list_tags``, ``list_tags_page``, ``list_tags_with_metadata``: listing
  through the vendor's own API where ``/v2/_catalog`` or tag metadata is missing.

``register("type", ...)`` files a class under the broker's type names; ``vendor_class`` finds it.
Nothing outside a vendor's module knows anything about that vendor.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Generic, TypeVar

from shared import errors
from shared.credentials import EcrCredentials, UserPassCredentials
from shared.registry.client import RegistryClient
from shared.registry.login import Login, static_login
from shared.registry.paging import follow_pages, next_link
from shared.registry.policy import ResponsePolicy
from shared.registry.reference import validate_repository
from shared.registry.retry import RetryPolicy
from shared.registry.transport import Transport
from shared.settings import Settings

CredentialsT = TypeVar("CredentialsT", UserPassCredentials, EcrCredentials)


def base_url(host: str, settings: Settings) -> str:
    """HTTPS unless the operator listed the host as insecure, as Docker's daemon option does."""
    scheme = "http" if host.lower() in settings.insecure_hosts else "https"
    return f"{scheme}://{host}"


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        max_retries=settings.registry_max_retries, budget_seconds=settings.registry_retry_budget_seconds
    )


class Vendor(RegistryClient, Generic[CredentialsT]):
    """A registry type: the generic OCI client plus the hooks a vendor overrides."""

    types: ClassVar[tuple[str, ...]] = ()

    def __init__(self, credentials: CredentialsT, settings: Settings) -> None:
        self.credentials: CredentialsT = credentials
        self.settings = settings
        transport = Transport(
            base_url(self.registry_host(), settings),
            verify=settings.requests_ca_bundle or True,
            timeout=settings.registry_timeout_seconds,
            retry=retry_policy(settings),
            secrets=credentials.secrets,
            policy=self.response_policy(),
        )
        super().__init__(transport, path_prefix=self.v2_prefix())
        # The login may mint through the transport, so it is made once the transport exists.
        transport.auth.login = self.registry_login()

    # -- hooks -----------------------------------------------------------------------------

    def registry_host(self) -> str:
        """host[:port] of the registry's v2 API."""
        return self.host_of(self.credentials)

    @classmethod
    def host_of(cls, credentials: CredentialsT) -> str:
        """host[:port] of the registry's v2 API for these credentials (no network involved)."""
        raise NotImplementedError

    @classmethod
    def registry_names(cls, credentials: CredentialsT) -> frozenset[str]:
        """Every host an image reference may name for these credentials: the v2 host and the
        ``registryBase`` host (lower-case). An image naming any other host is refused, because the
        agent would otherwise scan the credentials' registry under another registry's name."""
        names = {cls.host_of(credentials)}
        base = credentials.registry_base
        if base:
            names.add(re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", "", base.strip()).split("/", 1)[0])
        return frozenset(name.lower() for name in names if name)

    def v2_prefix(self) -> str:
        """Path before ``/v2`` (empty for almost every registry)."""
        return ""

    def registry_login(self) -> Login:
        """Where the registry's credential comes from; anonymous by default."""
        return Login()

    def response_policy(self) -> ResponsePolicy:
        return ResponsePolicy()

    # -- helpers for vendor modules ----------------------------------------------------------

    def authenticate_first(self) -> None:
        """Learn the registry's challenge before a call that answers anonymous callers with an
        empty result instead of a 401 (Quay's catalog), so the call carries credentials."""
        if self.transport.auth.challenge is None and self.transport.auth.has_credentials:
            self.ping()

    def registry_documents(self, first_url: str, scope: str | None, what: str) -> Iterator[dict[str, Any]]:
        """JSON pages of a registry-hosted listing (ACR's ``/acr/v1``, GCR's tags/list), with the
        registry's own token for ``scope``, following ``Link`` as the v2 listings do."""

        def fetch(url: str) -> tuple[dict[str, Any], str | None]:
            document, response = self._get_json(url, scope, what)
            return document, next_link(response.headers.get("Link"), response.url)

        return follow_pages(first_url, fetch, what)

    def repository_parts(self, repository: str, depth: int, what: str) -> list[str]:
        """``repository`` split into ``depth`` parts, the last one keeping any further slashes."""
        parts = validate_repository(repository.strip("/")).split("/", depth - 1)
        if len(parts) < depth or not all(parts):
            raise errors.BadRequest(f"{what}: repository must look like {'/'.join(['x'] * depth)}")
        return parts


class OciVendor(Vendor[UserPassCredentials]):
    """Plain OCI distribution with the broker's username and password: ``registryBase`` is
    host[:port] plus an optional path before ``/v2`` (registries.md §1, §13)."""

    @classmethod
    def host_of(cls, credentials: UserPassCredentials) -> str:
        return credentials.host

    def v2_prefix(self) -> str:
        return self.credentials.path_prefix

    def registry_login(self) -> Login:
        return static_login(self.credentials.username, self.credentials.password.get_secret_value())

    @property
    def username(self) -> str:
        return self.credentials.username

    @property
    def password(self) -> str:
        return self.credentials.password.get_secret_value()

    @property
    def namespace(self) -> str:
        """The path after the host in ``registryBase`` (an owner, project or registry name)."""
        return self.credentials.path_prefix.strip("/")


_TYPES: dict[str, type[Vendor[Any]]] = {}
V = TypeVar("V", bound=type[Vendor[Any]])


def register(*types: str) -> Callable[[V], V]:
    """File a vendor class under the broker's type names."""

    def decorate(cls: V) -> V:
        for name in types:
            if name in _TYPES:
                raise RuntimeError(f"registry type {name} is registered twice")
            _TYPES[name] = cls
        cls.types = types
        return cls

    return decorate


def registered_types() -> tuple[str, ...]:
    return tuple(_TYPES)


def vendor_class(type_name: str) -> type[Vendor[Any]]:
    try:
        return _TYPES[type_name]
    except KeyError:
        raise errors.CredentialsError(
            f"unsupported registry type; supported: {', '.join(sorted(_TYPES))}"
        ) from None
