"""``harbor-cr``: Harbor v2 (registries.md §3; Harbor ``api/v2.0/swagger.yaml``).

``/v2/_catalog`` is for system administrators only, so repositories come from the REST API:
``/api/v2.0/projects`` and ``/api/v2.0/projects/{project}/repositories``, 100 a page, following
the ``Link`` header. A project robot (``robot$<project>+<name>``) is confined to its project, so its
project's repositories are listed directly. When the API refuses (a system robot without project
permissions), ``_catalog`` is tried, which works for administrators.

Tag metadata comes from ``.../repositories/{repository}/artifacts?with_tag=true``: one artifact per
digest, each with its tags and push times. A repository name containing ``/`` is URL-encoded twice
in that path (``a/b`` -> ``a%252Fb``), as Harbor requires.
"""

from __future__ import annotations

import re
from functools import cached_property
from urllib.parse import quote

from shared import errors
from shared.registry.login import static_login
from shared.registry.models import TagInfo
from shared.registry.timestamps import from_iso
from shared.registry.vendors.api import ApiAuth, RestApi, expect_list, link_next
from shared.registry.vendors.base import OciVendor, register

PAGE_SIZE = 100  # Harbor's maximum page_size
_PROJECT_ROBOT = re.compile(r"^robot\$(?P<project>[^+]+)\+.+$")


@register("harbor-cr")
class Harbor(OciVendor):
    def v2_prefix(self) -> str:
        return ""  # a path in registryBase names a project, not a prefix before /v2

    @cached_property
    def api(self) -> RestApi:
        auth = ApiAuth(static_login(self.username, self.password))
        return RestApi(self.transport, self.transport.base_url + "/api/v2.0", "Harbor API", auth)

    def _project_scope(self) -> str | None:
        """The one project to list: named in registryBase, or the project of a project robot."""
        if self.namespace:
            return self.namespace.split("/", 1)[0]
        robot = _PROJECT_ROBOT.match(self.username)
        return robot.group("project") if robot else None

    def _projects(self) -> list[str]:
        what = "list Harbor projects"
        names: list[str] = []
        first = self.api.url(f"/projects?page=1&page_size={PAGE_SIZE}")
        for page in self.api.pages(first, what=what, next_url=link_next):
            names.extend(str(p["name"]) for p in expect_list(page, what) if p.get("name"))
        return names

    def _repositories(self, project: str) -> list[str]:
        what = f"list repositories of Harbor project {project}"
        first = self.api.url(f"/projects/{quote(project, safe='')}/repositories?page=1&page_size={PAGE_SIZE}")
        names: list[str] = []
        for page in self.api.pages(first, what=what, next_url=link_next):
            names.extend(str(r["name"]) for r in expect_list(page, what) if r.get("name"))
        return names

    def list_repositories(self) -> list[str]:
        try:
            project = self._project_scope()
            projects = [project] if project else self._projects()
            return sorted({name for p in projects for name in self._repositories(p)})
        except (errors.Unauthorized, errors.Denied, errors.NotFound) as refused:
            try:
                return super().list_repositories()  # _catalog: system administrators only
            except errors.RegistryError as fallback:
                # A 404 from the API means there is no Harbor API here (a plain registry, a proxy):
                # then the registry's own answer is the one that explains, e.g. a 401 for a wrong
                # password. A 401/403 from the API is the clearer answer for a real Harbor.
                raise (fallback if isinstance(refused, errors.NotFound) else refused) from None

    def list_tags_with_metadata(self, repository: str) -> list[TagInfo]:
        project, name = self.repository_parts(repository, 2, "Harbor tag listing")
        # Harbor decodes the path once before routing, so a '/' inside the name is encoded twice.
        encoded = quote(quote(name, safe=""), safe="")
        what = f"list artifacts of {repository}"
        first = self.api.url(
            f"/projects/{quote(project, safe='')}/repositories/{encoded}/artifacts"
            f"?with_tag=true&page=1&page_size={PAGE_SIZE}"
        )
        try:
            infos: dict[str, TagInfo] = {}
            for page in self.api.pages(first, what=what, next_url=link_next):
                for artifact in expect_list(page, what):
                    digest = artifact.get("digest")
                    for tag in artifact.get("tags") or []:
                        if isinstance(tag, dict) and tag.get("name"):
                            pushed = from_iso(tag.get("push_time")) or from_iso(artifact.get("push_time"))
                            infos[tag["name"]] = TagInfo(tag["name"], digest, pushed)
        except (errors.Unauthorized, errors.Denied):
            # A robot with pull permission only: tags and digests through the registry instead.
            return super().list_tags_with_metadata(repository)
        return [infos[t] for t in sorted(infos)]
