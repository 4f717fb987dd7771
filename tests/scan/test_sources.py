"""Every kind of source yields the same image: the registry copy (seeded with skopeo from the fixture),
the archive, and the OCI layout directory unpacked from it with GNU tar.

Oracles: GNU ``tar -tv`` over each fixture's layer blobs for the file lists (regular files and hard
links), ``sha256sum``-equivalent hashing of what GNU tar extracts for contents, and the fixture's own
``index.json`` / ``manifest.json`` for digests.
"""

from __future__ import annotations

import json
import posixpath
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared import errors
from shared.image import open_source
from shared.registry import RegistryClient, client_for
from shared.registry.platform import Platform
from tests.client.conftest import credentials_for, settings_for
from tests.harness.registry import RunningRegistry
from tests.harness.seed import archive
from tests.scan.layers import source_files


@pytest.fixture
def noauth_client(registry_noauth: RunningRegistry) -> Iterator[RegistryClient]:
    with client_for(credentials_for(registry_noauth), settings_for(registry_noauth)) as client:
        yield client


def _unpack(fixture: Path, into: Path) -> Path:
    into.mkdir()
    subprocess.run(["tar", "-xf", str(fixture), "-C", str(into)], check=True)
    return into


def _gnu_tar_files(blob: Path) -> set[str]:
    """Paths of a layer blob that read as regular files: regular files, hard links, and symlinks that
    lead (within the layer) to one of those, as GNU tar lists them (any compression it detects)."""
    listing = subprocess.run(["tar", "-tvf", str(blob)], capture_output=True, text=True, check=True).stdout
    regular, links = set(), {}
    for line in listing.splitlines():
        name = line.split(None, 5)[5]
        if line[0] in "-h":
            regular.add("/" + name.split(" link to ")[0].removeprefix("./"))
        elif line[0] == "l":
            link, target = name.split(" -> ")
            links["/" + link.removeprefix("./")] = target
    found = set(regular)
    for link in links:
        path = link
        for _ in range(40):
            target = links[path]
            path = posixpath.normpath(
                target if target.startswith("/") else posixpath.join(posixpath.dirname(path), target)
            )
            if path in regular:
                found.add(link)
            if path not in links:
                break
    return found


def test_busybox_archive_directory_and_registry_agree(tmp_path: Path, noauth_client: RegistryClient) -> None:
    fixture = archive("busybox-1.31.1.oci.tar")
    unpacked = _unpack(fixture, tmp_path / "layout")
    index = json.loads((unpacked / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"]
    manifest = json.loads((unpacked / "blobs/sha256" / manifest_digest.split(":")[1]).read_text())
    layer_digests = tuple(layer["digest"] for layer in manifest["layers"])
    expected = _gnu_tar_files(unpacked / "blobs/sha256" / layer_digests[0].split(":")[1])
    assert len(expected) > 300  # busybox: one binary and ~400 hard links to it

    seen = {}
    for spec in (f"oci-archive:{fixture}", f"oci-dir:{unpacked}", "busybox:1.31.1"):
        with open_source(spec, client=noauth_client) as source:
            assert source.info.manifest_digest == manifest_digest
            assert tuple(layer.digest for layer in source.info.layers) == layer_digests
            assert source.info.config_digest == manifest["config"]["digest"]
            assert str(source.info.platform) == "linux/amd64"
            seen[source.info.kind] = source_files(source)
    assert set(seen) == {"oci-archive", "oci-dir", "registry"}
    assert seen["oci-archive"] == seen["oci-dir"] == seen["registry"]
    assert set(seen["registry"]) == expected
    # Hard links carry the content of the file they link to (GNU tar: "bin/[[ link to bin/[").
    assert seen["registry"]["/bin/[["] == seen["registry"]["/bin/["] == seen["registry"]["/bin/sh"]


@pytest.mark.parametrize(
    ("fixture", "repository"),
    [
        ("hello-world.docker.tar", "hello-world:latest"),
        ("nginx-debian10.docker.tar", "library/nginx:1.0"),
        ("whiteout-dir.docker.tar", "whiteout:latest"),
        ("alpine.containerd.tar", "alpine:3.14"),
    ],
)
def test_docker_archive_and_registry_agree(
    fixture: str, repository: str, tmp_path: Path, noauth_client: RegistryClient
) -> None:
    path = archive(fixture)
    unpacked = _unpack(path, tmp_path / "archive")
    entry = json.loads((unpacked / "manifest.json").read_text())[0]
    layer_files = [_gnu_tar_files(unpacked / name) for name in entry["Layers"]]
    # hello-world is arm64 only: ask for it, as a user of that archive would.
    platform = Platform.parse("linux/arm64") if fixture.startswith("hello") else None
    with open_source(f"docker-archive:{path}", platform=platform) as source:
        assert source.info.kind == "docker-archive"
        from_archive = source_files(source)
    with open_source(repository, client=noauth_client, platform=platform) as source:
        assert source.info.kind == "registry" and source.info.repository == repository.split(":")[0]
        from_registry = source_files(source)
    assert from_archive == from_registry
    if fixture.startswith("whiteout"):
        assert sorted(from_archive) == ["/a/baz", "/b/bar"]  # the OCI whiteout rules, not a union
    else:  # one layer: the merged view is that layer's file list
        assert set(from_archive) == set().union(*layer_files)


def test_oci_archive_of_a_containerd_export_descends_its_index(noauth_client: RegistryClient) -> None:
    # alpine.containerd.tar: index.json -> Docker manifest list -> linux/amd64 manifest. skopeo pushed
    # it with --all --preserve-digests, so the registry's digests are the archive's.
    with open_source(f"oci-archive:{archive('alpine.containerd.tar')}") as local:
        local_info = local.info
        local_files = source_files(local)
    with open_source("alpine:3.14", client=noauth_client) as remote:
        assert remote.info.index_digest == local_info.index_digest
        assert remote.info.manifest_digest == local_info.manifest_digest
        assert source_files(remote) == local_files
    assert local_info.names == ("docker.io/library/alpine:3.14", "3.14")  # index.json annotations
    assert "/lib/apk/db/installed" in local_files
    with open_source(f"oci-archive:{archive('alpine.containerd.tar')}:3.14") as named:
        assert named.info.manifest_digest == local_info.manifest_digest


def test_source_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(errors.ImageError, match="does not exist"):
        open_source(f"docker-archive:{tmp_path / 'missing.tar'}")
    with pytest.raises(errors.ImageError, match="2 images"):
        open_source(f"docker-archive:{archive('links.docker.tar')}")
    with pytest.raises(errors.ImageError, match="no image tagged"):
        open_source(f"docker-archive:{archive('links.docker.tar')}:nope:latest")
    with pytest.raises(errors.NotFound) as raised:
        open_source(f"oci-archive:{archive('alpine.containerd.tar')}", platform=Platform.parse("linux/s390x"))
    assert raised.value.code == "PLATFORM_UNKNOWN"
    compressed = tmp_path / "image.tar.gz"
    with compressed.open("wb") as out:
        subprocess.run(["gzip", "-c", str(archive("hello-world.docker.tar"))], stdout=out, check=True)
    with pytest.raises(errors.ImageError, match="gzip-compressed"):
        open_source(f"docker-archive:{compressed}")
    with pytest.raises(errors.ConfigurationError, match="credentials"):
        open_source("busybox:1.31.1")
    # hello-world.docker.tar's own index.json lists no manifests (manifests: null).
    with pytest.raises(errors.ImageError, match="holds no image"):
        open_source(f"oci-archive:{archive('hello-world.docker.tar')}")
