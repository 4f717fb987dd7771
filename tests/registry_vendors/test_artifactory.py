"""``artifactory-cr`` against JFrog Artifactory's documented Docker API.

Shapes from ../shared/docs/registries.md §4 (jfrog.com/help "List Docker Repositories" and "List
Docker Tags"): ``GET /artifactory/api/docker/{repo-key}/v2/_catalog?n=&last=`` -> ``{"repositories"}``
("Security: Requires a privileged user"), ``GET /artifactory/api/docker/{repo-key}/v2/{image}/
tags/list?n=&last=`` -> ``{"name", "tags"}``, paged as the distribution spec says (``Link``); the
order ``/api/docker/<repo>/v2`` matters (``/api/docker/v2/<repo>`` is a 400); the subdomain and port
access methods serve ``/v2/`` at the root. Authentication: Basic user + password or token, or
``Authorization: Bearer <access token>``; the registry's own challenge is a Bearer realm per
repository (``.../api/docker/<repo-key>/v2/token``, registries.md marks that path as inferred),
answered per distribution's token spec.
"""

from __future__ import annotations

import pytest
import requests
import responses

from shared import errors
from tests.registry_vendors.support import MockRegistry, Reply, connect, json_reply, link_pages, oci_error

HOST = "acme.jfrog.io"
PREFIX = "/artifactory/api/docker/docker-local"
USER, PASSWORD = "ci-reader", "cmVmdGtuOjAxOjE3Unique-Art-Token"


def registry(rsps: responses.RequestsMock, host: str = HOST, prefix: str = PREFIX) -> MockRegistry:
    return MockRegistry(
        rsps,
        host,
        accepts=lambda u, p: (u, p) == (USER, PASSWORD),
        realm=f"https://{host}{prefix}/v2/token",
        service=host.split(":")[0],
    )


def test_repository_path_method_lists_the_repository_catalog_over_three_pages(
    rsps: responses.RequestsMock,
) -> None:
    reg = registry(rsps)
    names = [f"team/app-{i}" for i in range(8)]
    reg.route("GET", f"{PREFIX}/v2/_catalog", link_pages(names, "repositories", 3))
    client = connect("artifactory-cr", f"{HOST}{PREFIX}", USER, PASSWORD)
    assert client.list_repositories() == names
    assert reg.issued == 1


def test_subdomain_method_uses_the_root(rsps: responses.RequestsMock) -> None:
    reg = registry(rsps, host="docker-local.acme.jfrog.io", prefix="")
    reg.route("GET", "/v2/_catalog", lambda _: json_reply({"repositories": ["a"]}))
    assert connect("artifactory-cr", "docker-local.acme.jfrog.io", USER, PASSWORD).list_repositories() == [
        "a"
    ]


def test_port_method_uses_the_root(rsps: responses.RequestsMock) -> None:
    reg = registry(rsps, host="artifactory.internal:8443", prefix="")
    reg.route("GET", "/v2/_catalog", lambda _: json_reply({"repositories": ["b"]}))
    assert connect("artifactory-cr", "artifactory.internal:8443", USER, PASSWORD).list_repositories() == ["b"]


def test_access_token_alone_goes_as_bearer_without_an_exchange(rsps: responses.RequestsMock) -> None:
    seen: list[str | None] = []

    def catalog(request: requests.PreparedRequest) -> Reply:
        seen.append(request.headers.get("Authorization"))
        return json_reply({"repositories": ["a"]})

    rsps.add_callback(responses.GET, f"https://{HOST}{PREFIX}/v2/_catalog?n=1000", callback=catalog)
    assert connect("artifactory-cr", f"{HOST}{PREFIX}", "", PASSWORD).list_repositories() == ["a"]
    assert seen == [f"Bearer {PASSWORD}"]


def test_tags_with_digests_over_three_pages_under_the_prefix(rsps: responses.RequestsMock) -> None:
    reg = registry(rsps)
    reg.route(
        "GET",
        f"{PREFIX}/v2/team/web/tags/list",
        link_pages(["1", "2", "3", "4", "5"], "tags", 2, name="team/web"),
    )
    for tag in "12345":
        reg.route(
            "HEAD",
            f"{PREFIX}/v2/team/web/manifests/{tag}",
            lambda _, t=tag: (200, {"Docker-Content-Digest": "sha256:" + t * 64}, ""),
        )
    infos = connect("artifactory-cr", f"{HOST}{PREFIX}", USER, PASSWORD).list_tags_with_metadata("team/web")
    assert [(i.tag, i.digest) for i in infos] == [(t, "sha256:" + t * 64) for t in "12345"]


def test_wrong_password_is_unauthorized_and_not_repeated(rsps: responses.RequestsMock) -> None:
    registry(rsps).route("GET", f"{PREFIX}/v2/_catalog", lambda _: json_reply({"repositories": []}))
    with pytest.raises(errors.Unauthorized) as caught:
        connect("artifactory-cr", f"{HOST}{PREFIX}", USER, PASSWORD + "0").list_repositories()
    assert PASSWORD not in str(caught.value)


def test_unprivileged_catalog_is_denied_with_advice(rsps: responses.RequestsMock) -> None:
    registry(rsps).route(
        "GET", f"{PREFIX}/v2/_catalog", lambda _: (403, {}, oci_error("DENIED", f"forbidden for {PASSWORD}"))
    )
    with pytest.raises(errors.Denied, match="list images explicitly") as caught:
        connect("artifactory-cr", f"{HOST}{PREFIX}", USER, PASSWORD).list_repositories()
    assert PASSWORD not in str(caught.value)


def test_unknown_image_is_not_found(rsps: responses.RequestsMock) -> None:
    registry(rsps).route(
        "GET",
        f"{PREFIX}/v2/gone/tags/list",
        lambda _: (404, {}, oci_error("NAME_UNKNOWN", "Repository name not known")),
    )
    with pytest.raises(errors.NotFound):
        connect("artifactory-cr", f"{HOST}{PREFIX}", USER, PASSWORD).list_tags("gone")


def test_429_is_waited_out(rsps: responses.RequestsMock, sleeps: list[float]) -> None:
    answers = iter([(429, {"Retry-After": "1"}, oci_error("TOOMANYREQUESTS", "slow"))])
    registry(rsps).route(
        "GET", f"{PREFIX}/v2/_catalog", lambda _: next(answers, None) or json_reply({"repositories": ["a"]})
    )
    assert connect(
        "artifactory-cr", f"{HOST}{PREFIX}", USER, PASSWORD, sleeps=sleeps
    ).list_repositories() == ["a"]
    assert sleeps == [1.0]


def test_expired_token_is_refreshed(rsps: responses.RequestsMock) -> None:
    reg = registry(rsps)
    reg.route("GET", f"{PREFIX}/v2/_catalog", lambda _: json_reply({"repositories": ["a"]}))
    client = connect("artifactory-cr", f"{HOST}{PREFIX}", USER, PASSWORD)
    client.list_repositories()
    reg.expire_tokens()
    assert client.list_repositories() == ["a"] and reg.issued == 2


def test_legacy_type_name(rsps: responses.RequestsMock) -> None:
    registry(rsps).route("GET", f"{PREFIX}/v2/_catalog", lambda _: json_reply({"repositories": ["a"]}))
    client = connect("ArtifactoryCR", f"{HOST}{PREFIX}", USER, PASSWORD)
    assert type(client).__name__ == "Artifactory" and client.list_repositories() == ["a"]


@pytest.mark.parametrize(
    "base", [f"{HOST}/artifactory/api/docker", f"{HOST}/artifactory/api/docker/v2/docker-local"]
)
def test_registry_base_without_the_repository_key_first_is_refused(base: str) -> None:
    with pytest.raises(errors.CredentialsError, match="repository-key"):
        connect("artifactory-cr", base, USER, PASSWORD)
