"""``shared.scan.output.cyclonedx``: CycloneDX 1.6 JSON.

Validity is judged by the CycloneDX 1.6 JSON schema bundled in cyclonedx-python-lib (strict
validator, which also loads the SPDX license-id and JSF schemas it references), and by reading the
document back with the same library. Expected content: image-analysis.md §3.1 (container
metadata component, an operating-system component, libraries with purls, dependencies).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from cyclonedx.model.bom import Bom
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from shared.scan.model import Inventory, OSRelease, Package
from shared.scan.output.cyclonedx import render_cyclonedx
from shared.scan.output.image_info import ImageInfo
from tests.scan.output.conftest import NGINX_NAME

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SERIAL = UUID("8f3c2a40-1d2e-4c57-9b1a-3f6f0e4d2b11")
LAYER = "sha256:" + "1a" * 32
DIFF_ID = "sha256:" + "2b" * 32


def validate(document: dict[str, Any]) -> None:
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(document))
    assert error is None, error


def by_ref(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["bom-ref"]: c for c in document["components"]}


def test_the_validator_rejects_a_broken_document() -> None:
    # The oracle has teeth: a component without "name" breaks the 1.6 schema.
    broken = {"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [{"type": "library"}]}
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(broken)) is not None


@pytest.fixture(scope="module")
def nginx_bom(nginx_inventory: Inventory, nginx_image: ImageInfo) -> dict[str, Any]:
    return render_cyclonedx(nginx_inventory, nginx_image, now=NOW, serial=SERIAL)


def test_nginx_bom_is_valid_cyclonedx_1_6(nginx_bom: dict[str, Any]) -> None:
    validate(nginx_bom)
    assert (nginx_bom["bomFormat"], nginx_bom["specVersion"]) == ("CycloneDX", "1.6")
    assert nginx_bom["serialNumber"] == f"urn:uuid:{SERIAL}"


def test_metadata_component_is_the_image(nginx_bom: dict[str, Any], nginx_image: ImageInfo) -> None:
    image = nginx_bom["metadata"]["component"]
    assert image["type"] == "container"
    assert image["name"] == NGINX_NAME
    assert image["version"] == "latest"
    assert image["hashes"] == [
        {"alg": "SHA-256", "content": (nginx_image.manifest_digest or "").removeprefix("sha256:")}
    ]
    assert image["purl"].startswith("pkg:oci/nginx@sha256:")
    properties = {p["name"]: p["value"] for p in image["properties"]}
    assert properties["registry-agent:image:configDigest"] == nginx_image.config_digest
    assert nginx_bom["metadata"]["tools"]["components"][0]["name"] == "registry-agent"


def test_operating_system_and_packages(nginx_bom: dict[str, Any], nginx_inventory: Inventory) -> None:
    components = by_ref(nginx_bom)
    os_component = components["operating-system"]
    assert (os_component["type"], os_component["name"], os_component["version"]) == (
        "operating-system",
        "debian",
        "10",
    )
    libraries = [c for c in nginx_bom["components"] if c["type"] == "library"]
    assert len(libraries) == len(nginx_inventory.os_packages)
    audit = next(c for c in libraries if c["name"] == "libaudit1")
    assert (
        audit["purl"] == "pkg:deb/debian/libaudit1@1:2.8.4-3?arch=amd64&distro=debian-buster&upstream=audit"
    )
    properties = {p["name"]: p["value"] for p in audit["properties"]}
    assert properties["registry-agent:package:location"] == "/var/lib/dpkg/status"
    assert properties["registry-agent:package:sourceName"] == "audit"


def test_dependencies_reference_known_components(nginx_bom: dict[str, Any]) -> None:
    refs = set(by_ref(nginx_bom)) | {"image"}
    dependencies = {d["ref"]: d.get("dependsOn", []) for d in nginx_bom["dependencies"]}
    assert set(dependencies) <= refs
    assert all(set(targets) <= refs for targets in dependencies.values())
    assert dependencies["image"] == ["operating-system"]
    audit = next(r for r in refs if r.startswith("pkg:deb/debian/libaudit1@"))
    assert {t.split("@")[0] for t in dependencies[audit]} >= {
        "pkg:deb/debian/libaudit-common",
        "pkg:deb/debian/libcap-ng0",
        "pkg:deb/debian/libc6",
    }
    # Every library is reachable from the image through dependsOn.
    seen, stack = {"image"}, ["image"]
    while stack:
        for target in dependencies.get(stack.pop(), []):
            if target not in seen:
                seen.add(target)
                stack.append(target)
    assert seen == refs


def test_round_trip_through_the_library(nginx_bom: dict[str, Any]) -> None:
    bom = Bom.from_json(nginx_bom)  # type: ignore[attr-defined]
    assert bom.metadata.component is not None and bom.metadata.component.name == NGINX_NAME
    purls = {str(c.purl) for c in bom.components if c.purl is not None}
    assert purls == {c["purl"] for c in nginx_bom["components"] if "purl" in c}
    assert len(bom.dependencies) == len(nginx_bom["dependencies"])


def mixed_inventory() -> Inventory:
    return Inventory(
        os_release=OSRelease(id="alpine", version_id="3.19.1", pretty_name="Alpine Linux v3.19"),
        os_package_manager="apk",
        os_packages=[
            Package(
                name="musl",
                version="1.2.4_git20230717-r4",
                type="apk",
                source_name="musl",
                architecture="x86_64",
                licenses=("MIT",),
                layer_digest=LAYER,
            ),
            Package(
                name="busybox",
                version="1.36.1-r15",
                type="apk",
                source_name="busybox",
                architecture="x86_64",
                licenses=("GPL-2.0-only",),
                depends=("musl",),
                layer_digest=LAYER,
            ),
        ],
        applications=[
            (
                "npm",
                "/app/package.json",
                [
                    Package(
                        name="express", version="4.18.2", type="npm", licenses=("MIT",), depends=("debug",)
                    ),
                    # The same package found twice (two node_modules copies): two components.
                    Package(
                        name="debug",
                        version="2.6.9",
                        type="npm",
                        licenses=("mit",),
                        location="/app/node_modules/debug/package.json",
                    ),
                    Package(
                        name="debug",
                        version="2.6.9",
                        type="npm",
                        location="/app/node_modules/express/node_modules/debug/package.json",
                    ),
                ],
            ),
            (
                "pypi",
                "/usr/lib/python3.11/site-packages",
                [
                    Package(name="PyYAML", version="6.0.1", type="pypi", licenses=("MIT OR Apache-2.0",)),
                    Package(name="weird", version="1.0", type="pypi", licenses=("GPL-2+", "Public Domain")),
                    Package(
                        name="dual",
                        version="1.0",
                        type="pypi",
                        licenses=("MIT OR Apache-2.0", "BSD-3-Clause"),
                    ),
                ],
            ),
        ],
        warnings=[],
    )


def image() -> ImageInfo:
    return ImageInfo(
        name="ghcr.io/acme/tool",
        tag="2.1",
        manifest_digest="sha256:" + "3c" * 32,
        index_digest="sha256:" + "4d" * 32,
        registry_host="ghcr.io",
        repository="acme/tool",
        config_digest="sha256:" + "5e" * 32,
        config={"os": "linux", "architecture": "amd64", "rootfs": {"diff_ids": [DIFF_ID]}},
        layer_digests=(LAYER,),
    )


def test_mixed_image_is_valid_and_keeps_duplicates_apart() -> None:
    document = render_cyclonedx(mixed_inventory(), image(), now=NOW, serial=SERIAL)
    validate(document)
    debug = [c for c in document["components"] if c["name"] == "debug"]
    assert len(debug) == 2 and debug[0]["bom-ref"] != debug[1]["bom-ref"]
    assert {c["purl"] for c in debug} == {"pkg:npm/debug@2.6.9"}


def test_licenses_follow_the_schemas_either_or_rule() -> None:
    components = {c["name"]: c for c in render_cyclonedx(mixed_inventory(), image(), now=NOW)["components"]}
    assert components["PyYAML"]["licenses"] == [{"expression": "MIT OR Apache-2.0"}]
    debug = [
        c for c in render_cyclonedx(mixed_inventory(), image(), now=NOW)["components"] if c["name"] == "debug"
    ]
    assert [c.get("licenses") for c in debug] in (
        [[{"license": {"id": "MIT"}}], None],  # "mit" in canonical case; the second copy declares none
        [None, [{"license": {"id": "MIT"}}]],
    )
    assert components["weird"]["licenses"] == [
        {"license": {"name": "GPL-2+"}},
        {"license": {"name": "Public Domain"}},
    ]
    # With a second license the expression cannot stay an expression.
    assert {"license": {"name": "MIT OR Apache-2.0"}} in components["dual"]["licenses"]


def test_layer_properties_and_os_roots() -> None:
    document = render_cyclonedx(mixed_inventory(), image(), now=NOW)
    musl = next(c for c in document["components"] if c["name"] == "musl")
    properties = {p["name"]: p["value"] for p in musl["properties"]}
    assert properties["registry-agent:package:layerDigest"] == LAYER
    assert (
        properties["registry-agent:package:layerDiffId"] == DIFF_ID
    )  # manifest layer i <-> rootfs diff_id i
    assert musl["purl"] == "pkg:apk/alpine/musl@1.2.4_git20230717-r4?arch=x86_64&distro=alpine-3.19.1"
    dependencies = {d["ref"]: d.get("dependsOn", []) for d in document["dependencies"]}
    busybox = next(c["bom-ref"] for c in document["components"] if c["name"] == "busybox")
    assert dependencies["operating-system"] == [busybox]  # musl hangs under busybox, not the OS
    assert dependencies[busybox] == [musl["bom-ref"]]
    assert document["metadata"]["timestamp"] == "2024-05-01T12:00:00+00:00"


def test_maven_coordinates_use_group_and_name() -> None:
    inventory = Inventory(
        os_release=OSRelease(id="unknown", version_id=""),
        os_packages=[],
        os_package_manager=None,
        applications=[
            (
                "maven",
                "/app/app.jar",
                [
                    Package(
                        name="commons-lang3", namespace="org.apache.commons", version="3.12.0", type="maven"
                    )
                ],
            )
        ],
    )
    document = render_cyclonedx(inventory, image(), now=NOW)
    validate(document)
    [component] = document["components"]
    assert (component["group"], component["name"]) == ("org.apache.commons", "commons-lang3")
    assert component["purl"] == "pkg:maven/org.apache.commons/commons-lang3@3.12.0"


def test_image_without_os_hangs_packages_from_the_image() -> None:
    inventory = Inventory(
        os_release=OSRelease(id="scratch", version_id=""),
        os_packages=[],
        os_package_manager=None,
        applications=[
            (
                "golang",
                "/ko-app/server",
                [Package(name="github.com/spf13/cobra", version="v1.8.0", type="golang")],
            )
        ],
    )
    document = render_cyclonedx(inventory, image(), now=NOW)
    validate(document)
    assert "operating-system" not in by_ref(document)
    assert {d["ref"]: d.get("dependsOn") for d in document["dependencies"]}["image"] == [
        "pkg:golang/github.com/spf13/cobra@v1.8.0"
    ]
