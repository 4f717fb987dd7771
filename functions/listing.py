"""Function ``list_images``: repositories and tags of the registry.

Repository names arrive as raw path segments (``/list/library/nginx``), hence ``<path:...>`` rules.
"""

from __future__ import annotations

import flask
import functions_framework

from functions import _registry
from functions._http import Routes, parse_query, request_credentials
from shared.api import RepositoryList, TagList, TagPage, TagPageQuery, TagsWithMetadata, TagWithMetadata
from shared.settings import get_settings

routes = Routes()


@routes.get("/list")
def _repositories(request: flask.Request) -> RepositoryList:
    # GitHub and GitLab have no catalog; the broker's documented switch answers an empty list.
    if get_settings().snyk_disable_list_repos:
        return RepositoryList([])
    with _registry.open_client(request_credentials(request).credentials) as client:
        return RepositoryList(list(client.list_repositories()))


@routes.get("/list/<path:repository>")
def _tags(request: flask.Request, repository: str) -> TagList:
    with _registry.open_client(request_credentials(request).credentials) as client:
        return TagList(list(client.list_tags(repository.strip("/"))))


@routes.get("/list-paginated/<path:repository>")
def _tag_page(request: flask.Request, repository: str) -> TagPage:
    query = parse_query(TagPageQuery, request)
    with _registry.open_client(request_credentials(request).credentials) as client:
        page = client.list_tags_page(repository.strip("/"), query.n, query.cursor)
    return TagPage(tags=list(page.tags), next=page.next_cursor)


@routes.get("/list-with-metadata/<path:repository>")
def _tags_with_metadata(request: flask.Request, repository: str) -> TagsWithMetadata:
    with _registry.open_client(request_credentials(request).credentials) as client:
        tags = client.list_tags_with_metadata(repository.strip("/"))
    return TagsWithMetadata(
        [TagWithMetadata(tag=t.tag, digest=t.digest, last_pushed=t.last_pushed) for t in tags]
    )


@functions_framework.http
def list_images(request: flask.Request) -> flask.Response:
    return routes.handle(request)
