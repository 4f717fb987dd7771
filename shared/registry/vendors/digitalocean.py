"""``digitalocean-cr``: DigitalOcean Container Registry (registries.md §12; DigitalOcean API reference,
"Container Registry": repositoriesV2, repository tags).

* The broker sends the DigitalOcean API token as both username and password; the registry takes
  it as Basic at its token realm, and the DigitalOcean API as ``Authorization: Bearer``.
* ``registryBase`` is ``registry.digitalocean.com/<registry>``; without the registry name the
  account's registry is read from ``GET /v2/registry``.
* Repositories from ``/v2/registry/{registry}/repositoriesV2`` and tag metadata from
  ``/v2/registry/{registry}/repositories/{repo}/tags`` (a ``/`` in the repository name is sent as
  ``%2F``), both following ``links.pages.next``.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any
from urllib.parse import quote

import requests

from shared import errors
from shared.registry.login import Login, RegistryCredential, static_login
from shared.registry.models import TagInfo
from shared.registry.timestamps import from_iso
from shared.registry.vendors.api import ApiAuth, RestApi, expect_list
from shared.registry.vendors.base import OciVendor, register

DO_API = "https://api.digitalocean.com"
REPOSITORY_PAGE = 200  # repositoriesV2 per_page maximum
TAG_PAGE = 100


def _links_next(document: Any, _: requests.Response) -> str | None:
    """``links.pages.next`` of a DigitalOcean list answer, absent on the last page."""
    links = document.get("links") if isinstance(document, dict) else None
    pages = links.get("pages") if isinstance(links, dict) else None
    found = pages.get("next") if isinstance(pages, dict) else None
    return found if isinstance(found, str) and found else None


@register("digitalocean-cr")
class DigitalOcean(OciVendor):
    def v2_prefix(self) -> str:
        return ""  # the path in registryBase is the registry's name, part of every image name

    @property
    def token(self) -> str:
        return self.password or self.username

    def registry_login(self) -> Login:
        return static_login(self.token, self.token)

    @cached_property
    def api(self) -> RestApi:
        login = Login(RegistryCredential(bearer=self.token)) if self.token else Login()
        return RestApi(self.transport, DO_API, "DigitalOcean API", ApiAuth(login))

    @cached_property
    def registry_name(self) -> str:
        if self.namespace:
            return self.namespace.split("/", 1)[0]
        document, _ = self.api.get(self.api.url("/v2/registry"), what="read the DigitalOcean registry")
        name = ((document or {}).get("registry") or {}).get("name") if isinstance(document, dict) else None
        if not isinstance(name, str) or not name:
            raise errors.ProtocolError("read the DigitalOcean registry: answer has no registry name")
        return name

    def list_repositories(self) -> list[str]:
        registry = self.registry_name
        what = f"list repositories of DigitalOcean registry {registry}"
        first = self.api.url(f"/v2/registry/{quote(registry)}/repositoriesV2?per_page={REPOSITORY_PAGE}")
        names: set[str] = set()
        for page in self.api.pages(first, what=what, next_url=_links_next):
            for repo in expect_list(page, what, "repositories"):
                if repo.get("name"):
                    names.add(f"{repo.get('registry_name') or registry}/{repo['name']}")
        return sorted(names)

    def list_tags_with_metadata(self, repository: str) -> list[TagInfo]:
        registry, name = self.repository_parts(repository, 2, "DigitalOcean tag listing")
        what = f"list DigitalOcean tags of {repository}"
        first = self.api.url(
            f"/v2/registry/{quote(registry)}/repositories/{quote(name, safe='')}/tags?per_page={TAG_PAGE}"
        )
        found: dict[str, TagInfo] = {}
        for page in self.api.pages(first, what=what, next_url=_links_next):
            for tag in expect_list(page, what, "tags"):
                if tag.get("tag"):
                    found[tag["tag"]] = TagInfo(
                        tag["tag"], tag.get("manifest_digest"), from_iso(tag.get("updated_at"))
                    )
        return [found[t] for t in sorted(found)]
