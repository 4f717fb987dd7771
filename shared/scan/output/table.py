"""A plain-text package table for people reading a scan in a terminal (the CLI's default)."""

from __future__ import annotations

from collections.abc import Sequence

from shared.scan.model import Inventory, Package
from shared.scan.output.image_info import ImageInfo
from shared.scan.output.names import native_name

HEADERS = ("NAME", "VERSION", "TYPE", "SOURCE", "LAYER")
_DIGEST_SHOWN = 12  # hex characters: enough to tell an image's layers apart, as `docker history` does


def _short_digest(digest: str | None) -> str:
    if not digest:
        return ""
    algorithm, _, hex_part = digest.partition(":")
    return f"{algorithm}:{hex_part[:_DIGEST_SHOWN]}" if hex_part else digest[:_DIGEST_SHOWN]


def _source(pkg: Package) -> str:
    if not pkg.source_name:
        return ""
    if pkg.source_version and pkg.source_version != pkg.version:
        return f"{pkg.source_name}@{pkg.source_version}"
    return pkg.source_name


def _row(pkg: Package) -> tuple[str, ...]:
    return (native_name(pkg), pkg.version, pkg.type, _source(pkg), _short_digest(pkg.layer_digest))


def _format(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    # The last column is not padded, so lines carry no trailing spaces.
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def render_table(inventory: Inventory, image: ImageInfo) -> str:
    os_release = inventory.os_release
    os_name = os_release.pretty_name or " ".join(p for p in (os_release.id, os_release.version_id) if p)
    lines = [f"image: {image.reference}"]
    if image.manifest_digest:
        lines.append(f"digest: {image.manifest_digest}")
    lines.append(f"os: {os_name or 'unknown'}")

    sections: list[tuple[str, Sequence[Package]]] = [
        (f"OS packages ({inventory.os_package_manager or 'none'})", inventory.os_packages)
    ]
    sections += [(f"{ecosystem}: {target}", pkgs) for ecosystem, target, pkgs in inventory.applications]
    for title, packages in sections:
        lines += ["", f"{title}: {len(packages)}"]
        if packages:
            lines += _format([HEADERS, *(_row(p) for p in packages)])

    if inventory.warnings:
        lines += ["", "warnings:"] + [f"  - {w}" for w in inventory.warnings]
    return "\n".join(lines) + "\n"
