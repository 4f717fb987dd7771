"""NuGet packages from .NET ``*.deps.json`` files (written by the SDK next to every published app).

Shape: ``{"runtimeTarget": {"name": tfm}, "targets": {tfm: {"Name/Version": {"dependencies": {...}}}},
"libraries": {"Name/Version": {"type": "package" | "project" | "reference", "sha512", "path"}}}``.
Only ``type == "package"`` libraries are NuGet packages; ``project`` is the application itself and
``reference`` a local assembly. ``depends`` comes from the runtime target's ``dependencies`` names.

Like snyk-docker-plugin, files under ``/dotnet/shared/`` and ``/dotnet/packs/`` are skipped: those
describe the installed runtime framework, not an application.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from shared.scan.model import FileRecord, OSRelease, Package

NAME = "dotnet-deps"
MAX_DEPS_JSON = 16 * 1024 * 1024
_SKIPPED = ("/dotnet/shared/", "/dotnet/packs/")


class DotnetDepsCataloger:
    name = NAME
    ecosystem = "nuget"

    def wants(self, path: str, size: int, mode: int) -> bool:
        return path.endswith(".deps.json") and size <= MAX_DEPS_JSON and not any(s in path for s in _SKIPPED)

    def extract(self, path: str, data: bytes) -> Any:
        try:
            document = json.loads(data.decode("utf-8-sig", errors="replace"))
        except ValueError:
            return None
        if not isinstance(document, dict) or not isinstance(document.get("libraries"), dict):
            return None
        runtime_target = document.get("runtimeTarget")
        target_name = runtime_target.get("name") if isinstance(runtime_target, dict) else None
        targets = document.get("targets")
        found = targets.get(target_name) if isinstance(targets, dict) else None
        target: dict[str, Any] = found if isinstance(found, dict) else {}
        packages = []
        for key, library in document["libraries"].items():
            if not isinstance(library, dict) or library.get("type") != "package" or "/" not in key:
                continue
            name, _, version = key.partition("/")
            entry = target.get(key)
            deps = entry.get("dependencies") if isinstance(entry, dict) else None
            packages.append(
                {
                    "name": name,
                    "version": version,
                    "sha512": library.get("sha512", ""),
                    "depends": sorted(str(d) for d in deps) if isinstance(deps, dict) else [],
                }
            )
        packages.sort(key=lambda p: (p["name"].lower(), p["version"]))
        return packages

    def catalog(self, files: Mapping[str, FileRecord], os_release: OSRelease | None) -> list[Package]:
        return [
            Package(
                name=entry["name"],
                version=entry["version"],
                type="nuget",
                location=path,
                layer_digest=files[path].layer_digest,
                depends=tuple(entry["depends"]),
                metadata={"sha512": entry["sha512"]} if entry["sha512"] else {},
            )
            for path in sorted(files)
            for entry in files[path].value or []
        ]
