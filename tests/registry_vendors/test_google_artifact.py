"""``google-artifact-cr`` against Artifact Registry's documented behaviour.

Shapes from ../shared/docs/registries.md §6: the registry at ``<location>-docker.pkg.dev`` takes the
same Google credentials as GCR (``google_fakes`` for the OAuth2 token endpoint); its ``_catalog``
answers ``{"repositories": []}`` even to valid credentials (HarborGuard#151), so repositories come
from the Artifact Registry REST API (cloud.google.com/artifact-registry/docs/reference/rest):
``GET /v1/projects/{p}/locations/{l}/repositories?pageSize=&pageToken=`` -> ``{"repositories":
[{name, format}], "nextPageToken"}`` and ``GET .../repositories/{r}/dockerImages?pageSize=&pageToken=``
-> ``{"dockerImages": [{name, uri, tags, imageSizeBytes, uploadTime, mediaType, buildTime,
updateTime}], "nextPageToken"}``, authenticated with ``Authorization: Bearer <access token>``;
Google API errors are ``{"error": {"code", "message", "status"}}``. Tags/list carries the same
``manifest`` map as GCR.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
import responses

from shared import errors
from tests.registry_vendors.google_fakes import TokenEndpoint, key_text
from tests.registry_vendors.support import MockRegistry, Reply, connect, json_reply, query

HOST = "europe-west1-docker.pkg.dev"
AR = "https://artifactregistry.googleapis.com/v1"
PARENT = "projects/acme-prod/locations/europe-west1"


def google_error(code: int, status: str, message: str) -> Reply:
    return json_reply({"error": {"code": code, "message": message, "status": status}}, code)


class ArtifactRegistry:
    """The REST API: Bearer access tokens from ``tokens``; pages keyed by ``pageToken``."""

    def __init__(self, rsps: responses.RequestsMock, tokens: TokenEndpoint) -> None:
        self.rsps = rsps
        self.tokens = tokens
        self.revoked: set[str] = set()
        self.seen: list[requests.PreparedRequest] = []

    def paged(self, path: str, key: str, pages: list[list[dict[str, Any]]]) -> None:
        def callback(request: requests.PreparedRequest) -> Reply:
            self.seen.append(request)
            token = request.headers.get("Authorization", "")[7:]
            if token not in self.tokens.issued or token in self.revoked:
                return google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
            index = int(query(request).get("pageToken", ["0"])[0])
            document: dict[str, Any] = {key: pages[index]}
            if index + 1 < len(pages):
                document["nextPageToken"] = str(index + 1)
            return json_reply(document)

        self.rsps.add_callback(
            responses.GET, re.compile(re.escape(f"{AR}/{path}") + r"(\?.*)?$"), callback=callback
        )


def image(repository: str, name: str, n: int, tags: list[str]) -> dict[str, Any]:
    digest = f"sha256:{n:064x}"
    return {
        "name": f"{PARENT}/repositories/{repository}/dockerImages/{name.replace('/', '%2F')}@{digest}",
        "uri": f"{HOST}/acme-prod/{repository}/{name}@{digest}",
        "tags": tags,
        "imageSizeBytes": "2048",
        "uploadTime": "2024-05-01T10:00:00.123456Z",
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    }


def setup_api(rsps: responses.RequestsMock) -> tuple[TokenEndpoint, ArtifactRegistry]:
    tokens = TokenEndpoint(rsps)
    api = ArtifactRegistry(rsps, tokens)
    api.paged(
        f"{PARENT}/repositories",
        "repositories",
        [
            [
                {"name": f"{PARENT}/repositories/docker-a", "format": "DOCKER"},
                {"name": f"{PARENT}/repositories/mvn", "format": "MAVEN"},
            ],
            [{"name": f"{PARENT}/repositories/docker-b", "format": "DOCKER"}],
            [],
        ],
    )
    api.paged(
        f"{PARENT}/repositories/docker-a/dockerImages",
        "dockerImages",
        [
            [image("docker-a", "web", 1, ["1.0"]), image("docker-a", "web", 2, ["1.1", "latest"])],
            [image("docker-a", "team/api", 3, [])],
            [image("docker-a", "worker", 4, ["x"])],
        ],
    )
    api.paged(
        f"{PARENT}/repositories/docker-b/dockerImages", "dockerImages", [[image("docker-b", "db", 5, ["16"])]]
    )
    return tokens, api


def test_repositories_from_the_rest_api_over_three_pages(rsps: responses.RequestsMock) -> None:
    tokens, api = setup_api(rsps)
    client = connect("google-artifact-cr", f"{HOST}/acme-prod", "_json_key", key_text())
    assert client.list_repositories() == [
        "acme-prod/docker-a/team/api",
        "acme-prod/docker-a/web",
        "acme-prod/docker-a/worker",
        "acme-prod/docker-b/db",
    ]
    assert all(r.headers["Authorization"] == "Bearer ya29.access-1" for r in api.seen)
    assert all(query(r)["pageSize"] == ["1000"] for r in api.seen)
    assert len(tokens.issued) == 1


def test_project_from_the_key_and_repository_from_registry_base(rsps: responses.RequestsMock) -> None:
    setup_api(rsps)
    assert (
        connect("google-artifact-cr", HOST, "_json_key", key_text()).list_repositories()[0]
        == "acme-prod/docker-a/team/api"
    )
    only_b = connect("google-artifact-cr", f"{HOST}/acme-prod/docker-b", "_json_key", key_text())
    assert only_b.list_repositories() == ["acme-prod/docker-b/db"]


def test_tags_with_metadata_from_the_manifest_map(rsps: responses.RequestsMock) -> None:
    tokens = TokenEndpoint(rsps)
    reg = MockRegistry(
        rsps,
        HOST,
        accepts=lambda u, p: u == "oauth2accesstoken" and p in tokens.issued,
        realm=f"https://{HOST}/v2/token",
        service=HOST,
    )
    reg.route(
        "GET",
        "/v2/acme-prod/docker-a/web/tags/list",
        lambda _: json_reply(
            {
                "child": [],
                "name": "acme-prod/docker-a/web",
                "tags": ["1.0", "latest"],
                "manifest": {
                    "sha256:" + "a" * 64: {
                        "imageSizeBytes": "1",
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "tag": ["1.0", "latest"],
                        "timeCreatedMs": "0",
                        "timeUploadedMs": "1714557600000",
                    }
                },
            }
        ),
    )
    infos = connect("google-artifact-cr", HOST, "_json_key", key_text()).list_tags_with_metadata(
        "acme-prod/docker-a/web"
    )
    assert [(i.tag, i.digest) for i in infos] == [
        ("1.0", "sha256:" + "a" * 64),
        ("latest", "sha256:" + "a" * 64),
    ]
    assert infos[0].last_pushed is not None and infos[0].last_pushed.year == 2024


def test_api_refusal_falls_back_to_the_catalog(rsps: responses.RequestsMock) -> None:
    tokens = TokenEndpoint(rsps)
    rsps.get(
        re.compile(re.escape(f"{AR}/{PARENT}/repositories") + r".*"),
        json={
            "error": {
                "code": 403,
                "message": "Permission 'artifactregistry.repositories.list' denied",
                "status": "PERMISSION_DENIED",
            }
        },
        status=403,
    )
    reg = MockRegistry(
        rsps, HOST, accepts=lambda u, p: p in tokens.issued, realm=f"https://{HOST}/v2/token", service=HOST
    )
    reg.route("GET", "/v2/_catalog", lambda _: json_reply({"repositories": ["acme-prod/r/a", "other/r/b"]}))
    client = connect("google-artifact-cr", f"{HOST}/acme-prod", "_json_key", key_text())
    assert client.list_repositories() == ["acme-prod/r/a"]


def test_denied_everywhere_is_denied(rsps: responses.RequestsMock) -> None:
    tokens = TokenEndpoint(rsps)
    rsps.get(
        re.compile(re.escape(f"{AR}/{PARENT}/repositories") + r".*"),
        json={"error": {"code": 403, "message": "denied", "status": "PERMISSION_DENIED"}},
        status=403,
    )
    reg = MockRegistry(
        rsps, HOST, accepts=lambda u, p: p in tokens.issued, realm=f"https://{HOST}/v2/token", service=HOST
    )
    reg.route("GET", "/v2/_catalog", lambda _: (403, {}, '{"errors":[{"code":"DENIED","message":"denied"}]}'))
    with pytest.raises(errors.Denied):
        connect("google-artifact-cr", f"{HOST}/acme-prod", "_json_key", key_text()).list_repositories()


def test_unknown_project_is_not_found(rsps: responses.RequestsMock) -> None:
    TokenEndpoint(rsps)
    rsps.get(
        re.compile(re.escape(f"{AR}/projects/ghost/locations/europe-west1/repositories") + r".*"),
        json={"error": {"code": 404, "message": "Project ghost not found", "status": "NOT_FOUND"}},
        status=404,
    )
    with pytest.raises(errors.NotFound, match="Project ghost not found"):
        connect("google-artifact-cr", f"{HOST}/ghost", "_json_key", key_text()).list_repositories()


def test_static_access_token_refused_is_unauthorized_and_not_repeated(rsps: responses.RequestsMock) -> None:
    token = "ya29.Unique-Static-Token-0099"
    rsps.get(
        re.compile(re.escape(f"{AR}/{PARENT}/repositories") + r".*"),
        json={"error": {"code": 401, "message": f"bad token {token}", "status": "UNAUTHENTICATED"}},
        status=401,
    )
    MockRegistry(
        rsps, HOST, accepts=lambda u, p: False, realm=f"https://{HOST}/v2/token", service=HOST
    ).route("GET", "/v2/_catalog", lambda _: json_reply({"repositories": []}))
    with pytest.raises(errors.Unauthorized) as caught:
        connect("google-artifact-cr", f"{HOST}/acme-prod", "oauth2accesstoken", token).list_repositories()
    assert token not in str(caught.value)


def test_429_from_the_api_is_retried_with_back_off(rsps: responses.RequestsMock, sleeps: list[float]) -> None:
    rsps.get(
        re.compile(re.escape(f"{AR}/{PARENT}/repositories") + r".*"),
        json={"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}},
        status=429,
    )
    setup_api(rsps)
    client = connect(
        "google-artifact-cr", f"{HOST}/acme-prod/docker-b", "_json_key", key_text(), sleeps=sleeps
    )
    assert client.list_repositories() == ["acme-prod/docker-b/db"]  # the repository is named: no 429 path
    client2 = connect("google-artifact-cr", f"{HOST}/acme-prod", "_json_key", key_text(), sleeps=sleeps)
    assert len(client2.list_repositories()) == 4
    assert len(sleeps) == 1 and 0 < sleeps[0] <= 0.5  # exponential back-off's first step (no Retry-After)


def test_revoked_access_token_is_minted_again(rsps: responses.RequestsMock) -> None:
    tokens, api = setup_api(rsps)
    client = connect("google-artifact-cr", f"{HOST}/acme-prod/docker-b", "_json_key", key_text())
    client.list_repositories()
    api.revoked.add("ya29.access-1")
    assert client.list_repositories() == ["acme-prod/docker-b/db"]
    assert tokens.issued == ["ya29.access-1", "ya29.access-2"]
