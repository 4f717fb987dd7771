"""The scan engine end to end: size refusal before any download, the layer cache against a real
registry (blob GETs counted on the client's own HTTP session), OS package manager choice, grouping
of application packages, and failing catalogers.

Expected package lists are the files the tests themselves put in the images; the OS of the nginx
fixture is the ``ID``/``VERSION_ID`` of its os-release as GNU tar extracts it (``test_merge``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shared import errors
from shared.image import open_source
from shared.image.cache import LayerCache
from shared.registry import RegistryClient, client_for
from shared.scan.catalogers.osrelease import OSReleaseCataloger
from shared.scan.engine import scan
from shared.scan.model import FileRecord, OSRelease, Package
from tests.client.conftest import credentials_for, settings_for
from tests.harness.images import Symlink, build_image
from tests.harness.registry import Mode, RunningRegistry
from tests.harness.seed import archive
from tests.scan.layers import OCI_LAYER_GZIP, Everything, gz, sha256, tar_bytes, write_layout

MAX = 2 * 1024**3


@contextmanager
def counting_client(registry: RunningRegistry) -> Iterator[tuple[RegistryClient, list[str]]]:
    """A client whose HTTP session records every blob GET (the registry's own answers, counted)."""
    blob_gets: list[str] = []

    def record(response: Any, *args: Any, **kwargs: Any) -> None:
        if response.request.method == "GET" and "/blobs/" in response.request.url:
            blob_gets.append(response.request.url.rsplit("/", 1)[1])

    with client_for(credentials_for(registry), settings_for(registry)) as client:
        client.transport.session.hooks["response"].append(record)
        yield client, blob_gets


@dataclass
class PackageList:
    """A stand-in package database: ``/db/<kind>`` holds one package name per line."""

    kind: str  # package type it reports: apk, deb, rpm
    name: str = ""
    ecosystem: str = "os"

    def __post_init__(self) -> None:
        self.name = self.name or f"list-{self.kind}"

    def wants(self, path: str, size: int, mode: int) -> bool:
        return path == f"/db/{self.kind}"

    def extract(self, path: str, data: bytes) -> Any:
        return data.decode().split()

    def catalog(self, files: Mapping[str, FileRecord], os_release: OSRelease | None) -> list[Package]:
        return [
            Package(name=n, version="1", type=self.kind, location=p, layer_digest=r.layer_digest)
            for p, r in files.items()
            for n in r.value
        ]


@dataclass
class Manifests:
    """An application cataloger: every ``app.txt`` lists packages of the project in its directory."""

    name: str = "manifests"
    ecosystem: str = "npm"

    def wants(self, path: str, size: int, mode: int) -> bool:
        return path.endswith("/app.txt")

    def extract(self, path: str, data: bytes) -> Any:
        return data.decode().split()

    def catalog(self, files: Mapping[str, FileRecord], os_release: OSRelease | None) -> list[Package]:
        return [
            Package(name=n, version="1", type="npm", location=p) for p, r in files.items() for n in r.value
        ]


class Broken(Everything):
    def catalog(self, files: Mapping[str, FileRecord], os_release: OSRelease | None) -> list[Package]:
        raise RuntimeError("database format not understood")


def _layout(tmp_path: Path, *layers: list[tuple[str, ...]]) -> Path:
    return write_layout(tmp_path / "image", [gz(tar_bytes(entries)) for entries in layers])


def test_os_packages_come_from_the_first_non_empty_manager_in_apk_deb_rpm_order(tmp_path: Path) -> None:
    layout = _layout(
        tmp_path,
        [("file", "db/apk", ""), ("file", "db/deb", "libc6 bash"), ("file", "db/rpm", "glibc")],
        [("file", "etc/os-release", "ID=debian\nVERSION_ID=12\n")],
    )
    catalogers = [OSReleaseCataloger(), PackageList("rpm"), PackageList("deb"), PackageList("apk")]
    with open_source(f"oci-dir:{layout}") as source:
        inventory = scan(source, catalogers, max_image_size=MAX)
    assert inventory.os_package_manager == "deb"  # apk's database is empty
    assert [p.name for p in inventory.os_packages] == ["libc6", "bash"]
    assert inventory.os_release.id == "debian" and inventory.os_release.version_id == "12"
    assert any("1 rpm packages also found" in w for w in inventory.warnings)


def test_application_packages_are_grouped_by_file_and_a_failing_cataloger_is_a_warning(
    tmp_path: Path,
) -> None:
    layout = _layout(
        tmp_path,
        [("file", "srv/b/app.txt", "left-pad"), ("file", "srv/a/app.txt", "react react-dom")],
        [("file", "srv/b/.wh.app.txt")],
    )
    with open_source(f"oci-dir:{layout}") as source:
        inventory = scan(source, [Manifests(), Broken()], max_image_size=MAX)
    assert inventory.applications == [
        (
            "npm",
            "/srv/a/app.txt",
            [
                Package(name=n, version="1", type="npm", location="/srv/a/app.txt")
                for n in ("react", "react-dom")
            ],
        )
    ]
    assert inventory.os_package_manager is None and inventory.os_packages == []
    assert inventory.os_release.id == "unknown"  # no os-release cataloger was given
    assert any(
        "everything failed: RuntimeError: database format not understood" in w for w in inventory.warnings
    )


def test_nginx_archive_scan_detects_debian_through_the_engine() -> None:
    with open_source(f"docker-archive:{archive('nginx-os-release-link.docker.tar')}") as source:
        inventory = scan(source, [OSReleaseCataloger()], max_image_size=MAX)
    assert (inventory.os_release.id, inventory.os_release.version_id) == ("debian", "10")
    assert any("3 diff_ids for 1 layers" in w for w in inventory.warnings)


def test_foreign_layers_are_skipped_with_a_warning(tmp_path: Path) -> None:
    foreign = gz(tar_bytes([("file", "b", "2")]))
    layout = write_layout(
        tmp_path / "foreign",
        [gz(tar_bytes([("file", "a", "1")])), foreign],
        media_types=[OCI_LAYER_GZIP, "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"],
    )
    # Foreign blobs are usually absent (served from their `urls`): this one is, and is never asked for.
    (layout / "blobs/sha256" / sha256(foreign).split(":")[1]).unlink()
    with open_source(f"oci-dir:{layout}") as source:
        inventory = scan(source, [Everything()], max_image_size=MAX)
    assert [name for _, _, packages in inventory.applications for name in (p.name for p in packages)] == [
        "/a"
    ]
    assert any("foreign" in w for w in inventory.warnings)


def test_too_large_image_is_refused_before_any_layer_download(registry_noauth: RunningRegistry) -> None:
    with (
        counting_client(registry_noauth) as (client, blob_gets),
        open_source("busybox:1.31.1", client=client) as source,
    ):
        config_gets = len(blob_gets)  # resolving the image fetches its config blob, nothing else
        size = sum(layer.size for layer in source.info.layers)
        with pytest.raises(errors.ImageTooLarge) as raised:
            scan(source, [Everything()], max_image_size=size - 1)
    assert raised.value.code == "IMAGE_TOO_LARGE" and raised.value.status == 422
    assert str(size) in raised.value.message
    assert len(blob_gets) == config_gets == 1


def test_cache_second_image_downloads_only_its_new_layer(
    tmp_path: Path, registry_factory: Callable[..., RunningRegistry]
) -> None:
    # A private, empty registry: pushing into the shared session ones would change their catalog.
    registry = registry_factory(Mode.NOAUTH, seeded=False)
    with counting_client(registry) as (client, blob_gets):
        _cache_scenario(tmp_path, registry, client, blob_gets)


def _cache_scenario(
    tmp_path: Path, registry: RunningRegistry, client: RegistryClient, blob_gets: list[str]
) -> None:
    base = {
        "etc/os-release": "ID=alpine\nVERSION_ID=3.19.1\n",
        "db/apk": "musl zlib",
        "lib/libz.so": Symlink("libz.so.1"),
        "lib/libz.so.1": "zlib",
    }
    first = build_image(tmp_path / "first", layers=[base, {"srv/one/app.txt": "express"}])
    second = build_image(tmp_path / "second", layers=[base, {"srv/two/app.txt": "koa", "db/.wh.apk": ""}])
    registry.push(first.source, "scan-cache/first:latest")
    registry.push(second.source, "scan-cache/second:latest")
    catalogers = [OSReleaseCataloger(), PackageList("apk"), Manifests(), Everything()]
    cache = LayerCache(tmp_path / "state" / "layer-cache", 64 * 1024**2)

    def run(name: str) -> tuple[Any, list[str]]:
        before = len(blob_gets)
        with open_source(name, client=client) as source:
            layers = {layer.digest.split(":")[1] for layer in source.info.layers}
            inventory = scan(source, catalogers, max_image_size=MAX, cache=cache)
        return inventory, [g for g in blob_gets[before:] if g.split(":")[1] in layers]

    inventory_one, fetched_one = run("scan-cache/first:latest")
    inventory_two, fetched_two = run("scan-cache/second:latest")
    again, fetched_again = run("scan-cache/first:latest")
    with open_source("scan-cache/second:latest", client=client) as source:
        uncached = scan(source, catalogers, max_image_size=MAX)  # the oracle: no cache at all

    assert len(fetched_one) == 2  # base and its own layer
    assert len(fetched_two) == 1 and fetched_two[0] not in fetched_one  # only the new layer
    assert fetched_again == []
    assert inventory_two == uncached
    assert again == inventory_one
    assert [p.name for p in inventory_one.os_packages] == ["musl", "zlib"]
    assert inventory_two.os_packages == []  # the second image whites out the apk database
    assert [(loc, [p.name for p in pkgs]) for _, loc, pkgs in inventory_two.applications if _ == "npm"] == [
        ("/srv/two/app.txt", ["koa"])
    ]
    files = {p.name for _, _, pkgs in inventory_one.applications for p in pkgs}
    assert {"/lib/libz.so", "/lib/libz.so.1"} <= files  # the symlink maps to its target's value
    assert cache.hits == 3 and cache.misses == 3
