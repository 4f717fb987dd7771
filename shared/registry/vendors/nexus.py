"""``nexus-cr``: Sonatype Nexus Repository 3 (registries.md §11).

A Docker repository is reached one of three ways, told apart by ``registryBase``:

* a connector port (``host:8082``) or a subdomain connector (``repo.host``): the v2 API at the
  root, the plain OCI behaviour;
* ``host/repository/<repo>``: the repository's own path, with the v2 API under it;
* path-based routing (``host/<repo>``, the default since 3.83): the v2 API at the root and the
  repository name as the first segment of every image name. ``/v2/_catalog`` there is not tied to
  one repository, so images are listed with the REST components API
  (``/service/rest/v1/components?repository=<repo>``, paged by ``continuationToken``).

Both Basic and the "Docker Bearer Token Realm" are the standard challenge flows.
"""

from __future__ import annotations

from shared.registry.login import static_login
from shared.registry.vendors.api import ApiAuth, RestApi, expect_list, token_next
from shared.registry.vendors.base import OciVendor, register


@register("nexus-cr")
class Nexus(OciVendor):
    @property
    def routed_repository(self) -> str | None:
        """The repository named by path-based routing, or None for connectors and repository paths."""
        path = self.namespace
        if not path or path.startswith("repository/"):
            return None
        return path

    def v2_prefix(self) -> str:
        return "" if self.routed_repository else super().v2_prefix()

    def list_repositories(self) -> list[str]:
        repository = self.routed_repository
        if repository is None:
            return super().list_repositories()
        api = RestApi(
            self.transport,
            self.transport.base_url,
            "Nexus API",
            ApiAuth(static_login(self.username, self.password)),
        )
        names: set[str] = set()
        what = f"list images of Nexus repository {repository}"
        url = api.url("/service/rest/v1/components")
        pages = api.pages(
            url,
            what=what,
            next_url=token_next("continuationToken", "continuationToken"),
            params={"repository": repository},
        )
        for page in pages:
            for item in expect_list(page, what, "items"):
                if item.get("format", "docker") == "docker" and item.get("name"):
                    names.add(f"{repository}/{item['name']}")
        return sorted(names)
