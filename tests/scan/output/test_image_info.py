"""``shared.scan.output.image_info.ImageInfo``: facts derived from the image config.

Rules from the OCI image spec (config.md: ``os``/``architecture``/``variant``, ``rootfs.diff_ids``
in layer order; manifest.md: ``layers`` in the same order) and snyk-docker-plugin's
``ImageName.getAllNames`` for the name list.
"""

from __future__ import annotations

from shared.scan.output.image_info import ImageInfo

A, B = "sha256:" + "a" * 64, "sha256:" + "b" * 64
DA, DB = "sha256:" + "1" * 64, "sha256:" + "2" * 64


def test_platform_from_config_or_given() -> None:
    assert (
        ImageInfo(name="x", config={"os": "linux", "architecture": "arm", "variant": "v7"}).platform_string
        == "linux/arm/v7"
    )
    assert (
        ImageInfo(name="x", config={"os": "linux", "architecture": "amd64"}).platform_string == "linux/amd64"
    )
    assert (
        ImageInfo(
            name="x", platform="linux/s390x", config={"os": "linux", "architecture": "amd64"}
        ).platform_string
        == "linux/s390x"
    )
    assert ImageInfo(name="x").platform_string is None


def test_names_and_reference() -> None:
    image = ImageInfo(name="r.example/app", tag="1.0", manifest_digest=A, index_digest=B)
    assert image.names == ["r.example/app:1.0", f"r.example/app@{A}", f"r.example/app@{B}"]
    assert image.reference == "r.example/app:1.0"
    assert ImageInfo(name="r.example/app", manifest_digest=A).reference == f"r.example/app@{A}"


def test_diff_id_pairs_layers_by_position_only_when_complete() -> None:
    config = {"rootfs": {"type": "layers", "diff_ids": [DA, DB]}}
    image = ImageInfo(name="x", config=config, layer_digests=(A, B))
    assert (image.diff_id_for_layer(A), image.diff_id_for_layer(B)) == (DA, DB)
    assert image.diff_id_for_layer("sha256:" + "c" * 64) is None
    # One list shorter than the other: the pairing is unknowable, so no answer.
    assert ImageInfo(name="x", config=config, layer_digests=(A,)).diff_id_for_layer(A) is None


def test_config_accessors_tolerate_missing_or_odd_values() -> None:
    image = ImageInfo(name="x", config={"config": {"Labels": None}, "history": "nope", "rootfs": {}})
    assert (image.labels, image.history, image.diff_ids, image.created) == ({}, [], [], None)
    labelled = ImageInfo(
        name="x", config={"config": {"Labels": {"a": "b"}}, "created": "2024-01-01T00:00:00Z"}
    )
    assert (labelled.labels, labelled.created) == ({"a": "b"}, "2024-01-01T00:00:00Z")


def test_image_info_is_hashable_despite_its_config_dict() -> None:
    image = ImageInfo(name="x", tag="1", config={"os": "linux"})
    assert hash(image) == hash(ImageInfo(name="x", tag="1", config={"os": "windows"}))
    assert image != ImageInfo(name="x", tag="1", config={"os": "windows"})
