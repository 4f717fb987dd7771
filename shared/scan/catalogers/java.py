"""Java archives (``.jar``, ``.war``, ``.ear`` and kin): Maven coordinates, manifest, SHA-1, nested jars.

Per archive, read from the zip without extracting anything to disk:

* every ``pom.properties`` (normally ``META-INF/maven/<groupId>/<artifactId>/pom.properties``; some
  builds put it elsewhere under ``META-INF``, so any entry with that file name counts, as in Trivy)
  with non-empty ``groupId``, ``artifactId`` and ``version``: one package each. A shaded or fat jar
  carries one per bundled library, and each is code that is really in the archive;
* the main section of ``META-INF/MANIFEST.MF`` (``Implementation-*``, ``Specification-*``,
  ``Bundle-*``, ``Automatic-Module-Name``);
* the SHA-1 of the archive's bytes, which Snyk sends as the fingerprint when no coordinates exist.

An archive without any ``pom.properties`` still yields one package, so that it can be fingerprinted:
its name comes from the file name (``commons-io-2.11.0.jar`` -> ``commons-io``, as Syft names it),
its version from the file name, else the manifest's ``Implementation-Version``, ``Bundle-Version``
or ``Specification-Version``; ``metadata["coordinates"]`` is False to say that it is a guess.

Nested archives (``BOOT-INF/lib/*.jar``, ``WEB-INF/lib/*.jar``, ``META-INF/jars/*.jar``...) are opened
from memory to ``max_depth`` levels. Zip-bomb guards: a nested entry larger than
``MAX_NESTED_ENTRY`` once inflated is skipped, the inflated bytes of all nested archives of one file
share a ``MAX_TOTAL_INFLATED`` budget, archives with more than ``MAX_ENTRIES`` entries are not
walked, and metadata files are read with small caps. A damaged archive is recorded with an
``error`` and still fingerprinted.

Where each package came from: ``location`` is the archive file in the image; for nested archives
``metadata["archive"]`` is the inner path, ``outer.jar!/BOOT-INF/lib/inner.jar`` (the JDK's
``jar:`` URL notation).

Snyk skips jars under ``/usr/lib`` (the JDK's own and Debian's system jars) and Gradle caches unless
asked to include them (``include-system-jars``); the cataloger does the same by default.
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import re
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.scan.model import FileRecord, OSRelease, Package

NAME = "java-archive"
ARCHIVE_EXTENSIONS = (".jar", ".war", ".ear", ".par", ".sar", ".nar", ".jpi", ".hpi", ".kar", ".rar", ".lpkg")
MAX_ARCHIVE = 512 * 1024 * 1024
MAX_NESTED_ENTRY = 128 * 1024 * 1024
MAX_TOTAL_INFLATED = 512 * 1024 * 1024
MAX_ENTRIES = 200_000
MAX_MANIFEST = 1024 * 1024
MAX_POM_PROPERTIES = 64 * 1024
DEFAULT_MAX_DEPTH = 4
SYSTEM_PREFIXES = ("/usr/lib/",)
_MANIFEST_KEYS = (
    "Implementation-Title",
    "Implementation-Version",
    "Implementation-Vendor",
    "Implementation-Vendor-Id",
    "Specification-Title",
    "Specification-Version",
    "Specification-Vendor",
    "Bundle-Name",
    "Bundle-SymbolicName",
    "Bundle-Version",
    "Automatic-Module-Name",
    "Main-Class",
)
# name-1.2.3.jar, name-1.2.3-SNAPSHOT.jar, name-1.0.0.RELEASE.jar: the version starts at the first
# "-<digit>" segment.
_FILENAME = re.compile(r"^(?P<name>.+?)-(?P<version>\d[^-]*(?:-[A-Za-z0-9.]+)*)$")
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    NotImplementedError,
    RuntimeError,
    EOFError,
    OSError,
    ValueError,
)


def is_archive_name(path: str) -> bool:
    return path.lower().endswith(ARCHIVE_EXTENSIONS)


def is_system_jar(path: str) -> bool:
    return path.startswith(SYSTEM_PREFIXES) or "/gradle/cache" in path or "/.gradle/caches/" in path


@dataclass
class _Budget:
    """Inflated bytes still allowed for the nested archives of one outer file."""

    remaining: int


@dataclass
class JavaArchiveCataloger:
    include_system_jars: bool = False
    max_depth: int = DEFAULT_MAX_DEPTH
    name: str = field(default=NAME, init=False)
    ecosystem: str = field(default="maven", init=False)

    def wants(self, path: str, size: int, mode: int) -> bool:
        if size > MAX_ARCHIVE or not is_archive_name(path):
            return False
        return self.include_system_jars or not is_system_jar(path)

    def extract(self, path: str, data: bytes) -> Any:
        records: list[dict[str, Any]] = []
        _walk(path, data, 0, self.max_depth, _Budget(MAX_TOTAL_INFLATED), records)
        return records

    def catalog(self, files: Mapping[str, FileRecord], os_release: OSRelease | None) -> list[Package]:
        packages: list[Package] = []
        for path in sorted(files):
            record = files[path]
            for archive in record.value or []:
                packages.extend(_packages(archive, record))
        return packages


def _walk(
    virtual_path: str, data: bytes, depth: int, max_depth: int, budget: _Budget, out: list[dict[str, Any]]
) -> None:
    record: dict[str, Any] = {
        "archive": virtual_path,
        "sha1": hashlib.sha1(data, usedforsecurity=False).hexdigest(),
        "manifest": {},
        "poms": [],
    }
    out.append(record)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
            if len(entries) > MAX_ENTRIES:
                record["error"] = f"{len(entries)} entries exceed the cap of {MAX_ENTRIES}"
                return
            nested: list[zipfile.ZipInfo] = []
            for info in entries:
                if info.is_dir():
                    continue
                name = info.filename
                if name.upper() == "META-INF/MANIFEST.MF":
                    text = _read(archive, info, MAX_MANIFEST)
                    if text is not None:
                        record["manifest"] = parse_manifest(text.decode("utf-8", errors="replace"))
                elif name.rsplit("/", 1)[-1] == "pom.properties":
                    text = _read(archive, info, MAX_POM_PROPERTIES)
                    pom = parse_pom_properties(text.decode("utf-8", errors="replace")) if text else None
                    if pom is not None:
                        record["poms"].append({**pom, "path": name})
                elif is_archive_name(name):
                    nested.append(info)
            record["poms"].sort(key=lambda p: p["path"])
            if depth >= max_depth:
                if nested:
                    record["skipped_nested"] = len(nested)
                return
            for info in sorted(nested, key=lambda i: i.filename):
                if info.file_size > MAX_NESTED_ENTRY or info.file_size > budget.remaining:
                    record.setdefault("skipped", []).append(info.filename)
                    continue
                inner = _read(archive, info, min(MAX_NESTED_ENTRY, budget.remaining))
                if inner is None:
                    record.setdefault("skipped", []).append(info.filename)
                    continue
                budget.remaining -= len(inner)
                _walk(f"{virtual_path}!/{info.filename}", inner, depth + 1, max_depth, budget, out)
    except _ZIP_ERRORS as exc:
        record["error"] = f"unreadable archive: {exc}"


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes | None:
    """The entry's bytes, or None when it inflates past ``cap`` or is damaged."""
    try:
        with archive.open(info) as stream:
            data = stream.read(cap + 1)
    except _ZIP_ERRORS:
        return None
    return data if len(data) <= cap else None


def parse_manifest(text: str) -> dict[str, str]:
    """The main section of a JAR manifest; a line starting with one space continues the previous."""
    values: dict[str, str] = {}
    last: str | None = None
    for raw in text.splitlines():
        if not raw.strip():
            break  # the main section ends at the first blank line; per-entry sections follow
        if raw.startswith(" ") and last is not None:
            values[last] += raw[1:]
            continue
        key, sep, value = raw.partition(":")
        if sep:
            last = key.strip()
            values[last] = value.strip()
    return {k: values[k] for k in _MANIFEST_KEYS if values.get(k)}


def parse_pom_properties(text: str) -> dict[str, str] | None:
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        key, sep, value = line.partition("=")
        if not sep:
            key, sep, value = line.partition(":")
        if sep:
            values[key.strip()] = value.strip()
    coordinates = {k: values.get(k, "") for k in ("groupId", "artifactId", "version")}
    return coordinates if all(coordinates.values()) else None


def name_from_filename(path: str) -> tuple[str, str]:
    """(name, version) from ``name-1.2.3.jar``; the version is "" when the name has none."""
    stem = path.rsplit("/", 1)[-1]
    stem = stem[: stem.rfind(".")] if "." in stem else stem
    match = _FILENAME.match(stem)
    if match is None:
        return stem, ""
    return match.group("name"), match.group("version")


def _packages(archive: Mapping[str, Any], record: FileRecord) -> list[Package]:
    metadata_base: dict[str, Any] = {"sha1": archive["sha1"]}
    if archive["archive"] != record.path:
        metadata_base["archive"] = archive["archive"]
    packages = []
    for pom in archive.get("poms", []):
        packages.append(
            Package(
                name=pom["artifactId"],
                namespace=pom["groupId"],
                version=pom["version"],
                type="maven",
                location=record.path,
                project=posixpath.dirname(record.path),
                layer_digest=record.layer_digest,
                metadata={**metadata_base, "coordinates": True, "pom_properties": pom["path"]},
            )
        )
    if packages:
        return packages
    manifest = archive.get("manifest", {})
    name, version = name_from_filename(archive["archive"])
    version = (
        version
        or manifest.get("Implementation-Version")
        or manifest.get("Bundle-Version")
        or manifest.get("Specification-Version")
        or ""
    )
    metadata = {**metadata_base, "coordinates": False}
    if manifest:
        metadata["manifest"] = dict(manifest)
    return [
        Package(
            name=name,
            version=version,
            type="maven",
            location=record.path,
            project=posixpath.dirname(record.path),
            layer_digest=record.layer_digest,
            metadata=metadata,
        )
    ]
