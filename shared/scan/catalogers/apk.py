"""Alpine (and Wolfi) packages from apk's database ``/lib/apk/db/installed``.

The format (apk-tools ``database.c``; image-analysis.md §2.4) is blank-line-separated records of
``X:value`` lines. Kept: ``P`` name, ``V`` version, ``A`` architecture, ``o`` origin (the source
package; it is built at the same version), ``L`` licence (kept whole: recent Alpine writes an SPDX
expression such as ``MPL-2.0 AND MIT``), ``D`` dependencies, ``p`` provides.
Per-file lines (``F``, ``R``, ``Z``, ``a``, ``M``) are dropped at extract time to keep the cached
value small.

Dependencies are resolved here, where the whole database is visible: each ``D`` token loses its
version constraint (``=``, ``<``, ``>``, ``~``) and is matched against installed names and every
``p`` entry (``so:libc.musl-x86_64.so.1``, ``cmd:sh``, ``pc:zlib``); tokens starting with ``!`` are
conflicts and are skipped. So ``depends`` names only installed packages.

apk-tools 3 moved the database to ``/usr/lib/apk/db/installed`` and usr-merged images link one to
the other; when both exist the records are merged by name with ``/lib/apk`` winning.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from shared.scan.model import FileRecord, OSRelease, Package

NAME = "apk"
DB_PATHS = ("/lib/apk/db/installed", "/usr/lib/apk/db/installed")
MAX_DB_SIZE = 64 * 1024 * 1024

_KEPT = {"P": "name", "V": "version", "A": "arch", "o": "origin", "L": "license", "m": "maintainer"}
_CONSTRAINT = re.compile(r"[=<>~].*$")


class ApkCataloger:
    name = NAME
    ecosystem = "os"

    def wants(self, path: str, size: int, mode: int) -> bool:
        return path in DB_PATHS and size <= MAX_DB_SIZE

    def extract(self, path: str, data: bytes) -> Any:
        return parse_installed(data.decode("utf-8", errors="replace"))

    def catalog(self, files: Mapping[str, FileRecord], os_release: OSRelease | None) -> list[Package]:
        chosen: dict[str, tuple[dict[str, Any], FileRecord]] = {}
        for path in reversed(DB_PATHS):  # the first path wins, so it is applied last
            record = files.get(path)
            if record is None:
                continue
            for entry in record.value or []:
                chosen[entry["name"]] = (entry, record)

        providers: dict[str, str] = {}
        for name, (entry, _) in chosen.items():
            for provided in entry.get("provides", []):
                providers.setdefault(strip_constraint(provided), name)

        packages = []
        for name, (entry, record) in sorted(chosen.items()):
            depends: list[str] = []
            for token in entry.get("depends", []):
                if token.startswith("!"):
                    continue
                dep = strip_constraint(token)
                target = dep if dep in chosen else providers.get(dep)
                if target is not None and target != name and target not in depends:
                    depends.append(target)
            version = entry.get("version", "")
            origin = entry.get("origin")
            packages.append(
                Package(
                    name=name,
                    version=version,
                    type="apk",
                    source_name=origin,
                    source_version=version if origin else None,
                    architecture=entry.get("arch"),
                    licenses=(entry["license"],) if entry.get("license") else (),
                    location=record.path,
                    layer_digest=record.layer_digest,
                    depends=tuple(depends),
                    metadata={"provides": entry.get("provides", [])},
                )
            )
        return packages


def strip_constraint(token: str) -> str:
    """``so:libc.musl-x86_64.so.1=1`` -> ``so:libc.musl-x86_64.so.1``; ``busybox>=1.3`` -> ``busybox``."""
    return _CONSTRAINT.sub("", token.strip())


def parse_installed(text: str) -> list[dict[str, Any]]:
    """Records of an apk ``installed`` file; records without ``P`` (damaged) are skipped."""
    records: list[dict[str, Any]] = []
    current: dict[str, Any] = {}

    def flush() -> None:
        if current.get("name"):
            records.append(dict(current))
        current.clear()

    for raw in text.splitlines():
        line = raw.rstrip("\r")
        if not line.strip():
            flush()
            continue
        key, sep, value = line.partition(":")
        if not sep or len(key) != 1:
            continue
        if key in _KEPT:
            current[_KEPT[key]] = value.strip()
        elif key == "D":
            current["depends"] = value.split()
        elif key == "p":
            current["provides"] = value.split()
    flush()
    return records
