"""``shared.scan.output.snyk``: the scan result Snyk's backend receives.

The oracle is snyk-docker-plugin itself: the doc's depGraph example (image-analysis.md §1.2), taken
from the plugin's snapshot ``test/system/image-type/__snapshots__/docker-archive.spec.ts.snap`` of the
very image in ``nginx-debian10.docker.tar``, and the plugin's ``dist/response-builder.js`` and
``dist/utils.js`` (9.20.2) for fact order, shapes and size caps. Package data comes from
``dpkg-query`` (see conftest), graph validity from ``depgraph_rules``.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from shared.scan.model import Inventory, OSRelease, Package
from shared.scan.output.image_info import ImageInfo
from shared.scan.output.snyk import render_snyk
from tests.scan.output.conftest import NGINX_NAME, NginxFixture
from tests.scan.output.depgraph_rules import check_dep_graph, load_with_snyk_library, snyk_dep_graph_module

# Package ids in the plugin's snapshot of this image (a sample covering each naming rule:
# source differs in name, in version only (binNMU, epoch), and no source at all).
SNAPSHOT_PKG_IDS = {
    "audit/libaudit1@1:2.8.4-3",
    "audit/libaudit-common@1:2.8.4-3",
    "libcap-ng/libcap-ng0@0.7.9-2",
    "mawk/mawk@1.3.3-17+b3",
    "adduser@3.118",
    "apt@1.8.2",
    "base-files@10.3+deb10u1",
    "zlib/zlib1g@1:1.2.11.dfsg-1",
    "perl/perl-base@5.28.1-6",
    "util-linux/bsdutils@1:2.33.1-0.1",
    "util-linux@2.33.1-0.1",
    "gcc-8/libstdc++6@8.3.0-6",
    "glibc/libc-bin@2.28-10",
    "systemd/libsystemd0@241-7~deb10u1",
    "shadow/passwd@1:4.5-1.1",
    "tzdata@2019b-0+deb10u1",
}
# The snapshot's facts for this image.
SNAPSHOT_IMAGE_ID = "sha256:5a3221f0137beb960c34b9cf4455424b6210160fd618c5e79401a07d6e5a2ced"
SNAPSHOT_ROOTFS = [
    "sha256:1c95c77433e8d7bf0f519c9d8c9ca967e2603f0defbf379130d9a841cca2e28e",
    "sha256:002a63507c1caa5cc0e1af10e5b888f6ba20d06275e989a452581d789a48948e",
    "sha256:12fdf55172df870a613a79c4757006c5b28e66a8621c3e26916678378568f078",
]
# response-builder.js pushes facts in this order (ones we never send left out).
PLUGIN_FACT_ORDER = [
    "depGraph",
    "imageId",
    "imageLayers",
    "imageLabels",
    "containerConfig",
    "history",
    "imageCreationTime",
    "rootFs",
    "imageOsReleasePrettyName",
    "imageNames",
    "ociDistributionMetadata",
    "platform",
    "pluginWarnings",
]
DIGEST = "sha256:" + "ab" * 32


def facts_of(result: dict[str, Any]) -> dict[str, Any]:
    types = [f["type"] for f in result["facts"]]
    assert len(types) == len(set(types)), f"a fact type repeats: {types}"
    return {f["type"]: f["data"] for f in result["facts"]}


@pytest.fixture(scope="module")
def nginx_result(nginx_inventory: Inventory, nginx_image: ImageInfo) -> dict[str, Any]:
    return render_snyk(nginx_inventory, nginx_image)


def test_os_result_identity_and_target(nginx_result: dict[str, Any]) -> None:
    [os_result] = nginx_result["scanResults"]
    assert os_result["identity"] == {"type": "deb", "args": {"platform": "linux/amd64"}}
    assert os_result["target"] == {"image": f"docker-image|{NGINX_NAME}"}


def test_depgraph_matches_the_plugins_shape(
    nginx_result: dict[str, Any], nginx_packages: list[Package]
) -> None:
    graph = facts_of(nginx_result["scanResults"][0])["depGraph"]
    check_dep_graph(graph)
    assert graph["schemaVersion"] == "1.3.0"
    assert graph["pkgManager"] == {"name": "deb", "repositories": [{"alias": "debian:10"}]}
    assert graph["pkgs"][0] == {
        "id": f"docker-image|{NGINX_NAME}@latest",
        "info": {"name": f"docker-image|{NGINX_NAME}", "version": "latest"},
    }
    assert graph["graph"]["rootNodeId"] == "root-node"
    ids = {p["id"] for p in graph["pkgs"]}
    assert SNAPSHOT_PKG_IDS <= ids
    assert len(ids) == len(nginx_packages) + 1  # every installed package, plus the image


def test_depgraph_pkgs_carry_snyks_purls(nginx_result: dict[str, Any]) -> None:
    graph = facts_of(nginx_result["scanResults"][0])["depGraph"]
    infos = {p["id"]: p["info"] for p in graph["pkgs"]}
    # image-analysis.md §1.2, verbatim from the plugin's output.
    assert infos["audit/libaudit1@1:2.8.4-3"] == {
        "name": "audit/libaudit1",
        "version": "1:2.8.4-3",
        "purl": "pkg:deb/debian/libaudit1@1:2.8.4-3?distro=debian-buster&upstream=audit",
    }


def test_depgraph_follows_depends(nginx_result: dict[str, Any]) -> None:
    graph = facts_of(nginx_result["scanResults"][0])["depGraph"]
    deps = {n["nodeId"]: {d["nodeId"] for d in n["deps"]} for n in graph["graph"]["nodes"]}
    # dpkg: libaudit1 Depends: libaudit-common, libcap-ng0, libc6 (the snapshot shows the first two
    # under libaudit1 too; libc6 is lifted out there by the plugin's >100-dependents rule).
    assert {"audit/libaudit-common@1:2.8.4-3", "libcap-ng/libcap-ng0@0.7.9-2"} <= deps[
        "audit/libaudit1@1:2.8.4-3"
    ]
    # Nothing installed here requires apt, so it hangs from the root, as in the snapshot; apt's
    # Depends (adduser, gpgv, libapt-pkg5.0…) hang from apt.
    assert "apt@1.8.2" in deps["root-node"]
    assert {"adduser@3.118", "gnupg2/gpgv@2.2.12-1+deb10u1", "apt/libapt-pkg5.0@1.8.2"} <= deps["apt@1.8.2"]
    # base-files Pre-Depends: awk, a virtual package that mawk Provides.
    assert "mawk/mawk@1.3.3-17+b3" in deps["base-files@10.3+deb10u1"]


@pytest.mark.skipif(snyk_dep_graph_module() is None, reason="@snyk/dep-graph (npm) not installed")
def test_snyks_own_library_accepts_the_graph(
    nginx_result: dict[str, Any], nginx_packages: list[Package]
) -> None:
    module = snyk_dep_graph_module()
    assert module is not None
    loaded = load_with_snyk_library(module, facts_of(nginx_result["scanResults"][0])["depGraph"])
    assert loaded == {
        "root": {"name": f"docker-image|{NGINX_NAME}", "version": "latest"},
        "pkgs": len(nginx_packages) + 1,
        "cyclic": False,
    }


def test_image_facts_match_the_snapshot(
    nginx_result: dict[str, Any], nginx_image: ImageInfo, nginx_fixture: NginxFixture
) -> None:
    facts = facts_of(nginx_result["scanResults"][0])
    assert [t for t in PLUGIN_FACT_ORDER if t in facts] == [
        f["type"] for f in nginx_result["scanResults"][0]["facts"]
    ]
    # The image ID is the config blob's digest; the snapshot's equals the fixture config's sha256.
    assert (
        facts["imageId"]
        == SNAPSHOT_IMAGE_ID
        == "sha256:" + hashlib.sha256(nginx_fixture.config_bytes).hexdigest()
    )
    assert facts["rootFs"] == SNAPSHOT_ROOTFS
    assert facts["imageLabels"] == {"maintainer": "NGINX Docker Maintainers <docker-maint@nginx.com>"}
    assert facts["imageOsReleasePrettyName"] == "Debian GNU/Linux 10 (buster)"
    assert facts["imageCreationTime"] == "2019-08-15T21:22:39.878636802Z"
    assert facts["imageLayers"] == list(nginx_image.layer_digests)
    assert facts["platform"] == "linux/amd64"
    assert facts["imageNames"] == {
        "names": [f"{NGINX_NAME}:latest", f"{NGINX_NAME}@{nginx_image.manifest_digest}"]
    }
    assert facts["ociDistributionMetadata"] == {
        "registryHost": "127.0.0.1:5000",
        "repository": "library/nginx",
        "manifestDigest": nginx_image.manifest_digest,
        "imageTag": "latest",
    }
    assert "pluginWarnings" not in facts


def test_container_config_withholds_env_values_by_default(nginx_result: dict[str, Any]) -> None:
    config = facts_of(nginx_result["scanResults"][0])["containerConfig"]
    # The fixture config: ExposedPorts {"80/tcp": {}}, Volumes null, Entrypoint null, no Env secrets,
    # but the agent cannot know which values are secret, so none are sent.
    assert config == {
        "user": "",
        "exposedPorts": ["80/tcp"],
        "env": ["PATH=***", "NGINX_VERSION=***", "NJS_VERSION=***", "PKG_RELEASE=***"],
        "entrypoint": None,
        "cmd": ["nginx", "-g", "daemon off;"],
        "volumes": None,
        "workingDir": "",
        "stopSignal": "SIGTERM",
        "argsEscaped": True,
    }


def test_env_values_sent_when_asked(nginx_inventory: Inventory, nginx_image: ImageInfo) -> None:
    result = render_snyk(nginx_inventory, nginx_image, include_env_values=True)
    env = facts_of(result["scanResults"][0])["containerConfig"]["env"]
    assert env == list(nginx_image.container_config["Env"])


def test_history_keeps_the_plugins_keys(nginx_result: dict[str, Any], nginx_image: ImageInfo) -> None:
    history = facts_of(nginx_result["scanResults"][0])["history"]
    assert len(history) == len(nginx_image.history) == 11
    assert history[0] == {
        "created": "2019-08-14T00:22:12.288915269Z",
        "createdBy": "/bin/sh -c #(nop) ADD file:"
        "330bfb91168adb4a9b1296c70209ed487d4c2705042a916d575f82b61ab16e61 in / ",
    }
    assert all(set(h) <= {"created", "author", "createdBy", "comment", "emptyLayer"} for h in history)


# --- size caps (utils.js RESPONSE_SIZE_LIMITS) -------------------------------------------------------


def minimal_inventory(**changes: Any) -> Inventory:
    values: dict[str, Any] = {
        "os_release": OSRelease(id="debian", version_id="12", pretty_name="Debian GNU/Linux 12 (bookworm)"),
        "os_packages": [Package(name="bash", version="5.2.15-2+b2", type="deb")],
        "os_package_manager": "deb",
        "applications": [],
    }
    values.update(changes)
    return Inventory(**values)


def image_with(config: dict[str, Any], **changes: Any) -> ImageInfo:
    values: dict[str, Any] = {
        "name": "registry.example.com/team/app",
        "tag": "1.0",
        "manifest_digest": DIGEST,
        "registry_host": "registry.example.com",
        "repository": "team/app",
        "config_digest": "sha256:" + "cd" * 32,
        "config": {"os": "linux", "architecture": "arm64", "variant": "v8", **config},
    }
    values.update(changes)
    return ImageInfo(**values)


def test_oversized_facts_are_cut_and_reported() -> None:
    image = image_with(
        {
            "config": {"Env": [f"V{i}=x" for i in range(600)], "StopSignal": "S" * 200},
            "history": [{"created_by": "R" * 5000}, {"created_by": "R" * 4100}] + [{"comment": "c"}] * 1000,
        }
    )
    result = render_snyk(minimal_inventory(), image, include_env_values=True)
    facts = facts_of(result["scanResults"][0])
    assert len(facts["containerConfig"]["env"]) == 500
    assert facts["containerConfig"]["stopSignal"] == "S" * 128
    assert len(facts["history"]) == 1000
    assert facts["history"][0]["createdBy"] == "R" * 4096
    assert facts["pluginWarnings"] == {
        "truncatedFacts": {
            "containerConfig.data.env": {"type": "array", "countAboveLimit": 100},
            "containerConfig.data.stopSignal": {"type": "string", "countAboveLimit": 72},
            "history.data": {"type": "array", "countAboveLimit": 2},
            "history.data[*].createdBy": {"type": "string", "countAboveLimit": 904},
        }
    }


def test_env_entries_are_capped_after_redaction() -> None:
    image = image_with({"config": {"Env": ["TOKEN=" + "s" * 3000, "NO_VALUE"]}})
    env = facts_of(render_snyk(minimal_inventory(), image)["scanResults"][0])["containerConfig"]["env"]
    assert env == ["TOKEN=***", "NO_VALUE"]


def test_inventory_warnings_become_plugin_warnings() -> None:
    result = render_snyk(minimal_inventory(warnings=["layer 3 skipped: foreign layer"]), image_with({}))
    assert facts_of(result["scanResults"][0])["pluginWarnings"] == {
        "scanWarnings": ["layer 3 skipped: foreign layer"]
    }


def test_platform_is_derived_from_the_config() -> None:
    result = render_snyk(minimal_inventory(), image_with({}))
    assert result["scanResults"][0]["identity"]["args"] == {"platform": "linux/arm64/v8"}


@pytest.mark.parametrize(
    "changes",
    [
        {"tag": "bad tag"},  # OCI tag grammar
        {"repository": "Team/App"},  # upper case is not a valid repository name
        {"manifest_digest": "sha512:" + "ab" * 64},  # the plugin accepts sha256 only
        {"index_digest": "sha256:short"},
    ],
)
def test_invalid_distribution_metadata_is_left_out(changes: dict[str, Any]) -> None:
    # oci-distribution-metadata.js drops the whole fact rather than sending a value that fails its checks.
    result = render_snyk(minimal_inventory(), image_with({}, **changes))
    assert "ociDistributionMetadata" not in facts_of(result["scanResults"][0])


def test_digest_only_reference_has_an_empty_root_version() -> None:
    # The plugin strips "@sha256:…" and leaves the root version empty ("docker-image|name@").
    result = render_snyk(minimal_inventory(), image_with({}, tag=None))
    graph = facts_of(result["scanResults"][0])["depGraph"]
    check_dep_graph(graph)
    assert graph["pkgs"][0] == {
        "id": "docker-image|registry.example.com/team/app@",
        "info": {"name": "docker-image|registry.example.com/team/app"},
    }
    assert facts_of(result["scanResults"][0])["imageNames"] == {
        "names": [f"registry.example.com/team/app@{DIGEST}"]
    }


# --- package managers ----------------------------------------------------------------------------------


def test_image_without_a_package_manager_is_linux() -> None:
    inventory = minimal_inventory(
        os_release=OSRelease(id="unknown", version_id=""), os_packages=[], os_package_manager=None
    )
    result = render_snyk(inventory, image_with({}))
    os_result = result["scanResults"][0]
    graph = facts_of(os_result)["depGraph"]
    check_dep_graph(graph)
    assert os_result["identity"]["type"] == "linux"
    assert graph["pkgManager"] == {"name": "linux", "repositories": [{"alias": "unknown:0.0"}]}
    assert [p["id"] for p in graph["pkgs"]] == ["docker-image|registry.example.com/team/app@1.0"]


def test_apk_names_are_origin_slash_name_without_purl() -> None:
    # The plugin always prefixes the apk origin ("musl/musl") and sends no apk purl.
    inventory = minimal_inventory(
        os_release=OSRelease(id="alpine", version_id="3.18.3"),
        os_package_manager="apk",
        os_packages=[
            Package(name="musl", version="1.2.4-r1", type="apk", source_name="musl"),
            Package(
                name="busybox", version="1.36.1-r2", type="apk", source_name="busybox", depends=("musl",)
            ),
        ],
    )
    graph = facts_of(render_snyk(inventory, image_with({}))["scanResults"][0])["depGraph"]
    check_dep_graph(graph)
    assert graph["pkgManager"]["repositories"] == [{"alias": "alpine:3.18.3"}]
    assert graph["pkgs"][1:] == [
        {"id": "musl/musl@1.2.4-r1", "info": {"name": "musl/musl", "version": "1.2.4-r1"}},
        {"id": "busybox/busybox@1.36.1-r2", "info": {"name": "busybox/busybox", "version": "1.36.1-r2"}},
    ]
    nodes = {n["nodeId"]: [d["nodeId"] for d in n["deps"]] for n in graph["graph"]["nodes"]}
    assert nodes["root-node"] == ["busybox/busybox@1.36.1-r2"]
    assert nodes["busybox/busybox@1.36.1-r2"] == ["musl/musl@1.2.4-r1"]


def test_rpm_is_flat_and_named_without_source() -> None:
    inventory = minimal_inventory(
        os_release=OSRelease(id="rhel", version_id="8.2"),
        os_package_manager="rpm",
        os_packages=[
            Package(
                name="openssl-libs",
                version="1:1.1.1g-11.el8",
                type="rpm",
                epoch=1,
                source_name="openssl",
                source_version="1.1.1g-11.el8",
                depends=("zlib",),
            ),
            Package(
                name="zlib",
                version="1.2.11-16.el8_2",
                type="rpm",
                source_name="zlib",
                source_version="1.2.11-16.el8_2",
            ),
        ],
    )
    graph = facts_of(render_snyk(inventory, image_with({}))["scanResults"][0])["depGraph"]
    check_dep_graph(graph)
    assert graph["pkgManager"] == {"name": "rpm", "repositories": [{"alias": "rhel:8.2"}]}
    nodes = {n["nodeId"]: [d["nodeId"] for d in n["deps"]] for n in graph["graph"]["nodes"]}
    assert nodes["root-node"] == ["openssl-libs@1:1.1.1g-11.el8", "zlib@1.2.11-16.el8_2"]
    assert nodes["openssl-libs@1:1.1.1g-11.el8"] == []
    assert graph["pkgs"][1]["info"]["purl"] == (
        "pkg:rpm/rhel/openssl-libs@1:1.1.1g-11.el8?distro=rhel-8.2&epoch=1&upstream=openssl%401.1.1g-11.el8"
    )


def test_duplicate_packages_share_one_node() -> None:
    # Two identical dpkg entries (e.g. status and status.d) must not make two pkgs with one id.
    bash = Package(name="bash", version="5.2.15-2+b2", type="deb")
    graph = facts_of(
        render_snyk(minimal_inventory(os_packages=[bash, bash]), image_with({}))["scanResults"][0]
    )["depGraph"]
    check_dep_graph(graph)
    assert [p["id"] for p in graph["pkgs"]].count("bash@5.2.15-2+b2") == 1


# --- application results ---------------------------------------------------------------------------------


def app_inventory() -> Inventory:
    return minimal_inventory(
        applications=[
            (
                "npm",
                "/srv/app/package.json",
                [
                    Package(name="express", version="4.18.2", type="npm", depends=("debug", "@types/node")),
                    Package(name="debug", version="2.6.9", type="npm", depends=("ms",)),
                    Package(name="ms", version="2.0.0", type="npm", depends=("debug",)),  # a cycle
                    Package(name="node", namespace="@types", version="20.1.0", type="npm"),
                ],
            ),
            ("npm", "/srv/web/yarn.lock", [Package(name="left-pad", version="1.3.0", type="npm")]),
            (
                "pypi",
                "/usr/lib/python3/dist-packages",
                [Package(name="Requests", version="2.31.0", type="pypi")],
            ),
            (
                "golang",
                "/usr/local/bin/app",
                [Package(name="github.com/gorilla/mux", version="v1.8.0", type="golang")],
            ),
            ("gem", "/app/Gemfile.lock", [Package(name="rack", version="3.0.8", type="gem")]),
            ("cargo", "/usr/bin/tool", [Package(name="serde", version="1.0.188", type="cargo")]),
            (
                "maven",
                "/app/lib",
                [
                    Package(
                        name="commons-lang3",
                        namespace="org.apache.commons",
                        version="3.12.0",
                        type="maven",
                        location="/app/lib/commons-lang3-3.12.0.jar",
                    ),
                    Package(
                        name="mystery",
                        version="",
                        type="maven",
                        location="/app/lib/mystery.jar",
                        metadata={"sha1": "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
                    ),
                ],
            ),
            ("pypi", "/srv/empty/requirements.txt", []),  # nothing found: no result, as in the plugin
        ]
    )


def test_one_result_per_application_after_the_os_result() -> None:
    results = render_snyk(app_inventory(), image_with({}))["scanResults"]
    assert [r["identity"] for r in results[1:]] == [
        {"type": "npm", "targetFile": "/srv/app/package.json"},
        {"type": "yarn", "targetFile": "/srv/web/yarn.lock"},
        {"type": "pip", "targetFile": "/usr/lib/python3/dist-packages"},
        {"type": "gomodules", "targetFile": "/usr/local/bin/app"},
        {"type": "rubygems", "targetFile": "/app/Gemfile.lock"},
        {"type": "cargo", "targetFile": "/usr/bin/tool"},
        {"type": "maven", "targetFile": "/app/lib"},
    ]
    assert all(r["target"] == {"image": "docker-image|registry.example.com/team/app"} for r in results)


def test_app_depgraph_and_tested_files() -> None:
    npm = render_snyk(app_inventory(), image_with({}))["scanResults"][1]
    facts = facts_of(npm)
    graph = facts["depGraph"]
    check_dep_graph(graph)
    assert graph["pkgManager"] == {"name": "npm"}
    assert graph["pkgs"][0] == {"id": "/srv/app/package.json@", "info": {"name": "/srv/app/package.json"}}
    infos = {p["id"]: p["info"] for p in graph["pkgs"][1:]}
    assert infos["@types/node@20.1.0"] == {
        "name": "@types/node",
        "version": "20.1.0",
        "purl": "pkg:npm/%40types/node@20.1.0",
    }
    nodes = {n["nodeId"]: [d["nodeId"] for d in n["deps"]] for n in graph["graph"]["nodes"]}
    assert nodes["root-node"] == ["express@4.18.2"]
    assert nodes["express@4.18.2"] == ["debug@2.6.9", "@types/node@20.1.0"]
    assert nodes["debug@2.6.9"] == ["ms@2.0.0"] and nodes["ms@2.0.0"] == []  # cycle cut at its back edge
    assert facts["testedFiles"] == ["package.json"]
    assert facts["imageId"] == "sha256:" + "cd" * 32
    assert [f["type"] for f in npm["facts"]] == [
        "depGraph",
        "testedFiles",
        "imageId",
        "imageNames",
        "ociDistributionMetadata",
    ]


def test_maven_results_send_jar_fingerprints() -> None:
    maven = render_snyk(app_inventory(), image_with({}))["scanResults"][-1]
    facts = facts_of(maven)
    assert "depGraph" not in facts
    # java.js: coordinates when known (digest null), else the jar's SHA-1.
    assert facts["jarFingerprints"] == {
        "fingerprints": [
            {
                "location": "/app/lib/commons-lang3-3.12.0.jar",
                "digest": None,
                "groupId": "org.apache.commons",
                "artifactId": "commons-lang3",
                "version": "3.12.0",
                "dependencies": [],
            },
            {
                "location": "/app/lib/mystery.jar",
                "digest": "da39a3ee5e6b4b0d3255bfef95601890afd80709",
                "artifactId": "mystery",
                "dependencies": [],
            },
        ],
        "origin": "registry.example.com/team/app:1.0",
        "path": "/app/lib",
    }


@pytest.mark.skipif(snyk_dep_graph_module() is None, reason="@snyk/dep-graph (npm) not installed")
def test_snyks_own_library_accepts_app_graphs() -> None:
    module = snyk_dep_graph_module()
    assert module is not None
    for result in render_snyk(app_inventory(), image_with({}))["scanResults"]:
        graph = facts_of(result).get("depGraph")
        if graph is not None:
            assert load_with_snyk_library(module, graph)["cyclic"] is False
