"""``gitlab-cr``: GitLab container registry (registries.md §10; docs.gitlab.com/api/container_registry).

* Registry tokens from the ``/jwt/auth`` realm the challenge names, with Basic ``<user>:<token>``.
* ``_catalog`` is granted to GitLab administrators only, so repositories come from the GitLab API
  with the same token as ``PRIVATE-TOKEN`` (needs ``read_api``): the group, or else the project,
  named by the path in ``registryBase`` (``registry.gitlab.com/<group-or-project>``),
  ``/groups/:id/registry/repositories`` or ``/projects/:id/registry/repositories``, 100 a page,
  following ``X-Next-Page``. The API lives on the GitLab host: the registry host without its
  ``registry.`` label and without a registry port (GitLab's default registry port is 5050).
  Without a group or project, or when the token may not use the API (deploy tokens, no
  ``read_api``), the answer is ``Unsupported``: list images explicitly.
* Tags come from the registry's tags/list and digests from HEAD requests.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any
from urllib.parse import quote

import requests

from shared import errors
from shared.registry.login import Login, RegistryCredential
from shared.registry.vendors.api import ApiAuth, RestApi, expect_list, with_query
from shared.registry.vendors.base import OciVendor, register

PAGE_SIZE = 100
_NOT_LISTABLE = (
    "GitLab's registry catalog is for administrators only; to list repositories set registryBase to "
    "<registry host>/<group or project> and use a token with read_api, or list images explicitly"
)


def _headers(credential: RegistryCredential) -> dict[str, str]:
    return {"PRIVATE-TOKEN": credential.bearer} if credential.bearer else {}


def _next_page(_: Any, response: requests.Response) -> str | None:
    page = response.headers.get("X-Next-Page", "").strip()
    return with_query(response.url, page=page) if page.isdigit() else None


@register("gitlab-cr")
class GitLab(OciVendor):
    def v2_prefix(self) -> str:
        return ""  # a path in registryBase names a group or project, not a prefix before /v2

    @cached_property
    def api(self) -> RestApi:
        # registry.gitlab.com -> gitlab.com; gitlab.example.com:5050 (a registry port) -> gitlab.example.com
        scheme, _, netloc = self.transport.base_url.partition("://")
        host = netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc
        host = host.removeprefix("registry.")
        login = Login(RegistryCredential(bearer=self.password)) if self.password else Login()
        return RestApi(self.transport, f"{scheme}://{host}/api/v4", "GitLab API", ApiAuth(login, _headers))

    def _repositories(self, kind: str) -> list[str]:
        what = f"list GitLab registry repositories of {self.namespace}"
        first = self.api.url(
            f"/{kind}/{quote(self.namespace, safe='')}/registry/repositories?per_page={PAGE_SIZE}&page=1"
        )
        names: set[str] = set()
        for page in self.api.pages(first, what=what, next_url=_next_page):
            names.update(str(r["path"]) for r in expect_list(page, what) if r.get("path"))
        return sorted(names)

    def list_repositories(self) -> list[str]:
        if not self.namespace or not self.password:
            raise errors.Unsupported(_NOT_LISTABLE)
        try:
            try:
                return self._repositories("groups")
            except errors.NotFound:
                return self._repositories("projects")
        except (errors.Unauthorized, errors.Denied, errors.NotFound):
            raise errors.Unsupported(_NOT_LISTABLE) from None
