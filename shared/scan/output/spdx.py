"""SPDX 2.3 JSON, written as a plain dict (the format needs few fields; spec chapters 6, 7 and 11).

The document DESCRIBES the image; the image CONTAINS the operating system and every package;
packages DEPENDS_ON each other as ``Package.depends`` says. Files are not listed, so every package has
``filesAnalyzed: false`` (otherwise SPDX requires a verification code over its files). License strings
that are not SPDX expressions become ``LicenseRef-`` ids declared in ``hasExtractedLicensingInfos``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from shared.scan.model import Inventory, Package
from shared.scan.output.dependencies import resolve_depends
from shared.scan.output.image_info import ImageInfo
from shared.scan.output.licenses import is_compound, spdx_expression
from shared.scan.output.names import native_name
from shared.scan.output.purl import image_purl, package_purl
from shared.scan.output.tool import TOOL_NAME, tool_version

DOCUMENT_ID = "SPDXRef-DOCUMENT"
NOASSERTION = "NOASSERTION"
# Spec 6.5: a creator without a website of its own may use spdx.org/spdxdocs as the namespace base.
NAMESPACE_BASE = "https://spdx.org/spdxdocs"
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")
_UNKNOWN_OS = {"", "unknown", "scratch"}


def _idstring(text: str) -> str:
    """What SPDX allows after ``SPDXRef-`` and ``LicenseRef-``: letters, digits, ``.`` and ``-``."""
    return _ID_UNSAFE.sub("-", text).strip("-") or "x"


class _Ids:
    def __init__(self) -> None:
        self._used: set[str] = {DOCUMENT_ID}

    def make(self, *parts: str) -> str:
        base = "SPDXRef-" + "-".join(_idstring(p) for p in parts if p)
        spdx_id, n = base, 1
        while spdx_id in self._used:
            n += 1
            spdx_id = f"{base}-{n}"
        self._used.add(spdx_id)
        return spdx_id


class _Licenses:
    """Turns license strings into one declared expression, collecting the ``LicenseRef-`` texts."""

    def __init__(self) -> None:
        self.extracted: dict[str, str] = {}  # LicenseRef id -> the original text

    def _term(self, value: str) -> str:
        expression = spdx_expression(value)
        if expression:
            return f"({expression})" if is_compound(expression) else expression
        ref = "LicenseRef-" + _idstring(value)
        # Two texts that sanitise alike ("GPL-2+" and "GPL 2+") must not share one id.
        n = 1
        while self.extracted.get(ref, value) != value:
            n += 1
            ref = f"LicenseRef-{_idstring(value)}-{n}"
        self.extracted[ref] = value
        return ref

    def declared(self, values: Sequence[str]) -> str:
        terms = list(dict.fromkeys(self._term(v) for v in values if v.strip()))
        if not terms:
            return NOASSERTION
        if len(terms) == 1:
            term = terms[0]
            return term[1:-1] if term.startswith("(") and term.endswith(")") else term
        # Debian copyright files list licenses that each cover part of the package: all apply.
        return " AND ".join(terms)

    def infos(self) -> list[dict[str, str]]:
        return [
            {"licenseId": ref, "extractedText": text, "name": text}
            for ref, text in sorted(self.extracted.items())
        ]


def _purl_ref(purl: str | None) -> list[dict[str, str]]:
    if not purl:
        return []
    return [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl}]


def _package(
    spdx_id: str,
    name: str,
    version: str | None,
    purpose: str,
    *,
    license_declared: str = NOASSERTION,
    purl: str | None = None,
    source_info: str | None = None,
    checksums: Iterable[dict[str, str]] = (),
    description: str | None = None,
) -> dict[str, Any]:
    package: dict[str, Any] = {
        "SPDXID": spdx_id,
        "name": name,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": license_declared,
        "copyrightText": NOASSERTION,
        "primaryPackagePurpose": purpose,
    }
    if version:
        package["versionInfo"] = version
    checksums = list(checksums)
    if checksums:
        package["checksums"] = checksums
    if source_info:
        package["sourceInfo"] = source_info
    if description:
        package["description"] = description
    refs = _purl_ref(purl)
    if refs:
        package["externalRefs"] = refs
    return package


def _source_info(pkg: Package, image: ImageInfo, target_file: str | None) -> str | None:
    parts = []
    if pkg.source_name:
        source = f"{pkg.source_name} {pkg.source_version}" if pkg.source_version else pkg.source_name
        parts.append(f"built from source package {source}")
    where = target_file or pkg.location
    if where:
        parts.append(f"found in {where}")
    diff_id = image.diff_id_for_layer(pkg.layer_digest)
    if pkg.layer_digest:
        parts.append(f"layer {pkg.layer_digest}" + (f" (diff ID {diff_id})" if diff_id else ""))
    return "; ".join(parts) or None


def _relationship(element: str, kind: str, related: str) -> dict[str, str]:
    return {"spdxElementId": element, "relationshipType": kind, "relatedSpdxElement": related}


def render_spdx(
    inventory: Inventory, image: ImageInfo, *, now: datetime | None = None, document_uuid: UUID | None = None
) -> dict[str, Any]:
    ids = _Ids()
    licenses = _Licenses()
    created = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    image_id = ids.make("Image", image.name)
    digest = image.manifest_digest or ""
    packages = [
        _package(
            image_id,
            image.name,
            image.tag or image.manifest_digest,
            "CONTAINER",
            purl=image_purl(image),
            checksums=(
                [{"algorithm": "SHA256", "checksumValue": digest.removeprefix("sha256:")}]
                if digest.startswith("sha256:")
                else []
            ),
        )
    ]
    relationships = [_relationship(DOCUMENT_ID, "DESCRIBES", image_id)]

    os_release = inventory.os_release
    if os_release.id not in _UNKNOWN_OS:
        os_id = ids.make("OperatingSystem", os_release.id, os_release.version_id)
        packages.append(
            _package(
                os_id,
                os_release.id,
                os_release.version_id,
                "OPERATING_SYSTEM",
                description=os_release.pretty_name or None,
            )
        )
        relationships.append(_relationship(image_id, "CONTAINS", os_id))

    groups: list[tuple[str | None, Sequence[Package]]] = [(None, inventory.os_packages)]
    groups += [(target, pkgs) for _ecosystem, target, pkgs in inventory.applications]
    for target_file, group in groups:
        group_ids = [ids.make("Package", pkg.type, native_name(pkg), pkg.version) for pkg in group]
        for spdx_id, pkg in zip(group_ids, group, strict=True):
            packages.append(
                _package(
                    spdx_id,
                    native_name(pkg),
                    pkg.version,
                    "LIBRARY",
                    license_declared=licenses.declared(pkg.licenses),
                    purl=package_purl(pkg, os_release, "sbom"),
                    source_info=_source_info(pkg, image, target_file),
                )
            )
            relationships.append(_relationship(image_id, "CONTAINS", spdx_id))
        for index, targets in enumerate(resolve_depends(group)):
            relationships += [_relationship(group_ids[index], "DEPENDS_ON", group_ids[t]) for t in targets]

    namespace = f"{NAMESPACE_BASE}/{TOOL_NAME}/{_idstring(image.reference)}-{document_uuid or uuid4()}"
    document: dict[str, Any] = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": DOCUMENT_ID,
        "name": image.reference,
        "documentNamespace": namespace,
        "creationInfo": {"created": created, "creators": [f"Tool: {TOOL_NAME}-{tool_version()}"]},
        "packages": packages,
        "relationships": relationships,
    }
    extracted = licenses.infos()
    if extracted:
        document["hasExtractedLicensingInfos"] = extracted
    return document
