"""Images this test builds and pushes to the real registry: the expected lists are what it built.

One Debian-like image in three layers (``LAYERS``), each change chosen to need the OCI layer rules
or the package database's own rules to get right:

1. base: ``/etc/os-release`` (Debian 12), a dpkg status with base-files, libc6, curl, libcurl4 and
   tzdata installed; three site-packages dist-infos (requests, urllib3 2.0.7, wheel); an app with
   ``node_modules/{left-pad, old-lib, which@2.0.2}``.
2. update: a rewritten dpkg status (``apt-get remove curl`` leaves curl ``deinstall ok config-files``;
   ``apt-get purge libcurl4`` drops its stanza; ca-certificates installed); a whiteout of the
   ``urllib3-2.0.7.dist-info`` directory and a new ``urllib3-2.2.1.dist-info``; an opaque
   ``node_modules`` (``.wh..wh..opq``) refilled in the same layer with left-pad, which@4.0.0 and
   ``@types/node``.
3. a new dist-info (idna).

``EXPECTED`` is written out by hand from that story (not computed by any merge code) and checked once
more against ``dpkg-query`` on the final status file.

Oracles on the same image, and why they differ from the expectation:

* syft 1.18.1 (``registry:`` over plain HTTP, the same manifest the agent pulls) agrees on Python and
  npm installed packages and on the whiteout and the opaque directory, but (a) lists curl: its dpkg
  cataloger of that version ignores ``Status:``; dpkg says curl is ``config-files``, i.e. not
  installed (only its conffiles remain), and later syft (``parse_dpkg_db.go`` skipping ``deinstall``)
  and Trivy (``parseStatus``) drop such packages too, so the agent is right; (b) lists the app's own
  ``/srv/app/package.json`` (``app@1.0.0``): syft's javascript cataloger reports every package.json with
  a name and version, while it is the project the ``node_modules`` packages belong to, not an
  installed package (snyk-docker-plugin makes it the root of its npm graph, not a dependency).
* snyk-docker-plugin 9.20.2 (reading the ``oci-archive`` of the pushed layout: it pulls over HTTPS
  only) (a) lists curl: ``analyzer/package-managers/apt.js`` has no case for ``Status``; (b) keeps
  ``old-lib`` from the lower layer: it does not honour opaque directories; (c) drops ``which``: its
  whiteout test ``/.wh./`` has unescaped dots and matches ``/whi`` in ``node_modules/which/``
  (image-analysis.md §1.6); (d) reports no Python packages: without a ``requirements.txt`` its pip
  analyzer has no manifest (§1.5). In (a)-(c) it is wrong by the dpkg and OCI rules; (d) is scope.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.harness.images import BuiltImage, Flavour, LayerFiles, build_image
from tests.harness.registry import RunningRegistry
from tests.scan.oracles import tools

SITE = "usr/local/lib/python3.11/site-packages"
APP = "srv/app"
OS_RELEASE = (
    'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
    'VERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n'
)


def _stanza(name: str, version: str, status: str = "install ok installed", source: str | None = None) -> str:
    lines = [f"Package: {name}", f"Status: {status}", "Priority: optional", "Architecture: amd64"]
    lines += [f"Source: {source}"] if source else []
    lines += [f"Version: {version}", "Maintainer: Harness <harness@example.org>", f"Description: {name}", ""]
    return "\n".join(lines)


def _dist_info(name: str, version: str) -> str:
    return (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nLicense: MIT\n\n{name} long description\n"
    )


def _package_json(name: str, version: str, **extra: object) -> str:
    return json.dumps({"name": name, "version": version, "license": "MIT", **extra})


STATUS_BASE = "\n".join(
    [
        _stanza("base-files", "12.4+deb12u5"),
        _stanza("libc6", "2.36-9+deb12u4", source="glibc"),
        _stanza("curl", "7.88.1-10+deb12u5"),
        _stanza("libcurl4", "7.88.1-10+deb12u5", source="curl"),
        _stanza("tzdata", "2024a-0+deb12u1"),
    ]
)
STATUS_UPDATED = "\n".join(
    [
        _stanza("base-files", "12.4+deb12u5"),
        _stanza("libc6", "2.36-9+deb12u4", source="glibc"),
        _stanza("curl", "7.88.1-10+deb12u5", status="deinstall ok config-files"),  # apt-get remove
        # libcurl4: apt-get purge, no stanza left
        _stanza("tzdata", "2024a-0+deb12u1"),
        _stanza("ca-certificates", "20230311"),
    ]
)

LAYERS: list[LayerFiles] = [
    {
        "etc/os-release": OS_RELEASE,
        "var/lib/dpkg/status": STATUS_BASE,
        f"{SITE}/requests-2.31.0.dist-info/METADATA": _dist_info("requests", "2.31.0"),
        f"{SITE}/urllib3-2.0.7.dist-info/METADATA": _dist_info("urllib3", "2.0.7"),
        f"{SITE}/urllib3-2.0.7.dist-info/RECORD": "urllib3/__init__.py,,\n",
        f"{SITE}/wheel-0.42.0.dist-info/METADATA": _dist_info("wheel", "0.42.0"),
        f"{APP}/package.json": _package_json(
            "app", "1.0.0", dependencies={"left-pad": "^1.3.0", "which": "^4"}
        ),
        f"{APP}/node_modules/left-pad/package.json": _package_json("left-pad", "1.3.0"),
        f"{APP}/node_modules/old-lib/package.json": _package_json("old-lib", "0.1.0"),
        f"{APP}/node_modules/which/package.json": _package_json("which", "2.0.2"),
    },
    {
        "var/lib/dpkg/status": STATUS_UPDATED,
        f"{SITE}/.wh.urllib3-2.0.7.dist-info": "",
        f"{SITE}/urllib3-2.2.1.dist-info/METADATA": _dist_info("urllib3", "2.2.1"),
        f"{APP}/node_modules/.wh..wh..opq": "",
        f"{APP}/node_modules/left-pad/package.json": _package_json("left-pad", "1.3.0"),
        f"{APP}/node_modules/which/package.json": _package_json("which", "4.0.0"),
        f"{APP}/node_modules/@types/node/package.json": _package_json("@types/node", "20.11.0"),
    },
    {
        f"{SITE}/idna-3.6.dist-info/METADATA": _dist_info("idna", "3.6"),
    },
]

EXPECTED: dict[str, tools.Pkgs] = {
    # curl removed (config-files only), libcurl4 purged, ca-certificates added by layer 2.
    "deb": {
        ("base-files", "12.4+deb12u5"),
        ("libc6", "2.36-9+deb12u4"),
        ("tzdata", "2024a-0+deb12u1"),
        ("ca-certificates", "20230311"),
    },
    # urllib3 2.0.7 whited out, 2.2.1 added; idna from layer 3.
    "pypi": {("requests", "2.31.0"), ("urllib3", "2.2.1"), ("wheel", "0.42.0"), ("idna", "3.6")},
    # node_modules made opaque in layer 2 (old-lib and which@2.0.2 gone), refilled in the same layer.
    "npm": {("left-pad", "1.3.0"), ("which", "4.0.0"), ("@types/node", "20.11.0")},
}
REMOVED_NOT_PURGED = {("curl", "7.88.1-10+deb12u5")}  # dpkg state config-files
PROJECT_MANIFEST = {("app", "1.0.0")}  # /srv/app/package.json itself


@pytest.fixture(scope="module", params=["oci", "docker"])
def pushed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, registry_noauth: RunningRegistry
) -> tuple[BuiltImage, str]:
    """The image built as an OCI or a Docker-typed image, pushed to the session's noauth registry."""
    flavour: Flavour = request.param
    image = build_image(
        tmp_path_factory.mktemp(f"built-{flavour}") / "layout", flavour=flavour, layers=LAYERS
    )
    name = f"oracles/layered-{flavour}:1"
    registry_noauth.push(image.source, name)
    return image, name


def test_expected_deb_list_is_what_dpkg_says(tmp_path: Path) -> None:
    states = tools.dpkg_query(STATUS_UPDATED.encode(), tmp_path)
    assert states["curl"][0] == "config-files" and "libcurl4" not in states
    assert tools.dpkg_installed(STATUS_UPDATED.encode(), tmp_path) == EXPECTED["deb"]


def test_registry_scan_gives_what_was_built(
    tmp_path: Path, registry_noauth: RunningRegistry, pushed: tuple[BuiltImage, str]
) -> None:
    image, name = pushed
    outcome = tools.agent_scan(name, tmp_path / "state", registry=registry_noauth)
    assert outcome.inventory.os_release.id == "debian" and outcome.inventory.os_release.version_id == "12"
    assert tools.agent_os(outcome) == EXPECTED["deb"]
    assert tools.agent_apps(outcome, "pypi") == EXPECTED["pypi"]
    assert tools.agent_apps(outcome, "npm") == EXPECTED["npm"]
    # One result per application, as snyk-docker-plugin reports them: the site-packages directory
    # and the project's package.json, each holding every package found there (what was built).
    targets = {(ecosystem, target): len(pkgs) for ecosystem, target, pkgs in outcome.inventory.applications}
    assert targets == {
        ("pypi", f"/{SITE}"): len(EXPECTED["pypi"]),
        ("npm", f"/{APP}/package.json"): len(EXPECTED["npm"]),
    }
    # The same layout read from disk: same packages, from the same layers.
    local = tools.agent_scan(f"oci-dir:{image.layout}", tmp_path / "state-local")
    assert local.inventory.os_packages == outcome.inventory.os_packages
    assert local.inventory.applications == outcome.inventory.applications


def test_syft_on_the_registry_image(
    tmp_path: Path, registry_noauth: RunningRegistry, pushed: tuple[BuiltImage, str]
) -> None:
    _image, name = pushed
    document = tools.syft(f"registry:{registry_noauth.host}/{name}", registry=registry_noauth)
    # Disagreement (a): syft 1.18.1 ignores dpkg's Status; dpkg itself says curl is not installed.
    assert tools.syft_pkgs(document, "deb") == EXPECTED["deb"] | REMOVED_NOT_PURGED
    # Agreement on the whiteout and the new dist-info.
    assert tools.syft_pkgs(document, "python") == EXPECTED["pypi"]
    # Agreement on the opaque directory; disagreement (b): the project's own package.json.
    assert tools.syft_pkgs(document, "npm") == EXPECTED["npm"] | PROJECT_MANIFEST


def test_snyk_docker_plugin_on_the_same_image(tmp_path: Path, pushed: tuple[BuiltImage, str]) -> None:
    image, _name = pushed
    results = tools.sdp(f"oci-archive:{tools.tar_layout(image.layout, tmp_path / 'image.tar')}", tmp_path)
    assert results[0]["type"] == "deb"
    # (a) Status ignored: the removed curl is reported.
    assert tools.sdp_os(results) == EXPECTED["deb"] | REMOVED_NOT_PURGED
    # (b) opaque directory not honoured: old-lib survives; (c) "/.wh./" matches "/whi": which is lost.
    # The project manifest is the graph's root (left out by sdp_scan.js), so it is not a package here.
    npm = [r for r in results[1:] if r["type"] == "npm"]
    assert [r["targetFile"] for r in npm] == ["/srv/app/package.json"]
    assert tools.sdp_apps(results, "npm") == (EXPECTED["npm"] - {("which", "4.0.0")}) | {("old-lib", "0.1.0")}
    # (d) no requirements.txt: no pip result at all.
    assert tools.sdp_apps(results, "pip") == set()
