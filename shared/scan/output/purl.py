"""Package URLs (purl-spec) for inventory packages and for the image.

Two flavours, because the two audiences disagree:

* ``"sbom"`` follows the purl spec and what Syft/Trivy emit: ``arch`` qualifiers, rpm epoch as a
  qualifier only, apk purls, the release codename in deb ``distro``.
* ``"snyk"`` reproduces snyk-docker-plugin's purls byte for byte in meaning (its
  ``analyzer/package-managers/{apt,rpm}.js``), since Snyk's backend matches vulnerabilities on them:
  no ``arch``; deb ``distro`` maps only Debian majors to codenames (Ubuntu keeps its version number);
  rpm versions keep their ``epoch:`` prefix; apk packages get no purl at all.

Encoding differs from Snyk's packageurl-js only in characters the spec lets either way (``:`` inside
qualifier values); both parse to the same purl.
"""

from __future__ import annotations

import re
from typing import Literal

from packageurl import PackageURL

from shared.scan.model import OSRelease, Package
from shared.scan.output.image_info import ImageInfo
from shared.scan.output.names import native_name, pep503

Flavour = Literal["sbom", "snyk"]

# Debian release codenames by major version (snyk-docker-plugin apt.js uses the same table; a version
# it does not know is kept as a number).
DEBIAN_CODENAMES = {
    "8": "jessie",
    "9": "stretch",
    "10": "buster",
    "11": "bullseye",
    "12": "bookworm",
    "13": "trixie",
    "unstable": "sid",
}

# Names for when the OS could not be identified but the package database says which family it is.
_DEFAULT_VENDOR = {"deb": "debian", "apk": "alpine"}
_UNKNOWN_OS = {"", "unknown", "scratch", "distroless"}
_EPOCH_PREFIX = re.compile(r"^(\d+):(.+)$")


def _vendor(os_release: OSRelease | None, pkg_type: str) -> str | None:
    if os_release is not None and os_release.id not in _UNKNOWN_OS:
        return os_release.id.lower()
    if os_release is not None and pkg_type == "deb":
        for like in os_release.id_like:
            if like in ("debian", "ubuntu"):
                return like
    return _DEFAULT_VENDOR.get(pkg_type)


def _debian_codename(version_id: str) -> str | None:
    return DEBIAN_CODENAMES.get(version_id) or DEBIAN_CODENAMES.get(version_id.split(".")[0])


def deb_distro(os_release: OSRelease, flavour: Flavour) -> str | None:
    """``debian-buster``; Snyk's flavour ``ubuntu-22.04``, the SBOM flavour ``ubuntu-jammy``."""
    vendor = _vendor(os_release, "deb")
    if flavour == "snyk":
        # snyk-docker-plugin reads a missing VERSION_ID as "unstable" and looks that up for every vendor.
        version = os_release.version_id or "unstable"
        return f"{vendor}-{DEBIAN_CODENAMES.get(version, version)}"
    codename = os_release.version_codename or (
        _debian_codename(os_release.version_id) if vendor == "debian" else None
    )
    release = codename or os_release.version_id
    return f"{vendor}-{release}" if release else None


def _versioned_distro(os_release: OSRelease | None, pkg_type: str) -> str | None:
    vendor = _vendor(os_release, pkg_type)
    if os_release is None or not os_release.version_id or not vendor:
        return None
    return f"{vendor}-{os_release.version_id}"


def has_distinct_source(pkg: Package) -> bool:
    """Whether the source package is worth naming: dpkg writes ``Source:`` only in this case."""
    if not pkg.source_name:
        return False
    return pkg.source_name != pkg.name or bool(pkg.source_version and pkg.source_version != pkg.version)


def _upstream(pkg: Package, *, version_when_equal: bool) -> str | None:
    if not pkg.source_name:
        return None
    if pkg.source_version and (version_when_equal or pkg.source_version != pkg.version):
        return f"{pkg.source_name}@{pkg.source_version}"
    return pkg.source_name


def _split_epoch(pkg: Package) -> tuple[str, int | None]:
    """rpm ``1:2.3-4.el8`` -> (``2.3-4.el8``, 1); the spec keeps the epoch out of the version."""
    match = _EPOCH_PREFIX.match(pkg.version)
    if match:
        return match.group(2), int(match.group(1)) if pkg.epoch is None else pkg.epoch
    return pkg.version, pkg.epoch


def _os_purl(pkg: Package, os_release: OSRelease | None, flavour: Flavour) -> PackageURL | None:
    vendor = _vendor(os_release, pkg.type)
    qualifiers: dict[str, str] = {}
    if flavour == "sbom" and pkg.architecture:
        qualifiers["arch"] = pkg.architecture
    version = pkg.version

    if pkg.type == "deb":
        if has_distinct_source(pkg):
            upstream = _upstream(pkg, version_when_equal=False)
            if upstream:
                qualifiers["upstream"] = upstream
        distro = deb_distro(os_release, flavour) if os_release is not None else None
    elif pkg.type == "apk":
        if flavour == "snyk":
            return None  # snyk-docker-plugin sends apk packages without a purl
        if pkg.source_name and pkg.source_name != pkg.name:
            qualifiers["upstream"] = pkg.source_name
        distro = _versioned_distro(os_release, pkg.type)
    else:  # rpm
        upstream = _upstream(pkg, version_when_equal=True)
        if upstream:
            qualifiers["upstream"] = upstream
        bare_version, epoch = _split_epoch(pkg)
        if flavour == "sbom":
            version = bare_version
        if epoch is not None:
            qualifiers["epoch"] = str(epoch)
        # Red Hat module streams and content sets, when the rpm cataloger recorded them.
        module = pkg.metadata.get("module")
        if isinstance(module, str) and module:
            qualifiers["module"] = module
        repositories = pkg.metadata.get("repositories")
        if isinstance(repositories, (list, tuple)) and repositories:
            qualifiers["repositories"] = ",".join(str(r) for r in repositories)
        distro = _versioned_distro(os_release, pkg.type)

    if distro:
        qualifiers["distro"] = distro
    return PackageURL(
        type=pkg.type, namespace=vendor, name=pkg.name, version=version or None, qualifiers=qualifiers
    )


def _split_last(full: str, sep: str) -> tuple[str | None, str]:
    head, found, tail = full.rpartition(sep)
    return (head, tail) if found and head else (None, full)


def _language_purl(pkg: Package) -> PackageURL:
    full = native_name(pkg)
    namespace: str | None = None
    name = full
    if pkg.type == "pypi":
        name = pep503(full)
    elif pkg.type == "maven":
        namespace, name = _split_last(full, ":")
    elif pkg.type in ("npm", "composer", "golang"):
        # npm: "@scope/name"; composer: "vendor/name"; golang: module path up to its last element.
        namespace, name = _split_last(full, "/")
    elif pkg.namespace:
        namespace = pkg.namespace
    return PackageURL(type=pkg.type, namespace=namespace, name=name, version=pkg.version or None)


def package_purl(pkg: Package, os_release: OSRelease | None = None, flavour: Flavour = "sbom") -> str | None:
    """The package's purl string, or None when the flavour gives this kind of package none."""
    if not pkg.name:
        return None
    if pkg.type in ("deb", "apk", "rpm"):
        purl = _os_purl(pkg, os_release, flavour)
        return purl.to_string() if purl is not None else None
    return _language_purl(pkg).to_string()


def image_purl(image: ImageInfo) -> str | None:
    """``pkg:oci/<last path element>@<manifest digest>?repository_url=…&tag=…&arch=…`` (purl-spec oci)."""
    if not image.manifest_digest:
        return None
    path = image.repository or image.name
    qualifiers: dict[str, str] = {}
    location = "/".join(p for p in (image.registry_host, image.repository) if p)
    if location:
        qualifiers["repository_url"] = location
    if image.tag:
        qualifiers["tag"] = image.tag
    platform = image.platform_string
    if platform:
        qualifiers["arch"] = platform.split("/")[1] if "/" in platform else platform
    return PackageURL(
        type="oci",
        name=path.rsplit("/", 1)[-1].lower(),
        version=image.manifest_digest,
        qualifiers=qualifiers,
    ).to_string()
