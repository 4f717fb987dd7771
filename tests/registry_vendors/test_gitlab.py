"""``gitlab-cr`` against GitLab's documented APIs.

Shapes from ../shared/docs/registries.md §10 and GitLab's API docs (docs.gitlab.com/api/
container_registry: ``GET /groups/:id/registry/repositories`` and ``GET /projects/:id/registry/
repositories`` -> ``[{id, name, path, project_id, location, created_at}]``; docs.gitlab.com/api/rest
"Pagination": ``page`` / ``per_page`` (max 100) with ``X-Next-Page``, ``X-Total``; errors
``{"message": "401 Unauthorized"}``; ``PRIVATE-TOKEN`` header). The registry
(``registry.gitlab.com``) challenges with the ``https://gitlab.com/jwt/auth`` realm, service
``container_registry``, and grants ``_catalog`` to administrators only (gitlab-foss MR !14751).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
import responses

from shared import errors
from tests.registry_vendors.support import MockRegistry, Reply, connect, json_reply, link_pages, query

REGISTRY = "registry.gitlab.com"
API = "https://gitlab.com/api/v4"
USER, TOKEN = "scanner", "glpat-Unique-Token-xxxxxxxxxxxx"


def gitlab_list(
    rsps: responses.RequestsMock, path: str, items: list[dict[str, Any]], size: int = 2
) -> list[requests.PreparedRequest]:
    seen: list[requests.PreparedRequest] = []

    def callback(request: requests.PreparedRequest) -> Reply:
        seen.append(request)
        if request.headers.get("PRIVATE-TOKEN") != TOKEN:
            return json_reply({"message": "401 Unauthorized"}, 401)
        page = int(query(request).get("page", ["1"])[0])
        chunk = items[(page - 1) * size : page * size]
        more = page * size < len(items)
        headers = {
            "X-Page": str(page),
            "X-Per-Page": str(size),
            "X-Total": str(len(items)),
            "X-Next-Page": str(page + 1) if more else "",
            "X-Prev-Page": str(page - 1) if page > 1 else "",
        }
        return json_reply(chunk, headers=headers)

    rsps.add_callback(responses.GET, re.compile(re.escape(API + path) + r"(\?.*)?$"), callback=callback)
    return seen


def repository(path: str, project_id: int = 9) -> dict[str, Any]:
    return {
        "id": hash(path) % 1000,
        "name": path.rsplit("/", 1)[-1],
        "path": path,
        "project_id": project_id,
        "location": f"{REGISTRY}/{path}",
        "created_at": "2024-05-01T10:00:00.000Z",
    }


def test_group_repositories_over_three_pages(rsps: responses.RequestsMock) -> None:
    paths = ["acme/web", "acme/web/worker", "acme/api", "acme/tools/cli", "acme/db"]
    seen = gitlab_list(rsps, "/groups/acme/registry/repositories", [repository(p) for p in paths])
    assert connect("gitlab-cr", f"{REGISTRY}/acme", USER, TOKEN).list_repositories() == sorted(paths)
    assert len(seen) == 3 and all(query(r)["per_page"] == ["100"] for r in seen)


def test_project_after_the_group_404(rsps: responses.RequestsMock) -> None:
    rsps.get(
        re.compile(re.escape(f"{API}/groups/acme%2Fweb/registry/repositories") + r".*"),
        json={"message": "404 Group Not Found"},
        status=404,
    )
    gitlab_list(rsps, "/projects/acme%2Fweb/registry/repositories", [repository("acme/web")])
    assert connect("gitlab-cr", f"{REGISTRY}/acme/web", USER, TOKEN).list_repositories() == ["acme/web"]


def test_without_a_group_or_project_listing_is_unsupported() -> None:
    with pytest.raises(errors.Unsupported, match="list images explicitly"):
        connect("gitlab-cr", REGISTRY, USER, TOKEN).list_repositories()


@pytest.mark.parametrize(
    ("status", "message"), [(401, "401 Unauthorized"), (403, "403 Forbidden - insufficient_scope")]
)
def test_token_that_may_not_use_the_api_is_unsupported(
    rsps: responses.RequestsMock, status: int, message: str
) -> None:
    rsps.get(
        re.compile(re.escape(f"{API}/groups/acme/registry/repositories") + r".*"),
        json={"message": f"{message} {TOKEN}"},
        status=status,
    )
    with pytest.raises(errors.Unsupported) as caught:
        connect("gitlab-cr", f"{REGISTRY}/acme", "gitlab+deploy-token-1", TOKEN).list_repositories()
    assert TOKEN not in str(caught.value)


def test_unknown_group_and_project_is_unsupported_with_advice(rsps: responses.RequestsMock) -> None:
    for kind in ("groups", "projects"):
        rsps.get(
            re.compile(re.escape(f"{API}/{kind}/ghost/registry/repositories") + r".*"),
            json={"message": "404 Not Found"},
            status=404,
        )
    with pytest.raises(errors.Unsupported, match="group or project"):
        connect("gitlab-cr", f"{REGISTRY}/ghost", USER, TOKEN).list_repositories()


def registry(rsps: responses.RequestsMock) -> MockRegistry:
    return MockRegistry(
        rsps,
        REGISTRY,
        accepts=lambda u, p: (u, p) == (USER, TOKEN),
        realm="https://gitlab.com/jwt/auth",
        service="container_registry",
        token_body=lambda n: {"token": f"gitlab-jwt-{n}", "expires_in": 900},
    )


def test_tags_over_three_pages_and_expired_token_refresh(rsps: responses.RequestsMock) -> None:
    reg = registry(rsps)
    reg.route(
        "GET", "/v2/acme/web/tags/list", link_pages(["a", "b", "c", "d", "e"], "tags", 2, name="acme/web")
    )
    client = connect("gitlab-cr", f"{REGISTRY}/acme", USER, TOKEN)
    assert client.list_tags("acme/web") == list("abcde")
    reg.expire_tokens()
    assert client.list_tags("acme/web") == list("abcde") and reg.issued == 2


def test_registry_errors(rsps: responses.RequestsMock, sleeps: list[float]) -> None:
    reg = registry(rsps)
    reg.route(
        "GET",
        "/v2/acme/gone/tags/list",
        lambda _: (
            404,
            {},
            '{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}',
        ),
    )
    reg.route(
        "GET",
        "/v2/acme/secret/tags/list",
        lambda _: (403, {}, '{"errors":[{"code":"DENIED","message":"access forbidden"}]}'),
    )
    answers = iter([(429, {"Retry-After": "3"}, "")])
    reg.route(
        "GET",
        "/v2/acme/busy/tags/list",
        lambda _: next(answers, None) or json_reply({"name": "acme/busy", "tags": ["1"]}),
    )
    client = connect("gitlab-cr", f"{REGISTRY}/acme", USER, TOKEN, sleeps=sleeps)
    with pytest.raises(errors.NotFound):
        client.list_tags("acme/gone")
    with pytest.raises(errors.Denied):
        client.list_tags("acme/secret")
    assert client.list_tags("acme/busy") == ["1"] and sleeps == [3.0]


def test_wrong_token_is_unauthorized_and_not_repeated(rsps: responses.RequestsMock) -> None:
    registry(rsps).route("GET", "/v2/acme/web/tags/list", lambda _: json_reply({}))
    with pytest.raises(errors.Unauthorized) as caught:
        connect("gitlab-cr", f"{REGISTRY}/acme", USER, TOKEN[:-1]).list_tags("acme/web")
    assert TOKEN[:-1] not in str(caught.value)


def test_api_429_is_retried(rsps: responses.RequestsMock, sleeps: list[float]) -> None:
    rsps.get(
        re.compile(re.escape(f"{API}/groups/acme/registry/repositories") + r".*"),
        json={"message": "Retry later"},
        status=429,
        headers={"Retry-After": "4", "RateLimit-Remaining": "0"},
    )
    gitlab_list(rsps, "/groups/acme/registry/repositories", [repository("acme/web")])
    assert connect("gitlab-cr", f"{REGISTRY}/acme", USER, TOKEN, sleeps=sleeps).list_repositories() == [
        "acme/web"
    ]
    assert sleeps == [4.0]


def test_self_managed_registry_port_is_not_the_api_port(rsps: responses.RequestsMock) -> None:
    rsps.get(
        "https://gitlab.acme.internal/api/v4/groups/team/registry/repositories?per_page=100&page=1",
        json=[repository("team/web")],
        match=[responses.matchers.header_matcher({"PRIVATE-TOKEN": TOKEN})],
    )
    client = connect("gitlab-cr", "gitlab.acme.internal:5050/team", USER, TOKEN)
    assert client.list_repositories() == ["team/web"]
