"""Real images, end to end: the agent's OS package list equals independent oracles' lists.

Images: ``../shared/fixtures/images`` (provenance in its README): ``nginx-debian10.docker.tar`` (Debian
10, trimmed to the package files; its config lists 3 diff_ids beside its 1 layer), the same with
``/etc/os-release`` a symlink, and ``alpine.containerd.tar`` (Alpine 3.14, a full root fs). Each is
scanned from the archive and, as pushed by the harness seed (``tests/harness/seed.py``), from a real
registry; the two scans must give the same list.

Oracles and where they disagree:

* ``dpkg-query --admindir`` over the status file GNU tar pulls out of the layer: the packages dpkg
  itself calls ``installed`` (84; none of this image's stanzas is in another state).
* syft 1.18.1 refuses both trimmed nginx images over ``docker-archive:`` (a Go panic in stereoscope's
  manifest assembly) and ``registry:`` ("mismatched fs layers (1) and diff ids (3)"); it reads the
  OCI layout the seed pushed (``oci-dir:``), so it is compared there. The agent scans such images,
  with a warning: refusing the inconsistency is not a package-list answer, and Snyk's plugin scans
  them too.
* snyk-docker-plugin 9.20.2 reads the archives, and pulls the seeded images from the TLS harness
  registry (it speaks no plain HTTP). Its package ids (``source/binary@version``) must equal the ids
  of the agent's Snyk depGraph. It leaves ``purl`` off some nodes (14 of 84 for nginx); where it gives
  one, the agent's is the same string.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.harness.images import layout_from_docker_archive
from tests.harness.registry import RunningRegistry
from tests.harness.seed import archive
from tests.scan.oracles import tools

NGINX = "nginx-debian10.docker.tar"
NGINX_LINK = "nginx-os-release-link.docker.tar"
ALPINE = "alpine.containerd.tar"
DPKG_STATUS = "var/lib/dpkg/status"
# Fixture archive -> (repository:tag the harness seed pushes it as, OS package type).
SEEDED = {
    NGINX: ("library/nginx:1.0", "deb"),
    NGINX_LINK: ("nginx-link:latest", "deb"),
    ALPINE: ("alpine:3.14", "apk"),
}


@pytest.fixture(scope="module")
def nginx_installed(tmp_path_factory: pytest.TempPathFactory) -> tools.Pkgs:
    """dpkg's own answer for the nginx image: every package of the status file it calls installed."""
    work = tmp_path_factory.mktemp("dpkg")
    status = tools.gnu_tar_member(archive(NGINX), DPKG_STATUS, work)
    states = tools.dpkg_query(status, work)
    assert {state for state, _ in states.values()} == {"installed"}
    installed = tools.dpkg_installed(status, work)
    assert len(installed) == 84
    return installed


@pytest.fixture(scope="module")
def alpine_installed(tmp_path_factory: pytest.TempPathFactory) -> tools.Pkgs:
    """The ``P:``/``V:`` records of apk's database, pulled out of the layer with GNU tar."""
    work = tmp_path_factory.mktemp("apk")
    unpacked = work / "alpine"
    unpacked.mkdir()
    subprocess.run(["tar", "-xf", str(archive(ALPINE)), "-C", str(unpacked)], check=True)
    layer = unpacked / json.loads((unpacked / "manifest.json").read_text())[0]["Layers"][0]
    database = subprocess.run(
        ["tar", "-xOzf", str(layer), "lib/apk/db/installed"], capture_output=True, text=True, check=True
    ).stdout
    installed: tools.Pkgs = set()
    for record in database.split("\n\n"):
        fields = dict(line.split(":", 1) for line in record.splitlines() if line[1:2] == ":")
        if "P" in fields:
            installed.add((fields["P"], fields["V"]))
    assert len(installed) == 14
    return installed


def test_nginx_archive_equals_dpkg_query_and_syft(tmp_path: Path, nginx_installed: tools.Pkgs) -> None:
    outcome = tools.agent_scan(f"docker-archive:{archive(NGINX)}", tmp_path / "state")
    assert outcome.inventory.os_package_manager == "deb"
    assert tools.agent_os(outcome) == nginx_installed
    assert any("3 diff_ids for 1 layers" in w for w in outcome.inventory.warnings)

    # syft: not over docker-archive (it panics on the 3-vs-1 config), but over the OCI layout the
    # harness pushes as library/nginx:1.0 (same config bytes, same layer content, gzipped).
    assert "panic" in tools.syft_refuses(f"docker-archive:{archive(NGINX)}")
    layout = layout_from_docker_archive(archive(NGINX), tmp_path / "layout")
    document = tools.syft(f"oci-dir:{layout.layout}")
    assert tools.syft_pkgs(document, "deb") == nginx_installed
    assert tools.agent_os(tools.agent_scan(f"oci-dir:{layout.layout}", tmp_path / "state")) == nginx_installed


def test_alpine_archive_equals_apk_database_and_syft(tmp_path: Path, alpine_installed: tools.Pkgs) -> None:
    outcome = tools.agent_scan(f"docker-archive:{archive(ALPINE)}", tmp_path / "state")
    assert outcome.inventory.os_package_manager == "apk"
    assert tools.agent_os(outcome) == alpine_installed
    assert tools.syft_pkgs(tools.syft(f"docker-archive:{archive(ALPINE)}"), "apk") == alpine_installed
    # The same archive is also an OCI image layout (containerd writes both index.json and manifest.json).
    assert (
        tools.agent_os(tools.agent_scan(f"oci-archive:{archive(ALPINE)}", tmp_path / "state"))
        == alpine_installed
    )


@pytest.mark.parametrize("fixture", [NGINX, NGINX_LINK, ALPINE])
def test_archive_equals_snyk_docker_plugin(tmp_path: Path, fixture: str) -> None:
    """The plugin's depGraph ids equal the agent's; purls agree wherever the plugin writes one."""
    results = tools.sdp(f"docker-archive:{archive(fixture)}", tmp_path)
    outcome = tools.agent_scan(f"docker-archive:{archive(fixture)}", tmp_path / "state")
    assert results[0]["type"] == SEEDED[fixture][1] == outcome.inventory.os_package_manager
    ours, theirs = tools.agent_snyk_os_pkgs(outcome), tools.sdp_ids(results)
    assert ours.keys() == theirs.keys() and len(ours) in (84, 14)
    assert all(ours[pkg_id] == purl for pkg_id, purl in theirs.items() if purl is not None)
    assert tools.agent_os(outcome) == tools.sdp_os(results)
    assert len(results) == 1 and outcome.inventory.applications == []  # no application files in these


@pytest.mark.parametrize("fixture", [NGINX, NGINX_LINK, ALPINE])
def test_registry_image_equals_archive_scan(
    tmp_path: Path, registry_noauth: RunningRegistry, fixture: str
) -> None:
    """The seeded registry image gives the archive scan's list, and its Snyk graph."""
    name, _kind = SEEDED[fixture]
    from_archive = tools.agent_scan(f"docker-archive:{archive(fixture)}", tmp_path / "state-archive")
    from_registry = tools.agent_scan(name, tmp_path / "state-registry", registry=registry_noauth)
    assert tools.agent_os(from_registry) == tools.agent_os(from_archive) != set()
    assert tools.agent_snyk_os_pkgs(from_registry) == tools.agent_snyk_os_pkgs(from_archive)


def test_alpine_registry_image_equals_syft_registry(tmp_path: Path, registry_noauth: RunningRegistry) -> None:
    outcome = tools.agent_scan("alpine:3.14", tmp_path / "state", registry=registry_noauth)
    document = tools.syft(f"registry:{registry_noauth.host}/alpine:3.14", registry=registry_noauth)
    assert tools.syft_pkgs(document, "apk") == tools.agent_os(outcome)
    # syft refuses the trimmed nginx image from the registry too (see the module docstring).
    refused = tools.syft_refuses(f"registry:{registry_noauth.host}/library/nginx:1.0", registry_noauth)
    assert "mismatched fs layers (1) and diff ids (3)" in refused


@pytest.mark.parametrize("fixture", [NGINX, ALPINE])
def test_registry_image_equals_snyk_docker_plugin_pull(
    tmp_path: Path, registry_tls: RunningRegistry, fixture: str
) -> None:
    """The plugin pulls the seeded image itself (HTTPS, Basic auth, the harness CA) and agrees."""
    name, _kind = SEEDED[fixture]
    results = tools.sdp(name, tmp_path, registry=registry_tls)
    outcome = tools.agent_scan(name, tmp_path / "state", registry=registry_tls)
    assert tools.agent_snyk_os_pkgs(outcome).keys() == tools.sdp_ids(results).keys() != set()
