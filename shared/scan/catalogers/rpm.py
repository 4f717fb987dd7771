"""RPM packages from the rpm database (Red Hat family, SUSE, CBL-Mariner/Azure Linux, Amazon Linux).

Paths: the database directory is ``/var/lib/rpm`` (classic), ``/usr/lib/sysimage/rpm`` (SUSE, Fedora
>= 36) or ``/usr/share/rpm`` (some minimal images), holding ``rpmdb.sqlite``, ``Packages.db`` (NDB) or
``Packages`` (Berkeley DB); image-analysis.md §1.4 and §2.1.

Only one database is used. An image normally has one, seen twice when ``/var/lib/rpm`` links to
``/usr/lib/sysimage/rpm``; when several differ, the newest format wins (SQLite, then NDB, then
Berkeley DB) because rpm's migration to a new backend leaves the old files behind, and within one
format the directory order above.

Per package: ``NAME``, ``VERSION``, ``RELEASE``, ``EPOCH``, ``ARCH``, ``SOURCERPM`` (split into
source name and ``version-release``), ``LICENSE``, ``MODULARITYLABEL``, ``VENDOR``. The version is
``version-release`` with ``epoch:`` in front when the epoch is non-zero, the form Snyk reports.
``gpg-pubkey`` entries are imported signing keys, not software, and are dropped. rpm records no
dependency edges that Snyk uses (its rpm graph is flat), so ``depends`` stays empty.

Unreadable headers inside a readable database are logged and skipped; the rest are reported.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from shared.scan.catalogers.rpmdb import read_database, split_source_rpm
from shared.scan.model import FileRecord, OSRelease, Package

NAME = "rpm"
DB_DIRS = ("/usr/lib/sysimage/rpm", "/var/lib/rpm", "/usr/share/rpm")
DB_FILES = ("rpmdb.sqlite", "Packages.db", "Packages")  # preference order, newest format first
DB_PATHS = tuple(f"{d}/{f}" for f in DB_FILES for d in DB_DIRS)
_DB_SET = frozenset(DB_PATHS)
# Berkeley DB files of large RHEL images reach ~100 MiB; the cap leaves room while refusing junk.
MAX_DB_SIZE = 512 * 1024 * 1024
FORMAT_PREFERENCE = ("sqlite", "ndb", "bdb")

log = logging.getLogger(__name__)


class RpmCataloger:
    name = NAME
    ecosystem = "os"

    def wants(self, path: str, size: int, mode: int) -> bool:
        return path in _DB_SET and size <= MAX_DB_SIZE

    def extract(self, path: str, data: bytes) -> Any:
        return read_database(data)

    def catalog(self, files: Mapping[str, FileRecord], os_release: OSRelease | None) -> list[Package]:
        record = choose_database(files)
        if record is None:
            return []
        for error in record.value.get("errors", []):
            log.warning("rpm database %s: %s", record.path, error)
        packages = []
        for fields in record.value.get("packages", []):
            package = to_package(fields, record)
            if package is not None:
                packages.append(package)
        packages.sort(key=lambda p: (p.name, p.version, p.architecture or ""))
        return packages


def choose_database(files: Mapping[str, FileRecord]) -> FileRecord | None:
    candidates = [files[p] for p in DB_PATHS if p in files and isinstance(files[p].value, dict)]
    if not candidates:
        return None
    non_empty = [c for c in candidates if c.value.get("packages")] or candidates

    def rank(record: FileRecord) -> tuple[int, int]:
        kind = record.value.get("format")
        order = FORMAT_PREFERENCE.index(kind) if kind in FORMAT_PREFERENCE else len(FORMAT_PREFERENCE)
        return order, DB_PATHS.index(record.path)

    return min(non_empty, key=rank)


def format_version(fields: Mapping[str, Any]) -> str:
    version = f"{fields.get('version', '')}-{fields.get('release', '')}"
    epoch = fields.get("epoch")
    return f"{epoch}:{version}" if epoch else version


def to_package(fields: Mapping[str, Any], record: FileRecord) -> Package | None:
    name = fields.get("name")
    if not name or name == "gpg-pubkey":
        return None
    source = split_source_rpm(fields["sourcerpm"]) if fields.get("sourcerpm") else None
    metadata = {k: fields[k] for k in ("sourcerpm", "modularitylabel", "vendor") if fields.get(k)}
    return Package(
        name=name,
        version=format_version(fields),
        type="rpm",
        source_name=source[0] if source else None,
        source_version=source[1] if source else None,
        architecture=fields.get("arch"),
        epoch=fields.get("epoch"),
        licenses=(fields["license"],) if fields.get("license") else (),
        location=record.path,
        layer_digest=record.layer_digest,
        metadata=metadata,
    )
