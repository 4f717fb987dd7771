"""The harness itself works: checked with plain `requests` and `skopeo`, not with the agent's client."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import requests

from tests.harness.images import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST
from tests.harness.registry import (
    MANIFEST_ACCEPT,
    PASSWORD,
    READER,
    READER_PASSWORD,
    USERNAME,
    Mode,
    RunningRegistry,
)
from tests.harness.seed import MANY_TAGS, MANY_TAGS_REPO, SeedInfo, archive


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, params = header.partition(" ")
    return scheme, dict(re.findall(r'(\w+)="([^"]*)"', params))


def _plain() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxies for loopback
    return session


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _token(reg: RunningRegistry, *scopes: str, auth: tuple[str, str] | None = (USERNAME, PASSWORD)) -> str:
    """Do the GET token dance the way a client would, from the registry's own challenge."""
    with _plain() as http:
        challenge = http.get(f"{reg.url}/v2/", timeout=5)
        scheme, params = _challenge(challenge.headers["WWW-Authenticate"])
        assert scheme == "Bearer"
        query = [("service", params["service"])] + [("scope", s) for s in scopes]
        got = http.get(params["realm"], params=query, auth=auth, timeout=5)
        got.raise_for_status()
        body = got.json()
    assert body["token"] == body["access_token"]
    assert body["expires_in"] >= 60 and body["issued_at"].endswith("Z")
    return str(body["token"])


def test_noauth_ping(registry_noauth: RunningRegistry) -> None:
    got = _plain().get(f"{registry_noauth.url}/v2/", timeout=5)
    assert got.status_code == 200
    assert got.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
    assert registry_noauth.host.startswith("127.0.0.1:") and registry_noauth.username is None


def test_basic_requires_credentials(registry_basic: RunningRegistry) -> None:
    http = _plain()
    anonymous = http.get(f"{registry_basic.url}/v2/", timeout=5)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic ")
    assert anonymous.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert http.get(f"{registry_basic.url}/v2/", auth=(USERNAME, "wrong"), timeout=5).status_code == 401
    assert http.get(f"{registry_basic.url}/v2/", auth=(USERNAME, PASSWORD), timeout=5).status_code == 200


def test_token_challenge_and_catalog(registry_token: RunningRegistry, seeded_images: SeedInfo) -> None:
    server = registry_token.token_server
    assert server is not None
    server.reset()
    http = _plain()
    ping = http.get(f"{registry_token.url}/v2/", timeout=5)
    assert ping.status_code == 401
    scheme, params = _challenge(ping.headers["WWW-Authenticate"])
    assert (scheme, params["realm"], params["service"]) == ("Bearer", server.realm, server.service)

    unauthorised = http.get(f"{registry_token.url}/v2/_catalog", timeout=5)
    assert _challenge(unauthorised.headers["WWW-Authenticate"])[1]["scope"] == "registry:catalog:*"

    token = _token(registry_token, "registry:catalog:*")
    catalog = http.get(f"{registry_token.url}/v2/_catalog", headers=_bearer(token), timeout=5)
    assert catalog.status_code == 200
    assert catalog.json()["repositories"] == sorted(seeded_images.repositories)
    assert server.count("registry:catalog:*") == 1 and server.count() == 1


def test_token_several_scopes_and_refusals(registry_token: RunningRegistry) -> None:
    server = registry_token.token_server
    assert server is not None
    http = _plain()
    token = _token(registry_token, "repository:busybox:pull", "repository:library/nginx:pull")
    for repo in ("busybox", "library/nginx"):
        got = http.get(f"{registry_token.url}/v2/{repo}/tags/list", headers=_bearer(token))
        assert got.status_code == 200, got.text
    # Not in the token: the registry asks for the missing scope.
    other = http.get(f"{registry_token.url}/v2/hello-world/tags/list", headers=_bearer(token))
    assert other.status_code == 401
    assert 'error="insufficient_scope"' in other.headers["WWW-Authenticate"]

    anonymous = _token(registry_token, "repository:busybox:pull", auth=None)  # a token granting nothing
    denied = http.get(f"{registry_token.url}/v2/busybox/tags/list", headers=_bearer(anonymous))
    assert denied.status_code == 401
    reader = _token(registry_token, "registry:catalog:*", auth=(READER, READER_PASSWORD))
    assert http.get(f"{registry_token.url}/v2/_catalog", headers=_bearer(reader)).status_code == 401
    with pytest.raises(requests.HTTPError):
        _token(registry_token, "repository:busybox:pull", auth=(USERNAME, "wrong"))


def test_token_oauth_post_and_refresh(registry_token: RunningRegistry) -> None:
    server = registry_token.token_server
    assert server is not None
    http = _plain()
    form = {
        "grant_type": "password",
        "username": USERNAME,
        "password": PASSWORD,
        "service": server.service,
        "client_id": "harness-test",
        "access_type": "offline",
        "scope": "repository:busybox:pull registry:catalog:*",
    }
    got = http.post(server.realm, data=form, timeout=5)
    assert got.status_code == 200, got.text
    body = got.json()
    headers = _bearer(body["access_token"])
    assert http.get(f"{registry_token.url}/v2/_catalog", headers=headers).status_code == 200
    assert http.get(f"{registry_token.url}/v2/busybox/tags/list", headers=headers).status_code == 200

    refresh = {k: form[k] for k in ("service", "client_id", "scope")}
    refresh |= {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    assert http.post(server.realm, data=refresh, timeout=5).status_code == 200
    assert http.post(server.realm, data=form | {"password": "wrong"}, timeout=5).status_code == 401

    server.post_enabled = False  # clients must fall back to GET on 404
    try:
        assert http.post(server.realm, data=form, timeout=5).status_code == 404
    finally:
        server.post_enabled = True


def test_tls_verified_with_ca(registry_tls: RunningRegistry) -> None:
    assert registry_tls.scheme == "https" and registry_tls.ca_file is not None
    http = _plain()
    got = http.get(
        f"{registry_tls.url}/v2/", auth=(USERNAME, PASSWORD), verify=str(registry_tls.ca_file), timeout=5
    )
    assert got.status_code == 200
    port = registry_tls.host.rsplit(":", 1)[1]
    by_name = http.get(f"https://localhost:{port}/v2/", verify=str(registry_tls.ca_file), timeout=5)
    assert by_name.status_code == 401  # certificate valid for "localhost" too; auth still required
    with pytest.raises(requests.exceptions.SSLError):
        http.get(f"{registry_tls.url}/v2/", verify=True, timeout=5)  # not trusted by the system store


def test_skopeo_sees_seeded_tags(
    registry: RunningRegistry, seeded_images: SeedInfo, skopeo_json: Callable[..., Any]
) -> None:
    for repo, tags in seeded_images.repositories.items():
        listed = skopeo_json(registry, "list-tags", repo)
        # distribution 2.8 lists tags in storage (readdir) order, not sorted: compare as sets.
        assert sorted(listed["Tags"]) == tags, repo
    assert len(seeded_images.repositories[MANY_TAGS_REPO]) == len(MANY_TAGS) == 25
    digest = skopeo_json(registry, "inspect", "busybox:1.31.1")["Digest"]
    assert digest == seeded_images.digests["busybox:1.31.1"]


def test_seeded_media_types_and_digests(registry_noauth: RunningRegistry, seeded_images: SeedInfo) -> None:
    expected = {
        "built/oci-single:latest": OCI_MANIFEST,
        "built/docker-single:latest": DOCKER_MANIFEST,
        "built/multi-oci:latest": OCI_INDEX,
        "built/multi-docker:latest": DOCKER_LIST,
        "library/nginx:latest": DOCKER_MANIFEST,
        "busybox:1.31.1": OCI_MANIFEST,
        "alpine:3.14": DOCKER_LIST,
        "hello-world:latest": DOCKER_MANIFEST,
    }
    for ref, media_type in expected.items():
        assert seeded_images.media_types[ref] == media_type, ref
    for repo, image in seeded_images.built.items():
        # --preserve-digests: what the registry serves is byte-for-byte what the builder wrote.
        assert seeded_images.digests[f"{repo}:latest"] == image.digest, repo
    multi = seeded_images.built["built/multi-docker"]
    assert [str(p) for p in multi.manifests] == ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"]
    for child in multi.manifests.values():
        got = registry_noauth.request(
            "GET", f"/v2/built/multi-docker/manifests/{child}", headers={"Accept": MANIFEST_ACCEPT}
        )
        assert got.headers["Content-Type"] == DOCKER_MANIFEST
    assert seeded_images.digests["library/nginx:1.0"] == seeded_images.digests["library/nginx:latest"]


def test_skopeo_platform_override(registry_token: RunningRegistry, seeded_images: SeedInfo) -> None:
    image = seeded_images.built["built/multi-oci"]
    arm = next(p for p in image.manifests if p.architecture == "arm")
    config = registry_token.skopeo_json("inspect", "built/multi-oci:latest", "--config", platform=str(arm))
    assert (config["architecture"], config["variant"]) == ("arm", "v7")
    index = registry_token.skopeo_json("inspect", "built/multi-oci:latest", raw=True)
    assert [m["digest"] for m in index["manifests"]] == list(image.manifests.values())


def test_catalog_pages_with_relative_link(registry_noauth: RunningRegistry, seeded_images: SeedInfo) -> None:
    got = registry_noauth.request("GET", "/v2/_catalog", params={"n": 3})
    first3 = sorted(seeded_images.repositories)[:3]
    assert got.json()["repositories"] == first3
    assert got.headers["Link"] == f'</v2/_catalog?last={first3[-1].replace("/", "%2F")}&n=3>; rel="next"'


def test_tags_list_ignores_paging_in_distribution_2_8(registry_noauth: RunningRegistry) -> None:
    """Quirk pinned here so an upgrade (distribution 3 pages tags) is noticed: n/last are ignored,
    there is never a Link, and the order is the storage driver's directory order, not lexical."""
    got = registry_noauth.request("GET", f"/v2/{MANY_TAGS_REPO}/tags/list", params={"n": 10, "last": "t05"})
    assert sorted(got.json()["tags"]) == list(MANY_TAGS)
    assert "Link" not in got.headers


@pytest.mark.parametrize("mode", [m.value for m in Mode])
def test_push_through_each_mode(registry_factory: Callable[..., RunningRegistry], mode: str) -> None:
    reg = registry_factory(mode, seeded=False)
    reg.push(f"docker-archive:{archive('hello-world.docker.tar')}", "pushed/hello:v1")
    assert reg.skopeo_json("list-tags", "pushed/hello")["Tags"] == ["v1"]
    if reg.token_server is not None:
        # skopeo asked for push+pull on the repository with the tester's Basic credentials.
        assert reg.token_server.count("repository:pushed/hello:pull,push") >= 1
        assert {r.username for r in reg.token_server.requests} == {USERNAME}
