"""Installed Python distributions: ``*.dist-info/METADATA`` and ``*.egg-info`` (directory or file).

The metadata file is an RFC 822 header block (Core Metadata spec); only the headers matter, the body
after the first blank line is the long description and is never parsed. Kept: ``Name``,
``Version``, licences (``License-Expression`` from Metadata 2.4, else ``License`` when it is a short
identifier rather than a pasted licence text, else ``Classifier: License :: ...``), and the names in
``Requires-Dist`` entries without an environment marker (extras and platform-only requirements are
not installed dependencies).

Paths follow Syft and Trivy: ``X.dist-info/METADATA``, ``X.egg-info/PKG-INFO``, ``EGG-INFO/PKG-INFO``
(unzipped eggs) and ``X.egg-info`` when it is a file (old setuptools wrote the metadata straight into
it). Each package's ``location`` is the metadata file.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from typing import Any

from shared.scan.model import FileRecord, OSRelease, Package

NAME = "python"
# Long descriptions can be large, but megabytes of metadata are not a real distribution.
MAX_METADATA = 4 * 1024 * 1024
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
# A "License:" longer than this is a pasted licence text, not an identifier.
_MAX_LICENSE_FIELD = 100


class PythonCataloger:
    name = NAME
    ecosystem = "pypi"

    def wants(self, path: str, size: int, mode: int) -> bool:
        if size > MAX_METADATA:
            return False
        return path.endswith(
            (".dist-info/METADATA", ".egg-info/PKG-INFO", "/EGG-INFO/PKG-INFO")
        ) or path.endswith(".egg-info")

    def extract(self, path: str, data: bytes) -> Any:
        return parse_metadata(data.decode("utf-8", errors="replace"))

    def catalog(self, files: Mapping[str, FileRecord], os_release: OSRelease | None) -> list[Package]:
        packages = []
        for path in sorted(files):
            record = files[path]
            meta = record.value
            if not isinstance(meta, dict) or not meta.get("name") or not meta.get("version"):
                continue
            packages.append(
                Package(
                    name=meta["name"],
                    version=meta["version"],
                    type="pypi",
                    licenses=tuple(meta.get("licenses", [])),
                    location=path,
                    # One result per environment: the directory the .dist-info / .egg-info sits in.
                    project=_environment(path),
                    layer_digest=record.layer_digest,
                    depends=tuple(meta.get("requires", [])),
                )
            )
        return packages


def _headers(text: str) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    for line in text.splitlines():
        if not line.strip():
            break
        if line[0] in " \t" and headers:
            name, value = headers[-1]
            headers[-1] = (name, value + "\n" + line.strip())
            continue
        name, sep, value = line.partition(":")
        if sep:
            headers.append((name.strip().lower(), value.strip()))
    return headers


def _is_license_identifier(value: str) -> bool:
    short = len(value) <= _MAX_LICENSE_FIELD and "\n" not in value
    return bool(value) and short and value.upper() not in ("UNKNOWN", "NONE")


def parse_metadata(text: str) -> dict[str, Any]:
    headers = _headers(text)
    first: dict[str, str] = {}
    for name, value in headers:
        first.setdefault(name, value)
    licenses: list[str] = []
    if first.get("license-expression"):
        licenses = [first["license-expression"]]
    elif _is_license_identifier(first.get("license", "")):
        licenses = [first["license"]]
    if not licenses:
        licenses = [
            value.split("::")[-1].strip()
            for name, value in headers
            if name == "classifier" and value.startswith("License ::") and value.count("::") >= 2
        ]
    requires = []
    for name, value in headers:
        if name != "requires-dist" or ";" in value:
            continue
        match = _REQUIREMENT_NAME.match(value)
        if match and match.group(1) not in requires:
            requires.append(match.group(1))
    return {
        "name": first.get("name", ""),
        "version": first.get("version", ""),
        "licenses": licenses,
        "requires": requires,
    }


def _environment(path: str) -> str:
    for marker in (".dist-info/", ".egg-info/", ".egg-info"):
        head, found, _ = path.partition(marker)
        if found:
            return posixpath.dirname(head)
    return posixpath.dirname(path)
