"""Inventories and image facts for the output-format tests, built without the project's own scanner.

``nginx_inventory`` comes from the snyk-docker-plugin fixture ``nginx-debian10.docker.tar`` (the
image behind the plugin's ``docker-archive.spec.ts`` snapshot, which the doc's depGraph example is
taken from), read by Debian's own ``dpkg-query`` so the expected answers do not depend on our dpkg
cataloger. ``nginx_image`` holds that archive's real config blob.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared.scan.model import Inventory, OSRelease, Package
from shared.scan.output.image_info import ImageInfo

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures"
NGINX_ARCHIVE = FIXTURES / "images" / "nginx-debian10.docker.tar"
NGINX_NAME = "127.0.0.1:5000/library/nginx"


@dataclass(frozen=True)
class NginxFixture:
    root: Path  # the layer unpacked
    config_bytes: bytes
    manifest_bytes: bytes
    layer_bytes: bytes


@pytest.fixture(scope="session")
def nginx_fixture(tmp_path_factory: pytest.TempPathFactory) -> NginxFixture:
    if not NGINX_ARCHIVE.exists():
        pytest.skip(f"fixture missing: {NGINX_ARCHIVE}")
    with tarfile.open(NGINX_ARCHIVE) as outer:
        manifest_bytes = _read(outer, "manifest.json")
        manifest = json.loads(manifest_bytes)[0]
        config_bytes = _read(outer, manifest["Config"])
        layer_bytes = _read(outer, manifest["Layers"][0])
    root = tmp_path_factory.mktemp("nginx-root")
    layer_path = root.parent / "nginx-layer.tar"
    layer_path.write_bytes(layer_bytes)
    # Only the files the tests read: the layer also holds symlinks to /dev/stdout that the "data"
    # extraction filter rightly refuses.
    wanted = {"etc/os-release", "var/lib/dpkg/status"}
    with tarfile.open(layer_path) as layer:
        layer.extractall(root, members=[m for m in layer.getmembers() if m.name in wanted], filter="data")
    return NginxFixture(root, config_bytes, manifest_bytes, layer_bytes)


def _read(archive: tarfile.TarFile, name: str) -> bytes:
    member = archive.extractfile(name)
    assert member is not None, name
    return member.read()


def _os_release(path: Path) -> OSRelease:
    fields = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key] = value.strip().strip('"')
    return OSRelease(
        id=fields["ID"],
        version_id=fields.get("VERSION_ID", ""),
        pretty_name=fields.get("PRETTY_NAME", ""),
        version_codename=fields.get("VERSION_CODENAME", ""),
    )


def _depends(*fields: str) -> tuple[str, ...]:
    # Every alternative counts, as in snyk-docker-plugin's apt.js; versions and ":any" are dropped.
    names: list[str] = []
    for field in fields:
        for group in filter(None, (g.strip() for g in field.split(","))):
            for alternative in group.split("|"):
                name = alternative.strip().split(" ")[0].split(":")[0]
                if name and name not in names:
                    names.append(name)
    return tuple(names)


@pytest.fixture(scope="session")
def nginx_packages(nginx_fixture: NginxFixture) -> list[Package]:
    dpkg_query = shutil.which("dpkg-query")
    if dpkg_query is None:
        pytest.skip("dpkg-query not installed")
    out = subprocess.run(
        [
            dpkg_query,
            "--admindir",
            str(nginx_fixture.root / "var/lib/dpkg"),
            "-W",
            "-f",
            "${db:Status-Abbrev}\t${Package}\t${Version}\t${source:Package}\t${source:Version}"
            "\t${Architecture}\t${Pre-Depends}\t${Depends}\t${Provides}\n",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    packages = []
    for line in out.splitlines():
        status, name, version, source, source_version, arch, pre_depends, depends, provides = line.split("\t")
        if status.strip() != "ii":
            continue
        packages.append(
            Package(
                name=name,
                version=version,
                type="deb",
                source_name=source,
                source_version=source_version,
                architecture=arch,
                location="/var/lib/dpkg/status",
                layer_digest="sha256:" + hashlib.sha256(nginx_fixture.layer_bytes).hexdigest(),
                depends=_depends(pre_depends, depends),
                metadata={"provides": _depends(provides)},
            )
        )
    return packages


@pytest.fixture(scope="session")
def nginx_inventory(nginx_fixture: NginxFixture, nginx_packages: list[Package]) -> Inventory:
    return Inventory(
        os_release=_os_release(nginx_fixture.root / "etc/os-release"),
        os_packages=nginx_packages,
        os_package_manager="deb",
        applications=[],
    )


@pytest.fixture(scope="session")
def nginx_image(nginx_fixture: NginxFixture) -> ImageInfo:
    # A docker-save archive has no registry manifest; the digest of its manifest.json stands in, and
    # the layer's digest is its tar's (the archive is trimmed, so it matches no rootfs diff_id).
    return ImageInfo(
        name=NGINX_NAME,
        tag="latest",
        manifest_digest="sha256:" + hashlib.sha256(nginx_fixture.manifest_bytes).hexdigest(),
        registry_host="127.0.0.1:5000",
        repository="library/nginx",
        config_digest="sha256:" + hashlib.sha256(nginx_fixture.config_bytes).hexdigest(),
        config=json.loads(nginx_fixture.config_bytes),
        layer_digests=("sha256:" + hashlib.sha256(nginx_fixture.layer_bytes).hexdigest(),),
    )
