"""``shared.registry.platform``: parsing and matching os/architecture/variant, reading an index.

Expected behaviour: registries.md §1.4 "Platform selection from an index" (match os/architecture/
variant, normalise arm64 → variant v8 and arm → v7, skip BuildKit attestation entries: platform
``unknown/unknown`` or annotation ``vnd.docker.reference.type: attestation-manifest``);
broker-protocol.md §10 getManifest (drop ``unknown/unknown`` entries, default ``linux/amd64``).
"""

from __future__ import annotations

import pytest

from shared.errors import BadRequest
from shared.registry.platform import DEFAULT_PLATFORM, Platform, index_platforms, is_attestation


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("linux/amd64", Platform("linux", "amd64")),
        ("linux/arm64/v8", Platform("linux", "arm64", "v8")),
        ("Linux/ARM/V7", Platform("linux", "arm", "v7")),
        ("  windows/amd64 ", Platform("windows", "amd64")),
    ],
)
def test_parse(text: str, expected: Platform) -> None:
    assert Platform.parse(text) == expected


@pytest.mark.parametrize(
    "text", ["", "linux", "linux/", "/amd64", "linux//v8", "linux/arm/v7/extra", "linux/arm/"]
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(BadRequest, match="os/architecture"):
        Platform.parse(text)


def test_str() -> None:
    assert str(Platform.parse("linux/arm64/v8")) == "linux/arm64/v8"
    assert str(DEFAULT_PLATFORM) == "linux/amd64"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("linux/arm64", "linux/arm64/v8"),
        ("linux/arm", "linux/arm/v7"),
        ("linux/aarch64", "linux/arm64"),
        ("linux/aarch64", "linux/arm64/v8"),
        ("linux/x86_64", "linux/amd64"),
        ("linux/amd64", "LINUX/AMD64"),
    ],
)
def test_matches_normalised_platforms(a: str, b: str) -> None:
    assert Platform.parse(a).matches(Platform.parse(b))
    assert Platform.parse(b).matches(Platform.parse(a))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("linux/arm", "linux/arm/v6"),
        ("linux/arm/v6", "linux/arm/v7"),
        ("linux/arm64", "linux/arm64/v9"),
        ("linux/amd64", "linux/arm64"),
        ("linux/amd64", "windows/amd64"),
        ("linux/arm64", "linux/arm"),
        ("linux/amd64/v2", "linux/amd64/v3"),
    ],
)
def test_does_not_match(a: str, b: str) -> None:
    assert not Platform.parse(a).matches(Platform.parse(b))
    assert not Platform.parse(b).matches(Platform.parse(a))


def test_from_descriptor_lowercases_and_ignores_empty_variant() -> None:
    assert Platform.from_descriptor({"os": "Linux", "architecture": "ARM64", "variant": "V8"}) == Platform(
        "linux", "arm64", "v8"
    )
    assert Platform.from_descriptor({"os": "linux", "architecture": "amd64", "variant": ""}).variant is None
    assert Platform.from_descriptor({}) == Platform("", "")


def entry(
    digest: str, os: str, arch: str, variant: str | None = None, annotations: dict | None = None
) -> dict:
    platform = {"os": os, "architecture": arch}
    if variant:
        platform["variant"] = variant
    item: dict = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest,
        "platform": platform,
    }
    if annotations:
        item["annotations"] = annotations
    return item


ATTESTATION_ANNOTATIONS = {
    "vnd.docker.reference.digest": "sha256:amd",
    "vnd.docker.reference.type": "attestation-manifest",
}


def test_index_platforms_skips_attestations() -> None:
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            entry("sha256:amd", "linux", "amd64"),
            entry("sha256:arm", "linux", "arm64", "v8"),
            entry("sha256:att1", "unknown", "unknown", annotations=ATTESTATION_ANNOTATIONS),
            entry("sha256:att2", "unknown", "unknown"),
            entry("sha256:att3", "linux", "amd64", annotations=ATTESTATION_ANNOTATIONS),
        ],
    }
    found = index_platforms(index)

    assert [(str(p), e["digest"]) for p, e in found] == [
        ("linux/amd64", "sha256:amd"),
        ("linux/arm64/v8", "sha256:arm"),
    ]


def test_index_platforms_tolerates_odd_entries() -> None:
    index = {
        "manifests": ["not-a-dict", {"digest": "sha256:noplatform"}, entry("sha256:ok", "linux", "s390x")]
    }
    found = index_platforms(index)
    assert [e["digest"] for _, e in found] == ["sha256:noplatform", "sha256:ok"]
    assert found[0][0] == Platform("", "")


@pytest.mark.parametrize("index", [{}, {"manifests": None}, {"manifests": []}])
def test_index_without_manifests(index: dict) -> None:
    assert index_platforms(index) == []


def test_is_attestation() -> None:
    assert is_attestation({"platform": {"os": "unknown", "architecture": "unknown"}})
    assert is_attestation({"annotations": {"vnd.docker.reference.type": "attestation-manifest"}})
    assert not is_attestation({"platform": {"os": "unknown", "architecture": "amd64"}})
    assert not is_attestation({"platform": {"os": "linux", "architecture": "amd64"}, "annotations": None})
    assert not is_attestation({"annotations": {"vnd.docker.reference.type": "signature"}})
