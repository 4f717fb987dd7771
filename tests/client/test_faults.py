"""Registry client behaviour that a local registry cannot show, with HTTP faked by ``responses``.

Response shapes follow the OCI distribution spec (``spec.md``: error bodies, ``Link`` paging,
``Docker-Content-Digest``), distribution's token spec (``docs/spec/auth/token.md``: ``token`` /
``access_token``, ``expires_in`` defaulting to 60 s, the OAuth2 POST form in ``oauth.md``) and RFC 9110
(``Retry-After`` as seconds or an HTTP date); see ../shared/docs/registries.md §1.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from shared import errors
from shared.registry import Platform, RegistryClient, Transport
from shared.registry.retry import RetryPolicy

REG = "https://registry.test"
REALM = "https://auth.registry.test/token"
PASSWORD = "S3cr3t-Pa55w0rd-XYZ"
BEARER = f'Bearer realm="{REALM}",service="registry.test"'


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(sleeps: list[float]) -> RegistryClient:
    transport = Transport(
        REG,
        username="alice",
        password=PASSWORD,
        retry=RetryPolicy(max_retries=3, budget_seconds=60),
        sleep=sleeps.append,
    )
    return RegistryClient(transport)


@pytest.fixture
def anonymous(sleeps: list[float]) -> RegistryClient:
    return RegistryClient(Transport(REG, sleep=sleeps.append))


def oci_error(code: str, message: str) -> str:
    return json.dumps({"errors": [{"code": code, "message": message, "detail": None}]})


def add_token_server(rsps: responses.RequestsMock, body: dict[str, object] | None = None) -> None:
    rsps.get(REALM, json=body or {"token": "tok-1", "expires_in": 300})


def bearer_challenge_then(rsps: responses.RequestsMock, url: str) -> None:
    """The first unauthenticated request gets a challenge, as distribution answers."""
    rsps.get(
        url,
        status=401,
        headers={"WWW-Authenticate": BEARER},
        body=oci_error("UNAUTHORIZED", "authentication required"),
    )


# -- retries -------------------------------------------------------------------------------


@responses.activate
def test_429_with_retry_after_seconds_is_honoured(client: RegistryClient, sleeps: list[float]) -> None:
    url = f"{REG}/v2/app/tags/list?n=1000"
    responses.get(
        url, status=429, headers={"Retry-After": "7"}, body=oci_error("TOOMANYREQUESTS", "slow down")
    )
    responses.get(url, json={"name": "app", "tags": ["v1"]})
    assert client.list_tags("app") == ["v1"]
    assert sleeps == [7.0]


@responses.activate
def test_retry_after_http_date(client: RegistryClient, sleeps: list[float]) -> None:
    url = f"{REG}/v2/app/tags/list?n=1000"
    when = email.utils.formatdate(time.time() + 20, usegmt=True)
    responses.get(url, status=503, headers={"Retry-After": when})
    responses.get(url, json={"name": "app", "tags": ["v1"]})
    assert client.list_tags("app") == ["v1"]
    assert len(sleeps) == 1 and 15 <= sleeps[0] <= 21


@responses.activate
def test_5xx_then_success_with_backoff(client: RegistryClient, sleeps: list[float]) -> None:
    url = f"{REG}/v2/app/tags/list?n=1000"
    responses.get(url, status=502)
    responses.get(url, status=500)
    responses.get(url, json={"name": "app", "tags": ["a", "b"]})
    assert client.list_tags("app") == ["a", "b"]
    assert len(sleeps) == 2 and all(s > 0 for s in sleeps)
    assert sleeps[1] >= sleeps[0] * 0.5  # grows (with jitter) rather than hammering


@responses.activate
def test_retries_are_bounded_in_count(client: RegistryClient, sleeps: list[float]) -> None:
    url = f"{REG}/v2/app/tags/list?n=1000"
    responses.get(url, status=503, body=oci_error("UNAVAILABLE", "down"))
    with pytest.raises(errors.RegistryUnavailable):
        client.list_tags("app")
    assert len(responses.calls) == 4  # first try and max_retries=3
    assert len(sleeps) == 3


@responses.activate
def test_retry_after_beyond_the_budget_fails_at_once(client: RegistryClient, sleeps: list[float]) -> None:
    url = f"{REG}/v2/app/tags/list?n=1000"
    responses.get(
        url, status=429, headers={"Retry-After": "3600"}, body=oci_error("TOOMANYREQUESTS", "quota")
    )
    with pytest.raises(errors.RateLimited) as raised:
        client.list_tags("app")
    assert raised.value.status == 429
    assert sleeps == [] and len(responses.calls) == 1


@responses.activate
def test_connection_error_then_success(client: RegistryClient, sleeps: list[float]) -> None:
    url = f"{REG}/v2/app/tags/list?n=1000"
    responses.get(url, body=requests.ConnectionError("refused"))
    responses.get(url, json={"name": "app", "tags": ["v1"]})
    assert client.list_tags("app") == ["v1"]
    assert len(sleeps) == 1


@responses.activate
def test_timeouts_become_registry_timeout(client: RegistryClient) -> None:
    responses.get(f"{REG}/v2/app/tags/list?n=1000", body=requests.ReadTimeout("slow"))
    with pytest.raises(errors.RegistryTimeout) as raised:
        client.list_tags("app")
    assert raised.value.status == 504


@responses.activate
def test_404_is_not_retried_and_keeps_the_oci_code(client: RegistryClient, sleeps: list[float]) -> None:
    responses.get(
        f"{REG}/v2/app/tags/list?n=1000",
        status=404,
        body=oci_error("NAME_UNKNOWN", "repository name not known to registry"),
    )
    with pytest.raises(errors.NotFound) as raised:
        client.list_tags("app")
    assert "NAME_UNKNOWN" in raised.value.message and sleeps == []


# -- authentication --------------------------------------------------------------------------


@responses.activate
def test_bearer_token_fetched_with_basic_and_reused_across_pages(client: RegistryClient) -> None:
    first = f"{REG}/v2/_catalog?n=1000"
    bearer_challenge_then(responses, first)
    add_token_server(responses)
    responses.get(
        first, json={"repositories": ["a", "b"]}, headers={"Link": '</v2/_catalog?last=b&n=1000>; rel="next"'}
    )
    responses.get(
        f"{REG}/v2/_catalog?last=b&n=1000",
        json={"repositories": ["c"]},
        headers={"Link": '</v2/_catalog?last=c&n=1000>; rel="next"'},
    )
    responses.get(f"{REG}/v2/_catalog?last=c&n=1000", json={"repositories": ["d"]})
    assert client.list_repositories() == ["a", "b", "c", "d"]
    token_calls = [c for c in responses.calls if c.request.url.startswith(REALM)]
    assert len(token_calls) == 1
    query = parse_qs(urlsplit(token_calls[0].request.url).query)
    assert query["scope"] == ["registry:catalog:*"] and query["service"] == ["registry.test"]
    assert (
        token_calls[0].request.headers["Authorization"]
        == "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    )
    registry_calls = [c for c in responses.calls if c.request.url.startswith(REG)]
    assert all(c.request.headers.get("Authorization") == "Bearer tok-1" for c in registry_calls[1:])


@responses.activate
def test_access_token_field_is_accepted(client: RegistryClient) -> None:
    url = f"{REG}/v2/app/tags/list?n=1000"
    bearer_challenge_then(responses, url)
    add_token_server(responses, {"access_token": "oauth-tok"})
    responses.get(url, json={"name": "app", "tags": ["v1"]})
    assert client.list_tags("app") == ["v1"]
    assert responses.calls[-1].request.headers["Authorization"] == "Bearer oauth-tok"


@responses.activate
def test_token_without_expiry_is_cached_for_60_seconds(
    client: RegistryClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"{REG}/v2/app/tags/list?n=1000"
    bearer_challenge_then(responses, url)
    responses.get(REALM, json={"token": "t1"})
    responses.get(REALM, json={"token": "t2"})
    responses.get(url, json={"name": "app", "tags": ["v1"]})
    client.list_tags("app")
    client.list_tags("app")
    assert [c.request.headers.get("Authorization") for c in responses.calls if c.request.url == url][1:] == [
        "Bearer t1",
        "Bearer t1",
    ]
    now = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: now + 61)
    client.list_tags("app")
    assert responses.calls[-1].request.headers["Authorization"] == "Bearer t2"


@responses.activate
def test_several_scopes_and_insufficient_scope_widening(client: RegistryClient) -> None:
    url = f"{REG}/v2/app/tags/list?n=1000"
    bearer_challenge_then(responses, url)
    responses.get(REALM, json={"token": "narrow"})
    responses.get(
        url,
        status=401,
        headers={
            "WWW-Authenticate": (
                f'{BEARER},error="insufficient_scope",scope="repository:app:pull repository:base/app:pull"'
            )
        },
        body=oci_error("DENIED", "requested access to the resource is denied"),
    )
    responses.get(REALM, json={"token": "wide"})
    responses.get(url, json={"name": "app", "tags": ["v1"]})
    assert client.list_tags("app") == ["v1"]
    token_calls = [c for c in responses.calls if c.request.url.startswith(REALM)]
    assert len(token_calls) == 2
    assert parse_qs(urlsplit(token_calls[1].request.url).query)["scope"] == [
        "repository:app:pull",
        "repository:base/app:pull",
    ]
    assert responses.calls[-1].request.headers["Authorization"] == "Bearer wide"


@responses.activate
def test_oauth2_post_form_when_get_is_not_served(client: RegistryClient) -> None:
    url = f"{REG}/v2/app/tags/list?n=1000"
    bearer_challenge_then(responses, url)
    responses.get(REALM, status=404)
    responses.post(REALM, json={"access_token": "from-post", "expires_in": 120})
    responses.get(url, json={"name": "app", "tags": ["v1"]})
    assert client.list_tags("app") == ["v1"]
    post = next(c for c in responses.calls if c.request.method == "POST")
    form = parse_qs(post.request.body)
    assert form["grant_type"] == ["password"] and form["username"] == ["alice"]
    assert form["scope"] == ["repository:app:pull"] and form["service"] == ["registry.test"]
    assert form["client_id"] == ["registry-agent"]


@responses.activate
def test_anonymous_token_sends_no_authorization(anonymous: RegistryClient) -> None:
    url = f"{REG}/v2/library/alpine/tags/list?n=1000"
    bearer_challenge_then(responses, url)
    add_token_server(responses)
    responses.get(url, json={"name": "library/alpine", "tags": ["3"]})
    assert anonymous.list_tags("library/alpine") == ["3"]
    token_call = next(c for c in responses.calls if c.request.url.startswith(REALM))
    assert "Authorization" not in token_call.request.headers


@responses.activate
def test_token_service_refusal_is_unauthorized_without_the_password(client: RegistryClient) -> None:
    url = f"{REG}/v2/app/tags/list?n=1000"
    bearer_challenge_then(responses, url)
    responses.get(REALM, status=401, body=f"bad password {PASSWORD}")
    with pytest.raises(errors.Unauthorized) as raised:
        client.list_tags("app")
    assert PASSWORD not in str(raised.value)


@responses.activate
def test_basic_challenge_uses_basic_credentials(client: RegistryClient) -> None:
    responses.get(f"{REG}/v2/", status=401, headers={"WWW-Authenticate": 'Basic realm="Registry"'})
    responses.get(f"{REG}/v2/", json={})
    client.ping()
    assert responses.calls[1].request.headers["Authorization"].startswith("Basic ")


@responses.activate
def test_wrong_basic_credentials_are_unauthorized(client: RegistryClient) -> None:
    responses.get(
        f"{REG}/v2/",
        status=401,
        headers={"WWW-Authenticate": 'Basic realm="Registry"'},
        body=oci_error("UNAUTHORIZED", "authentication required"),
    )
    with pytest.raises(errors.Unauthorized) as raised:
        client.ping()
    assert raised.value.status == 401 and PASSWORD not in raised.value.message


@responses.activate
def test_realm_on_a_metadata_address_is_refused(client: RegistryClient) -> None:
    url = f"{REG}/v2/app/tags/list?n=1000"
    responses.get(
        url,
        status=401,
        headers={"WWW-Authenticate": 'Bearer realm="http://169.254.169.254/latest/meta-data",service="x"'},
    )
    with pytest.raises(errors.RefusedHost):
        client.list_tags("app")
    assert not any("169.254" in c.request.url for c in responses.calls)


@responses.activate
def test_gcr_style_401_without_challenge_reuses_the_ping_challenge(client: RegistryClient) -> None:
    responses.get(f"{REG}/v2/", status=401, headers={"WWW-Authenticate": BEARER})
    add_token_server(responses)
    responses.get(f"{REG}/v2/", json={})
    client.ping()
    url = f"{REG}/v2/app/tags/list?n=1000"
    responses.get(url, status=401)  # the real request's 401 carries no WWW-Authenticate
    responses.get(REALM, json={"token": "tok-2"})
    responses.get(url, json={"name": "app", "tags": ["v1"]})
    assert client.list_tags("app") == ["v1"]


# -- paging ----------------------------------------------------------------------------------


@responses.activate
def test_relative_and_opaque_links_are_followed_exactly(anonymous: RegistryClient) -> None:
    first = f"{REG}/v2/app/tags/list?n=1000"
    responses.get(
        first,
        json={"name": "app", "tags": ["z", "a"]},
        headers={"Link": '</v2/app/tags/list?last=T3BhcXVlPT0&n=1000>; rel="next"'},
    )
    second = f"{REG}/v2/app/tags/list?last=T3BhcXVlPT0&n=1000"
    responses.get(
        second,
        json={"name": "app", "tags": ["m"]},
        headers={"Link": f"<{REG}/v2/app/tags/list?next_page=abc>; rel=next"},
    )
    responses.get(f"{REG}/v2/app/tags/list?next_page=abc", json={"name": "app", "tags": ["b"]})
    assert anonymous.list_tags("app") == ["z", "a", "m", "b"]
    assert [c.request.url for c in responses.calls] == [
        first,
        second,
        f"{REG}/v2/app/tags/list?next_page=abc",
    ]


@responses.activate
def test_link_to_another_host_is_refused(anonymous: RegistryClient) -> None:
    responses.get(
        f"{REG}/v2/_catalog?n=1000",
        json={"repositories": ["a"]},
        headers={"Link": '<http://169.254.169.254/v2/_catalog?last=a>; rel="next"'},
    )
    with pytest.raises(errors.RefusedHost):
        anonymous.list_repositories()


@responses.activate
def test_link_loop_is_detected(anonymous: RegistryClient) -> None:
    responses.get(
        f"{REG}/v2/_catalog?n=1000",
        json={"repositories": ["a"]},
        headers={"Link": '</v2/_catalog?n=1000>; rel="next"'},
    )
    with pytest.raises(errors.ProtocolError):
        anonymous.list_repositories()


@responses.activate
def test_page_size_refused_falls_back_to_the_registry_default(anonymous: RegistryClient) -> None:
    responses.get(
        f"{REG}/v2/_catalog?n=1000",
        status=400,
        body=oci_error("PAGINATION_NUMBER_INVALID", "invalid number of results requested"),
    )
    responses.get(f"{REG}/v2/_catalog", json={"repositories": ["a"]})
    assert anonymous.list_repositories() == ["a"]


@responses.activate
def test_tag_page_cursor_round_trip_and_tampering(anonymous: RegistryClient) -> None:
    responses.get(
        f"{REG}/v2/app/tags/list?n=2",
        json={"name": "app", "tags": ["a", "b"]},
        headers={"Link": '</v2/app/tags/list?last=b&n=2>; rel="next"'},
    )
    responses.get(f"{REG}/v2/app/tags/list?last=b&n=2", json={"name": "app", "tags": ["c"]})
    page = anonymous.list_tags_page("app", n=2)
    assert page.tags == ["a", "b"] and page.next_cursor
    last = anonymous.list_tags_page("app", n=2, cursor=page.next_cursor)
    assert last.tags == ["c"] and last.next_cursor is None
    forged = base64.urlsafe_b64encode(b"/v2/other/tags/list?n=2").decode()
    with pytest.raises(errors.BadRequest):
        anonymous.list_tags_page("app", cursor=forged)


@responses.activate
def test_malformed_json_is_a_protocol_error(anonymous: RegistryClient) -> None:
    responses.get(f"{REG}/v2/app/tags/list?n=1000", body="{not json", content_type="application/json")
    with pytest.raises(errors.ProtocolError) as raised:
        anonymous.list_tags("app")
    assert raised.value.status == 502


# -- manifests and blobs -----------------------------------------------------------------------


def image_fixture(rsps: responses.RequestsMock, repo: str = "app") -> tuple[bytes, bytes, bytes]:
    layer = b"layer-bytes" * 100
    config = json.dumps({"architecture": "arm64", "os": "linux", "variant": "v8", "config": {}}).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": sha(layer),
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    rsps.get(
        f"{REG}/v2/{repo}/manifests/{sha(manifest)}",
        body=manifest,
        headers={
            "Content-Type": "application/vnd.oci.image.manifest.v1+json",
            "Docker-Content-Digest": sha(manifest),
        },
    )
    rsps.get(f"{REG}/v2/{repo}/blobs/{sha(config)}", body=config)
    return layer, config, manifest


@responses.activate
def test_platform_selected_from_an_index(anonymous: RegistryClient) -> None:
    layer, _config, manifest = image_fixture(responses)
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": "sha256:" + "1" * 64,
                    "size": 1,
                    "platform": {"os": "linux", "architecture": "amd64"},
                },
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": sha(manifest),
                    "size": len(manifest),
                    "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
                },
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": "sha256:" + "2" * 64,
                    "size": 1,
                    "platform": {"os": "unknown", "architecture": "unknown"},
                    "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
                },
            ],
        }
    ).encode()
    responses.get(
        f"{REG}/v2/app/manifests/latest",
        body=index,
        headers={
            "Content-Type": "application/vnd.oci.image.index.v1+json",
            "Docker-Content-Digest": sha(index),
        },
    )
    image = anonymous.resolve("app", "latest", Platform.parse("linux/arm64"))
    assert image.digest == sha(manifest) and image.index_digest == sha(index)
    assert image.state_identifier == sha(index)
    assert [str(p) for p in image.platforms] == ["linux/amd64", "linux/arm64/v8"]
    assert image.layers[0].digest == sha(layer) and image.total_size == len(layer)
    with pytest.raises(errors.NotFound) as raised:
        anonymous.resolve("app", "latest", Platform.parse("linux/s390x"))
    assert raised.value.code == "PLATFORM_UNKNOWN"


@responses.activate
def test_manifest_body_not_matching_docker_content_digest(anonymous: RegistryClient) -> None:
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {},
            "layers": [],
        }
    ).encode()
    responses.get(
        f"{REG}/v2/app/manifests/v1", body=body, headers={"Docker-Content-Digest": "sha256:" + "f" * 64}
    )
    with pytest.raises(errors.DigestMismatch):
        anonymous.get_manifest("app", "v1")


@responses.activate
def test_manifest_by_digest_must_hash_to_that_digest(anonymous: RegistryClient) -> None:
    wanted = "sha256:" + "a" * 64
    responses.get(f"{REG}/v2/app/manifests/{wanted}", body=b'{"schemaVersion": 2}')
    with pytest.raises(errors.DigestMismatch):
        anonymous.get_manifest("app", wanted)


@responses.activate
def test_blob_redirect_to_another_host_drops_authorization(client: RegistryClient) -> None:
    data = b"blob-content" * 1000
    digest = sha(data)
    url = f"{REG}/v2/app/blobs/{digest}"
    bearer_challenge_then(responses, url)
    add_token_server(responses)
    responses.get(url, status=307, headers={"Location": "https://storage.test/presigned?sig=abc"})
    responses.get("https://storage.test/presigned?sig=abc", body=data)
    with client.open_blob("app", digest, len(data)) as chunks:
        assert b"".join(chunks) == data
    storage_call = responses.calls[-1]
    assert storage_call.request.url.startswith("https://storage.test/")
    assert "Authorization" not in storage_call.request.headers
    assert responses.calls[-2].request.headers["Authorization"] == "Bearer tok-1"


@responses.activate
def test_same_host_redirect_keeps_authorization(client: RegistryClient) -> None:
    data = b"x" * 10
    digest = sha(data)
    responses.get(f"{REG}/v2/", status=401, headers={"WWW-Authenticate": 'Basic realm="r"'})
    responses.get(f"{REG}/v2/", json={})
    client.ping()
    responses.get(f"{REG}/v2/app/blobs/{digest}", status=302, headers={"Location": "/v2/storage/blob"})
    responses.get(f"{REG}/v2/storage/blob", body=data)
    with client.open_blob("app", digest, len(data)) as chunks:
        assert b"".join(chunks) == data
    assert responses.calls[-1].request.headers["Authorization"].startswith("Basic ")


@responses.activate
def test_too_many_redirects(anonymous: RegistryClient) -> None:
    digest = "sha256:" + "0" * 64
    responses.get(f"{REG}/v2/app/blobs/{digest}", status=302, headers={"Location": f"{REG}/r0"})
    for i in range(6):
        responses.get(f"{REG}/r{i}", status=302, headers={"Location": f"{REG}/r{i + 1}"})
    with pytest.raises(errors.ProtocolError), anonymous.open_blob("app", digest) as chunks:
        b"".join(chunks)


@responses.activate
def test_corrupted_blob_fails_at_the_end_of_the_stream(anonymous: RegistryClient) -> None:
    data = b"good" * 1000
    digest = sha(data)
    responses.get(f"{REG}/v2/app/blobs/{digest}", body=b"evil" * 1000)
    received = 0
    with (
        pytest.raises(errors.DigestMismatch),
        anonymous.open_blob("app", digest, len(data), chunk_size=100) as chunks,
    ):
        for chunk in chunks:
            received += len(chunk)
    assert received == len(data)


@responses.activate
def test_truncated_blob_is_reported(anonymous: RegistryClient) -> None:
    data = b"0123456789" * 100
    digest = sha(data)
    responses.get(f"{REG}/v2/app/blobs/{digest}", body=data[:500])
    with (
        pytest.raises(errors.ProtocolError) as raised,
        anonymous.open_blob("app", digest, len(data)) as chunks,
    ):
        b"".join(chunks)
    assert "truncated" in raised.value.message


@responses.activate
def test_truncated_small_blob_with_content_length(anonymous: RegistryClient) -> None:
    config = b'{"os": "linux"}'
    responses.get(
        f"{REG}/v2/app/blobs/{sha(config)}",
        body=config[:5],
        headers={"Content-Length": str(len(config))},
        auto_calculate_content_length=False,
    )
    with pytest.raises(errors.ProtocolError):
        anonymous.read_blob("app", sha(config), 1024)


def test_invalid_names_never_reach_the_wire(anonymous: RegistryClient) -> None:
    with responses.RequestsMock() as rsps:
        for name in ("../etc", "a/%2f/b", "UPPER", "a\r\nb"):
            with pytest.raises(errors.InvalidReference):
                anonymous.list_tags(name)
        with pytest.raises(errors.InvalidReference):
            anonymous.get_manifest("app", "v1\r\nX-Injected: 1")
        assert len(rsps.calls) == 0
