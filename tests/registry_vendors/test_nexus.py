"""``nexus-cr`` against Sonatype Nexus Repository 3's documented behaviour.

Shapes from ../shared/docs/registries.md §11 (help.sonatype.com "private registry for Docker",
"Docker subdomain connector"): a Docker repository is served on its own connector port, on a
subdomain, under ``/repository/<name>``, or by path-based routing with the repository name as the
first segment of every image name; authentication is Basic (``Basic realm="Sonatype Nexus
Repository Manager"``) or, with the "Docker Bearer Token Realm" enabled, distribution's token flow;
``_catalog`` and tags/list as in the distribution spec. The REST components API (Sonatype REST API
reference, "Components": ``GET /service/rest/v1/components?repository=&continuationToken=`` ->
``{"items": [{id, repository, format, group, name, version, assets}], "continuationToken"}``; marked
inferred in registries.md) lists a routed repository's images.
"""

from __future__ import annotations

import re

import pytest
import requests
import responses

from shared import errors
from tests.registry_vendors.support import (
    MockRegistry,
    Reply,
    basic,
    connect,
    json_reply,
    link_pages,
    oci_error,
    query,
)

HOST = "nexus.acme.internal"
USER, PASSWORD = "scanner", "Nexus-Unique-Pass-3141"


def basic_registry(rsps: responses.RequestsMock, host: str) -> MockRegistry:
    return MockRegistry(
        rsps,
        host,
        accepts=lambda u, p: (u, p) == (USER, PASSWORD),
        basic_realm="Sonatype Nexus Repository Manager",
    )


def token_registry(rsps: responses.RequestsMock, host: str) -> MockRegistry:
    return MockRegistry(
        rsps,
        host,
        accepts=lambda u, p: (u, p) == (USER, PASSWORD),
        realm=f"https://{host}/v2/token",
        service=f"https://{host}/v2/token",
    )


def test_port_connector_with_basic_auth_lists_three_pages(rsps: responses.RequestsMock) -> None:
    reg = basic_registry(rsps, f"{HOST}:8082")
    names = [f"team/app-{i}" for i in range(7)]
    reg.route("GET", "/v2/_catalog", link_pages(names, "repositories", 3))
    client = connect("nexus-cr", f"{HOST}:8082", USER, PASSWORD)
    assert client.list_repositories() == names
    catalog = [c.request for c in rsps.calls if "/_catalog" in (c.request.url or "")]
    assert catalog[-1].headers["Authorization"] == basic(USER, PASSWORD)


def test_subdomain_connector_with_the_bearer_token_realm(rsps: responses.RequestsMock) -> None:
    reg = token_registry(rsps, f"docker-hosted.{HOST}")
    reg.route("GET", "/v2/team/web/tags/list", link_pages(["1", "2", "3", "4"], "tags", 2, name="team/web"))
    client = connect("nexus-cr", f"docker-hosted.{HOST}", USER, PASSWORD)
    assert client.list_tags("team/web") == ["1", "2", "3", "4"]
    reg.expire_tokens()
    assert client.list_tags("team/web") == ["1", "2", "3", "4"]
    assert reg.issued == 2


def test_repository_path_puts_v2_under_it(rsps: responses.RequestsMock) -> None:
    reg = basic_registry(rsps, HOST)
    reg.route("GET", "/repository/docker-hosted/v2/_catalog", lambda _: json_reply({"repositories": ["web"]}))
    assert connect("nexus-cr", f"{HOST}/repository/docker-hosted", USER, PASSWORD).list_repositories() == [
        "web"
    ]


def test_path_based_routing_lists_components_over_three_pages(rsps: responses.RequestsMock) -> None:
    pages = {
        "": ([{"name": "team/web", "version": "1.0"}, {"name": "team/web", "version": "1.1"}], "cont-1"),
        "cont-1": ([{"name": "db", "version": "16"}], "cont-2"),
        "cont-2": ([{"name": "worker", "version": "latest"}], None),
    }
    seen: list[requests.PreparedRequest] = []

    def components(request: requests.PreparedRequest) -> Reply:
        seen.append(request)
        if request.headers.get("Authorization") != basic(USER, PASSWORD):
            return 401, {}, ""
        params = query(request)
        assert params["repository"] == ["docker-hosted"]
        items, token = pages[params.get("continuationToken", [""])[0]]
        full = [
            {
                "id": f"id-{i}",
                "repository": "docker-hosted",
                "format": "docker",
                "group": None,
                "assets": [],
                **item,
            }
            for i, item in enumerate(items)
        ]
        return json_reply({"items": full, "continuationToken": token})

    rsps.add_callback(
        responses.GET,
        re.compile(rf"https://{re.escape(HOST)}/service/rest/v1/components\?.*"),
        callback=components,
    )
    client = connect("nexus-cr", f"{HOST}/docker-hosted", USER, PASSWORD)
    assert client.list_repositories() == [
        "docker-hosted/db",
        "docker-hosted/team/web",
        "docker-hosted/worker",
    ]
    assert len(seen) == 3
    reg = basic_registry(rsps, HOST)
    reg.route(
        "GET",
        "/v2/docker-hosted/team/web/tags/list",
        lambda _: json_reply({"name": "docker-hosted/team/web", "tags": ["1.0", "1.1"]}),
    )
    assert client.list_tags("docker-hosted/team/web") == ["1.0", "1.1"]  # /v2 at the root: no prefix


def test_wrong_password_is_unauthorized_and_not_repeated(rsps: responses.RequestsMock) -> None:
    basic_registry(rsps, f"{HOST}:8082").route(
        "GET", "/v2/_catalog", lambda _: json_reply({"repositories": []})
    )
    with pytest.raises(errors.Unauthorized) as caught:
        connect("nexus-cr", f"{HOST}:8082", USER, "x" + PASSWORD).list_repositories()
    assert PASSWORD not in str(caught.value)


def test_missing_browse_privilege_is_denied(rsps: responses.RequestsMock) -> None:
    basic_registry(rsps, f"{HOST}:8082").route(
        "GET",
        "/v2/_catalog",
        lambda _: (403, {}, oci_error("DENIED", f"user {USER}:{PASSWORD} lacks browse")),
    )
    with pytest.raises(errors.Denied) as caught:
        connect("nexus-cr", f"{HOST}:8082", USER, PASSWORD).list_repositories()
    assert PASSWORD not in str(caught.value)


def test_unknown_image_is_not_found_and_429_is_retried(
    rsps: responses.RequestsMock, sleeps: list[float]
) -> None:
    reg = basic_registry(rsps, f"{HOST}:8082")
    reg.route(
        "GET",
        "/v2/gone/tags/list",
        lambda _: (404, {}, oci_error("NAME_UNKNOWN", "repository name not known to registry")),
    )
    answers = iter([(429, {"Retry-After": "2"}, "")])
    reg.route(
        "GET",
        "/v2/web/tags/list",
        lambda _: next(answers, None) or json_reply({"name": "web", "tags": ["1"]}),
    )
    client = connect("nexus-cr", f"{HOST}:8082", USER, PASSWORD, sleeps=sleeps)
    with pytest.raises(errors.NotFound):
        client.list_tags("gone")
    assert client.list_tags("web") == ["1"] and sleeps == [2.0]
