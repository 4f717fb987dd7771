"""dpkg status databases.

Oracles: ``dpkg-query --admindir DIR -W`` on the very status file (Debian's own reader: package,
version, architecture, derived ``source:Package``/``source:Version`` and ``db:Status-Status``);
``apt-mark showauto`` for extended_states; ``syft dir:`` for the image as a whole and for distroless
``status.d`` (which dpkg-query does not read). Where dpkg-query and we disagree (it lists removed
packages whose configuration files remain), the test says which is right and why.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared.scan.catalogers.dpkg import DpkgCataloger, dependency_names, is_present, parse_source
from shared.scan.model import Package
from tests.scan.catalogers.helpers import (
    by_name,
    require_tool,
    run_cataloger,
    run_tool,
    write_tree,
)
from tests.scan.catalogers.ostree import DISTROLESS_FILES, nginx_files

STATUS = "/var/lib/dpkg/status"
EXTENDED = "/var/lib/apt/extended_states"
QUERY_FORMAT = (
    "${Package}\t${Version}\t${Architecture}\t${source:Package}\t${source:Version}\t"
    "${db:Status-Status}\t${Pre-Depends}\t${Depends}\t${Provides}\n"
)


def _dpkg_query(status: bytes, tmp_path: Path) -> list[list[str]]:
    admindir = tmp_path / "dpkg-admin"
    admindir.mkdir()
    (admindir / "status").write_bytes(status)
    (admindir / "updates").mkdir()
    out = run_tool([require_tool("dpkg-query"), "--admindir", str(admindir), "-W", "-f", QUERY_FORMAT])
    return [line.split("\t") for line in out.splitlines()]


def _key(package: Package) -> tuple[str, str, str, str, str]:
    # dpkg-query derives source:Package/Version from the binary when Source is absent or has no version.
    return (
        package.name,
        package.version,
        package.architecture or "",
        package.source_name or package.name,
        package.source_version or package.version,
    )


def test_nginx_status_matches_dpkg_query(tmp_path: Path) -> None:
    files = nginx_files()
    packages = run_cataloger(DpkgCataloger(), files)
    rows = _dpkg_query(files[STATUS], tmp_path)
    assert {r[5] for r in rows} == {"installed"}
    assert sorted(_key(p) for p in packages) == sorted(tuple(r[:5]) for r in rows)
    assert len(packages) == 84
    assert all(p.type == "deb" and p.location == STATUS for p in packages)
    # Spot checks that pin the interesting shapes: epoch and Source with its own version.
    found = by_name(packages)
    assert (found["libaudit1"].version, found["libaudit1"].source_name) == ("1:2.8.4-3", "audit")
    assert found["libgcc1"].source_name == "gcc-8" and found["libgcc1"].source_version == "8.3.0-6"


def test_nginx_status_matches_syft(syft_os_dbs: Callable[[str, str], list[dict[str, Any]]]) -> None:
    packages = run_cataloger(DpkgCataloger(), nginx_files())
    debs = syft_os_dbs("/nginx", "deb")
    assert sorted((p.name, p.version, p.architecture) for p in packages) == sorted(
        (a["name"], a["version"], a["metadata"]["architecture"]) for a in debs
    )


def test_depends_are_installed_packages_named_by_the_relationship_fields(tmp_path: Path) -> None:
    files = nginx_files()
    packages = run_cataloger(DpkgCataloger(), files)
    rows = {r[0]: r for r in _dpkg_query(files[STATUS], tmp_path)}
    provided_by = {v: name for name, r in rows.items() for v in dependency_names(r[8])}
    edges = 0
    for package in packages:
        declared = set(dependency_names(rows[package.name][6] + "," + rows[package.name][7]))
        for dep in package.depends:
            assert dep in rows, f"{package.name} -> {dep} is not installed"
            assert dep in declared or any(provided_by.get(d) == dep for d in declared), (package.name, dep)
            edges += 1
    assert edges > 100
    # apt needs libapt-pkg5.0 and names it directly.
    assert "libapt-pkg5.0" in by_name(packages)["apt"].depends


def test_auto_installed_matches_apt_mark(tmp_path: Path) -> None:
    files = nginx_files()
    tree = write_tree(tmp_path, files)
    shown = run_tool(
        [
            require_tool("apt-mark"),
            "-o",
            f"Dir::State::extended_states={tree}{EXTENDED}",
            "-o",
            f"Dir::State::status={tree}{STATUS}",
            "showauto",
        ]
    ).split()
    packages = run_cataloger(DpkgCataloger(), files)
    assert sorted(p.name for p in packages if p.metadata["auto_installed"]) == sorted(shown)


SYNTHETIC_STATUS = b"""\
Package: present
Status: install ok installed
Maintainer: Test <t@example.org>
Architecture: amd64
Source: presentsrc (1.0-1)
Version: 2:1.0-1+b1
Depends: libfoo (>= 1.0) | libbar, virtual-thing, missing-pkg
Description: an installed package
 with a continuation line
 .
 and a paragraph break

Package: removed-config-left
Status: deinstall ok config-files
Maintainer: Test <t@example.org>
Architecture: amd64
Version: 1.0
Description: removed, only conffiles remain

Package: marked-for-removal
Status: deinstall ok installed
Maintainer: Test <t@example.org>
Architecture: all
Version: 3.0
Description: still installed although the admin asked for removal

Package: interrupted
Status: install reinstreq half-installed
Maintainer: Test <t@example.org>
Architecture: amd64
Version: 0.9
Description: an install that stopped midway

Package: purged
Status: purge ok not-installed
Maintainer: Test <t@example.org>
Architecture: amd64
Description: purged

Package: unpacked-only
Status: install ok unpacked
Maintainer: Test <t@example.org>
Architecture: amd64
Version: 1
Provides: virtual-thing
Description: unpacked, not configured

Package: libfoo
Status: install ok installed
Maintainer: Test <t@example.org>
Architecture: amd64
Multi-Arch: same
Source: foo
Version: 1.2
Description: foo, native

Package: libfoo
Status: install ok installed
Maintainer: Test <t@example.org>
Architecture: i386
Multi-Arch: same
Source: foo
Version: 1.2
Description: foo, foreign
"""


def test_status_states_against_dpkg_query(tmp_path: Path) -> None:
    rows = _dpkg_query(SYNTHETIC_STATUS, tmp_path)
    packages = run_cataloger(DpkgCataloger(), {STATUS: SYNTHETIC_STATUS})
    reported = sorted((p.name, p.architecture) for p in packages)
    # States that leave a package's files on disk (dpkg(1), "Package states").
    files_present = {"installed", "unpacked", "half-configured", "half-installed", "triggers-awaited"}
    on_disk = sorted((r[0], r[2]) for r in rows if r[5] in files_present | {"triggers-pending"})
    assert reported == on_disk
    # The oracles disagree on "rc" packages: dpkg-query -W lists removed-config-left because its
    # conffiles are still registered, but its state word says the program files are gone, so a
    # vulnerability inventory must not report it. Purged packages are in neither.
    states = {r[0]: r[5] for r in rows}
    assert states["removed-config-left"] == "config-files"
    assert "removed-config-left" not in {p.name for p in packages}
    assert "purged" not in {p.name for p in packages}
    # Still on disk whatever the administrator wants: reported (Syft would drop "deinstall ok installed").
    assert {"marked-for-removal", "interrupted", "unpacked-only"} <= {p.name for p in packages}
    assert sorted(_key(p) for p in packages) == sorted(
        tuple(r[:5]) for r in rows if (r[0], r[2]) in set(on_disk)
    )


def test_synthetic_dependency_resolution() -> None:
    packages = run_cataloger(DpkgCataloger(), {STATUS: SYNTHETIC_STATUS})
    present = next(p for p in packages if p.name == "present")
    # "libfoo | libbar" -> libfoo (first installed alternative); virtual-thing -> its provider;
    # missing-pkg is not installed and so is no edge.
    assert present.depends == ("libfoo", "unpacked-only")
    assert (present.version, present.source_name, present.source_version) == (
        "2:1.0-1+b1",
        "presentsrc",
        "1.0-1",
    )


def test_distroless_status_d_matches_syft(syft_os_dbs: Callable[[str, str], list[dict[str, Any]]]) -> None:
    files = DISTROLESS_FILES
    packages = run_cataloger(DpkgCataloger(), files)
    debs = syft_os_dbs("/distroless", "deb")
    assert sorted((p.name, p.version, p.source_name or "") for p in packages) == sorted(
        (a["name"], a["version"], a["metadata"]["source"]) for a in debs
    )
    assert by_name(packages)["libc6"].location == "/var/lib/dpkg/status.d/libc6"


def test_status_file_wins_over_status_d_duplicates() -> None:
    files = {
        STATUS: b"Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2\n",
        "/var/lib/dpkg/status.d/zlib1g": b"Package: zlib1g\nArchitecture: amd64\nVersion: 1\n",
    }
    (package,) = run_cataloger(DpkgCataloger(), files)
    assert (package.version, package.location) == ("2", STATUS)


def test_parsers_for_single_fields() -> None:
    assert parse_source("gcc-8 (8.3.0-6)", "8.3.0-6+b1") == ("gcc-8", "8.3.0-6")
    assert parse_source("audit", "1:2.8.4-3") == ("audit", "1:2.8.4-3")
    assert parse_source(None, "1") == (None, None)
    assert dependency_names("libc6 (>= 2.14), perl:any, a | b (<< 2) [amd64]") == ["libc6", "perl", "a", "b"]
    assert is_present("install ok installed") and is_present("hold ok half-configured")
    assert not is_present("deinstall ok config-files") and not is_present("install ok not-installed")
    assert not is_present("garbage")


def test_wants() -> None:
    cataloger = DpkgCataloger()
    assert cataloger.wants(STATUS, 1000, 0o644)
    assert cataloger.wants("/var/lib/dpkg/status.d/libssl3", 1000, 0o644)
    assert not cataloger.wants("/var/lib/dpkg/status.d/libssl3.md5sums", 1000, 0o644)
    assert not cataloger.wants("/var/lib/dpkg/status-old", 1000, 0o644)
    assert not cataloger.wants(STATUS, 1 << 30, 0o644)
