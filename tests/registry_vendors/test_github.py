"""``github-cr`` against GitHub's documented APIs.

Shapes from ../shared/docs/registries.md §9 and GitHub's REST reference (docs.github.com/rest/
packages/packages): ``GET /user/packages``, ``/orgs/{org}/packages``, ``/users/{username}/packages``
with ``package_type=container`` -> ``[{id, name, package_type, owner: {login}, visibility, ...}]``;
``GET .../packages/container/{package_name}/versions`` (``package_name`` URL-encoded) ->
``[{id, name: <digest>, created_at, updated_at, metadata: {package_type, container: {tags}}}]``;
``per_page`` (max 100) + ``page`` with an absolute ``Link`` header; errors ``{"message",
"documentation_url"}``; ``Authorization: Bearer <token>``, ``X-GitHub-Api-Version``. ghcr.io has no
``_catalog`` (oras-go#621); registry tokens from ``https://ghcr.io/token`` (service ``ghcr.io``).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
import responses

from shared import errors
from tests.registry_vendors.support import MockRegistry, Reply, connect, json_reply, query

API = "https://api.github.com"
USER = "Octo-Dev"
PAT = "ghp_UniqueClassicTokenValue0000000000000"


def github_list(
    rsps: responses.RequestsMock, path: str, items: list[dict[str, Any]], size: int = 2
) -> list[requests.PreparedRequest]:
    """A GitHub list endpoint, ``size`` a page whatever ``per_page`` asks, with absolute Links."""
    seen: list[requests.PreparedRequest] = []

    def callback(request: requests.PreparedRequest) -> Reply:
        seen.append(request)
        if request.headers.get("Authorization") != f"Bearer {PAT}":
            return json_reply(
                {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}, 401
            )
        params = query(request)
        page = int(params.get("page", ["1"])[0])
        chunk = items[(page - 1) * size : page * size]
        headers = {}
        base = f"{API}{path}?" + "&".join(f"{k}={v[0]}" for k, v in params.items() if k != "page")
        if page * size < len(items):
            last = (len(items) + size - 1) // size
            headers["Link"] = f'<{base}&page={page + 1}>; rel="next", <{base}&page={last}>; rel="last"'
        return json_reply(chunk, headers=headers)

    rsps.add_callback(responses.GET, re.compile(re.escape(API + path) + r"(\?.*)?$"), callback=callback)
    return seen


def package(name: str, owner: str) -> dict[str, Any]:
    return {
        "id": hash(name) % 10_000,
        "name": name,
        "package_type": "container",
        "owner": {"login": owner, "type": "User"},
        "visibility": "private",
        "url": f"{API}/users/{owner}/packages/container/{name}",
    }


def test_own_packages_over_three_pages(rsps: responses.RequestsMock) -> None:
    seen = github_list(
        rsps, "/user/packages", [package(n, USER) for n in ("web", "api", "tools/cli", "db", "worker")]
    )
    client = connect("github-cr", "ghcr.io", USER, PAT)
    assert client.list_repositories() == [
        "octo-dev/api",
        "octo-dev/db",
        "octo-dev/tools/cli",
        "octo-dev/web",
        "octo-dev/worker",
    ]
    assert len(seen) == 3
    assert all(query(r)["package_type"] == ["container"] and r.headers["X-GitHub-Api-Version"] for r in seen)


def test_organisation_from_registry_base(rsps: responses.RequestsMock) -> None:
    github_list(rsps, "/orgs/acme/packages", [package("web", "acme")])
    assert connect("github-cr", "ghcr.io/acme", USER, PAT).list_repositories() == ["acme/web"]


def test_other_user_after_the_organisation_404(rsps: responses.RequestsMock) -> None:
    rsps.get(
        re.compile(re.escape(f"{API}/orgs/someone/packages") + r".*"),
        json={"message": "Not Found"},
        status=404,
    )
    github_list(rsps, "/users/someone/packages", [package("public-tool", "someone")])
    assert connect("github-cr", "ghcr.io/someone", USER, PAT).list_repositories() == ["someone/public-tool"]


def test_token_without_read_packages_is_unsupported_not_a_failure(rsps: responses.RequestsMock) -> None:
    rsps.get(
        re.compile(re.escape(f"{API}/user/packages") + r".*"),
        json={"message": f"You need at least read:packages scope to list packages ({PAT[:4]})."},
        status=403,
    )
    with pytest.raises(errors.Unsupported, match="list images explicitly") as caught:
        connect("github-cr", "ghcr.io", USER, PAT).list_repositories()
    assert PAT not in str(caught.value) and caught.value.status == 501


def test_no_token_means_no_listing() -> None:
    with pytest.raises(errors.Unsupported):
        connect("github-cr", "ghcr.io/acme").list_repositories()


def test_versions_give_tags_digests_and_times_over_three_pages(rsps: responses.RequestsMock) -> None:
    versions = [
        {
            "id": i,
            "name": f"sha256:{i:064x}",
            "created_at": "2024-04-01T00:00:00Z",
            "updated_at": f"2024-05-0{i + 1}T12:00:00Z",
            "metadata": {"package_type": "container", "container": {"tags": [f"v{i}"] if i != 3 else []}},
        }
        for i in range(6)
    ]
    seen = github_list(rsps, "/user/packages/container/tools%2Fcli/versions", versions)
    infos = connect("github-cr", "ghcr.io", USER, PAT).list_tags_with_metadata("octo-dev/tools/cli")
    assert [(i.tag, i.digest) for i in infos] == [(f"v{i}", f"sha256:{i:064x}") for i in (0, 1, 2, 4, 5)]
    assert (
        infos[0].last_pushed is not None and infos[0].last_pushed.isoformat() == "2024-05-01T12:00:00+00:00"
    )
    assert len(seen) == 3


def registry(rsps: responses.RequestsMock) -> MockRegistry:
    return MockRegistry(
        rsps,
        "ghcr.io",
        accepts=lambda u, p: (u, p) == (USER, PAT),
        realm="https://ghcr.io/token",
        service="ghcr.io",
        token_body=lambda n: {"token": f"ghcr-{n}"},
    )


def test_without_api_access_tags_come_from_the_registry(rsps: responses.RequestsMock) -> None:
    rsps.get(
        re.compile(re.escape(f"{API}/user/packages/container/web/versions") + r".*"),
        json={"message": "Forbidden"},
        status=403,
    )
    reg = registry(rsps)
    reg.route(
        "GET", "/v2/octo-dev/web/tags/list", lambda _: json_reply({"name": "octo-dev/web", "tags": ["1"]})
    )
    reg.route(
        "HEAD",
        "/v2/octo-dev/web/manifests/1",
        lambda _: (200, {"Docker-Content-Digest": "sha256:" + "1" * 64}, ""),
    )
    infos = connect("github-cr", "ghcr.io", USER, PAT).list_tags_with_metadata("octo-dev/web")
    assert [(i.tag, i.digest) for i in infos] == [("1", "sha256:" + "1" * 64)]


def test_unknown_package_is_not_found(rsps: responses.RequestsMock) -> None:
    for root in ("/orgs/acme", "/users/acme"):
        rsps.get(
            re.compile(re.escape(f"{API}{root}/packages/container/gone/versions") + r".*"),
            json={"message": "Package not found."},
            status=404,
        )
    with pytest.raises(errors.NotFound):
        connect("github-cr", "ghcr.io/acme", USER, PAT).list_tags_with_metadata("acme/gone")


def test_wrong_token_is_unauthorized_at_the_registry_and_not_repeated(rsps: responses.RequestsMock) -> None:
    registry(rsps).route("GET", "/v2/octo-dev/web/tags/list", lambda _: json_reply({}))
    with pytest.raises(errors.Unauthorized) as caught:
        connect("github-cr", "ghcr.io", USER, PAT + "x").list_tags("octo-dev/web")
    assert PAT not in str(caught.value)


def test_api_429_is_retried_with_back_off(rsps: responses.RequestsMock, sleeps: list[float]) -> None:
    rsps.get(
        re.compile(re.escape(f"{API}/user/packages") + r".*"),
        json={"message": "API rate limit exceeded"},
        status=429,
        headers={"Retry-After": "9", "X-RateLimit-Remaining": "0"},
    )
    github_list(rsps, "/user/packages", [package("web", USER)])
    assert connect("github-cr", "ghcr.io", USER, PAT, sleeps=sleeps).list_repositories() == ["octo-dev/web"]
    assert sleeps == [9.0]


def test_expired_registry_token_is_refreshed(rsps: responses.RequestsMock) -> None:
    reg = registry(rsps)
    reg.route(
        "GET", "/v2/octo-dev/web/tags/list", lambda _: json_reply({"name": "octo-dev/web", "tags": ["1"]})
    )
    client = connect("github-cr", "ghcr.io", USER, PAT)
    client.list_tags("octo-dev/web")
    reg.expire_tokens()
    assert client.list_tags("octo-dev/web") == ["1"] and reg.issued == 2
