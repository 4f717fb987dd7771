"""``quay-cr``: quay.io and Red Hat Quay (registries.md §7; quay ``endpoints/v2/{v2auth,catalog}.py``,
``endpoints/api/{repository,tag,__init__}.py``).

* Registry tokens: ``GET /v2/auth`` with Basic (users, robots ``namespace+name``, ``$oauthtoken``,
  ``$app``) answers ``{"token"}`` with no ``expires_in``, so the spec's 60 s applies and the token
  is fetched again after that.
* ``_catalog`` needs a registry token and answers anonymous callers with an empty list rather
  than a 401, so the challenge is learnt first. Quay's token service rejects the
  ``registry:catalog:*`` scope (its scope grammar knows only ``repository:``), so the catalog
  token is requested without a scope; the catalog then lists what the user or robot can see,
  paged by a ``Link`` that carries an encrypted ``next_page``.
* The REST API v1 accepts only OAuth application tokens (``process_oauth``), so it is used with
  ``$oauthtoken`` credentials: ``/api/v1/repository?namespace=`` paged by ``next_page``, and
  ``/api/v1/repository/{ns}/{repo}/tag/?onlyActiveTags=true`` paged by ``page`` while
  ``has_additional``. Robots and users get tags from the registry and digests by HEAD.
"""

from __future__ import annotations

from functools import cached_property
from urllib.parse import quote

from shared import errors
from shared.registry.login import Login, RegistryCredential
from shared.registry.models import TagInfo
from shared.registry.timestamps import from_epoch
from shared.registry.vendors.api import ApiAuth, RestApi, expect_list, token_next
from shared.registry.vendors.base import OciVendor, register

OAUTH_USERNAME = "$oauthtoken"
CATALOG_PAGE = 100  # Quay clamps n to max(V2_PAGINATION_SIZE, 100)
TAG_PAGE = 100  # the tag API's maximum limit
MAX_TAG_PAGES = 10_000


@register("quay-cr")
class Quay(OciVendor):
    def v2_prefix(self) -> str:
        return ""  # a path in registryBase names a namespace, not a prefix before /v2

    @property
    def _oauth(self) -> bool:
        return self.username == OAUTH_USERNAME and bool(self.password)

    @cached_property
    def api(self) -> RestApi:
        login = Login(RegistryCredential(bearer=self.password)) if self._oauth else Login()
        return RestApi(self.transport, self.transport.base_url + "/api/v1", "Quay API", ApiAuth(login))

    def _namespace(self) -> str | None:
        if self.namespace:
            return self.namespace.split("/", 1)[0]
        if "+" in self.username:  # a robot: namespace+name
            return self.username.split("+", 1)[0]
        return None

    def list_repositories(self) -> list[str]:
        namespace = self._namespace()
        if self._oauth and namespace:
            return self._api_repositories(namespace)
        self.authenticate_first()
        names: list[str] = []
        for page, _ in self._pages(
            self._v2(f"/_catalog?n={CATALOG_PAGE}"), None, "list repositories", "repositories"
        ):
            names.extend(page)
        if self.namespace:
            names = [n for n in names if n.startswith(f"{namespace}/")]
        return sorted(names)

    def _api_repositories(self, namespace: str) -> list[str]:
        what = f"list Quay repositories of {namespace}"
        first = self.api.url(f"/repository?namespace={quote(namespace, safe='')}&repo_kind=image")
        names: set[str] = set()
        for page in self.api.pages(first, what=what, next_url=token_next("next_page", "next_page")):
            for repo in expect_list(page, what, "repositories"):
                if repo.get("name"):
                    names.add(f"{repo.get('namespace') or namespace}/{repo['name']}")
        return sorted(names)

    def list_tags_with_metadata(self, repository: str) -> list[TagInfo]:
        if not self._oauth:
            return super().list_tags_with_metadata(repository)
        self.repository_parts(repository, 2, "Quay tag listing")
        what = f"list Quay tags of {repository}"
        found: dict[str, TagInfo] = {}
        for page in range(1, MAX_TAG_PAGES + 1):
            document, _ = self.api.get(
                self.api.url(
                    f"/repository/{quote(repository, safe='/')}/tag/"
                    f"?onlyActiveTags=true&limit={TAG_PAGE}&page={page}"
                ),
                what=what,
            )
            for tag in expect_list(document, what, "tags"):
                if tag.get("name"):
                    found[tag["name"]] = TagInfo(
                        tag["name"], tag.get("manifest_digest"), from_epoch(tag.get("start_ts"))
                    )
            if not (isinstance(document, dict) and document.get("has_additional")):
                return [found[t] for t in sorted(found)]
        raise errors.ProtocolError(f"{what}: more than {MAX_TAG_PAGES} pages")
