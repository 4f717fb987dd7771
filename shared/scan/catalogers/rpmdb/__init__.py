"""Pure-Python readers for the three rpm database formats and the header blobs they store.

`read_database` recognises the format by its magic rather than the file name (rpm's migration tools
and hand-copied databases do not always keep the names) and returns the decoded package records.
"""

from __future__ import annotations

from typing import Any

from shared.scan.catalogers.errors import CatalogerError
from shared.scan.catalogers.rpmdb import bdb, ndb, sqlite
from shared.scan.catalogers.rpmdb.header import RpmHeaderError, parse_header, split_source_rpm

__all__ = ["RpmHeaderError", "parse_header", "read_database", "split_source_rpm"]


def read_database(data: bytes) -> dict[str, Any]:
    """``{"format": "sqlite"|"ndb"|"bdb", "packages": [header fields...], "errors": [str...]}``.

    A database whose structure is broken raises `CatalogerError`; a single unreadable header is
    listed in ``errors`` and the other packages are still returned.
    """
    if sqlite.is_sqlite(data):
        kind, (blobs, errors) = "sqlite", sqlite.read_blobs(data)
    elif ndb.is_ndb(data):
        kind, (blobs, errors) = "ndb", ndb.read_blobs(data)
    elif bdb.is_bdb_hash(data):
        kind, (blobs, errors) = "bdb", bdb.read_blobs(data)
    else:
        raise CatalogerError("not an rpm database: neither SQLite, NDB nor Berkeley DB hash magic")
    packages = []
    for number, blob in enumerate(blobs):
        try:
            packages.append(parse_header(blob))
        except RpmHeaderError as exc:
            errors.append(f"header {number}: {exc}")
    return {"format": kind, "packages": packages, "errors": errors}
