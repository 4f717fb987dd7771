"""``digitalocean-cr`` against DigitalOcean's documented API.

Shapes from ../shared/docs/registries.md §12 and the DigitalOcean API reference (docs.digitalocean.com
/reference/api, "Container Registry"): ``GET /v2/registry`` -> ``{"registry": {name, region, ...}}``;
``GET /v2/registry/{registry}/repositoriesV2?per_page=&page_token=`` -> ``{"repositories":
[{registry_name, name, tag_count, manifest_count, latest_manifest}], "meta": {"total"}, "links":
{"pages": {"next", "last"}}}``; ``GET /v2/registry/{registry}/repositories/{repo}/tags`` ->
``{"tags": [{registry_name, repository, tag, manifest_digest, compressed_size_bytes, size_bytes,
updated_at}], ...}`` with ``/`` in a repository name sent as ``%2F``; errors ``{"id", "message"}``;
``Authorization: Bearer <token>``. The broker sends the token as username and password (SB). The
registry's token realm on api.digitalocean.com is assumed (registries.md gives no realm).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
import responses

from shared import errors
from tests.registry_vendors.support import MockRegistry, Reply, connect, json_reply, query

API = "https://api.digitalocean.com"
HOST = "registry.digitalocean.com"
TOKEN = "dop_v1_UniqueDigitalOceanToken0000000000000000000000"


def do_list(
    rsps: responses.RequestsMock,
    path: str,
    key: str,
    items: list[dict[str, Any]],
    size: int = 2,
    token_param: str = "page_token",
) -> list[requests.PreparedRequest]:
    seen: list[requests.PreparedRequest] = []

    def callback(request: requests.PreparedRequest) -> Reply:
        seen.append(request)
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return json_reply({"id": "unauthorized", "message": "Unable to authenticate you."}, 401)
        params = query(request)
        page = int(params.get("page", ["1"])[0])
        chunk = items[(page - 1) * size : page * size]
        pages: dict[str, str] = {}
        if page * size < len(items):
            pages["next"] = f"{API}{path}?page={page + 1}&{token_param}=tok{page + 1}&per_page={size}"
        return json_reply({key: chunk, "meta": {"total": len(items)}, "links": {"pages": pages}})

    rsps.add_callback(responses.GET, re.compile(re.escape(API + path) + r"(\?.*)?$"), callback=callback)
    return seen


def test_repositories_over_three_pages(rsps: responses.RequestsMock) -> None:
    repos = [
        {"registry_name": "acme", "name": n, "tag_count": 1, "manifest_count": 1}
        for n in ("web", "api", "team/cli", "db", "z")
    ]
    seen = do_list(rsps, "/v2/registry/acme/repositoriesV2", "repositories", repos)
    client = connect("digitalocean-cr", f"{HOST}/acme", TOKEN, TOKEN)
    assert client.list_repositories() == ["acme/api", "acme/db", "acme/team/cli", "acme/web", "acme/z"]
    assert (
        len(seen) == 3 and query(seen[0])["per_page"] == ["200"] and "page_token=tok2" in (seen[1].url or "")
    )


def test_registry_name_is_read_when_not_given(rsps: responses.RequestsMock) -> None:
    rsps.get(
        f"{API}/v2/registry", json={"registry": {"name": "acme", "region": "fra1", "storage_usage_bytes": 0}}
    )
    do_list(
        rsps, "/v2/registry/acme/repositoriesV2", "repositories", [{"registry_name": "acme", "name": "web"}]
    )
    assert connect("digitalocean-cr", HOST, TOKEN, TOKEN).list_repositories() == ["acme/web"]


def test_tags_with_digests_and_times_over_three_pages(rsps: responses.RequestsMock) -> None:
    tags = [
        {
            "registry_name": "acme",
            "repository": "team/cli",
            "tag": f"v{i}",
            "manifest_digest": f"sha256:{i:064x}",
            "compressed_size_bytes": 10,
            "size_bytes": 20,
            "updated_at": f"2024-05-0{i + 1}T10:00:00Z",
        }
        for i in range(5)
    ]
    seen = do_list(rsps, "/v2/registry/acme/repositories/team%2Fcli/tags", "tags", tags, token_param="x")
    infos = connect("digitalocean-cr", f"{HOST}/acme", TOKEN, TOKEN).list_tags_with_metadata("acme/team/cli")
    assert [(i.tag, i.digest) for i in infos] == [(f"v{i}", f"sha256:{i:064x}") for i in range(5)]
    assert (
        infos[4].last_pushed is not None and infos[4].last_pushed.isoformat() == "2024-05-05T10:00:00+00:00"
    )
    assert len(seen) == 3


def test_token_is_username_and_password_at_the_registry(rsps: responses.RequestsMock) -> None:
    reg = MockRegistry(
        rsps, HOST, accepts=lambda u, p: u == p == TOKEN, realm=f"{API}/v2/registry/auth", service=HOST
    )
    reg.route("GET", "/v2/acme/web/tags/list", lambda _: json_reply({"name": "acme/web", "tags": ["1"]}))
    client = connect("digitalocean-cr", f"{HOST}/acme", TOKEN, TOKEN)
    assert client.list_tags("acme/web") == ["1"]
    reg.expire_tokens()
    assert client.list_tags("acme/web") == ["1"] and reg.issued == 2
    assert TOKEN not in repr(client.credentials)  # type: ignore[attr-defined]


def test_bad_token_is_unauthorized_and_not_repeated(rsps: responses.RequestsMock) -> None:
    rsps.get(
        re.compile(re.escape(f"{API}/v2/registry/acme/repositoriesV2") + r".*"),
        json={"id": "unauthorized", "message": f"Unable to authenticate you with {TOKEN}."},
        status=401,
    )
    with pytest.raises(errors.Unauthorized) as caught:
        connect("digitalocean-cr", f"{HOST}/acme", TOKEN, TOKEN).list_repositories()
    assert TOKEN not in str(caught.value) and "Unable to authenticate you" in str(caught.value)


def test_forbidden_and_not_found(rsps: responses.RequestsMock) -> None:
    rsps.get(
        re.compile(re.escape(f"{API}/v2/registry/acme/repositoriesV2") + r".*"),
        json={"id": "forbidden", "message": "You do not have access for the attempted action."},
        status=403,
    )
    rsps.get(
        re.compile(re.escape(f"{API}/v2/registry/acme/repositories/gone/tags") + r".*"),
        json={"id": "not_found", "message": "The resource you were accessing could not be found."},
        status=404,
    )
    client = connect("digitalocean-cr", f"{HOST}/acme", TOKEN, TOKEN)
    with pytest.raises(errors.Denied):
        client.list_repositories()
    with pytest.raises(errors.NotFound):
        client.list_tags_with_metadata("acme/gone")


def test_429_without_retry_after_backs_off_exponentially(
    rsps: responses.RequestsMock, sleeps: list[float]
) -> None:
    rsps.get(
        re.compile(re.escape(f"{API}/v2/registry/acme/repositoriesV2") + r".*"),
        json={"id": "too_many_requests", "message": "API Rate limit exceeded."},
        status=429,
        headers={"ratelimit-limit": "5000", "ratelimit-remaining": "0", "ratelimit-reset": "1714557600"},
    )
    do_list(
        rsps, "/v2/registry/acme/repositoriesV2", "repositories", [{"registry_name": "acme", "name": "web"}]
    )
    assert connect("digitalocean-cr", f"{HOST}/acme", TOKEN, TOKEN, sleeps=sleeps).list_repositories() == [
        "acme/web"
    ]
    assert len(sleeps) == 1 and 0 < sleeps[0] <= 0.5
