"""``shared.scan.output.purl``: package URLs in the purl-spec form and in Snyk's form.

Expected values come from outside this project:

* purl-spec ``types/<type>-definition.json`` ``examples`` and PURL-TYPES (package-url/purl-spec);
* image-analysis.md §1.2 (Snyk's depGraph example purl) and §3.3 (VERIFIED packageurl-python output);
* purls printed by ``packageurl-js`` 1.2.0, the version snyk-docker-plugin 9.20.2 pins, given the
  qualifiers its ``apt.js``/``rpm.js`` build (run by hand; the strings are pasted below).

Where two encodings of one purl are both valid (``:`` in a qualifier value), purls are compared
parsed, not as strings.
"""

from __future__ import annotations

import pytest
from packageurl import PackageURL

from shared.scan.model import OSRelease, Package
from shared.scan.output.image_info import ImageInfo
from shared.scan.output.purl import Flavour, deb_distro, image_purl, package_purl

DEBIAN_10 = OSRelease(id="debian", version_id="10", version_codename="buster")
DEBIAN_12 = OSRelease(id="debian", version_id="12", version_codename="bookworm")
UBUNTU_2204 = OSRelease(id="ubuntu", version_id="22.04", version_codename="jammy", id_like=("debian",))
FEDORA_25 = OSRelease(id="fedora", version_id="25")
RHEL_86 = OSRelease(id="rhel", version_id="8.6")
ALPINE_NO_VERSION = OSRelease(id="alpine", version_id="")
UBUNTU_NO_VERSION = OSRelease(id="ubuntu", version_id="")


def parsed(purl: str | None) -> PackageURL:
    assert purl is not None
    return PackageURL.from_string(purl)


# --- purl-spec examples ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pkg", "os_release", "expected"),
    [
        # deb-definition.json: the vendor comes from the OS; no release known means no distro.
        (
            Package(name="attr", version="1:2.4.47-2+b1", type="deb", architecture="amd64"),
            None,
            "pkg:deb/debian/attr@1:2.4.47-2%2Bb1?arch=amd64",
        ),
        (
            Package(name="dpkg", version="1.19.0.4", type="deb", architecture="amd64"),
            UBUNTU_NO_VERSION,
            "pkg:deb/ubuntu/dpkg@1.19.0.4?arch=amd64",
        ),
        # apk-definition.json
        (
            Package(name="curl", version="7.83.0-r0", type="apk", architecture="x86"),
            ALPINE_NO_VERSION,
            "pkg:apk/alpine/curl@7.83.0-r0?arch=x86",
        ),
        # rpm-definition.json
        (
            Package(name="curl", version="7.50.3-1.fc25", type="rpm", architecture="i386"),
            FEDORA_25,
            "pkg:rpm/fedora/curl@7.50.3-1.fc25?arch=i386&distro=fedora-25",
        ),
        # pypi-definition.json; the spec's normalisation: lower case, runs of - _ . become one -
        (Package(name="Django", version="1.11.1", type="pypi"), None, "pkg:pypi/django@1.11.1"),
        (Package(name="django_allauth", version="12.23", type="pypi"), None, "pkg:pypi/django-allauth@12.23"),
        (Package(name="zope.interface", version="6.0", type="pypi"), None, "pkg:pypi/zope-interface@6.0"),
        # npm-definition.json: the scope is the namespace, its @ percent-encoded
        (Package(name="foobar", version="12.3.1", type="npm"), None, "pkg:npm/foobar@12.3.1"),
        (
            Package(name="animation", namespace="@angular", version="12.3.1", type="npm"),
            None,
            "pkg:npm/%40angular/animation@12.3.1",
        ),
        (
            Package(name="@angular/animation", version="12.3.1", type="npm"),
            None,
            "pkg:npm/%40angular/animation@12.3.1",
        ),
        # golang-definition.json: the module path's last element is the name
        (
            Package(name="github.com/gorilla/context", version="234fd47e07d1004f0aed9c", type="golang"),
            None,
            "pkg:golang/github.com/gorilla/context@234fd47e07d1004f0aed9c",
        ),
        # PURL-TYPES examples for maven, cargo, nuget, composer, gem
        (
            Package(name="batik-anim", namespace="org.apache.xmlgraphics", version="1.9.1", type="maven"),
            None,
            "pkg:maven/org.apache.xmlgraphics/batik-anim@1.9.1",
        ),
        (
            Package(name="org.apache.xmlgraphics:batik-anim", version="1.9.1", type="maven"),
            None,
            "pkg:maven/org.apache.xmlgraphics/batik-anim@1.9.1",
        ),
        (Package(name="rand", version="0.7.2", type="cargo"), None, "pkg:cargo/rand@0.7.2"),
        (
            Package(name="EnterpriseLibrary.Common", version="6.0.1304", type="nuget"),
            None,
            "pkg:nuget/EnterpriseLibrary.Common@6.0.1304",
        ),
        (
            Package(name="laravel/laravel", version="5.5.0", type="composer"),
            None,
            "pkg:composer/laravel/laravel@5.5.0",
        ),
        (
            Package(name="laravel", namespace="laravel", version="5.5.0", type="composer"),
            None,
            "pkg:composer/laravel/laravel@5.5.0",
        ),
        (
            Package(name="ruby-advisory-db-check", version="0.0.4", type="gem"),
            None,
            "pkg:gem/ruby-advisory-db-check@0.0.4",
        ),
    ],
)
def test_purl_spec_examples(pkg: Package, os_release: OSRelease | None, expected: str) -> None:
    assert package_purl(pkg, os_release, "sbom") == expected


def test_rpm_epoch_is_a_qualifier_not_part_of_the_version() -> None:
    # rpm-definition.json: pkg:rpm/centerim@4.22.10-1.el6?arch=i686&epoch=1&distro=fedora-25
    pkg = Package(name="centerim", version="1:4.22.10-1.el6", type="rpm", epoch=1, architecture="i686")
    purl = parsed(package_purl(pkg, FEDORA_25, "sbom"))
    assert purl.version == "4.22.10-1.el6"
    assert purl.qualifiers == {"arch": "i686", "epoch": "1", "distro": "fedora-25"}


def test_rpm_epoch_read_from_the_version_when_the_field_is_empty() -> None:
    pkg = Package(name="centerim", version="1:4.22.10-1.el6", type="rpm")
    purl = parsed(package_purl(pkg, FEDORA_25, "sbom"))
    assert (purl.version, purl.qualifiers["epoch"]) == ("4.22.10-1.el6", "1")


def test_oci_image_purl_matches_the_spec_example() -> None:
    # oci-definition: pkg:oci/debian@sha256%3A244fd47e07d10?repository_url=docker.io/library/debian
    #                 &arch=amd64&tag=latest
    image = ImageInfo(
        name="docker.io/library/debian",
        tag="latest",
        manifest_digest="sha256:244fd47e07d10",
        registry_host="docker.io",
        repository="library/debian",
        platform="linux/amd64",
    )
    expected = (
        "pkg:oci/debian@sha256%3A244fd47e07d10?repository_url=docker.io/library/debian&arch=amd64&tag=latest"
    )
    assert parsed(image_purl(image)) == PackageURL.from_string(expected)


def test_no_image_purl_without_a_digest() -> None:
    assert image_purl(ImageInfo(name="docker.io/library/debian", tag="latest")) is None


# --- image-analysis.md §3.3 VERIFIED and §1.2 -------------------------------------------------------


def test_encoding_matches_the_verified_examples() -> None:
    # §3.3: colon kept in the version, "+" encoded, qualifiers sorted.
    audit_common = Package(
        name="libaudit-common", version="1:2.8.4-3", type="deb", source_name="audit", architecture="amd64"
    )
    purl = package_purl(audit_common, DEBIAN_12, "sbom")
    assert purl == "pkg:deb/debian/libaudit-common@1:2.8.4-3?arch=amd64&distro=debian-bookworm&upstream=audit"
    base_files = Package(name="base-files", version="10.3+deb10u5", type="deb")
    assert (package_purl(base_files, DEBIAN_10, "sbom") or "").startswith(
        "pkg:deb/debian/base-files@10.3%2Bdeb10u5?"
    )


def test_snyk_depgraph_example_purl() -> None:
    # §1.2 depGraph example: "pkg:deb/debian/libaudit1@1:2.8.4-3?distro=debian-buster&upstream=audit"
    pkg = Package(
        name="libaudit1",
        version="1:2.8.4-3",
        type="deb",
        source_name="audit",
        source_version="1:2.8.4-3",  # dpkg-query's ${source:Version} when Source: has no version
        architecture="amd64",
    )
    assert (
        package_purl(pkg, DEBIAN_10, "snyk")
        == "pkg:deb/debian/libaudit1@1:2.8.4-3?distro=debian-buster&upstream=audit"
    )


# --- Snyk's own library, given the plugin's qualifiers ---------------------------------------------


@pytest.mark.parametrize(
    ("pkg", "os_release", "packageurl_js"),
    [
        (  # Source: mawk (1.3.3-17), a binNMU of it
            Package(
                name="mawk", version="1.3.3-17+b3", type="deb", source_name="mawk", source_version="1.3.3-17"
            ),
            DEBIAN_10,
            "pkg:deb/debian/mawk@1.3.3-17%2Bb3?distro=debian-buster&upstream=mawk%401.3.3-17",
        ),
        (  # source version differs by the binary's epoch
            Package(
                name="bsdutils",
                version="1:2.33.1-0.1",
                type="deb",
                source_name="util-linux",
                source_version="2.33.1-0.1",
            ),
            DEBIAN_10,
            "pkg:deb/debian/bsdutils@1:2.33.1-0.1?distro=debian-buster&upstream=util-linux%402.33.1-0.1",
        ),
        (  # the plugin maps only Debian majors to codenames: Ubuntu keeps its version
            Package(name="libc6", version="2.35-0ubuntu3.1", type="deb", source_name="glibc"),
            UBUNTU_2204,
            "pkg:deb/ubuntu/libc6@2.35-0ubuntu3.1?distro=ubuntu-22.04&upstream=glibc",
        ),
        (  # rpm keeps "epoch:" in the version and adds module, repositories and upstream
            Package(
                name="openssl-libs",
                version="1:1.1.1k-7.el8_6",
                type="rpm",
                epoch=1,
                source_name="openssl",
                source_version="1.1.1k-7.el8_6",
                architecture="x86_64",
                metadata={
                    "module": "perl:5.26",
                    "repositories": ["rhel-8-for-x86_64-baseos-rpms", "rhel-8-for-x86_64-appstream-rpms"],
                },
            ),
            RHEL_86,
            "pkg:rpm/rhel/openssl-libs@1:1.1.1k-7.el8_6?distro=rhel-8.6&epoch=1&module=perl%3A5.26"
            "&repositories=rhel-8-for-x86_64-baseos-rpms%2Crhel-8-for-x86_64-appstream-rpms"
            "&upstream=openssl%401.1.1k-7.el8_6",
        ),
    ],
)
def test_snyk_flavour_matches_packageurl_js(pkg: Package, os_release: OSRelease, packageurl_js: str) -> None:
    assert parsed(package_purl(pkg, os_release, "snyk")) == PackageURL.from_string(packageurl_js)


def test_snyk_flavour_gives_apk_packages_no_purl() -> None:
    # snyk-docker-plugin's apk.js builds no purl (image-analysis.md §1.4).
    pkg = Package(name="musl", version="1.2.4-r1", type="apk", source_name="musl", architecture="x86_64")
    assert package_purl(pkg, OSRelease(id="alpine", version_id="3.18.3"), "snyk") is None
    assert package_purl(pkg, OSRelease(id="alpine", version_id="3.18.3"), "sbom") == (
        "pkg:apk/alpine/musl@1.2.4-r1?arch=x86_64&distro=alpine-3.18.3"
    )


def test_apk_upstream_only_when_the_origin_differs() -> None:
    # Syft's apk purls (image-analysis.md §2.1): upstream=<origin if different>.
    pkg = Package(name="libcrypto3", version="3.1.2-r0", type="apk", source_name="openssl")
    assert (
        parsed(package_purl(pkg, OSRelease(id="alpine", version_id="3.18.3"))).qualifiers["upstream"]
        == "openssl"
    )


def test_deb_without_a_distinct_source_has_no_upstream() -> None:
    # dpkg writes Source: only when it differs from the binary; dpkg-query then reports the binary itself.
    pkg = Package(name="bash", version="5.0-4", type="deb", source_name="bash", source_version="5.0-4")
    assert "upstream" not in parsed(package_purl(pkg, DEBIAN_10, "snyk")).qualifiers


@pytest.mark.parametrize(
    ("os_release", "flavour", "expected"),
    [
        (DEBIAN_10, "snyk", "debian-buster"),
        (DEBIAN_10, "sbom", "debian-buster"),
        (OSRelease(id="debian", version_id="13"), "sbom", "debian-trixie"),  # from the major, no codename
        (OSRelease(id="debian", version_id="8"), "snyk", "debian-jessie"),
        (
            OSRelease(id="debian", version_id=""),
            "snyk",
            "debian-sid",
        ),  # plugin: missing VERSION_ID = unstable
        (UBUNTU_2204, "sbom", "ubuntu-jammy"),
        (UBUNTU_2204, "snyk", "ubuntu-22.04"),
        (OSRelease(id="ubuntu", version_id="24.04"), "sbom", "ubuntu-24.04"),  # no codename known
    ],
)
def test_deb_distro(os_release: OSRelease, flavour: Flavour, expected: str) -> None:
    assert deb_distro(os_release, flavour) == expected


def test_snyk_flavour_drops_arch() -> None:
    pkg = Package(name="bash", version="5.0-4", type="deb", architecture="amd64")
    assert "arch" not in parsed(package_purl(pkg, DEBIAN_10, "snyk")).qualifiers
    assert parsed(package_purl(pkg, DEBIAN_10, "sbom")).qualifiers["arch"] == "amd64"
