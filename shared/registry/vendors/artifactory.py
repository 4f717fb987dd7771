"""``artifactory-cr``: JFrog Artifactory (registries.md §4).

Three Docker access methods reach the same v2 API:

* repository path: ``registryBase`` = ``host/artifactory/api/docker/<repo-key>``; every v2 call goes
  under that prefix, and ``_catalog`` there lists the repository's images (JFrog "List Docker
  Repositories");
* subdomain (``<repo-key>.host``) and port (``host:port``): the v2 API at the root.

Credentials are a user with a password or token (Basic, or Basic exchanged at the token realm the
challenge names), or an access / identity token alone (username empty), which Artifactory takes as
``Authorization: Bearer`` without any token exchange.
"""

from __future__ import annotations

from shared import errors
from shared.registry.login import Login, RegistryCredential
from shared.registry.vendors.base import OciVendor, register

API_DOCKER = "/artifactory/api/docker"


@register("artifactory-cr")
class Artifactory(OciVendor):
    def v2_prefix(self) -> str:
        prefix = super().v2_prefix()
        if prefix.rstrip("/") == API_DOCKER or prefix.startswith(API_DOCKER + "/v2"):
            # /api/docker/v2/<repo> answers 400 "Unsupported docker repository request for 'v2'".
            raise errors.CredentialsError(
                f"registryBase must be host{API_DOCKER}/<repository-key> (the key before /v2)"
            )
        return prefix

    def registry_login(self) -> Login:
        if not self.username and self.password:
            return Login(RegistryCredential(bearer=self.password))
        return super().registry_login()

    def list_repositories(self) -> list[str]:
        try:
            return super().list_repositories()
        except errors.Denied as denied:
            # JFrog documents the catalog as "Security: Requires a privileged user".
            raise errors.Denied(
                f"{denied.message} (Artifactory lists a repository's images only for a user with "
                "read and annotate/deploy permission on it; list images explicitly otherwise)"
            ) from None
