"""The registry client against the real CNCF distribution registry, in all four modes.

The expected answers come from skopeo (containers/image, an independent client) reading the same
registry, and from the seed plan of what the harness pushed (tests/harness/seed.py); distribution has
no skopeo command for the catalog, so repositories are checked against the seed plan.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from shared import errors
from shared.registry import Platform, RegistryClient
from shared.registry import client as client_module
from tests.harness.registry import Mode, RunningRegistry
from tests.harness.seed import SeedInfo

Connect = Callable[..., RegistryClient]
SINGLE = [
    "busybox:1.31.1",
    "hello-world:latest",
    "library/nginx:1.0",
    "built/oci-single:latest",
    "built/docker-single:latest",
    "whiteout:latest",
    "links:latest",
    "alpine:3.14",
]
MULTI = ["built/multi-oci:latest", "built/multi-docker:latest"]


def test_ping(registry: RunningRegistry, connect: Connect) -> None:
    connect(registry).ping()


def test_lists_every_seeded_repository(
    registry: RunningRegistry, connect: Connect, seeded_images: SeedInfo
) -> None:
    listed = connect(registry).list_repositories()
    # The session's registry is shared: tests that ran earlier may have pushed repositories of their own.
    assert listed == sorted(listed) and set(seeded_images.repositories) <= set(listed)


def test_catalog_pages_cost_one_token(
    registry_token: RunningRegistry,
    connect: Connect,
    seeded_images: SeedInfo,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # distribution pages the catalog with relative Link headers; 3 per page gives several pages.
    monkeypatch.setattr(client_module, "PAGE_SIZE", 3)
    assert registry_token.token_server is not None
    registry_token.token_server.reset()
    client = connect(registry_token)
    assert client.list_repositories() == sorted(seeded_images.repositories)
    assert len(seeded_images.repositories) > 6  # so that paging really happened
    assert registry_token.token_server.count("registry:catalog:*") == 1


@pytest.mark.parametrize("repository", ["many/tags", "busybox", "library/nginx", "links"])
def test_tags_agree_with_skopeo(
    registry: RunningRegistry, connect: Connect, skopeo_json: Callable[..., Any], repository: str
) -> None:
    expected = skopeo_json(registry, "list-tags", repository)["Tags"]
    client = connect(registry)
    assert client.list_tags(repository) == expected
    page = client.list_tags_page(repository, n=1000)
    assert page.tags == expected and page.next_cursor is None


def test_tags_with_metadata_have_the_manifest_digests(
    registry: RunningRegistry, connect: Connect, seeded_images: SeedInfo
) -> None:
    infos = connect(registry).list_tags_with_metadata("library/nginx")
    assert {i.tag: i.digest for i in infos} == {
        tag: seeded_images.digests[f"library/nginx:{tag}"]
        for tag in seeded_images.repositories["library/nginx"]
    }


@pytest.mark.parametrize("image", SINGLE)
def test_single_platform_images_agree_with_skopeo(
    registry: RunningRegistry, connect: Connect, skopeo_json: Callable[..., Any], image: str
) -> None:
    repository, tag = image.rsplit(":", 1)
    inspected = skopeo_json(registry, "inspect", image)
    raw = skopeo_json(registry, "inspect", image, raw=True)
    config = skopeo_json(registry, "inspect", image, "--config", raw=True)
    client = connect(registry)
    resolved = client.resolve(repository, tag)
    assert resolved.state_identifier == inspected["Digest"] == client.head_digest(repository, tag)
    if "manifests" in raw:  # alpine arrives as a list with one amd64 entry
        assert resolved.index_digest == inspected["Digest"]
        raw = skopeo_json(registry, "inspect", f"{repository}@{resolved.digest}", raw=True)
        config = skopeo_json(registry, "inspect", f"{repository}@{resolved.digest}", "--config", raw=True)
    else:
        assert resolved.index_digest is None and resolved.digest == inspected["Digest"]
    assert resolved.manifest == raw
    assert resolved.config == config
    assert [layer.digest for layer in resolved.layers] == inspected["Layers"]
    assert str(resolved.platform) == f"{inspected['Os']}/{inspected['Architecture']}" + (
        f"/{config['variant']}" if config.get("variant") else ""
    )


@pytest.mark.parametrize("image", MULTI)
@pytest.mark.parametrize("platform", ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"])
def test_multi_platform_selection_agrees_with_skopeo(
    registry: RunningRegistry,
    connect: Connect,
    skopeo_json: Callable[..., Any],
    seeded_images: SeedInfo,
    image: str,
    platform: str,
) -> None:
    repository, tag = image.rsplit(":", 1)
    index = skopeo_json(registry, "inspect", image, raw=True)
    inspected = skopeo_json(registry, "inspect", image, platform=platform)
    resolved = connect(registry).resolve(repository, tag, Platform.parse(platform))
    expected_entry = next(
        m
        for m in index["manifests"]
        if Platform.from_descriptor(m["platform"]).matches(Platform.parse(platform))
    )
    assert resolved.digest == expected_entry["digest"]
    assert resolved.index_digest == seeded_images.digests[image] == inspected["Digest"]
    assert resolved.index_media_type == index["mediaType"]
    assert [layer.digest for layer in resolved.layers] == inspected["Layers"]
    assert sorted(str(p) for p in resolved.platforms) == ["linux/amd64", "linux/arm/v7", "linux/arm64/v8"]


def test_short_platform_names_match_variants(registry_noauth: RunningRegistry, connect: Connect) -> None:
    client = connect(registry_noauth)
    assert client.resolve("built/multi-oci", "latest", Platform.parse("linux/arm64")).platform == Platform(
        "linux", "arm64", "v8"
    )
    assert client.resolve("built/multi-oci", "latest").platform == Platform("linux", "amd64")
    with pytest.raises(errors.NotFound):
        client.resolve("built/multi-oci", "latest", Platform.parse("linux/s390x"))


def test_resolve_by_digest(registry: RunningRegistry, connect: Connect, seeded_images: SeedInfo) -> None:
    digest = seeded_images.digests["busybox:1.31.1"]
    resolved = connect(registry).resolve("busybox", digest)
    assert resolved.digest == digest


def test_blobs_stream_and_verify(registry: RunningRegistry, connect: Connect) -> None:
    client = connect(registry)
    resolved = client.resolve("library/nginx", "1.0")
    for layer in resolved.layers:
        hasher = hashlib.sha256()
        size = 0
        with client.open_blob("library/nginx", layer.digest, layer.size, chunk_size=64 * 1024) as chunks:
            for chunk in chunks:
                assert len(chunk) <= 64 * 1024
                hasher.update(chunk)
                size += len(chunk)
        assert f"sha256:{hasher.hexdigest()}" == layer.digest and size == layer.size


def test_missing_things_are_not_found(registry: RunningRegistry, connect: Connect) -> None:
    client = connect(registry)
    with pytest.raises(errors.NotFound):
        client.list_tags("does/not-exist")
    with pytest.raises(errors.NotFound):
        client.resolve("busybox", "no-such-tag")


@pytest.mark.parametrize("mode", [Mode.BASIC, Mode.TOKEN, Mode.TLS])
def test_wrong_password_is_unauthorized(mode: Mode, connect: Connect, request: pytest.FixtureRequest) -> None:
    registry: RunningRegistry = request.getfixturevalue(f"registry_{mode.value}")
    client = connect(registry, password="Wr0ng-Pa55w0rd-QQQ")
    with pytest.raises(errors.Unauthorized) as raised:
        client.list_tags("busybox")
    assert raised.value.status == 401
    assert "Wr0ng-Pa55w0rd-QQQ" not in str(raised.value)


def test_tls_needs_the_ca(registry_tls: RunningRegistry, connect: Connect) -> None:
    from shared.registry import client_for
    from tests.client.conftest import credentials_for

    with client_for(credentials_for(registry_tls), _settings(requests_ca_bundle=None)) as client:
        with pytest.raises(errors.RegistryUnavailable) as raised:
            client.ping()
    assert "TLS" in raised.value.message


def test_plain_http_only_when_listed_insecure(registry_noauth: RunningRegistry) -> None:
    from shared.registry import client_for
    from tests.client.conftest import credentials_for

    # Not listed: the client speaks HTTPS to a plain-HTTP port, which must fail rather than downgrade.
    with client_for(credentials_for(registry_noauth), _settings()) as client:
        with pytest.raises(errors.RegistryUnavailable):
            client.ping()


def _settings(**overrides: Any) -> Any:
    from shared.settings import Settings

    return Settings(registry_max_retries=0, **overrides)
