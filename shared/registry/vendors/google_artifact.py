"""``google-artifact-cr``: Google Artifact Registry, ``<location>-docker.pkg.dev`` (registries.md §6).

Authentication and tag metadata are Google's (``_google.py``). Its ``/v2/_catalog`` answers an
empty list even to valid credentials, so repositories come from the Artifact Registry REST API
with the same access token: ``projects/{p}/locations/{l}/repositories`` (Docker-format ones), then
each repository's ``dockerImages``, both paged by ``nextPageToken``. Image names are taken from
each image's ``uri`` (``<host>/<project>/<repository>/<image>@sha256:...``). The location is the
host's prefix; the project is the first path segment of ``registryBase`` or the key's
``project_id``; a second segment narrows the listing to one repository. When the API refuses,
``_catalog`` is the fallback.
"""

from __future__ import annotations

from functools import cached_property
from urllib.parse import quote

from shared import errors
from shared.registry.vendors._google import GoogleVendor
from shared.registry.vendors.api import RestApi, expect_list, token_next
from shared.registry.vendors.base import register

AR_API = "https://artifactregistry.googleapis.com/v1"
HOST_SUFFIX = "-docker.pkg.dev"
PAGE_SIZE = 1000


@register("google-artifact-cr")
class GoogleArtifactRegistry(GoogleVendor):
    @cached_property
    def api(self) -> RestApi:
        return RestApi(self.transport, AR_API, "Artifact Registry API", self.access_token_auth)

    @property
    def location(self) -> str:
        host = self.credentials.host.split(":", 1)[0].lower()
        if not host.endswith(HOST_SUFFIX):
            raise errors.CredentialsError(f"registryBase must be <location>{HOST_SUFFIX}[/<project>]")
        return host[: -len(HOST_SUFFIX)]

    def _repository_ids(self, parent: str) -> list[str]:
        scoped = self.namespace.split("/")
        if len(scoped) > 1 and scoped[1]:
            return [scoped[1]]
        what = f"list Artifact Registry repositories of {parent}"
        ids: list[str] = []
        first = self.api.url(f"/{parent}/repositories?pageSize={PAGE_SIZE}")
        for page in self.api.pages(first, what=what, next_url=token_next("nextPageToken", "pageToken")):
            for repo in expect_list(page, what, "repositories"):
                if repo.get("format") == "DOCKER" and repo.get("name"):
                    ids.append(str(repo["name"]).rsplit("/", 1)[-1])
        return ids

    def _images(self, parent: str, repository_id: str) -> set[str]:
        what = f"list images of Artifact Registry repository {repository_id}"
        first = self.api.url(
            f"/{parent}/repositories/{quote(repository_id)}/dockerImages?pageSize={PAGE_SIZE}"
        )
        host = self.credentials.host.lower()
        names: set[str] = set()
        for page in self.api.pages(first, what=what, next_url=token_next("nextPageToken", "pageToken")):
            for image in expect_list(page, what, "dockerImages"):
                uri = str(image.get("uri") or "").split("@", 1)[0]
                if uri.lower().startswith(host + "/"):
                    names.add(uri[len(host) + 1 :])
        return names

    def list_repositories(self) -> list[str]:
        project = self.project
        if not project:
            raise errors.Unsupported(
                "Artifact Registry listing needs a project: set registryBase to "
                f"<location>{HOST_SUFFIX}/<project> or use a service-account key"
            )
        parent = f"projects/{quote(project)}/locations/{quote(self.location)}"
        try:
            return sorted({n for r in self._repository_ids(parent) for n in self._images(parent, r)})
        except (errors.Unauthorized, errors.Denied) as refused:
            try:
                names = super().list_repositories()
            except errors.RegistryError:
                raise refused from None
            return [n for n in names if n.startswith(f"{project}/")]
