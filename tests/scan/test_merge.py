"""The layer merge: whiteouts, opaque directories, replacements and links, by the OCI rules.

Expected views come from the OCI image-spec ``layer.md`` (opencontainers/image-spec@13cff54, sections
"Whiteouts", "Opaque Whiteout", "Changeset over existing files"), quoted where used, and for the
fixtures from go-containerregistry's mutate test data (``whiteout_dir.tar``: layers ``a/foo``,
``b/bar``, ``.wh.a``, ``a/baz``; image-analysis.md §5) and GNU tar listings of the fixture layers.
"""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

import pytest

from shared.image import open_source
from shared.image.layer import LayerLimits, read_layer
from shared.image.merge import MergedView
from shared.scan.catalogers.osrelease import OSReleaseCataloger, detect_os
from tests.harness.seed import archive
from tests.scan.layers import Everything, Wanting, analyse, gz, merged, source_files, tar_bytes


def test_whiteout_dir_fixture_leaves_a_baz_and_b_bar() -> None:
    # go-containerregistry pkg/v1/mutate/testdata/whiteout_dir.tar; spec: ".wh.a" deletes lower "a"
    # and everything under it, the next layer adds "a/baz" again.
    with open_source(f"docker-archive:{archive('whiteout-dir.docker.tar')}") as source:
        files = source_files(source)
    assert sorted(files) == ["/a/baz", "/b/bar"]


def _gnu_tar_regular_files(layer: bytes, tmp_path: Path) -> set[str]:
    """Regular files and hard links of a layer as GNU tar lists them (the oracle)."""
    path = tmp_path / "layer.tar"
    path.write_bytes(layer)
    listing = subprocess.run(["tar", "-tvf", str(path)], capture_output=True, text=True, check=True).stdout
    names = set()
    for line in listing.splitlines():
        kind, name = line[0], line.split(None, 5)[5].split(" link to ")[0]
        if kind in "-h":
            names.add("/" + name.removeprefix("./"))
    return names


def test_links_fixture_reads_symlinked_layer_members(tmp_path: Path) -> None:
    # links.docker.tar (go-containerregistry test_link.tar): test_image_3's first layer.tar is a
    # symlink in the outer archive to test_image_1's layer. Oracle: GNU tar over each layer member.
    fixture = archive("links.docker.tar")
    with tarfile.open(fixture) as outer:
        layers = [
            outer.extractfile(name).read()  # type: ignore[union-attr]
            for name in (
                "6e77476643c3155b1e9ae07dd5a4c8288bdb6590c131c222b7a3f277dec1e266/layer.tar",
                "3fe17a762ab6ad87de78c88326e1667b3e6a8924a0eb92a34a2bfeb40f49824d/layer.tar",
            )
        ]
    expected = _gnu_tar_regular_files(layers[0], tmp_path) | _gnu_tar_regular_files(layers[1], tmp_path)
    with open_source(f"docker-archive:{fixture}:bazel/v1/tarball:test_image_3") as source:
        assert len(source.info.layers) == 2
        files = source_files(source)
    assert set(files) == expected == {"/bar", "/foo", "/test"}
    with open_source(f"docker-archive:{fixture}:@0") as source:
        assert set(source_files(source)) == _gnu_tar_regular_files(layers[0], tmp_path)


def test_nginx_os_release_symlink_resolves_to_its_target(tmp_path: Path) -> None:
    # The fixture's /etc/os-release is a symlink to ../usr/lib/os-release (snyk-docker-plugin's
    # nginx-os-release-link.tar); the oracle for the content is GNU tar extracting the target.
    fixture = archive("nginx-os-release-link.docker.tar")
    subprocess.run(["tar", "-xf", str(fixture), "-C", str(tmp_path)], check=True)
    layer = next(tmp_path.glob("*/layer.tar"))
    target = subprocess.run(
        ["tar", "-xOf", str(layer), "./usr/lib/os-release"], capture_output=True, check=True
    ).stdout.decode()
    cataloger = OSReleaseCataloger()
    with open_source(f"docker-archive:{fixture}") as source:
        analyses = []
        for descriptor in source.info.layers:
            with source.open_layer(descriptor) as chunks:
                analyses.append(read_layer(chunks, [cataloger], LayerLimits(), digest=descriptor.digest))
    files = MergedView(analyses).files_for(cataloger)
    assert files["/etc/os-release"].value == files["/usr/lib/os-release"].value == target
    assert files["/etc/os-release"].layer_digest == source.info.layers[0].digest
    assert "ID=debian" in target and 'VERSION_ID="10"' in target
    assert detect_os(files).id == "debian" and detect_os(files).source_file == "/etc/os-release"


# -- rules of the spec on built layers -------------------------------------------------------------


@pytest.mark.parametrize("marker_first", [True, False], ids=["marker-before", "marker-after"])
def test_opaque_directory_hides_lower_content_wherever_the_marker_sits(marker_first: bool) -> None:
    # Spec: "an opaque whiteout ... hides all children of the dir in lower layers"; "should be applied
    # before" the layer's other entries, so same-layer children survive in either tar order.
    lower = gz(
        tar_bytes([("dir", "a"), ("file", "a/old", "1"), ("file", "a/sub/deep", "1"), ("file", "ab/x", "1")])
    )
    same = [("file", "a/new", "2")]
    marker = [("file", "a/.wh..wh..opq")]
    upper = gz(tar_bytes([("dir", "a"), *(marker + same if marker_first else same + marker)]))
    assert merged([lower, upper]).paths() == ["/a/new", "/ab/x"]


def test_whiteout_applies_to_lower_layers_only_and_by_component() -> None:
    # Spec: whiteouts "MUST only apply to resources in lower/parent layers. Files that are present in
    # the same layer as a whiteout file can only be hidden by whiteout files in subsequent layers."
    lower = gz(
        tar_bytes([("file", "x/old", "1"), ("file", "y", "1"), ("file", "ab", "1"), ("file", "a/f", "1")])
    )
    upper = gz(
        tar_bytes(
            [
                ("file", ".wh.x"),
                ("file", "x/new", "2"),
                ("file", "y", "2"),
                ("file", ".wh.y"),
                ("file", ".wh.a"),
            ]
        )
    )
    view = merged([lower, upper])
    assert view.paths() == ["/ab", "/x/new", "/y"]
    assert [r.layer_digest for r in view.files_for(Everything()).values()] == [view.layers[0].digest] + [
        view.layers[1].digest
    ] * 2


def test_later_layers_override_and_non_directories_replace_directories() -> None:
    # Spec "Changeset over existing files": when an entry and an existing path are not both
    # directories, the existing one is removed (with what is under it) and the entry recreated.
    one = gz(
        tar_bytes(
            [
                ("file", "d/f", "1"),
                ("file", "e", "1"),
                ("file", "lib/x", "1"),
                ("file", "keep/k", "1"),
                ("file", "same", "1"),
            ]
        )
    )
    two = gz(
        tar_bytes(
            [
                ("file", "d", "2"),
                ("dir", "e"),
                ("file", "e/g", "2"),
                ("symlink", "lib", "usr/lib"),
                ("dir", "keep"),
                ("file", "same", "2"),
            ]
        )
    )
    view = merged([one, two])
    assert view.paths() == ["/d", "/e/g", "/keep/k", "/lib", "/same"]
    files = view.files_for(Everything())
    assert files["/same"].layer_digest == view.layers[1].digest


def test_whiteout_of_a_path_under_a_replaced_directory_and_devices() -> None:
    lower = gz(tar_bytes([("file", "dev/null-ish", "1"), ("file", "p", "1")]))
    upper = gz(tar_bytes([("fifo", "p"), ("file", ".wh.nothing-there")]))
    assert merged([lower, upper]).paths() == ["/dev/null-ish"]


def test_symlinked_paths_map_to_the_target_value_only_when_wanted() -> None:
    layer = gz(
        tar_bytes(
            [
                ("file", "usr/lib/os-release", "ID=x\n"),
                ("symlink", "etc/os-release", "../../../../usr/lib/os-release"),  # .. stops at the root
                ("symlink", "etc/alt", "/opt/real"),
                ("file", "opt/real/release", "ID=y\n"),
                ("symlink", "etc/release", "alt/release"),  # through a directory symlink
                ("symlink", "etc/unwanted", "/usr/lib/os-release"),
                ("symlink", "etc/dangling", "/nowhere"),
            ]
        )
    )
    wanted = Wanting(
        frozenset(
            {"/usr/lib/os-release", "/etc/os-release", "/opt/real/release", "/etc/release", "/etc/dangling"}
        )
    )
    files = MergedView(analyse([layer], [wanted])).files_for(wanted)
    assert {p: r.value for p, r in files.items()} == {
        "/etc/os-release": "ID=x\n",
        "/etc/release": "ID=y\n",
        "/opt/real/release": "ID=y\n",
        "/usr/lib/os-release": "ID=x\n",
    }


def test_symlink_loops_resolve_to_nothing_without_hanging() -> None:
    hops = [("symlink", f"chain/{i}", f"/chain/{i + 1}") for i in range(45)]
    layer = gz(
        tar_bytes(
            [
                ("symlink", "a", "b"),
                ("symlink", "b", "a"),
                ("symlink", "self", "self/x"),
                *hops,
                ("file", "chain/45", "end"),
                ("file", "short-target", "t"),
                ("symlink", "short", "chain/40"),
            ]
        )
    )
    view = merged([layer])
    assert view.resolve("/a") is None
    assert view.resolve("/self") is None
    assert view.resolve("/chain/0") is None  # 45 hops: more than Linux's 40
    assert view.resolve("/chain/6") == "/chain/45"  # 39 hops
    files = view.files_for(Everything())
    assert "/a" not in files and "/chain/6" in files and "/chain/0" not in files


def test_hard_links_carry_their_target_value_and_survive_its_deletion() -> None:
    one = gz(
        tar_bytes(
            [
                ("file", "bin/busybox", "BB"),
                ("hardlink", "bin/sh", "bin/busybox"),
                ("hardlink", "bin/ls", "./bin/sh"),
            ]
        )
    )
    two = gz(tar_bytes([("file", "bin/.wh.busybox")]))
    files = merged([one, two]).files_for(Everything())
    assert sorted(files) == ["/bin/ls", "/bin/sh"]
    assert files["/bin/sh"].value == files["/bin/ls"].value == Everything().extract("", b"BB")
