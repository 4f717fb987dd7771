"""``shared.registry.reference``: image references validated before any URL or header is built.

Expected behaviour: the OCI distribution grammar the module implements (distribution-spec "Pulling
manifests": ``<name>`` is ``[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(\\/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*``,
a tag ``[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}``; OCI image-spec descriptor digests: ``sha256`` is 64 and
``sha512`` 128 lower-case hex digits); registries.md §1.1 step 5 (names may contain ``host:port``);
broker-protocol.md §10 (the Node client rejects ``& ; "``, spaces, ``//`` and blanks; paths come from
user input via the broker, §3.1) and the module docstring (``..``, ``%2f`` and CRLF must never reach a
path or a header).
"""

from __future__ import annotations

import pytest

from shared.errors import BadRequest, InvalidReference
from shared.registry.reference import (
    MAX_NAME_LENGTH,
    ImageRef,
    is_digest,
    parse_image,
    validate_digest,
    validate_reference,
    validate_repository,
    validate_tag,
)

SHA256 = "sha256:" + "0123456789abcdef" * 4
SHA512 = "sha512:" + "0123456789abcdef" * 8


@pytest.mark.parametrize(
    ("image", "registry", "repository", "tag", "digest"),
    [
        ("nginx", None, "nginx", "latest", None),
        ("library/nginx", None, "library/nginx", "latest", None),
        ("library/nginx:1.25", None, "library/nginx", "1.25", None),
        ("team/sub/app:v1.0-rc_1", None, "team/sub/app", "v1.0-rc_1", None),
        (f"app@{SHA256}", None, "app", None, SHA256),
        (f"app:1.0@{SHA256}", None, "app", "1.0", SHA256),
        (f"app@{SHA512}", None, "app", None, SHA512),
        ("reg.test:5000/app", "reg.test:5000", "app", "latest", None),
        ("reg.test:5000/team/app:2", "reg.test:5000", "team/app", "2", None),
        ("myhost:5000/app", "myhost:5000", "app", "latest", None),
        (f"reg.test:5000/app:t@{SHA256}", "reg.test:5000", "app", "t", SHA256),
        ("localhost/app", "localhost", "app", "latest", None),
        ("localhost:5000/app:dev", "localhost:5000", "app", "dev", None),
        ("docker.io/library/nginx", "docker.io", "library/nginx", "latest", None),
        ("Registry.Example.COM/app", "registry.example.com", "app", "latest", None),
        ("[::1]:5000/app", "[::1]:5000", "app", "latest", None),
        ("a.b-c_d__e---f/g", None, "a.b-c_d__e---f/g", "latest", None),
        ("library/tag:MixedCase", None, "library/tag", "MixedCase", None),
    ],
)
def test_parse_image(
    image: str, registry: str | None, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = parse_image(image)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)


def test_first_component_without_dot_colon_or_localhost_is_part_of_the_name() -> None:
    ref = parse_image("library/nginx")
    assert ref.registry is None
    assert ref.repository == "library/nginx"


def test_reference_prefers_digest_then_tag_then_latest() -> None:
    assert parse_image(f"app:1.0@{SHA256}").reference == SHA256
    assert parse_image("app:1.0").reference == "1.0"
    assert parse_image("app").reference == "latest"
    assert ImageRef("app").reference == "latest"


@pytest.mark.parametrize(
    "image",
    ["nginx:latest", "reg.test:5000/team/app:2", f"app@{SHA256}", f"localhost/app:t@{SHA256}"],
)
def test_str_round_trips(image: str) -> None:
    assert str(parse_image(image)) == image
    assert parse_image(str(parse_image(image))) == parse_image(image)


def test_bare_name_gains_latest_in_str() -> None:
    assert str(parse_image("nginx")) == "nginx:latest"


@pytest.mark.parametrize(
    "image",
    [
        pytest.param("..", id="dotdot"),
        pytest.param("../etc/passwd", id="dotdot-prefix"),
        pytest.param("team/../admin", id="dotdot-middle"),
        pytest.param("reg.test/../v2/_catalog", id="dotdot-after-registry"),
        pytest.param("team/./app", id="dot-segment"),
        pytest.param("Nginx", id="uppercase"),
        pytest.param("team/App:1", id="uppercase-component"),
        pytest.param("team%2fapp", id="percent-2f"),
        pytest.param("team%2Fapp", id="percent-2F"),
        pytest.param("app:v1%2f..", id="percent-in-tag"),
        pytest.param("app\r\nX-Injected: 1", id="crlf"),
        pytest.param("app\n", id="lf"),
        pytest.param("app:1\r", id="cr-in-tag"),
        pytest.param("app\x00", id="nul"),
        pytest.param("app\x7f", id="del"),
        pytest.param("my app", id="space"),
        pytest.param("app:my tag", id="space-in-tag"),
        pytest.param("app\t", id="tab"),
        pytest.param("", id="empty"),
        pytest.param("a" * (MAX_NAME_LENGTH + 1), id="name-256"),
        pytest.param("x" * 1025, id="over-1024"),
        pytest.param("a//b", id="double-slash"),
        pytest.param("/app", id="leading-slash"),
        pytest.param("app/", id="trailing-slash"),
        pytest.param("a___b", id="triple-underscore"),
        pytest.param("_app", id="leading-separator"),
        pytest.param("app-", id="trailing-separator"),
        pytest.param("app:", id="empty-tag"),
        pytest.param("app:-tag", id="tag-leading-dash"),
        pytest.param("app:.tag", id="tag-leading-dot"),
        pytest.param("app:" + "t" * 129, id="tag-129"),
        pytest.param("app@", id="empty-digest"),
        pytest.param("app:1@", id="tag-and-empty-digest"),
        pytest.param("app@sha256:" + "a" * 63, id="sha256-63"),
        pytest.param("app@sha256:" + "a" * 65, id="sha256-65"),
        pytest.param("app@sha256:" + "A" * 64, id="sha256-uppercase"),
        pytest.param("app@sha256:" + "g" * 64, id="sha256-not-hex"),
        pytest.param("app@sha512:" + "a" * 64, id="sha512-short"),
        pytest.param("app@md5:" + "a" * 32, id="unknown-algorithm"),
        pytest.param("app@sha256", id="digest-without-colon"),
        pytest.param("app@sha256:abc", id="digest-too-short"),
        pytest.param(f"app@{SHA256}@{SHA256}", id="two-digests"),
        pytest.param("app&x=1", id="ampersand"),
        pytest.param("app;rm", id="semicolon"),
        pytest.param('app"', id="quote"),
        pytest.param("app?n=1", id="query"),
        pytest.param("app#frag", id="fragment"),
        pytest.param("app\\x", id="backslash"),
        pytest.param("réseau/app", id="non-ascii"),
        pytest.param("host:port/app", id="non-numeric-port"),
    ],
)
def test_rejected_images(image: str) -> None:
    with pytest.raises(InvalidReference) as caught:
        parse_image(image)
    assert caught.value.status == 400
    assert caught.value.code == "INVALID_REFERENCE"
    assert isinstance(caught.value, BadRequest)


def test_name_of_exactly_255_characters_is_accepted() -> None:
    name = "a" * MAX_NAME_LENGTH
    assert parse_image(name).repository == name
    assert validate_repository(name) == name


def test_long_name_split_in_components() -> None:
    name = "/".join(["abcdefghij"] * 23)  # 23 * 10 + 22 = 252
    assert parse_image(f"{name}:t").repository == name


def test_error_message_does_not_echo_the_input() -> None:
    with pytest.raises(InvalidReference) as caught:
        parse_image("app\r\nX-Injected: evil")
    assert "X-Injected" not in str(caught.value)


@pytest.mark.parametrize("tag", ["a", "_", "0", "latest", "v1.2.3-rc.1_build", "A" * 128, "_" + "x" * 127])
def test_valid_tags(tag: str) -> None:
    assert validate_tag(tag) == tag


@pytest.mark.parametrize(
    "tag", ["", "t" * 129, ".hidden", "-dash", "a/b", "a:b", "a@b", "a b", "a\n", "é", "a+b"]
)
def test_invalid_tags(tag: str) -> None:
    with pytest.raises(InvalidReference):
        validate_tag(tag)


@pytest.mark.parametrize("digest", [SHA256, SHA512])
def test_valid_digests(digest: str) -> None:
    assert validate_digest(digest) == digest
    assert validate_reference(digest) == digest
    assert is_digest(digest)


@pytest.mark.parametrize(
    ("digest", "fragment"),
    [
        ("sha256:" + "a" * 63, "64 lower-case hex"),
        ("sha256:" + "a" * 65, "64 lower-case hex"),
        ("sha256:" + "A" * 64, "64 lower-case hex"),
        ("sha512:" + "a" * 127, "128 lower-case hex"),
        ("sha512:" + "F" * 128, "128 lower-case hex"),
        ("md5:" + "a" * 32, "unsupported digest algorithm"),
        ("blake3:" + "a" * 64, "unsupported digest algorithm"),
        ("sha256+b64u:" + "a" * 43, "unsupported digest algorithm"),
        ("SHA256:" + "a" * 64, "algorithm:hex"),
        ("sha256:short", "algorithm:hex"),
        (":" + "a" * 64, "algorithm:hex"),
        ("sha256" + "a" * 64, "algorithm:hex"),
    ],
)
def test_invalid_digests(digest: str, fragment: str) -> None:
    with pytest.raises(InvalidReference, match=fragment):
        validate_digest(digest)


def test_validate_reference_dispatches_on_colon() -> None:
    assert validate_reference("v1") == "v1"
    assert not is_digest("v1")
    with pytest.raises(InvalidReference, match="digest"):
        validate_reference("v1:2")
    with pytest.raises(InvalidReference, match="tag"):
        validate_reference("-v1")


@pytest.mark.parametrize("name", ["library/nginx", "a", "a0/b1/c2", "a.b", "a_b", "a__b", "a-b", "a--b"])
def test_valid_repositories(name: str) -> None:
    assert validate_repository(name) == name


@pytest.mark.parametrize(
    "name", ["", "A", "a/", "/a", "a//b", "a/./b", "a/../b", "a.", ".a", "a..b", "a%2fb", "a:b"]
)
def test_invalid_repositories(name: str) -> None:
    with pytest.raises(InvalidReference):
        validate_repository(name)


@pytest.mark.parametrize(
    ("validate", "value"),
    [
        (validate_repository, "library/nginx\n"),
        (validate_tag, "v1\n"),
        (validate_reference, "latest\n"),
        (validate_digest, SHA256 + "\n"),
        (validate_digest, SHA512 + "\n"),
        (validate_reference, SHA256 + "\n"),
    ],
)
def test_validators_reject_a_trailing_newline(validate, value: str) -> None:
    # The client calls these directly on caller input and on digests taken from manifests, so they
    # must stop a newline even without parse_image's whitespace check.
    with pytest.raises(InvalidReference):
        validate(value)
