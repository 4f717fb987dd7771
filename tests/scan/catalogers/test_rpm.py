"""rpm databases in all three formats, the header parser, and damaged input.

Oracles:
* SQLite (CBL-Mariner 2.0, 129 packages): Debian's ``rpm -qa --dbpath DIR`` on a copy named
  ``rpmdb.sqlite``.
* Berkeley DB (libuuid): the same rpm with its read-only ``bdb_ro`` backend.
* NDB (SUSE BCI 15, 35 packages): Debian's rpm has no NDB backend, so two checks: ``syft dir:``
  reads the NDB file itself; and rpm decodes the header blobs our NDB reader pulled out, loaded into
  an SQLite rpmdb that uses the schema of the Mariner fixture (rpm's own schema).
* Synthetic headers: built in the test from the tag/type/offset layout (image-analysis.md §2.3),
  so the expected fields are the ones written.
"""

from __future__ import annotations

import shutil
import sqlite3
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shared.scan.catalogers.errors import CatalogerError
from shared.scan.catalogers.rpm import RpmCataloger, format_version
from shared.scan.catalogers.rpmdb import bdb, ndb, read_database, sqlite
from shared.scan.catalogers.rpmdb.header import RpmHeaderError, parse_header, split_source_rpm
from tests.scan.catalogers.helpers import (
    by_name,
    fixture_path,
    require_tool,
    run_cataloger,
    run_tool,
)

SQLITE_FIXTURE = "sqlite-cbl-mariner-2.0.rpmdb.sqlite"
BDB_FIXTURE = "bdb-libuuid.Packages"
NDB_FIXTURE = "ndb-sle15-bci.Packages.db"
QUERY = "%{NAME}\t%{EPOCH}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\t%{SOURCERPM}\t%{LICENSE}\t%{MODULARITYLABEL}\n"


def _fixture(name: str) -> bytes:
    return fixture_path("rpmdb", name).read_bytes()


def _rpm_rows(dbpath: Path, *defines: str) -> list[tuple[str, ...]]:
    args = [require_tool("rpm")]
    for define in defines:
        args += ["--define", define]
    out = run_tool([*args, "--dbpath", str(dbpath), "-qa", "--qf", QUERY])
    rows = []
    for line in out.splitlines():
        name, epoch, version, release, arch, source, license_, module = line.split("\t")
        if name == "gpg-pubkey":
            continue
        none = "(none)"
        rows.append(
            (
                name,
                f"{epoch}:{version}-{release}" if epoch not in (none, "0") else f"{version}-{release}",
                arch,
                "" if source == none else source,
                "" if license_ == none else license_,
                "" if module == none else module,
            )
        )
    return sorted(rows)


def _our_rows(path: str, data: bytes) -> list[tuple[str, ...]]:
    packages = run_cataloger(RpmCataloger(), {path: data})
    assert all(p.location == path and p.type == "rpm" for p in packages)
    return sorted(
        (
            p.name,
            p.version,
            p.architecture or "",
            p.metadata.get("sourcerpm", ""),
            p.licenses[0] if p.licenses else "",
            p.metadata.get("modularitylabel", ""),
        )
        for p in packages
    )


def test_sqlite_database_matches_rpm(tmp_path: Path) -> None:
    shutil.copy(fixture_path("rpmdb", SQLITE_FIXTURE), tmp_path / "rpmdb.sqlite")
    ours = _our_rows("/var/lib/rpm/rpmdb.sqlite", _fixture(SQLITE_FIXTURE))
    assert len(ours) == 129
    assert ours == _rpm_rows(tmp_path)


def test_berkeley_db_matches_rpm_bdb_ro(tmp_path: Path) -> None:
    shutil.copy(fixture_path("rpmdb", BDB_FIXTURE), tmp_path / "Packages")
    ours = _our_rows("/var/lib/rpm/Packages", _fixture(BDB_FIXTURE))
    assert ours == _rpm_rows(tmp_path, "_db_backend bdb_ro")
    (package,) = run_cataloger(RpmCataloger(), {"/var/lib/rpm/Packages": _fixture(BDB_FIXTURE)})
    assert (package.name, package.version, package.source_name, package.source_version) == (
        "libuuid",
        "2.32.1-42.el8_8",
        "util-linux",
        "2.32.1-42.el8_8",
    )


def test_ndb_database_matches_syft(syft_os_dbs: Callable[[str, str], list[dict[str, Any]]]) -> None:
    path = "/usr/lib/sysimage/rpm/Packages.db"
    packages = run_cataloger(RpmCataloger(), {path: _fixture(NDB_FIXTURE)})
    rpms = syft_os_dbs("/ndb", "rpm")
    assert len(packages) == len(rpms) == 35
    assert sorted(
        (p.name, p.version, p.architecture, p.metadata.get("sourcerpm")) for p in packages
    ) == sorted(
        (a["name"], a["version"], a["metadata"]["architecture"], a["metadata"]["sourceRpm"]) for a in rpms
    )


def test_ndb_blobs_decode_the_same_in_rpm(tmp_path: Path) -> None:
    blobs, errors = ndb.read_blobs(_fixture(NDB_FIXTURE))
    assert errors == [] and len(blobs) == 35
    schema_source = sqlite3.connect(f"file:{fixture_path('rpmdb', SQLITE_FIXTURE)}?immutable=1", uri=True)
    schema = [
        row[0]
        for row in schema_source.execute(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'"
        )
    ]
    schema_source.close()
    rebuilt = sqlite3.connect(tmp_path / "rpmdb.sqlite")
    for statement in schema:
        rebuilt.execute(statement)
    rebuilt.executemany("INSERT INTO Packages(blob) VALUES (?)", [(b,) for b in blobs])
    rebuilt.commit()
    rebuilt.close()
    assert _our_rows("/usr/lib/sysimage/rpm/Packages.db", _fixture(NDB_FIXTURE)) == _rpm_rows(tmp_path)


# --- synthetic headers -------------------------------------------------------------------------

STRING, INT32, STRING_ARRAY, BIN = 6, 4, 8, 7


def build_header(entries: list[tuple[int, int, object]]) -> bytes:
    """A stored rpm header: il, dl, big-endian index entries, then the data store."""
    index, store = b"", b""
    for tag, kind, value in entries:
        if kind == INT32:
            store += b"\0" * (-len(store) % 4)
            payload, count = struct.pack(">i", value), 1
        elif kind == STRING_ARRAY:
            assert isinstance(value, list)
            payload, count = b"".join(v.encode() + b"\0" for v in value), len(value)
        elif kind == BIN:
            assert isinstance(value, bytes)
            payload, count = value, len(value)
        else:
            assert isinstance(value, str)
            payload, count = value.encode() + b"\0", 1
        index += struct.pack(">iIiI", tag, kind, len(store), count)
        store += payload
    return struct.pack(">ii", len(entries), len(store)) + index + store


def _package_header(name: str, epoch: int | None = None, **extra: str) -> bytes:
    entries: list[tuple[int, int, object]] = [
        (1000, STRING, name),
        (1001, STRING, extra.get("version", "1.0")),
        (1002, STRING, extra.get("release", "1.el9")),
        (1022, STRING, "x86_64"),
        (1044, STRING, extra.get("sourcerpm", f"{name}-1.0-1.el9.src.rpm")),
        (1014, STRING, "MIT"),
        (1117, STRING_ARRAY, ["a", "b"]),  # a tag we skip, to show offsets stay right
    ]
    if epoch is not None:
        entries.append((1003, INT32, epoch))
    if "module" in extra:
        entries.append((5096, STRING, extra["module"]))
    return build_header(entries)


def _sqlite_db(tmp_path: Path, blobs: list[bytes]) -> bytes:
    path = tmp_path / "built.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)")
    db.executemany("INSERT INTO Packages(blob) VALUES (?)", [(b,) for b in blobs])
    db.commit()
    db.close()
    return path.read_bytes()


def test_header_fields_epoch_module_and_gpg_pubkey(tmp_path: Path) -> None:
    data = _sqlite_db(
        tmp_path,
        [
            _package_header("perl-libs", epoch=4, version="5.32.1", release="480.el9"),
            _package_header(
                "nodejs", module="nodejs:18:9020020230201:rhel9", sourcerpm="nodejs-18.14-1.el9.src.rpm"
            ),
            _package_header("zero-epoch", epoch=0),
            build_header(
                [(1000, STRING, "gpg-pubkey"), (1001, STRING, "fd431d51"), (1002, STRING, "4ae0493b")]
            ),
        ],
    )
    found = by_name(run_cataloger(RpmCataloger(), {"/var/lib/rpm/rpmdb.sqlite": data}))
    assert "gpg-pubkey" not in found  # imported signing keys are not software
    assert (found["perl-libs"].version, found["perl-libs"].epoch) == ("4:5.32.1-480.el9", 4)
    assert found["nodejs"].metadata["modularitylabel"] == "nodejs:18:9020020230201:rhel9"
    assert (found["nodejs"].source_name, found["nodejs"].source_version) == ("nodejs", "18.14-1.el9")
    assert (found["zero-epoch"].version, found["zero-epoch"].epoch) == ("1.0-1.el9", 0)
    assert found["zero-epoch"].licenses == ("MIT",) and found["zero-epoch"].architecture == "x86_64"


def test_version_and_source_helpers() -> None:
    assert format_version({"version": "1", "release": "2", "epoch": 3}) == "3:1-2"
    assert format_version({"version": "1", "release": "2"}) == "1-2"
    assert split_source_rpm("util-linux-2.32.1-42.el8_8.src.rpm") == ("util-linux", "2.32.1-42.el8_8")
    assert split_source_rpm("kernel-5.14.0-1.nosrc.rpm") == ("kernel", "5.14.0-1")
    assert split_source_rpm("not-a-source") is None


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"\0\0\0", "too short"),
        (struct.pack(">ii", 0x10000, 0), "index count"),
        (struct.pack(">ii", 1, -5), "data length"),
        (struct.pack(">ii", 2, 100) + b"\0" * 40, "but the blob has"),
        (struct.pack(">ii", 1, 4) + struct.pack(">iIiI", 1000, STRING, 9, 1) + b"abcd", "outside"),
        (struct.pack(">ii", 1, 4) + struct.pack(">iIiI", 1000, STRING, 0, 1) + b"abcd", "NUL-terminated"),
        (struct.pack(">ii", 1, 4) + struct.pack(">iIiI", 1000, INT32, 0, 1) + b"abcd", "should be a string"),
        (struct.pack(">ii", 1, 2) + struct.pack(">iIiI", 1003, INT32, 0, 1) + b"ab", "runs past"),
        (struct.pack(">ii", 1, 4) + struct.pack(">iIiI", 1000, 99, 0, 1) + b"abcd", "unknown type"),
    ],
)
def test_corrupted_headers_raise_clear_errors(blob: bytes, message: str) -> None:
    with pytest.raises(RpmHeaderError, match=message):
        parse_header(blob)


def test_one_corrupted_header_does_not_hide_the_others(tmp_path: Path) -> None:
    data = _sqlite_db(tmp_path, [_package_header("good"), b"\x00\x00\x00\x01garbage"])
    result = read_database(data)
    assert [p["name"] for p in result["packages"]] == ["good"]
    assert len(result["errors"]) == 1 and "header 1" in result["errors"][0]


# --- damaged databases -------------------------------------------------------------------------


def _set_next_page(data: bytes, pgno: int, next_pgno: int) -> bytes:
    page_size = struct.unpack_from("<I", data, 20)[0]
    patched = bytearray(data)
    struct.pack_into("<I", patched, pgno * page_size + 16, next_pgno)
    return bytes(patched)


@pytest.mark.timeout(10)
def test_bdb_overflow_cycle_is_reported_not_followed() -> None:
    # In the fixture, pages 3..22 are one overflow chain; make page 10 point back to page 5.
    blobs, errors = bdb.read_blobs(_set_next_page(_fixture(BDB_FIXTURE), 10, 5))
    assert blobs == []
    assert any("loops back to page 5" in e for e in errors)


@pytest.mark.timeout(10)
def test_bdb_overflow_chain_into_a_hash_page_is_reported() -> None:
    blobs, errors = bdb.read_blobs(_set_next_page(_fixture(BDB_FIXTURE), 10, 1))
    assert blobs == [] and any("reaches page 1 of type 13" in e for e in errors)


def test_bdb_truncated_and_foreign_files() -> None:
    data = _fixture(BDB_FIXTURE)
    blobs, errors = bdb.read_blobs(data[: 4096 * 12])
    assert blobs == [] and any("last page is 22" in e for e in errors)
    with pytest.raises(CatalogerError, match="hash database"):
        bdb.read_blobs(b"\0" * 4096)
    encrypted = bytearray(data)
    encrypted[24] = 1
    with pytest.raises(CatalogerError, match="encrypted"):
        bdb.read_blobs(bytes(encrypted))


def test_ndb_damaged_blob_is_skipped_and_reported() -> None:
    data = bytearray(_fixture(NDB_FIXTURE))
    _, _, block_offset, _ = struct.unpack_from("<IIII", data, 32 + 16 * 3)  # the fourth slot
    data[block_offset * 16 : block_offset * 16 + 4] = b"XXXX"
    blobs, errors = ndb.read_blobs(bytes(data))
    assert len(blobs) == 34
    assert len(errors) == 1 and "bad magic" in errors[0]
    with pytest.raises(CatalogerError, match="RpmP"):
        ndb.read_blobs(b"\0" * 64)


def test_sqlite_garbage_and_missing_table(tmp_path: Path) -> None:
    with pytest.raises(CatalogerError, match="unreadable"):
        sqlite.read_blobs(sqlite.SQLITE_MAGIC + b"\xff" * 4000)
    empty = tmp_path / "empty.sqlite"
    db = sqlite3.connect(empty)
    db.execute("CREATE TABLE other (x)")
    db.commit()
    db.close()
    with pytest.raises(CatalogerError, match="no such table"):
        sqlite.read_blobs(empty.read_bytes())
    with pytest.raises(CatalogerError, match="not an rpm database"):
        read_database(b"plain text, not a database" * 40)


def test_the_newest_format_wins_when_several_databases_exist(tmp_path: Path) -> None:
    sqlite_db = _sqlite_db(tmp_path, [_package_header("from-sqlite")])
    found = run_cataloger(
        RpmCataloger(),
        {"/var/lib/rpm/Packages": _fixture(BDB_FIXTURE), "/var/lib/rpm/rpmdb.sqlite": sqlite_db},
    )
    assert [p.name for p in found] == ["from-sqlite"]


def test_wants_the_documented_paths_only() -> None:
    cataloger = RpmCataloger()
    for path in (
        "/var/lib/rpm/Packages",
        "/var/lib/rpm/rpmdb.sqlite",
        "/usr/lib/sysimage/rpm/Packages.db",
        "/usr/share/rpm/rpmdb.sqlite",
    ):
        assert cataloger.wants(path, 1000, 0o644), path
    assert not cataloger.wants("/var/lib/rpm/Name", 1000, 0o644)
    assert not cataloger.wants("/home/x/var/lib/rpm/Packages", 1000, 0o644)
