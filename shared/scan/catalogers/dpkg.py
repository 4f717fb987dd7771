"""Debian packages from dpkg's database: ``/var/lib/dpkg/status`` and distroless ``status.d/*``.

Which stanzas count as installed. ``Status:`` is ``<want> <flag> <state>`` (dpkg(1), "Package
states"). The *state* says what is on disk; the *want* is only what the administrator asked for.
So a package is reported when its state leaves its files in place: ``installed``, ``unpacked``,
``half-configured``, ``triggers-awaited``, ``triggers-pending`` and ``half-installed`` (an install
or removal that stopped midway: some of its files may be present, and for a vulnerability scan a
possible false positive is cheaper than a miss). ``config-files`` (removed, only conffiles left,
the "rc" packages) and ``not-installed`` are skipped: their code is gone. This differs from Snyk,
which ignores ``Status`` and reports "rc" packages, and from Syft, which drops any status containing
``deinstall`` even while the package is still installed (``deinstall ok installed``). A stanza
without ``Status`` (distroless writes none in ``status.d``) is taken as installed: the file exists
only for installed packages.

Fields: ``Package``, ``Version`` (raw, epoch included), ``Architecture``, ``Source`` (``name`` or
``name (version)``; without a version the source version is the binary's), ``Depends`` and
``Pre-Depends`` for the dependency graph, ``Provides``. Dependencies are resolved here, where the
whole database is visible: for each comma-separated clause the first alternative that is installed
(by name or through a ``Provides``) becomes the edge, so ``depends`` only names installed packages.
``/var/lib/apt/extended_states`` adds ``metadata["auto_installed"]`` (Snyk hangs packages that were
not auto-installed directly under the image root).

When both ``status`` and ``status.d`` list a package (same name and architecture), ``status`` wins.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from shared.scan.catalogers.deb822 import parse_stanzas
from shared.scan.model import FileRecord, OSRelease, Package

NAME = "dpkg"
STATUS = "/var/lib/dpkg/status"
STATUS_D = "/var/lib/dpkg/status.d/"
EXTENDED_STATES = "/var/lib/apt/extended_states"

# A full Debian desktop's status file is ~10 MiB; far above that is not a dpkg database.
MAX_DB_SIZE = 64 * 1024 * 1024

PRESENT_STATES = frozenset(
    {"installed", "unpacked", "half-configured", "half-installed", "triggers-awaited", "triggers-pending"}
)

# Fields kept from each stanza; everything else (descriptions, conffiles) is dropped at extract time
# to keep the cached per-layer value small.
_KEPT_FIELDS = (
    "Package",
    "Version",
    "Architecture",
    "Status",
    "Source",
    "Depends",
    "Pre-Depends",
    "Provides",
    "Maintainer",
    "Installed-Size",
)
_SOURCE = re.compile(r"^(?P<name>\S+)(?:\s+\((?P<version>[^)]*)\))?\s*$")
_DEP_NAME = re.compile(r"^\s*([^\s(:\[]+)")


class DpkgCataloger:
    name = NAME
    ecosystem = "os"

    def wants(self, path: str, size: int, mode: int) -> bool:
        if size > MAX_DB_SIZE:
            return False
        if path in (STATUS, EXTENDED_STATES):
            return True
        if path.startswith(STATUS_D):
            rest = path[len(STATUS_D) :]
            # distroless also keeps "<pkg>.md5sums" file lists there; they are not stanzas.
            return "/" not in rest and not rest.endswith((".md5sums", ".list"))
        return False

    def extract(self, path: str, data: bytes) -> Any:
        stanzas = parse_stanzas(data.decode("utf-8", errors="replace"))
        if path == EXTENDED_STATES:
            return [
                {"Package": s["Package"], "Architecture": s.get("Architecture", "")}
                for s in stanzas
                if s.get("Package") and s.get("Auto-Installed", "").strip() == "1"
            ]
        return [{k: s[k] for k in _KEPT_FIELDS if k in s} for s in stanzas if s.get("Package")]

    def catalog(self, files: Mapping[str, FileRecord], os_release: OSRelease | None) -> list[Package]:
        auto = _auto_installed(files.get(EXTENDED_STATES))
        chosen: dict[tuple[str, str], tuple[dict[str, str], FileRecord]] = {}
        # status.d first so that the status file overwrites duplicates.
        ordered = sorted(p for p in files if p.startswith(STATUS_D)) + ([STATUS] if STATUS in files else [])
        for path in ordered:
            record = files[path]
            for stanza in record.value or []:
                if not is_present(stanza.get("Status")):
                    continue
                chosen[(stanza["Package"], stanza.get("Architecture", ""))] = (stanza, record)

        installed_names = {name for name, _ in chosen}
        providers = _providers(s for s, _ in chosen.values())
        packages = []
        for (name, arch), (stanza, record) in chosen.items():
            version = stanza.get("Version", "")
            source_name, source_version = parse_source(stanza.get("Source"), version)
            depends = resolve_depends(
                [stanza.get("Pre-Depends", ""), stanza.get("Depends", "")], installed_names, providers, name
            )
            metadata: dict[str, Any] = {"auto_installed": _is_auto(auto, name, arch)}
            if stanza.get("Provides"):
                metadata["provides"] = dependency_names(stanza["Provides"])
            packages.append(
                Package(
                    name=name,
                    version=version,
                    type="deb",
                    source_name=source_name,
                    source_version=source_version,
                    architecture=arch or None,
                    location=record.path,
                    layer_digest=record.layer_digest,
                    depends=tuple(depends),
                    metadata=metadata,
                )
            )
        packages.sort(key=lambda p: (p.name, p.architecture or ""))
        return packages


def is_present(status: str | None) -> bool:
    """Whether a ``Status:`` value leaves the package's files on disk (module docstring)."""
    if status is None:
        return True
    words = status.split()
    return len(words) == 3 and words[2] in PRESENT_STATES


def parse_source(source: str | None, version: str) -> tuple[str | None, str | None]:
    """``Source: name`` or ``Source: name (version)`` -> (name, version); no Source -> (None, None)."""
    if not source:
        return None, None
    match = _SOURCE.match(source.strip())
    if match is None:
        return source.strip(), version
    return match.group("name"), match.group("version") or version


def dependency_names(field: str) -> list[str]:
    """Every package name in a relationship field, alternatives included, without versions or arch."""
    names = []
    for clause in field.split(","):
        for alternative in clause.split("|"):
            match = _DEP_NAME.match(alternative)
            if match:
                names.append(match.group(1))
    return names


def _providers(stanzas: Any) -> dict[str, str]:
    provided: dict[str, str] = {}
    for stanza in stanzas:
        for virtual in dependency_names(stanza.get("Provides", "")):
            provided.setdefault(virtual, stanza["Package"])
    return provided


def resolve_depends(
    fields: list[str], installed: set[str], providers: Mapping[str, str], own_name: str
) -> list[str]:
    """The installed package that satisfies each clause: the first installed alternative."""
    resolved: list[str] = []
    for field in fields:
        for clause in field.split(","):
            for alternative in clause.split("|"):
                match = _DEP_NAME.match(alternative)
                if match is None:
                    continue
                dep = match.group(1)
                target = dep if dep in installed else providers.get(dep)
                if target is not None:
                    if target != own_name and target not in resolved:
                        resolved.append(target)
                    break
    return resolved


def _auto_installed(record: FileRecord | None) -> dict[str, set[str]]:
    auto: dict[str, set[str]] = {}
    for entry in (record.value or []) if record is not None else []:
        auto.setdefault(entry["Package"], set()).add(entry.get("Architecture", ""))
    return auto


def _is_auto(auto: Mapping[str, set[str]], name: str, arch: str) -> bool:
    # apt records "Architecture: all" packages under the native architecture, so for those (and for
    # entries without an architecture) the name alone decides.
    arches = auto.get(name)
    if not arches:
        return False
    return arch in arches or arch in ("all", "") or "" in arches
