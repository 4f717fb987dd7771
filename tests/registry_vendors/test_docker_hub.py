"""``docker-hub`` against Docker Hub's documented APIs.

Shapes from ../shared/docs/registries.md §2 and §1.6, which cite the Docker Hub API reference
(docs.docker.com/reference/api/hub/latest: ``AuthCreateAccessToken`` ``POST /v2/auth/token``
``{"identifier","secret"}`` -> ``{"access_token"}`` valid 10 minutes; ``ListRepositories`` and
``ListRepositoryTags``: ``{"count","next","previous","results"}`` with ``page_size`` <= 100 and an
absolute ``next`` URL; tags with ``digest``, ``last_updated``, ``tag_last_pushed``), distribution's
token spec for ``auth.docker.io`` (``service=registry.docker.io``, ``{"token","access_token",
"expires_in","issued_at"}``), and the rate-limit headers Docker Hub sends on manifest responses
(``ratelimit-limit: 100;w=21600``, ``ratelimit-remaining``; 429 ``TOOMANYREQUESTS`` "You have
reached your pull rate limit").
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import requests
import responses

from shared import errors
from tests.registry_vendors.support import MockRegistry, Reply, connect, json_reply, oci_error, query

HUB = "https://hub.docker.com"
REGISTRY = "registry-1.docker.io"
USER = "acme-ci"
PAT = "dckr_pat_Unique-Hub-Secret-41d"


class Hub:
    """The Hub API: login, then Bearer calls with the access token it issued."""

    def __init__(self, rsps: responses.RequestsMock) -> None:
        self.rsps = rsps
        self.logins = 0
        self.valid: set[str] = set()
        rsps.add_callback(responses.POST, f"{HUB}/v2/auth/token", callback=self._login)

    def _login(self, request: requests.PreparedRequest) -> Reply:
        body = json.loads(request.body or b"{}")
        if body != {"identifier": USER, "secret": PAT}:
            return json_reply({"message": f"incorrect secret {body.get('secret')}"}, 401)
        self.logins += 1
        token = f"hub-jwt-{self.logins}"
        self.valid.add(token)
        return json_reply({"access_token": token})

    def paged(
        self, path: str, results: list[dict[str, Any]], size: int = 100
    ) -> list[requests.PreparedRequest]:
        seen: list[requests.PreparedRequest] = []

        def callback(request: requests.PreparedRequest) -> Reply:
            seen.append(request)
            if request.headers.get("Authorization", "")[7:] not in self.valid:
                return json_reply({"message": "authentication required"}, 401)
            params = query(request)
            page, page_size = int(params.get("page", ["1"])[0]), int(params["page_size"][0])
            assert page_size <= 100
            chunk = results[(page - 1) * page_size : page * page_size]
            more = page * page_size < len(results)
            return json_reply(
                {
                    "count": len(results),
                    "next": f"{HUB}{path}?page={page + 1}&page_size={page_size}" if more else None,
                    "previous": f"{HUB}{path}?page={page - 1}&page_size={page_size}" if page > 1 else None,
                    "results": chunk,
                }
            )

        self.rsps.add_callback(
            responses.GET, re.compile(re.escape(HUB + path) + r"(\?.*)?$"), callback=callback
        )
        return seen


def registry(rsps: responses.RequestsMock) -> MockRegistry:
    return MockRegistry(
        rsps,
        REGISTRY,
        accepts=lambda u, p: (u, p) == (USER, PAT),
        realm="https://auth.docker.io/token",
        service="registry.docker.io",
        token_body=lambda n: {
            "token": f"reg-{n}",
            "access_token": f"reg-{n}",
            "expires_in": 300,
            "issued_at": "2024-05-01T10:00:00Z",
        },
    )


def test_login_then_repositories_over_three_pages(rsps: responses.RequestsMock) -> None:
    hub = Hub(rsps)
    repos = [{"name": f"svc-{i:03d}", "namespace": USER, "repository_type": "image"} for i in range(230)]
    seen = hub.paged(f"/v2/namespaces/{USER}/repositories", repos)
    client = connect("docker-hub", "docker.io", USER, PAT)
    assert client.list_repositories() == [f"{USER}/svc-{i:03d}" for i in range(230)]
    assert hub.logins == 1 and len(seen) == 3
    assert all(r.headers["Authorization"] == "Bearer hub-jwt-1" for r in seen)


def test_namespace_from_registry_base(rsps: responses.RequestsMock) -> None:
    hub = Hub(rsps)
    hub.paged("/v2/namespaces/acme/repositories", [{"name": "api", "namespace": "acme"}])
    assert connect("docker-hub", "docker.io/acme", USER, PAT).list_repositories() == ["acme/api"]


def test_tags_with_metadata_over_three_pages_and_head_for_missing_digests(
    rsps: responses.RequestsMock,
) -> None:
    hub = Hub(rsps)
    tags = [
        {
            "name": f"1.{i}",
            "digest": f"sha256:{i:064x}",
            "last_updated": "2024-05-02T00:00:00.5Z",
            "tag_last_pushed": "2024-05-01T09:30:00.123456Z",
            "full_size": 1000,
        }
        for i in range(205)
    ]
    tags.append({"name": "legacy", "last_updated": "2019-01-01T00:00:00Z"})  # no digest in the API
    hub.paged(f"/v2/namespaces/{USER}/repositories/web/tags", tags)
    reg = registry(rsps)
    reg.route(
        "HEAD",
        f"/v2/{USER}/web/manifests/legacy",
        lambda _: (200, {"Docker-Content-Digest": "sha256:" + "e" * 64, "Content-Length": "10"}, ""),
    )
    client = connect("docker-hub", "docker.io", USER, PAT)
    infos = {i.tag: i for i in client.list_tags_with_metadata(f"{USER}/web")}
    assert len(infos) == 206
    assert infos["1.7"].digest == f"sha256:{7:064x}"
    assert (
        infos["1.7"].last_pushed is not None
        and infos["1.7"].last_pushed.isoformat() == "2024-05-01T09:30:00.123456+00:00"
    )
    assert infos["legacy"].digest == "sha256:" + "e" * 64
    assert not any(c.request.method == "GET" and "/manifests/" in (c.request.url or "") for c in rsps.calls)


def test_without_hub_access_digests_come_from_head_requests_not_pulls(rsps: responses.RequestsMock) -> None:
    rsps.get(
        f"{HUB}/v2/namespaces/library/repositories/nginx/tags", json={"message": "forbidden"}, status=403
    )
    reg = MockRegistry(
        rsps,
        REGISTRY,
        accepts=lambda u, p: True,
        realm="https://auth.docker.io/token",
        service="registry.docker.io",
    )
    reg.route(
        "GET",
        "/v2/library/nginx/tags/list",
        lambda _: json_reply({"name": "library/nginx", "tags": ["1.25", "1.27"]}),
    )
    for tag in ("1.25", "1.27"):
        reg.route(
            "HEAD",
            f"/v2/library/nginx/manifests/{tag}",
            lambda _, t=tag: (
                200,
                {"Docker-Content-Digest": "sha256:" + t.replace(".", "").ljust(64, "0")},
                "",
            ),
        )
    client = connect("docker-hub", "docker.io")  # anonymous
    infos = client.list_tags_with_metadata("nginx")  # official images live under library/
    assert [i.tag for i in infos] == ["1.25", "1.27"] and all(i.digest for i in infos)
    manifest_calls = [c.request.method for c in rsps.calls if "/manifests/" in (c.request.url or "")]
    assert manifest_calls and set(manifest_calls) == {"HEAD"}


def test_wrong_secret_is_unauthorized_and_never_repeated(rsps: responses.RequestsMock) -> None:
    Hub(rsps)
    client = connect("docker-hub", "docker.io", USER, PAT + "-old")
    with pytest.raises(errors.Unauthorized) as caught:
        client.list_repositories()
    assert PAT not in str(caught.value)  # the Hub echoed the secret; the agent scrubbed it


def test_private_namespace_is_denied(rsps: responses.RequestsMock) -> None:
    Hub(rsps)
    rsps.get(
        re.compile(re.escape(f"{HUB}/v2/namespaces/other/repositories") + r".*"),
        json={"message": "forbidden: no access to namespace"},
        status=403,
    )
    with pytest.raises(errors.Denied, match="forbidden"):
        connect("docker-hub", "docker.io/other", USER, PAT).list_repositories()


def test_unknown_namespace_is_not_found(rsps: responses.RequestsMock) -> None:
    Hub(rsps)
    rsps.get(
        re.compile(re.escape(f"{HUB}/v2/namespaces/ghost/repositories") + r".*"),
        json={"message": "object not found"},
        status=404,
    )
    with pytest.raises(errors.NotFound):
        connect("docker-hub", "docker.io/ghost", USER, PAT).list_repositories()


def test_api_429_is_retried_after_the_advertised_wait(
    rsps: responses.RequestsMock, sleeps: list[float]
) -> None:
    hub = Hub(rsps)
    rsps.get(
        re.compile(re.escape(f"{HUB}/v2/namespaces/{USER}/repositories") + r".*"),
        json={"message": "too many requests"},
        status=429,
        headers={"Retry-After": "7"},
    )
    hub.paged(f"/v2/namespaces/{USER}/repositories", [{"name": "one", "namespace": USER}])
    client = connect("docker-hub", "docker.io", USER, PAT, sleeps=sleeps)
    assert client.list_repositories() == [f"{USER}/one"]
    assert sleeps == [7.0]


def test_spent_pull_allowance_stops_pulls_but_not_head_requests(
    rsps: responses.RequestsMock, sleeps: list[float]
) -> None:
    reg = registry(rsps)
    limits = {
        "ratelimit-limit": "100;w=21600",
        "ratelimit-remaining": "0;w=21600",
        "docker-ratelimit-source": "203.0.113.7",
    }
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": "sha256:" + "c" * 64,
                "size": 2,
            },
            "layers": [],
        }
    )
    reg.route(
        "GET",
        f"/v2/{USER}/web/manifests/1.0",
        lambda _: (200, {**limits, "Content-Type": "application/vnd.oci.image.manifest.v1+json"}, manifest),
    )
    reg.route(
        "HEAD",
        f"/v2/{USER}/web/manifests/1.0",
        lambda _: (200, {"Docker-Content-Digest": "sha256:" + "d" * 64}, ""),
    )
    client = connect("docker-hub", "docker.io", USER, PAT, sleeps=sleeps)
    client.get_manifest(f"{USER}/web", "1.0")  # the last pull of the window
    before = len(rsps.calls)
    with pytest.raises(errors.RateLimited, match=r"pull limit \(100 pulls per 21600 s\)"):
        client.get_manifest(f"{USER}/web", "1.0")
    assert len(rsps.calls) == before  # refused locally: nothing was sent
    assert client.head_digest(f"{USER}/web", "1.0") == "sha256:" + "d" * 64  # HEAD is not a pull
    assert sleeps == []


def test_pull_limit_429_fails_at_once_instead_of_sleeping_for_hours(
    rsps: responses.RequestsMock, sleeps: list[float]
) -> None:
    reg = registry(rsps)
    reg.route(
        "GET",
        f"/v2/{USER}/web/manifests/2.0",
        lambda _: (
            429,
            {"ratelimit-limit": "100;w=21600", "ratelimit-remaining": "0;w=21600"},
            oci_error("TOOMANYREQUESTS", "You have reached your pull rate limit."),
        ),
    )
    client = connect("docker-hub", "docker.io", USER, PAT, sleeps=sleeps)
    with pytest.raises(errors.RateLimited, match="pull rate limit"):
        client.get_manifest(f"{USER}/web", "2.0")
    assert sleeps == []


def test_expired_hub_token_is_renewed_by_logging_in_again(rsps: responses.RequestsMock) -> None:
    hub = Hub(rsps)
    hub.paged(f"/v2/namespaces/{USER}/repositories", [{"name": "one", "namespace": USER}])
    client = connect("docker-hub", "docker.io", USER, PAT)
    assert client.list_repositories() == [f"{USER}/one"]
    hub.valid.clear()  # the 10 minutes have passed server-side
    assert client.list_repositories() == [f"{USER}/one"]
    assert hub.logins == 2


def test_hub_token_is_renewed_before_its_ten_minutes_run_out(rsps: responses.RequestsMock) -> None:
    hub = Hub(rsps)
    hub.paged(f"/v2/namespaces/{USER}/repositories", [{"name": "one", "namespace": USER}])
    client = connect("docker-hub", "docker.io", USER, PAT)
    now = [1_000_000.0]
    client.hub.auth.login.clock = lambda: now[0]  # type: ignore[attr-defined]
    client.list_repositories()
    now[0] += 200
    client.list_repositories()
    assert hub.logins == 1
    now[0] += 400  # 600 s after login: past the renewal point
    client.list_repositories()
    assert hub.logins == 2


def test_expired_registry_token_is_refreshed(rsps: responses.RequestsMock) -> None:
    reg = registry(rsps)
    reg.route(
        "HEAD",
        "/v2/library/alpine/manifests/3",
        lambda _: (200, {"Docker-Content-Digest": "sha256:" + "a" * 64}, ""),
    )
    client = connect("docker-hub", "docker.io", USER, PAT)
    assert client.head_digest("alpine", "3") == "sha256:" + "a" * 64
    reg.expire_tokens()
    assert client.head_digest("alpine", "3") == "sha256:" + "a" * 64
    assert reg.issued == 2
    assert "scope=repository%3Alibrary%2Falpine%3Apull" in (reg.token_requests[-1].url or "")


def test_legacy_type_name(rsps: responses.RequestsMock) -> None:
    hub = Hub(rsps)
    hub.paged(f"/v2/namespaces/{USER}/repositories", [{"name": "one", "namespace": USER}])
    client = connect("DockerHub", "index.docker.io", USER, PAT)
    assert client.transport.base_url == f"https://{REGISTRY}"
    assert client.list_repositories() == [f"{USER}/one"]
