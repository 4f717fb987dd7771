"""The scan engine's vocabulary, shared by the layer reader, the catalogers and the output formats.

A cataloger works in two steps so that per-layer work can be cached by layer digest:

1. while a layer streams past, ``wants(path, size, mode)`` picks files and ``extract(path, data)``
   turns each into a small JSON-able value (the raw text of a package database, the coordinates
   found in a jar, the module list of a Go binary);
2. once the layers are merged by the OCI rules, ``catalog(files, os_release)`` sees the surviving
   extracted values by path and returns packages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class FileRecord:
    """A file that survived the layer merge: its extracted value and the layer that added it."""

    path: str  # absolute and normalised: "/var/lib/dpkg/status"
    value: Any  # what the cataloger's extract() returned
    layer_digest: str  # compressed blob digest of the layer that last wrote the path
    layer_diff_id: str | None = None


@dataclass(frozen=True)
class OSRelease:
    id: str  # "debian", "alpine", "rhel", "ubuntu", "scratch", "distroless", "unknown"
    version_id: str  # "10", "3.12.0"; "" when unknown
    pretty_name: str = ""
    version_codename: str = ""
    id_like: tuple[str, ...] = ()
    source_file: str | None = None  # which file it came from


@dataclass(frozen=True)
class Package:
    name: str
    version: str  # raw, as the package manager writes it: "1:2.8.4-3", rpm "epoch:version-release"
    type: str  # purl type: deb, apk, rpm, pypi, npm, maven, golang, cargo, nuget, composer, gem
    source_name: str | None = None  # dpkg Source, apk origin, rpm source package name
    source_version: str | None = None
    architecture: str | None = None
    epoch: int | None = None  # rpm only (also inside version)
    licenses: tuple[str, ...] = ()
    namespace: str | None = None  # maven groupId, npm scope, golang module prefix
    location: str = ""  # file it was found in
    # The application it belongs to, reported as one result (Snyk's targetFile): a project's
    # package.json, a site-packages directory, the directory of a jar. Empty: its own location.
    project: str = ""
    layer_digest: str | None = None
    depends: tuple[str, ...] = ()  # names of packages this one depends on (same ecosystem)
    metadata: Mapping[str, Any] = field(default_factory=dict)


class Cataloger(Protocol):
    name: str
    ecosystem: str  # "os" for OS package databases and release files; else the app ecosystem

    def wants(self, path: str, size: int, mode: int) -> bool: ...

    # A cataloger may also declare ``magic = b"..."`` (`shared.image.layer`): it is then never given a
    # file that does not start with it, and a large one may come as a read-only ``mmap``, not bytes.
    def extract(self, path: str, data: bytes) -> Any: ...

    def catalog(self, files: Mapping[str, FileRecord], os_release: OSRelease | None) -> list[Package]: ...


@dataclass
class Inventory:
    """Everything a scan found in one image, before it is shaped into an output format."""

    os_release: OSRelease
    os_packages: list[Package]
    os_package_manager: str | None  # "deb", "apk", "rpm" or None (scratch, distroless without a database)
    applications: list[tuple[str, str, list[Package]]]  # (ecosystem type, target file, packages)
    warnings: list[str] = field(default_factory=list)
