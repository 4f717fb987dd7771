"""``gcr`` against Google Container Registry's documented behaviour.

Shapes from ../shared/docs/registries.md §6 and §1 (GG ``pkg/v1/google/{auth,list}.go``): Basic
usernames ``_json_key`` (service-account key JSON), ``_json_key_base64`` and ``oauth2accesstoken``
(an OAuth2 access token) at the ``gcr.io/v2/token`` realm; tags/list with the ``manifest`` map
``{digest: {imageSizeBytes, mediaType, tag[], timeCreatedMs, timeUploadedMs}}`` and ``child``;
``_catalog`` for the projects the credentials can see; gcr.io answers 401 without
``WWW-Authenticate`` on real requests (containers/image ``setupRequestAuth``). Access tokens are
minted at Google's OAuth2 endpoint (``google_fakes``); the broker's whitespace collapsing of the key
is broker-protocol.md §4.3.
"""

from __future__ import annotations

import base64
import json
import time

import pytest
import requests
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shared import errors
from tests.registry_vendors.google_fakes import CLOUD_PLATFORM, EMAIL, TokenEndpoint, key_json, key_text
from tests.registry_vendors.support import (
    MockRegistry,
    Reply,
    connect,
    json_reply,
    link_pages,
    oci_error,
    query,
)

HOST = "gcr.io"


def registry(
    rsps: responses.RequestsMock, tokens: TokenEndpoint | None, static: str | None = None
) -> MockRegistry:
    def accepts(user: str, password: str) -> bool:
        if user == "oauth2accesstoken":
            return (tokens is not None and password in tokens.issued) or password == static
        return False

    return MockRegistry(rsps, HOST, accepts=accepts, realm=f"https://{HOST}/v2/token", service=HOST)


def manifest_map_pages(request: requests.PreparedRequest) -> Reply:
    """tags/list as GCR answers it, in pages linked with ``Link``."""
    digests = [f"sha256:{i:064x}" for i in range(6)]
    last = query(request).get("last", [""])[0]
    start = int(last) if last else 0
    chunk = digests[start : start + 2]
    manifest = {
        d: {
            "imageSizeBytes": "1024",
            "layerId": "",
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "tag": [f"t{start + i}"],
            "timeCreatedMs": "1714550000000",
            "timeUploadedMs": str(1714557600000 + (start + i) * 1000),
        }
        for i, d in enumerate(chunk)
    }
    headers = (
        {"Link": f'</v2/acme-prod/web/tags/list?n=2&last={start + 2}>; rel="next"'}
        if start + 2 < len(digests)
        else {}
    )
    return json_reply(
        {
            "child": [],
            "manifest": manifest,
            "name": "acme-prod/web",
            "tags": [f"t{start + i}" for i in range(len(chunk))],
        },
        headers=headers,
    )


def test_json_key_is_minted_into_an_access_token_and_lists_three_pages(rsps: responses.RequestsMock) -> None:
    tokens = TokenEndpoint(rsps)
    reg = registry(rsps, tokens)
    names = [f"acme-prod/app-{i}" for i in range(7)] + ["other-project/x"]
    reg.route("GET", "/v2/_catalog", link_pages(names, "repositories", 3))
    client = connect("gcr", "gcr.io/acme-prod", "_json_key", key_text())
    assert client.list_repositories() == names[:7]
    claims = tokens.assertions[0]
    assert claims["iss"] == EMAIL and claims["scope"] == CLOUD_PLATFORM
    assert tokens.issued == ["ya29.access-1"]


def test_key_whose_pem_newlines_became_spaces_still_works(rsps: responses.RequestsMock) -> None:
    """``echo $JSON`` in the broker's entrypoint: the PEM's newlines arrive as single spaces."""
    tokens = TokenEndpoint(rsps)
    registry(rsps, tokens).route(
        "GET", "/v2/_catalog", lambda _: json_reply({"repositories": ["acme-prod/a"]})
    )
    damaged = key_json()
    damaged["private_key"] = " ".join(damaged["private_key"].split())
    assert "\n" not in damaged["private_key"]
    collapsed = " ".join(json.dumps(damaged, indent=2).split())
    assert connect("gcr", HOST, "_json_key", collapsed).list_repositories() == ["acme-prod/a"]


def test_key_with_raw_newlines_inside_the_json_string(rsps: responses.RequestsMock) -> None:
    tokens = TokenEndpoint(rsps)
    registry(rsps, tokens).route(
        "GET", "/v2/_catalog", lambda _: json_reply({"repositories": ["acme-prod/a"]})
    )
    raw = key_text().replace("\\n", "\n")  # a tool unescaped the key before pasting it
    assert connect("gcr", HOST, "_json_key", raw).list_repositories() == ["acme-prod/a"]


def test_json_key_base64(rsps: responses.RequestsMock) -> None:
    tokens = TokenEndpoint(rsps)
    registry(rsps, tokens).route(
        "GET", "/v2/_catalog", lambda _: json_reply({"repositories": ["acme-prod/a"]})
    )
    encoded = base64.b64encode(key_text().encode()).decode()
    assert connect("gcr", HOST, "_json_key_base64", encoded).list_repositories() == ["acme-prod/a"]


def test_oauth2_access_token_is_used_as_it_is(rsps: responses.RequestsMock) -> None:
    registry(rsps, None, static="ya29.given-token").route(
        "GET", "/v2/_catalog", lambda _: json_reply({"repositories": ["p/a"]})
    )
    assert connect("gcr", HOST, "oauth2accesstoken", "ya29.given-token").list_repositories() == ["p/a"]


def test_tags_with_upload_times_from_the_manifest_map_over_three_pages(rsps: responses.RequestsMock) -> None:
    tokens = TokenEndpoint(rsps)
    registry(rsps, tokens).route("GET", "/v2/acme-prod/web/tags/list", manifest_map_pages)
    infos = connect("gcr", HOST, "_json_key", key_text()).list_tags_with_metadata("acme-prod/web")
    assert [i.tag for i in infos] == [f"t{i}" for i in range(6)]
    assert infos[3].digest == f"sha256:{3:064x}"
    assert infos[3].last_pushed is not None and infos[3].last_pushed.timestamp() == 1714557603
    assert not any("/manifests/" in (c.request.url or "") for c in rsps.calls)  # no request per tag


def test_access_token_is_minted_again_before_it_expires(rsps: responses.RequestsMock) -> None:
    tokens = TokenEndpoint(rsps)
    registry(rsps, tokens).route("GET", "/v2/_catalog", lambda _: json_reply({"repositories": ["p/a"]}))
    client = connect("gcr", HOST, "_json_key", key_text())
    client.list_repositories()
    client.transport.auth.login.clock = lambda: time.time() + 3400  # type: ignore[attr-defined]
    client.list_repositories()
    assert tokens.issued == ["ya29.access-1", "ya29.access-2"]


def test_expired_registry_token_401_without_challenge_is_refreshed(rsps: responses.RequestsMock) -> None:
    tokens = TokenEndpoint(rsps)
    reg = registry(rsps, tokens)
    served = {"n": 0}

    def catalog(_: requests.PreparedRequest) -> Reply:
        served["n"] += 1
        return json_reply({"repositories": ["p/a"]})

    reg.route("GET", "/v2/_catalog", catalog)
    client = connect("gcr", HOST, "_json_key", key_text())
    client.list_repositories()
    reg.expire_tokens()
    reg.challenge = lambda error=None: {}  # type: ignore[method-assign]  # gcr.io: 401, no WWW-Authenticate
    assert client.list_repositories() == ["p/a"]
    assert reg.issued == 2 and served["n"] == 2


def test_rejected_key_is_unauthorized_and_the_key_never_appears(rsps: responses.RequestsMock) -> None:
    TokenEndpoint(rsps)
    registry(rsps, None)
    other = key_json()
    other["private_key"] = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )
    with pytest.raises(errors.Unauthorized, match="Google refused") as caught:
        connect("gcr", HOST, "_json_key", json.dumps(other)).list_repositories()
    body = other["private_key"].splitlines()[5]
    assert body not in str(caught.value) and other["private_key_id"] not in str(caught.value)


def test_not_a_key_is_a_credentials_error_without_echo() -> None:
    with pytest.raises(errors.CredentialsError) as caught:
        connect("gcr", HOST, "_json_key", '{"type": "authorized_user", "refresh_token": "1//Unique-Refresh"}')
    assert "Unique-Refresh" not in str(caught.value)


def test_denied_not_found_and_429(rsps: responses.RequestsMock, sleeps: list[float]) -> None:
    tokens = TokenEndpoint(rsps)
    reg = registry(rsps, tokens)
    reg.route(
        "GET", "/v2/_catalog", lambda _: (403, {}, oci_error("DENIED", "Permission denied for project"))
    )
    reg.route(
        "GET", "/v2/p/gone/tags/list", lambda _: (404, {}, oci_error("NAME_UNKNOWN", "Repository not found"))
    )
    answers = iter([(429, {"Retry-After": "4"}, oci_error("TOOMANYREQUESTS", "quota"))])
    reg.route(
        "GET",
        "/v2/p/web/tags/list",
        lambda r: next(answers, None) or json_reply({"name": "p/web", "tags": [], "manifest": {}}),
    )
    client = connect("gcr", HOST, "_json_key", key_text(), sleeps=sleeps)
    with pytest.raises(errors.Denied):
        client.list_repositories()
    with pytest.raises(errors.NotFound):
        client.list_tags_with_metadata("p/gone")
    assert client.list_tags_with_metadata("p/web") == []
    assert sleeps == [4.0]


def test_legacy_type_name(rsps: responses.RequestsMock) -> None:
    registry(rsps, None, static="ya29.x").route(
        "GET", "/v2/_catalog", lambda _: json_reply({"repositories": ["p/a"]})
    )
    client = connect("GoogleCR", HOST, "oauth2accesstoken", "ya29.x")
    assert type(client).__name__ == "Gcr" and client.list_repositories() == ["p/a"]
