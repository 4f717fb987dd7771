"""OS detection from release files.

Oracles: for the real images, syft's ``distro`` section from ``syft dir:`` over the same release
files (extracted from the fixture archives with tarfile); for the fallback files, which syft does not
read, the expected values follow snyk-docker-plugin's documented rules (image-analysis.md §1.3)
applied by hand to release-file texts that those distributions ship.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from shared.scan.catalogers import OS_RELEASE, default_catalogers, detect_os
from shared.scan.catalogers.osrelease import OSReleaseCataloger
from shared.scan.model import OSRelease
from tests.scan.catalogers.helpers import (
    docker_archive_layer_files,
    fixture_path,
    oci_blob_layer_files,
    offer,
    syft_json,
    write_tree,
)

ALPINE_LAYER = "d261077062b2aebb9ca8dc61f2b00e7e2b4e44179d3cfbe526c4ee0c5e41b26f"


def _wanted(path: str) -> bool:
    return OSReleaseCataloger().wants(path, 0, 0o644)


def _detect(files: dict[str, bytes]) -> OSRelease:
    return detect_os(offer(OSReleaseCataloger(), files))


def _assert_matches_syft(found: OSRelease, tree: Path) -> None:
    distro = syft_json(f"dir:{tree}")["distro"]
    assert found.id == distro["id"]
    assert found.version_id == distro["versionID"]
    assert found.pretty_name == distro["prettyName"]
    assert found.version_codename == distro.get("versionCodename", "")


def test_debian_10_from_the_nginx_image(tmp_path: Path) -> None:
    files = docker_archive_layer_files(fixture_path("images", "nginx-debian10.docker.tar"), _wanted)
    found = _detect(files)
    assert found.source_file == "/etc/os-release"
    _assert_matches_syft(found, write_tree(tmp_path, files))


def test_os_release_reached_through_the_usr_lib_copy(tmp_path: Path) -> None:
    # In this image /etc/os-release is a symlink to ../usr/lib/os-release; without the engine's link
    # resolution only the target is a regular file, and asking for it is enough.
    archive = fixture_path("images", "nginx-os-release-link.docker.tar")
    files = docker_archive_layer_files(archive, _wanted)
    assert "/etc/os-release" not in files and "/usr/lib/os-release" in files
    found = _detect(files)
    assert found.source_file == "/usr/lib/os-release"
    # syft reads the image tree with the symlink in place.
    with tarfile.open(archive) as outer:
        for member in outer:
            if member.name.endswith("layer.tar"):
                layer = outer.extractfile(member)
                assert layer is not None
                with tarfile.open(fileobj=io.BytesIO(layer.read())) as tar:
                    wanted = [m for m in tar if m.name.endswith(("etc/os-release", "usr/lib/os-release"))]
                    tar.extractall(tmp_path, members=wanted, filter="data")
    assert (tmp_path / "etc" / "os-release").is_symlink()
    _assert_matches_syft(found, tmp_path)


def test_etc_os_release_is_preferred_over_usr_lib() -> None:
    found = _detect(
        {
            "/usr/lib/os-release": b"ID=debian\nVERSION_ID=11\n",
            "/etc/os-release": b'ID="ubuntu"\nVERSION_ID="22.04"\nID_LIKE=debian\nUBUNTU_CODENAME=jammy\n',
        }
    )
    assert found == OSRelease(
        id="ubuntu",
        version_id="22.04",
        version_codename="jammy",
        id_like=("debian",),
        source_file="/etc/os-release",
    )


def test_alpine_from_the_containerd_image(tmp_path: Path) -> None:
    files = oci_blob_layer_files(
        fixture_path("images", "alpine.containerd.tar"), ALPINE_LAYER, lambda p: p.startswith("/etc/")
    )
    found = _detect(files)
    assert found.source_file == "/etc/os-release"
    _assert_matches_syft(found, write_tree(tmp_path, {p: d for p, d in files.items() if "release" in p}))


# Texts as these distributions ship them; expected values by the §1.3 rules.
FALLBACKS = [
    (
        "/etc/lsb-release",
        b"DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=16.04\nDISTRIB_CODENAME=xenial\n"
        b'DISTRIB_DESCRIPTION="Ubuntu 16.04.7 LTS"\n',
        OSRelease("ubuntu", "16.04", "Ubuntu 16.04.7 LTS", "xenial"),
    ),
    ("/etc/debian_version", b"10.1\n", OSRelease("debian", "10")),
    ("/etc/debian_version", b"bookworm/sid\n", OSRelease("debian", "bookworm/sid")),
    ("/etc/alpine-release", b"3.12.0\n", OSRelease("alpine", "3.12.0")),
    (
        "/etc/redhat-release",
        b"Red Hat Enterprise Linux Server release 7.9 (Maipo)\n",
        OSRelease("rhel", "7", "Red Hat Enterprise Linux Server release 7.9 (Maipo)"),
    ),
    (
        "/etc/centos-release",
        b"CentOS Linux release 7.9.2009 (Core)\n",
        OSRelease("centos", "7", "CentOS Linux release 7.9.2009 (Core)"),
    ),
    (
        "/etc/oracle-release",
        b"Oracle Linux Server release 7.9\n",
        OSRelease("ol", "7", "Oracle Linux Server release 7.9"),
    ),
]


@pytest.mark.parametrize(("path", "text", "expected"), FALLBACKS, ids=[f[0] for f in FALLBACKS])
def test_fallback_release_files(path: str, text: bytes, expected: OSRelease) -> None:
    found = _detect({path: text})
    assert found.source_file == path
    assert (found.id, found.version_id, found.pretty_name, found.version_codename) == (
        expected.id,
        expected.version_id,
        expected.pretty_name,
        expected.version_codename,
    )


def test_oracle_release_wins_over_its_redhat_release() -> None:
    # Oracle Linux ships both files; the redhat-release there reads like RHEL.
    found = _detect(
        {
            "/etc/redhat-release": b"Red Hat Enterprise Linux Server release 7.9 (Maipo)\n",
            "/etc/oracle-release": b"Oracle Linux Server release 7.9\n",
        }
    )
    assert (found.id, found.source_file) == ("ol", "/etc/oracle-release")


def test_os_release_without_id_falls_through_to_the_next_file() -> None:
    found = _detect({"/etc/os-release": b'PRETTY_NAME="mystery"\n', "/etc/debian_version": b"12.5\n"})
    assert (found.id, found.version_id, found.source_file) == ("debian", "12", "/etc/debian_version")


def test_distroless_chisel_unknown_and_scratch() -> None:
    assert _detect({"/var/lib/dpkg/status.d/libc6": b"Package: libc6\n"}).id == "distroless"
    chisel = _detect({"/var/lib/chisel/manifest.wall": b"\x28\xb5\x2f\xfd"})
    assert (chisel.id, chisel.version_id) == ("chisel", "0.0")
    assert _detect({"/etc/alpine-release": b"\n"}).id == "unknown"
    assert _detect({}).id == "scratch"
    # A release file always beats the markers: distroless images normally carry an os-release.
    both = _detect({"/var/lib/dpkg/status.d/libc6": b"", "/etc/os-release": b"ID=debian\nVERSION_ID=12\n"})
    assert (both.id, both.version_id) == ("debian", "12")


def test_wants_is_exact_and_bounded() -> None:
    cataloger = OSReleaseCataloger()
    assert cataloger.wants("/etc/os-release", 300, 0o644)
    assert not cataloger.wants("/etc/os-release", 10 * 1024 * 1024, 0o644)
    assert not cataloger.wants("/srv/etc/os-release", 300, 0o644)
    assert cataloger.wants("/var/lib/dpkg/status.d/base-files", 500, 0o644)
    assert not cataloger.wants("/var/lib/dpkg/status.d/sub/dir", 500, 0o644)
    assert cataloger.catalog({}, None) == []


def test_os_release_cataloger_comes_first_in_the_defaults() -> None:
    catalogers = default_catalogers()
    assert catalogers[0].name == OS_RELEASE
    names = [c.name for c in catalogers]
    assert len(names) == len(set(names))
