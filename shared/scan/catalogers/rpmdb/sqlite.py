"""Header blobs from rpm's SQLite database (``rpmdb.sqlite``; Fedora >= 33, RHEL 9, CBL-Mariner).

``extract()`` receives the file's bytes, so the database is opened in memory with
``sqlite3.Connection.deserialize`` (SQLite >= 3.36) instead of being written to disk. rpm leaves
the file in WAL journal mode (header bytes 18 and 19 equal 2), and an in-memory database cannot use a
WAL; setting both bytes to 1 (rollback journal) on our copy makes SQLite read the same pages. Any
``-wal`` file beside it is not consulted: rpm checkpoints it when the transaction that installed
packages closes, so images do not carry one in practice.

The query is ``SELECT blob FROM Packages``, the table rpm's sqlite backend writes
(``hnum INTEGER PRIMARY KEY, blob BLOB``); SQLite's own corruption checks turn a damaged file into
a `CatalogerError`.
"""

from __future__ import annotations

import sqlite3

from shared.scan.catalogers.errors import CatalogerError

SQLITE_MAGIC = b"SQLite format 3\0"


def is_sqlite(data: bytes) -> bool:
    return data.startswith(SQLITE_MAGIC)


def read_blobs(data: bytes) -> tuple[list[bytes], list[str]]:
    if not is_sqlite(data) or len(data) < 100:
        raise CatalogerError("not an SQLite database (bad header)")
    image = bytearray(data)
    image[18] = image[19] = 1  # WAL -> rollback journal, see the module docstring
    connection = sqlite3.connect(":memory:")
    # A damaged page can turn a value into TEXT that is not UTF-8; bytes never fail to decode.
    connection.text_factory = bytes
    try:
        connection.deserialize(bytes(image))
        connection.execute("PRAGMA query_only = ON")
        rows = connection.execute("SELECT hnum, blob FROM Packages ORDER BY hnum").fetchall()
    except (
        sqlite3.Error,
        ValueError,
    ) as exc:  # ValueError: a damaged schema or column name that is not UTF-8
        raise CatalogerError(f"rpm SQLite database unreadable: {exc}") from exc
    finally:
        connection.close()
    blobs: list[bytes] = []
    errors: list[str] = []
    for hnum, blob in rows:
        if isinstance(blob, bytes):
            blobs.append(blob)
        else:
            errors.append(f"package {hnum}: blob column is {type(blob).__name__}, not bytes")
    return blobs, errors
