"""``github-cr``: GitHub Container Registry, ghcr.io (registries.md §9).

* Registry tokens from ``https://ghcr.io/token`` through the standard Bearer challenge, with Basic
  ``<user>:<PAT>``.
* ghcr.io has no ``_catalog``. Repositories come from the GitHub REST packages API with the same
  token as ``Authorization: Bearer`` (a classic PAT with ``read:packages``):
  ``/user/packages`` for the token's own user, else ``/orgs/{owner}/packages`` and then
  ``/users/{owner}/packages``, all with ``package_type=container``, 100 a page, following ``Link``.
  The owner is the path in ``registryBase`` (``ghcr.io/<owner>``) or the username. When the token
  may not list packages the answer is ``Unsupported``: list images explicitly instead.
* Tag metadata from the package versions API: each version is one digest (``name``) with its
  ``metadata.container.tags`` and ``updated_at``. Without API access, tags come from the registry
  and digests from HEAD requests.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from urllib.parse import quote

from shared import errors
from shared.registry.login import Login, RegistryCredential
from shared.registry.models import TagInfo
from shared.registry.timestamps import from_iso
from shared.registry.vendors.api import ApiAuth, RestApi, expect_list, link_next
from shared.registry.vendors.base import OciVendor, register

GITHUB_API = "https://api.github.com"
PAGE_SIZE = 100
_REFUSED = (errors.Unauthorized, errors.Denied)
_NOT_LISTABLE = (
    "GitHub Container Registry has no catalog and this token may not list packages (it needs a "
    "classic personal access token with read:packages); list images explicitly"
)


def _headers(credential: RegistryCredential) -> dict[str, str]:
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    if credential.bearer:
        headers["Authorization"] = f"Bearer {credential.bearer}"
    return headers


@register("github-cr")
class GitHub(OciVendor):
    def v2_prefix(self) -> str:
        return ""  # a path in registryBase names the owner, not a prefix before /v2

    @cached_property
    def api(self) -> RestApi:
        login = Login(RegistryCredential(bearer=self.password)) if self.password else Login()
        return RestApi(self.transport, GITHUB_API, "GitHub API", ApiAuth(login, _headers))

    @property
    def owner(self) -> str:
        return (self.namespace.split("/", 1)[0] or self.username).lower()

    def _package_roots(self) -> list[str]:
        """API paths that may hold the owner's packages, most specific first."""
        if self.owner and self.owner == self.username.lower():
            return ["/user/packages"]
        return [f"/orgs/{quote(self.owner)}/packages", f"/users/{quote(self.owner)}/packages"]

    def _first_found(self, call: Callable[[str], list[str]], suffix: str = "") -> list[str]:
        roots = self._package_roots()
        for root in roots:
            try:
                return call(root + suffix)
            except errors.NotFound:
                if root == roots[-1]:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def list_repositories(self) -> list[str]:
        if not self.owner or not self.password:
            raise errors.Unsupported(_NOT_LISTABLE)

        def packages(root: str) -> list[str]:
            what = f"list GitHub container packages of {self.owner}"
            first = self.api.url(f"{root}?package_type=container&per_page={PAGE_SIZE}")
            names: set[str] = set()
            for page in self.api.pages(first, what=what, next_url=link_next):
                for package in expect_list(page, what):
                    if package.get("name"):
                        owner = (package.get("owner") or {}).get("login") or self.owner
                        names.add(f"{owner}/{package['name']}".lower())
            return sorted(names)

        try:
            return self._first_found(packages)
        except _REFUSED:
            raise errors.Unsupported(_NOT_LISTABLE) from None

    def list_tags_with_metadata(self, repository: str) -> list[TagInfo]:
        owner, package = self.repository_parts(repository, 2, "GitHub tag listing")
        if not self.password or owner.lower() != self.owner:
            return super().list_tags_with_metadata(repository)
        what = f"list GitHub package versions of {repository}"
        found: dict[str, TagInfo] = {}

        def versions(path: str) -> list[str]:
            first = self.api.url(f"{path}?per_page={PAGE_SIZE}")
            for page in self.api.pages(first, what=what, next_url=link_next):
                for version in expect_list(page, what):
                    container = (version.get("metadata") or {}).get("container") or {}
                    pushed = from_iso(version.get("updated_at")) or from_iso(version.get("created_at"))
                    for tag in container.get("tags") or []:
                        found[tag] = TagInfo(tag, version.get("name"), pushed)
            return sorted(found)

        try:
            tags = self._first_found(versions, f"/container/{quote(package, safe='')}/versions")
        except _REFUSED:
            return super().list_tags_with_metadata(repository)
        return [found[t] for t in tags]
