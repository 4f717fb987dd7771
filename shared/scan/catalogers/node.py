"""Installed npm packages: ``node_modules/[@scope/]<name>/package.json``.

Only package roots count (Trivy's ``IsPackageRoot``): the path segments after the last
``node_modules`` must be exactly ``<name>`` or ``@scope/<name>``. Packages ship other
``package.json`` files below their root (``rxjs/ajax/package.json`` only redirects module
resolution) that would otherwise be reported as packages of their own.

Kept: ``name``, ``version``, the licence (SPDX string, the legacy ``{"type": ...}`` object or a
``licenses`` array) and the names in ``dependencies`` and ``optionalDependencies``. A scoped name is
split purl-style: ``@angular/core`` becomes namespace ``@angular``, name ``core``; ``depends`` keeps
full names. ``location`` is the package.json file; ``metadata["project"]`` the directory whose
``node_modules`` holds it (``/srv/app``), for grouping packages by project as Snyk does.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping
from typing import Any

from shared.scan.model import FileRecord, OSRelease, Package

NAME = "node"
# package.json files of published packages are a few KiB; a bundled one with an inline readme can
# reach a few hundred.
MAX_PACKAGE_JSON = 2 * 1024 * 1024


def is_package_root(path: str) -> bool:
    parts = path.split("/")
    if parts[-1] != "package.json" or "node_modules" not in parts:
        return False
    last = len(parts) - 1 - parts[::-1].index("node_modules")
    inside = parts[last + 1 : -1]
    if len(inside) == 1:
        return bool(inside[0]) and not inside[0].startswith("@")
    if len(inside) == 2:
        return inside[0].startswith("@") and len(inside[0]) > 1 and bool(inside[1])
    return False


class NodeCataloger:
    name = NAME
    ecosystem = "npm"

    def wants(self, path: str, size: int, mode: int) -> bool:
        return size <= MAX_PACKAGE_JSON and is_package_root(path)

    def extract(self, path: str, data: bytes) -> Any:
        try:
            manifest = json.loads(data.decode("utf-8", errors="replace"))
        except ValueError:
            return None
        if not isinstance(manifest, dict):
            return None
        name, version = manifest.get("name"), manifest.get("version")
        if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
            return None
        depends: list[str] = []
        for key in ("dependencies", "optionalDependencies"):
            section = manifest.get(key)
            if isinstance(section, dict):
                depends.extend(d for d in section if isinstance(d, str) and d not in depends)
        return {
            "name": name,
            "version": version,
            "licenses": licenses_of(manifest),
            "depends": depends,
            "private": manifest.get("private") is True,
        }

    def catalog(self, files: Mapping[str, FileRecord], os_release: OSRelease | None) -> list[Package]:
        packages = []
        for path in sorted(files):
            record = files[path]
            meta = record.value
            if not isinstance(meta, dict):
                continue
            namespace, _, bare = meta["name"].rpartition("/")
            packages.append(
                Package(
                    name=bare,
                    namespace=namespace or None,
                    version=meta["version"],
                    type="npm",
                    licenses=tuple(meta.get("licenses", [])),
                    location=path,
                    layer_digest=record.layer_digest,
                    depends=tuple(meta.get("depends", [])),
                    metadata=_metadata(path, meta),
                    project=_project_manifest(path),
                )
            )
        return packages


def _project_manifest(path: str) -> str:
    """The package.json of the project whose node_modules holds ``path`` (Snyk's targetFile)."""
    return posixpath.join(path.split("/node_modules/", 1)[0] or "/", "package.json")


def _metadata(path: str, meta: Mapping[str, Any]) -> dict[str, Any]:
    # The project whose node_modules holds the package: the directory above the first node_modules
    # (Snyk reports one result per project, not per package).
    metadata: dict[str, Any] = {"project": path.split("/node_modules/", 1)[0] or "/"}
    if meta.get("private"):
        metadata["private"] = True
    return metadata


def licenses_of(manifest: Mapping[str, Any]) -> list[str]:
    value = manifest.get("license")
    if isinstance(value, str) and value:
        return [value]
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        return [value["type"]]
    entries = manifest.get("licenses")
    found: list[str] = []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, str):
            found.append(entry)
        elif isinstance(entry, dict) and isinstance(entry.get("type"), str):
            found.append(entry["type"])
    return found
