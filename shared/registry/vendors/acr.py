"""``acr``: Azure Container Registry (registries.md §5; AZ ``containerregistry.json`` 2021-07-01).

Credentials, told apart by the username:

* admin user (registry name + admin key), repository-scoped token, service principal
  (``<app-id>`` + secret): Basic at ``/oauth2/token``, the standard challenge flow;
* ``00000000-0000-0000-0000-000000000000`` + an ACR refresh token (what ``az acr login
  --expose-token`` prints): the token service is asked with ``grant_type=refresh_token``;
* ``<tenant-id>/<client-id>`` + client secret: Azure AD through azure-identity
  (``ClientSecretCredential``);
* no username and no password: the agent's own Azure identity through azure-identity, from the
  ``AZURE_*`` environment variables or else the managed identity.

An Azure AD access token (audience ``https://containerregistry.azure.net``) is exchanged at
``POST /oauth2/exchange`` (``grant_type=access_token``) for an ACR refresh token, which then buys
access tokens at ``POST /oauth2/token``; it is exchanged again shortly before it expires or when
the registry refuses it.

Listing goes through the ACR metadata API: ``/acr/v1/_catalog`` (scope ``registry:catalog:*``) and
``/acr/v1/{name}/_tags`` (scope ``repository:{name}:metadata_read``), which gives each tag's digest
and ``lastUpdateTime``; both page with ``Link``.
"""

from __future__ import annotations

import os
import time
from functools import cached_property
from typing import TYPE_CHECKING

from shared import errors
from shared.redact import scrub
from shared.registry.client import CATALOG_SCOPE
from shared.registry.login import Login, Minted, MintedLogin, RegistryCredential, jwt_expiry
from shared.registry.models import TagInfo
from shared.registry.reference import validate_repository
from shared.registry.timestamps import from_iso
from shared.registry.vendors.api import RestApi
from shared.registry.vendors.base import OciVendor, register

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

# azure-identity is imported where an Azure AD token is needed: it costs ~80 ms and ~10 MB at import,
# which every scan of every other registry type would otherwise pay.

NULL_USERNAME = "00000000-0000-0000-0000-000000000000"
AAD_SCOPE = "https://containerregistry.azure.net/.default"
PAGE_SIZE = 100
# When an exchanged refresh token carries no readable expiry, assume ACR's usual three hours.
REFRESH_TOKEN_LIFETIME = 3 * 3600.0


@register("acr")
class Acr(OciVendor):
    def registry_login(self) -> Login:
        if self.username == NULL_USERNAME:
            return Login(RegistryCredential(identity_token=self.password))
        if self.username or self.password:
            if "/" not in self.username:
                return super().registry_login()
        return MintedLogin(self._exchange)

    @cached_property
    def azure_credential(self) -> TokenCredential:
        from azure.identity import (
            ChainedTokenCredential,
            ClientSecretCredential,
            EnvironmentCredential,
            ManagedIdentityCredential,
        )

        if "/" in self.username:
            tenant, client_id = self.username.split("/", 1)
            return ClientSecretCredential(tenant, client_id, self.password)
        # The agent's own identity, as DefaultAzureCredential would find it on a server.
        return ChainedTokenCredential(
            EnvironmentCredential(), ManagedIdentityCredential(client_id=os.environ.get("AZURE_CLIENT_ID"))
        )

    def _aad_token(self) -> str:
        from azure.core.exceptions import AzureError, ClientAuthenticationError
        from azure.identity import CredentialUnavailableError

        try:
            return self.azure_credential.get_token(AAD_SCOPE).token
        except CredentialUnavailableError as missing:
            raise errors.Unauthorized(
                "Azure AD: no Azure identity is available to the agent "
                f"({scrub(str(missing), self.transport.secrets)[:300]})"
            ) from None
        except ClientAuthenticationError as refused:
            raise errors.Unauthorized(
                f"Azure AD refused the credentials ({scrub(str(refused), self.transport.secrets)[:300]})"
            ) from None
        except AzureError as failure:
            raise errors.RegistryUnavailable(
                f"Azure AD: {scrub(str(failure), self.transport.secrets)[:300]}"
            ) from None

    def _exchange(self) -> Minted:
        aad = self._aad_token()
        self.transport.add_secrets(aad)
        form = {"grant_type": "access_token", "service": self.credentials.host, "access_token": aad}
        if "/" in self.username:
            form["tenant"] = self.username.split("/", 1)[0]
        api = RestApi(self.transport, self.transport.base_url, "ACR")
        document, _ = api.request(
            "POST", "/oauth2/exchange", what="ACR token exchange", form=form, authenticated=False
        )
        refresh = document.get("refresh_token") if isinstance(document, dict) else None
        if not isinstance(refresh, str) or not refresh:
            raise errors.ProtocolError("ACR token exchange: answer has no refresh_token")
        expires = jwt_expiry(refresh) or time.time() + REFRESH_TOKEN_LIFETIME
        return Minted(RegistryCredential(identity_token=refresh), expires)

    def list_repositories(self) -> list[str]:
        names: list[str] = []
        first = self.transport.url(f"/acr/v1/_catalog?n={PAGE_SIZE}")
        for page, _ in self._pages(first, CATALOG_SCOPE, "list repositories", "repositories"):
            names.extend(page)
        return sorted(set(names))

    def list_tags_with_metadata(self, repository: str) -> list[TagInfo]:
        name = validate_repository(repository.strip("/"))
        first = self.transport.url(f"/acr/v1/{name}/_tags?n={PAGE_SIZE}")
        found: dict[str, TagInfo] = {}
        scope = f"repository:{name}:metadata_read"
        for document in self.registry_documents(first, scope, f"list tags of {repository}"):
            for tag in document.get("tags") or []:
                if isinstance(tag, dict) and tag.get("name"):
                    pushed = from_iso(tag.get("lastUpdateTime")) or from_iso(tag.get("createdTime"))
                    found[tag["name"]] = TagInfo(tag["name"], tag.get("digest"), pushed)
        return [found[t] for t in sorted(found)]
