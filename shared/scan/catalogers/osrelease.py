"""Which operating system an image is built on, from its release files.

How the engine uses it: `OSReleaseCataloger` is an ordinary cataloger (first in
``default_catalogers()``) whose ``catalog()`` returns no packages. After the layer merge the engine
calls ``detect_os(files)`` with that cataloger's surviving files, and passes the `OSRelease` to
every other cataloger's ``catalog()``.

Files are tried in the order snyk-docker-plugin uses (image-analysis.md §1.3); the first one that
parses wins:

1. ``/etc/os-release``, then ``/usr/lib/os-release`` (``ID``, ``VERSION_ID``, ``PRETTY_NAME``,
   ``VERSION_CODENAME``, ``ID_LIKE``). ``/etc/os-release`` is usually a symlink to the second;
   the engine resolves it, and asking for both paths covers images where only one exists.
2. ``/etc/lsb-release`` (``DISTRIB_ID`` lower-cased, ``DISTRIB_RELEASE``).
3. ``/etc/debian_version``: ``debian``, major version only (``10.1`` -> ``10``).
4. ``/etc/alpine-release``: ``alpine``, the whole version.
5. ``/etc/oracle-release``, ``/etc/redhat-release``, ``/etc/centos-release``: the major version.
   Oracle's file comes first because Oracle Linux also ships a redhat-release. Ids follow
   os-release's spelling (``ol``, ``rhel``, ``centos``) so that both routes name a distribution
   the same way.

When no release file parses:

* ``distroless``: dpkg's ``/var/lib/dpkg/status.d/`` exists (Google distroless keeps one file per
  package there).
* ``chisel`` version ``0.0``: an Ubuntu chisel manifest exists; the same name and version Snyk
  reports for such images.
* ``unknown``: a release file exists but none parsed (Snyk fails the scan here; an inventory
  without an OS name is more useful than no inventory).
* ``scratch``: nothing at all, as for an image built ``FROM scratch`` (busybox, hello-world).

Values are kept as the files write them (``ol``, ``VERSION_ID`` empty when absent); renaming for a
particular consumer (Snyk's ``ol`` -> ``oracle``, ``unstable`` for a missing version) belongs to that
consumer's output module.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from shared.scan.model import FileRecord, OSRelease, Package

NAME = "os-release"

OS_RELEASE_FILES = ("/etc/os-release", "/usr/lib/os-release")
LSB_RELEASE = "/etc/lsb-release"
DEBIAN_VERSION = "/etc/debian_version"
ALPINE_RELEASE = "/etc/alpine-release"
ORACLE_RELEASE = "/etc/oracle-release"
REDHAT_RELEASE = "/etc/redhat-release"
CENTOS_RELEASE = "/etc/centos-release"
RELEASE_FILES = (
    *OS_RELEASE_FILES,
    LSB_RELEASE,
    DEBIAN_VERSION,
    ALPINE_RELEASE,
    ORACLE_RELEASE,
    REDHAT_RELEASE,
    CENTOS_RELEASE,
)
_RELEASE_SET = frozenset(RELEASE_FILES)

DPKG_STATUS_D = "/var/lib/dpkg/status.d/"
CHISEL_MANIFEST = "/var/lib/chisel/manifest.wall"

# Release files are a few hundred bytes; anything bigger is not one, and reading it whole would only
# waste memory.
MAX_RELEASE_FILE = 64 * 1024


class OSReleaseCataloger:
    """Collects release files (as text) and the two marker paths that identify OS-less images."""

    name = NAME
    ecosystem = "os"

    def wants(self, path: str, size: int, mode: int) -> bool:
        if path in _RELEASE_SET:
            return size <= MAX_RELEASE_FILE
        return path == CHISEL_MANIFEST or _in_status_d(path)

    def extract(self, path: str, data: bytes) -> Any:
        if path in _RELEASE_SET:
            return data[:MAX_RELEASE_FILE].decode("utf-8", errors="replace")
        return None  # markers: only their presence matters

    def catalog(self, files: Mapping[str, FileRecord], os_release: OSRelease | None) -> list[Package]:
        return []


def _in_status_d(path: str) -> bool:
    return path.startswith(DPKG_STATUS_D) and "/" not in path[len(DPKG_STATUS_D) :]


def detect_os(files: Mapping[str, FileRecord]) -> OSRelease:
    """The OS described by the merged files of `OSReleaseCataloger` (see the module docstring)."""
    release_seen = False
    for path in RELEASE_FILES:
        record = files.get(path)
        if record is None or not isinstance(record.value, str):
            continue
        release_seen = True
        found = _PARSERS[path](record.value)
        if found is not None:
            return replace(found, source_file=path)
    if any(_in_status_d(p) for p in files):
        return OSRelease(id="distroless", version_id="")
    if CHISEL_MANIFEST in files:
        return OSRelease(id="chisel", version_id="0.0", source_file=CHISEL_MANIFEST)
    if release_seen:
        return OSRelease(id="unknown", version_id="")
    return OSRelease(id="scratch", version_id="")


def parse_key_values(text: str) -> dict[str, str]:
    """``KEY=value`` lines as os-release(5) and lsb-release write them.

    Values may be single- or double-quoted; inside double quotes the shell escapes ``\\"``, ``\\\\``,
    ``\\$`` and ``\\``` are undone. Comments and lines without ``=`` are ignored.
    """
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            continue
        values[key.strip()] = _unquote(value.strip())
    return values


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        inner = value[1:-1]
        if value[0] == '"':
            inner = re.sub(r'\\(["\\$`])', r"\1", inner)
        return inner
    return value


def parse_os_release(text: str) -> OSRelease | None:
    values = parse_key_values(text)
    distro = values.get("ID", "").strip().lower()
    if not distro:
        return None
    codename = values.get("VERSION_CODENAME") or values.get("UBUNTU_CODENAME") or ""
    if not codename:
        # Debian 8 and 9 only say it inside VERSION: "9 (stretch)".
        match = re.search(r"\(([a-z]+)\)", values.get("VERSION", ""))
        codename = match.group(1) if match else ""
    return OSRelease(
        id=distro,
        version_id=values.get("VERSION_ID", ""),
        pretty_name=values.get("PRETTY_NAME", ""),
        version_codename=codename,
        id_like=tuple(values.get("ID_LIKE", "").lower().split()),
    )


def parse_lsb_release(text: str) -> OSRelease | None:
    values = parse_key_values(text)
    distro = values.get("DISTRIB_ID", "").strip().lower()
    if not distro:
        return None
    return OSRelease(
        id=distro,
        version_id=values.get("DISTRIB_RELEASE", ""),
        pretty_name=values.get("DISTRIB_DESCRIPTION", ""),
        version_codename=values.get("DISTRIB_CODENAME", ""),
    )


def parse_debian_version(text: str) -> OSRelease | None:
    # "10.1" -> "10"; testing and sid write "bookworm/sid", kept whole as Snyk does.
    value = text.strip()
    if len(value) < 2:
        return None
    return OSRelease(id="debian", version_id=value.split(".")[0])


def parse_alpine_release(text: str) -> OSRelease | None:
    value = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not value:
        return None
    return OSRelease(id="alpine", version_id=value)


def _major_release(text: str, distro: str) -> OSRelease | None:
    first = text.strip().splitlines()[0] if text.strip() else ""
    # "Red Hat Enterprise Linux release 8.2 (Ootpa)", "CentOS Linux release 7.9.2009 (Core)",
    # "Fedora release 38 (Thirty Eight)": the number after "release", else the first "N." as Snyk.
    match = re.search(r"release\s+(\d+)", first) or re.search(r"(\d+)\.", first)
    if match is None:
        return None
    return OSRelease(id=distro, version_id=match.group(1), pretty_name=first.strip())


def parse_oracle_release(text: str) -> OSRelease | None:
    return _major_release(text, "ol")


def parse_redhat_release(text: str) -> OSRelease | None:
    first = text.strip().lower()
    if first.startswith("red hat"):
        distro = "rhel"
    elif first.startswith("centos"):
        distro = "centos"
    elif first.startswith("oracle"):
        distro = "ol"
    else:
        # Other rebuilds name themselves by their first word: "fedora", "rocky", "almalinux".
        words = first.split()
        if not words:
            return None
        distro = words[0]
    return _major_release(text, distro)


def parse_centos_release(text: str) -> OSRelease | None:
    return _major_release(text, "centos")


_PARSERS = {
    "/etc/os-release": parse_os_release,
    "/usr/lib/os-release": parse_os_release,
    LSB_RELEASE: parse_lsb_release,
    DEBIAN_VERSION: parse_debian_version,
    ALPINE_RELEASE: parse_alpine_release,
    ORACLE_RELEASE: parse_oracle_release,
    REDHAT_RELEASE: parse_redhat_release,
    CENTOS_RELEASE: parse_centos_release,
}
