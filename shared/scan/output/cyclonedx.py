"""CycloneDX 1.6 JSON, built with cyclonedx-python-lib so the library's model keeps it schema-valid.

Layout (the one Trivy uses for images): ``metadata.component`` is the image (type ``container``, its
manifest digest as a SHA-256 hash); an ``operating-system`` component stands for the detected OS and
depends on the OS packages nothing else depends on; every package is a ``library`` with its purl;
dependencies follow ``Package.depends``. What CycloneDX has no field for (layer, file, source package)
goes into ``registry-agent:*`` properties.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.license import DisjunctiveLicense, License, LicenseExpression
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.spdx import is_supported_id
from packageurl import PackageURL

from shared.scan.model import Inventory, Package
from shared.scan.output.dependencies import break_cycles, resolve_depends
from shared.scan.output.image_info import ImageInfo
from shared.scan.output.licenses import is_compound, spdx_expression
from shared.scan.output.names import native_name
from shared.scan.output.purl import image_purl, package_purl
from shared.scan.output.tool import TOOL_NAME, tool_version

PROPERTY_PREFIX = "registry-agent:"
IMAGE_REF = "image"
OS_REF = "operating-system"
_UNKNOWN_OS = {"", "unknown", "scratch"}


def _licenses(values: Sequence[str]) -> list[License]:
    # The schema allows either one expression or a list of single licenses, never both: a compound
    # expression is kept as such only when it is the package's only license string.
    expressions = [spdx_expression(value) for value in values]
    if len(values) == 1 and expressions[0] and is_compound(expressions[0]):
        return [LicenseExpression(expressions[0])]
    out: list[License] = []
    for value, expression in zip(values, expressions, strict=True):
        # The schema's id enum is the library's SPDX list, which may lag the parser's.
        if expression and not is_compound(expression) and is_supported_id(expression):
            out.append(DisjunctiveLicense(id=expression))
        else:
            out.append(DisjunctiveLicense(name=value))
    return out


def _properties(pairs: Iterable[tuple[str, str | None]]) -> list[Property]:
    return [Property(name=PROPERTY_PREFIX + name, value=value) for name, value in pairs if value]


def _digest_hash(digest: str | None) -> list[HashType]:
    if digest and digest.startswith("sha256:"):
        return [HashType(alg=HashAlgorithm.SHA_256, content=digest.removeprefix("sha256:"))]
    return []


def _image_component(image: ImageInfo) -> Component:
    purl = image_purl(image)
    return Component(
        type=ComponentType.CONTAINER,
        name=image.name,
        version=image.tag or image.manifest_digest,
        bom_ref=IMAGE_REF,
        purl=PackageURL.from_string(purl) if purl else None,
        hashes=_digest_hash(image.manifest_digest),
        properties=_properties(
            [
                ("image:configDigest", image.config_digest),
                ("image:indexDigest", image.index_digest),
                ("image:platform", image.platform_string),
                ("image:created", image.created),
            ]
        ),
    )


class _Refs:
    """bom-refs that are unique however often one purl repeats (one package found in two places)."""

    def __init__(self) -> None:
        self._used: set[str] = {IMAGE_REF, OS_REF}

    def make(self, wanted: str) -> str:
        ref, n = wanted, 1
        while ref in self._used:
            n += 1
            ref = f"{wanted}#{n}"
        self._used.add(ref)
        return ref


def _package_component(
    pkg: Package, purl: str | None, ref: str, image: ImageInfo, target_file: str | None
) -> Component:
    # Maven coordinates split into CycloneDX's group and name, as Syft and Trivy write them.
    group, _, name = native_name(pkg).rpartition(":") if pkg.type == "maven" else ("", "", native_name(pkg))
    return Component(
        type=ComponentType.LIBRARY,
        group=group or None,
        name=name,
        version=pkg.version or None,
        bom_ref=ref,
        purl=PackageURL.from_string(purl) if purl else None,
        licenses=_licenses(pkg.licenses),
        properties=_properties(
            [
                ("package:location", pkg.location),
                ("package:targetFile", target_file),
                ("package:layerDigest", pkg.layer_digest),
                ("package:layerDiffId", image.diff_id_for_layer(pkg.layer_digest)),
                ("package:sourceName", pkg.source_name),
                ("package:sourceVersion", pkg.source_version),
            ]
        ),
    )


def _add_group(
    bom: Bom,
    refs: _Refs,
    parent: Component,
    packages: Sequence[Package],
    inventory: Inventory,
    image: ImageInfo,
    target_file: str | None,
) -> None:
    """Add one ecosystem's packages; ``parent`` depends on those that nothing else depends on."""
    components = []
    for pkg in packages:
        purl = package_purl(pkg, inventory.os_release, "sbom")
        ref = refs.make(purl or f"{pkg.type}:{native_name(pkg)}@{pkg.version}")
        component = _package_component(pkg, purl, ref, image, target_file)
        bom.components.add(component)
        components.append(component)
    edges = resolve_depends(packages)
    roots, _ = break_cycles(range(len(packages)), dict(enumerate(edges)))
    bom.register_dependency(parent, [components[i] for i in roots])
    for index, component in enumerate(components):
        bom.register_dependency(component, [components[t] for t in edges[index]])


def build_bom(
    inventory: Inventory, image: ImageInfo, *, now: datetime | None = None, serial: UUID | None = None
) -> Bom:
    bom = Bom(serial_number=serial or uuid4())
    bom.metadata.timestamp = now or datetime.now(UTC)
    bom.metadata.tools.components.add(
        Component(type=ComponentType.APPLICATION, name=TOOL_NAME, version=tool_version())
    )
    image_component = _image_component(image)
    bom.metadata.component = image_component
    refs = _Refs()

    os_release = inventory.os_release
    os_parent = image_component
    if os_release.id not in _UNKNOWN_OS:
        os_parent = Component(
            type=ComponentType.OPERATING_SYSTEM,
            name=os_release.id,
            version=os_release.version_id or None,
            description=os_release.pretty_name or None,
            bom_ref=OS_REF,
        )
        bom.components.add(os_parent)
        bom.register_dependency(image_component, [os_parent])
    _add_group(bom, refs, os_parent, inventory.os_packages, inventory, image, None)
    for _ecosystem, target_file, packages in inventory.applications:
        _add_group(bom, refs, image_component, packages, inventory, image, target_file)
    return bom


def render_cyclonedx(
    inventory: Inventory, image: ImageInfo, *, now: datetime | None = None, serial: UUID | None = None
) -> dict[str, Any]:
    bom = build_bom(inventory, image, now=now, serial=serial)
    document: dict[str, Any] = json.loads(JsonV1Dot6(bom).output_as_string())
    return document
