"""``shared.scan.output.spdx``: SPDX 2.3 JSON.

The oracle is spdx-tools (the SPDX project's Python library): its JSON parser must read the document
and its full 2.3 validator must report nothing. Expected content: image-analysis.md §3.2
(documentNamespace present, ``filesAnalyzed: false``, purl externalRefs, DESCRIBES / CONTAINS /
DEPENDS_ON relationships).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from spdx_tools.spdx.parser.jsonlikedict.json_like_dict_parser import JsonLikeDictParser
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from shared.scan.model import Inventory, OSRelease, Package
from shared.scan.output.image_info import ImageInfo
from shared.scan.output.spdx import render_spdx
from tests.scan.output.conftest import NGINX_NAME

NOW = datetime(2024, 5, 1, 12, 0, 30, tzinfo=UTC)
DOC_UUID = UUID("0b7f2d5e-6a43-4f7e-8c55-1a2b3c4d5e6f")
SPDX_ID = re.compile(r"^SPDXRef-[A-Za-z0-9.-]+$")


def validation_messages(document: dict[str, Any]) -> list[str]:
    parsed = JsonLikeDictParser().parse(document)
    return [m.validation_message for m in validate_full_spdx_document(parsed, "SPDX-2.3")]


def relationships(document: dict[str, Any], kind: str) -> list[tuple[str, str]]:
    return [
        (r["spdxElementId"], r["relatedSpdxElement"])
        for r in document["relationships"]
        if r["relationshipType"] == kind
    ]


def names_by_id(document: dict[str, Any]) -> dict[str, str]:
    return {p["SPDXID"]: p["name"] for p in document["packages"]}


def test_the_validator_has_teeth() -> None:
    # A license reference the document does not declare must be reported.
    document = render_spdx(
        Inventory(
            OSRelease(id="debian", version_id="12"), [Package(name="a", version="1", type="deb")], "deb", []
        ),
        ImageInfo(name="r.example/a", tag="1"),
        now=NOW,
    )
    document["packages"][-1]["licenseDeclared"] = "LicenseRef-undeclared"
    assert validation_messages(document)


@pytest.fixture(scope="module")
def nginx_spdx(nginx_inventory: Inventory, nginx_image: ImageInfo) -> dict[str, Any]:
    return render_spdx(nginx_inventory, nginx_image, now=NOW, document_uuid=DOC_UUID)


def test_nginx_document_is_valid_spdx_2_3(nginx_spdx: dict[str, Any]) -> None:
    assert validation_messages(nginx_spdx) == []


def test_document_fields(nginx_spdx: dict[str, Any]) -> None:
    assert nginx_spdx["spdxVersion"] == "SPDX-2.3"
    assert nginx_spdx["dataLicense"] == "CC0-1.0"
    assert nginx_spdx["SPDXID"] == "SPDXRef-DOCUMENT"
    assert nginx_spdx["name"] == f"{NGINX_NAME}:latest"
    assert nginx_spdx["documentNamespace"].startswith("https://spdx.org/spdxdocs/registry-agent/")
    assert nginx_spdx["documentNamespace"].endswith(str(DOC_UUID))
    assert "#" not in nginx_spdx["documentNamespace"]
    assert nginx_spdx["creationInfo"]["created"] == "2024-05-01T12:00:30Z"
    assert nginx_spdx["creationInfo"]["creators"][0].startswith("Tool: registry-agent-")


def test_packages(nginx_spdx: dict[str, Any], nginx_inventory: Inventory, nginx_image: ImageInfo) -> None:
    packages = nginx_spdx["packages"]
    assert all(SPDX_ID.match(p["SPDXID"]) for p in packages)
    assert len({p["SPDXID"] for p in packages}) == len(packages)
    assert all(p["filesAnalyzed"] is False for p in packages)
    purposes = [p["primaryPackagePurpose"] for p in packages]
    assert purposes[:2] == ["CONTAINER", "OPERATING_SYSTEM"]
    assert purposes[2:] == ["LIBRARY"] * len(nginx_inventory.os_packages)
    image = packages[0]
    assert image["checksums"] == [
        {"algorithm": "SHA256", "checksumValue": (nginx_image.manifest_digest or "").removeprefix("sha256:")}
    ]
    audit = next(p for p in packages if p["name"] == "libaudit1")
    assert audit["versionInfo"] == "1:2.8.4-3"
    assert audit["externalRefs"] == [
        {
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": (
                "pkg:deb/debian/libaudit1@1:2.8.4-3?arch=amd64&distro=debian-buster&upstream=audit"
            ),
        }
    ]
    assert "built from source package audit" in audit["sourceInfo"]


def test_relationships(nginx_spdx: dict[str, Any]) -> None:
    names = names_by_id(nginx_spdx)
    image_id = nginx_spdx["packages"][0]["SPDXID"]
    assert relationships(nginx_spdx, "DESCRIBES") == [("SPDXRef-DOCUMENT", image_id)]
    contained = {child for parent, child in relationships(nginx_spdx, "CONTAINS") if parent == image_id}
    assert contained == set(names) - {image_id}
    depends = {(names[a], names[b]) for a, b in relationships(nginx_spdx, "DEPENDS_ON")}
    # dpkg: libaudit1 Depends: libaudit-common (>= 1:2.8.4-3), libc6 (>= 2.14), libcap-ng0 (>= 0.7.9)
    assert {("libaudit1", "libaudit-common"), ("libaudit1", "libc6"), ("libaudit1", "libcap-ng0")} <= depends


def test_license_text_that_is_not_spdx_becomes_a_declared_licenseref() -> None:
    inventory = Inventory(
        os_release=OSRelease(id="debian", version_id="12"),
        os_packages=[
            Package(name="a", version="1", type="deb", licenses=("GPL-2+", "BSD-3-clause", "public-domain")),
            Package(name="b", version="1", type="deb", licenses=("GPL 2+",)),  # sanitises like "GPL-2+"
            Package(name="c", version="1", type="deb", licenses=("MIT OR Apache-2.0", "Zlib")),
            Package(name="d", version="1", type="deb", licenses=("MIT OR Apache-2.0",)),
            Package(name="e", version="1", type="deb"),
        ],
        os_package_manager="deb",
        applications=[
            (
                "npm",
                "/app/package.json",
                [Package(name="@scope/x", version="1.0.0", type="npm", licenses=("ISC",))],
            )
        ],
    )
    document = render_spdx(inventory, ImageInfo(name="r.example/a", tag="1"), now=NOW)
    assert validation_messages(document) == []
    declared = {p["name"]: p["licenseDeclared"] for p in document["packages"]}
    assert declared["a"] == "LicenseRef-GPL-2 AND BSD-3-Clause AND LicenseRef-public-domain"
    assert declared["b"] == "LicenseRef-GPL-2-2"
    assert declared["c"] == "(MIT OR Apache-2.0) AND Zlib"
    assert declared["d"] == "MIT OR Apache-2.0"
    assert declared["e"] == "NOASSERTION"
    assert declared["@scope/x"] == "ISC"
    assert document["hasExtractedLicensingInfos"] == [
        {"licenseId": "LicenseRef-GPL-2", "extractedText": "GPL-2+", "name": "GPL-2+"},
        {"licenseId": "LicenseRef-GPL-2-2", "extractedText": "GPL 2+", "name": "GPL 2+"},
        {"licenseId": "LicenseRef-public-domain", "extractedText": "public-domain", "name": "public-domain"},
    ]


def test_ids_stay_unique_and_valid_for_awkward_names() -> None:
    same = Package(name="debug", version="2.6.9", type="npm")
    inventory = Inventory(
        os_release=OSRelease(id="unknown", version_id=""),
        os_packages=[],
        os_package_manager=None,
        applications=[
            ("npm", "/a/package.json", [same, same]),
            (
                "golang",
                "/bin/x",
                [
                    Package(
                        name="github.com/Azure/azure-sdk-for-go",
                        version="v68.0.0+incompatible",
                        type="golang",
                    )
                ],
            ),
        ],
    )
    document = render_spdx(
        inventory, ImageInfo(name="localhost:5000/x", manifest_digest="sha256:" + "0" * 64), now=NOW
    )
    assert validation_messages(document) == []
    ids = [p["SPDXID"] for p in document["packages"]]
    assert len(set(ids)) == len(ids) and all(SPDX_ID.match(i) for i in ids)
    assert "OPERATING_SYSTEM" not in {p["primaryPackagePurpose"] for p in document["packages"]}
    assert document["name"] == "localhost:5000/x@sha256:" + "0" * 64
