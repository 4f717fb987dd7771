"""apk installed databases.

Oracles: ``syft dir:`` over the database extracted from the Alpine fixture image (package, version,
architecture, origin, dependencies and provides as syft reads them); for the synthetic records the
expected values are the ``P:``/``V:``/``o:``/``D:``/``p:`` fields written in the test, per apk's
format (image-analysis.md §2.4).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.scan.catalogers.apk import ApkCataloger, strip_constraint
from tests.scan.catalogers.helpers import by_name, run_cataloger
from tests.scan.catalogers.ostree import alpine_files

DB = "/lib/apk/db/installed"


def test_alpine_database_matches_syft(syft_os_dbs: Callable[[str, str], list[dict[str, Any]]]) -> None:
    packages = run_cataloger(ApkCataloger(), alpine_files())
    apks = syft_os_dbs("/alpine", "apk")
    assert len(packages) == len(apks) == 14
    assert sorted((p.name, p.version, p.architecture, p.source_name) for p in packages) == sorted(
        (a["name"], a["version"], a["metadata"]["architecture"], a["metadata"]["originPackage"]) for a in apks
    )
    # Edges: every resolved dependency is a D: token of the package (directly or through a p: entry
    # of the target), according to syft's reading of the same fields.
    provides = {a["name"]: {strip_constraint(x) for x in a["metadata"]["provides"]} for a in apks}
    pulls = {a["name"]: {strip_constraint(x) for x in a["metadata"]["pullDependencies"]} for a in apks}
    for package in packages:
        for dep in package.depends:
            assert dep in pulls[package.name] or provides[dep] & pulls[package.name], (package.name, dep)
    # musl provides so:libc.musl-x86_64.so.1, which busybox pulls in.
    assert "musl" in by_name(packages)["busybox"].depends


def test_licence_expressions_are_kept_whole() -> None:
    found = by_name(run_cataloger(ApkCataloger(), alpine_files()))
    assert found["ca-certificates-bundle"].licenses == ("MPL-2.0 AND MIT",)


MULTI = b"""\
C:Q1abc=
P:musl
V:1.2.4-r2
A:x86_64
o:musl
L:MIT
p:so:libc.musl-x86_64.so.1=1
F:lib
R:ld-musl-x86_64.so.1
Z:Q1xyz=

P:busybox
V:1.36.1-r5
A:x86_64
o:busybox
L:GPL-2.0-only
D:so:libc.musl-x86_64.so.1 !busybox-extras>=1.0 ssl_client>2
p:/bin/sh cmd:busybox=1.36.1-r5

P:ssl_client
V:1.36.1-r5
A:x86_64
o:busybox
D:so:libc.musl-x86_64.so.1

P:app
V:1
A:x86_64
D:/bin/sh cmd:busybox not-installed
"""


def test_multiple_records_and_dependency_resolution() -> None:
    found = by_name(run_cataloger(ApkCataloger(), {DB: MULTI}))
    assert sorted(found) == ["app", "busybox", "musl", "ssl_client"]
    assert found["busybox"].depends == ("musl", "ssl_client")  # the !conflict is not an edge
    assert found["ssl_client"].source_name == "busybox" and found["ssl_client"].source_version == "1.36.1-r5"
    assert found["app"].depends == ("busybox",)  # both virtual names resolve to busybox; unknowns drop
    assert found["musl"].licenses == ("MIT",) and found["app"].licenses == ()
    assert found["app"].source_name is None


def test_lib_path_wins_over_usr_lib_copy() -> None:
    newer = b"P:musl\nV:2\nA:x86_64\n"
    older = b"P:musl\nV:1\nA:x86_64\n\nP:zlib\nV:1\nA:x86_64\n"
    found = by_name(run_cataloger(ApkCataloger(), {DB: newer, "/usr/lib/apk/db/installed": older}))
    assert (found["musl"].version, found["musl"].location) == ("2", DB)
    assert found["zlib"].location == "/usr/lib/apk/db/installed"


def test_damaged_lines_are_ignored() -> None:
    found = by_name(run_cataloger(ApkCataloger(), {DB: b"garbage line\nV:1\n\nP:ok\nV:2\nXX:bad key\n"}))
    assert list(found) == ["ok"] and found["ok"].version == "2"
