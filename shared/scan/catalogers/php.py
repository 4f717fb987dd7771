"""Composer packages installed in a PHP project: ``vendor/composer/installed.json``.

Composer 1 writes a bare array of packages; Composer 2 writes ``{"packages": [...], "dev": bool,
"dev-package-names": [...]}``. Each package has ``name`` (``vendor/project``), ``version`` and
``license`` (a list). ``depends`` lists ``require`` names except platform requirements (``php``,
``ext-*``, ``lib-*``, ``composer-*``), which are not packages. Packages named in
``dev-package-names`` are marked ``metadata["dev"]``; they were installed, so they are reported.
Names are split purl-style: namespace ``vendor``, name ``project``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from shared.scan.model import FileRecord, OSRelease, Package

NAME = "php-composer"
MAX_INSTALLED_JSON = 32 * 1024 * 1024


def _is_platform(requirement: str) -> bool:
    return requirement in ("php", "php-64bit", "hhvm") or requirement.startswith(
        ("ext-", "lib-", "composer-", "php-")
    )


class ComposerInstalledCataloger:
    name = NAME
    ecosystem = "composer"

    def wants(self, path: str, size: int, mode: int) -> bool:
        return path.endswith("/vendor/composer/installed.json") and size <= MAX_INSTALLED_JSON

    def extract(self, path: str, data: bytes) -> Any:
        try:
            document = json.loads(data.decode("utf-8", errors="replace"))
        except ValueError:
            return None
        entries: Any = document
        dev_names: Any = []
        if isinstance(document, dict):
            entries, dev_names = document.get("packages"), document.get("dev-package-names")
        if not isinstance(dev_names, list):
            dev_names = []
        if not isinstance(entries, list):
            return None
        packages = []
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            name, version = entry.get("name"), entry.get("version")
            if not isinstance(name, str) or not isinstance(version, str):
                continue
            licenses = entry.get("license") or []
            require = entry.get("require")
            requires: dict[str, Any] = require if isinstance(require, dict) else {}
            packages.append(
                {
                    "name": name,
                    "version": version,
                    "licenses": [str(x) for x in licenses] if isinstance(licenses, list) else [str(licenses)],
                    "depends": sorted(r for r in requires if not _is_platform(r)),
                    "dev": name in dev_names,
                }
            )
        return packages

    def catalog(self, files: Mapping[str, FileRecord], os_release: OSRelease | None) -> list[Package]:
        packages = []
        for path in sorted(files):
            for entry in files[path].value or []:
                vendor, _, project = entry["name"].rpartition("/")
                packages.append(
                    Package(
                        name=project,
                        namespace=vendor or None,
                        version=entry["version"],
                        type="composer",
                        licenses=tuple(entry["licenses"]),
                        location=path,
                        layer_digest=files[path].layer_digest,
                        depends=tuple(entry["depends"]),
                        metadata={"dev": True} if entry["dev"] else {},
                    )
                )
        return packages
