"""OS package databases for the oracle scan: fixtures extracted from the image archives, plus a
synthetic distroless ``status.d`` (one stanza per file, as Google's distroless images write it)."""

from __future__ import annotations

import functools

from tests.scan.catalogers.helpers import docker_archive_layer_files, fixture_path, oci_blob_layer_files

DPKG_STATUS = "/var/lib/dpkg/status"
APT_EXTENDED_STATES = "/var/lib/apt/extended_states"
APK_DB = "/lib/apk/db/installed"
NDB = "/usr/lib/sysimage/rpm/Packages.db"
ALPINE_LAYER = "d261077062b2aebb9ca8dc61f2b00e7e2b4e44179d3cfbe526c4ee0c5e41b26f"

DISTROLESS_FILES: dict[str, bytes] = {
    "/var/lib/dpkg/status.d/base-files": (
        b"Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: amd64\nMaintainer: x <x@x>\n"
        b"Description: base\n"
    ),
    "/var/lib/dpkg/status.d/libc6": (
        b"Package: libc6\nVersion: 2.36-9+deb12u4\nArchitecture: amd64\nSource: glibc\n"
        b"Maintainer: x <x@x>\nDepends: libgcc-s1\nDescription: libc\n"
    ),
    "/var/lib/dpkg/status.d/libc6.md5sums": b"0123456789abcdef  lib/x86_64-linux-gnu/libc.so.6\n",
}


@functools.cache
def nginx_files() -> dict[str, bytes]:
    """dpkg status and apt extended_states of the Debian 10 nginx image."""
    return docker_archive_layer_files(
        fixture_path("images", "nginx-debian10.docker.tar"), lambda p: p in (DPKG_STATUS, APT_EXTENDED_STATES)
    )


@functools.cache
def alpine_files() -> dict[str, bytes]:
    """apk's installed database of the Alpine 3.14 image."""
    return oci_blob_layer_files(
        fixture_path("images", "alpine.containerd.tar"), ALPINE_LAYER, lambda p: p == APK_DB
    )


def scan_tree() -> dict[str, bytes]:
    """All of the above under one root, each under its own prefix, for a single syft scan."""
    tree: dict[str, bytes] = {}
    for prefix, files in (
        ("/nginx", nginx_files()),
        ("/distroless", DISTROLESS_FILES),
        ("/alpine", alpine_files()),
        ("/ndb", {NDB: fixture_path("rpmdb", "ndb-sle15-bci.Packages.db").read_bytes()}),
    ):
        tree.update({prefix + path: data for path, data in files.items()})
    return tree
