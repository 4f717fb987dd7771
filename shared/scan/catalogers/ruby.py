"""Installed Ruby gems: ``specifications/*.gemspec`` under a gem home.

RubyGems writes these as Ruby source when it installs a gem (``s.name = "rake".freeze``); they are
read with patterns rather than evaluated, as Syft and Trivy do. Understood value forms: a quoted
string, ``%q{...}``, ``%q<...>`` and ``%q(...)`` (also ``%Q``), each optionally followed by
``.freeze``; ``licenses`` as an array of those, ``license`` as one. The version may also be written
``Gem::Version.new("1.2.3")``. Files without a name and version are skipped. Runtime dependencies
(``add_runtime_dependency``/``add_dependency``) become ``depends``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from shared.scan.model import FileRecord, OSRelease, Package

NAME = "ruby-gemspec"
MAX_GEMSPEC = 1024 * 1024
_QUOTED = (
    r""""((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'"""
    r"|%[qQ]\{([^}]*)\}|%[qQ]<([^>]*)>|%[qQ]\(([^)]*)\)"
)
_STRING = f"(?:{_QUOTED})"
_ASSIGN = r"^\s*\w+\.{field}\s*=\s*"
_NAME = re.compile(_ASSIGN.format(field="name") + _STRING, re.MULTILINE)
_VERSION = re.compile(
    _ASSIGN.format(field="version") + r"(?:Gem::Version\.new\(\s*)?" + _STRING, re.MULTILINE
)
_LICENSES = re.compile(_ASSIGN.format(field="licenses") + r"\[([^\]]*)\]", re.MULTILINE)
_LICENSE = re.compile(_ASSIGN.format(field="license") + _STRING, re.MULTILINE)
_DEPENDENCY = re.compile(r"^\s*\w+\.add_(?:runtime_)?dependency[ (]*" + _STRING, re.MULTILINE)
_ANY_STRING = re.compile(_STRING)


def _value(match: re.Match[str] | None) -> str | None:
    if match is None:
        return None
    return next((g for g in match.groups() if g is not None), None)


class GemspecCataloger:
    name = NAME
    ecosystem = "gem"

    def wants(self, path: str, size: int, mode: int) -> bool:
        return path.endswith(".gemspec") and "/specifications/" in path and size <= MAX_GEMSPEC

    def extract(self, path: str, data: bytes) -> Any:
        return parse_gemspec(data.decode("utf-8", errors="replace"))

    def catalog(self, files: Mapping[str, FileRecord], os_release: OSRelease | None) -> list[Package]:
        return [
            Package(
                name=files[path].value["name"],
                version=files[path].value["version"],
                type="gem",
                licenses=tuple(files[path].value["licenses"]),
                location=path,
                # One result per gem home: the directory above specifications/.
                project=path.split("/specifications/", 1)[0],
                layer_digest=files[path].layer_digest,
                depends=tuple(files[path].value["depends"]),
            )
            for path in sorted(files)
            if isinstance(files[path].value, dict)
        ]


def parse_gemspec(text: str) -> dict[str, Any] | None:
    name, version = _value(_NAME.search(text)), _value(_VERSION.search(text))
    if not name or not version:
        return None
    licenses: list[str] = []
    array = _LICENSES.search(text)
    if array is not None:
        licenses = [_value(m) or "" for m in _ANY_STRING.finditer(array.group(1))]
    elif (single := _value(_LICENSE.search(text))) is not None:
        licenses = [single]
    depends: list[str] = []
    for match in _DEPENDENCY.finditer(text):
        dep = _value(match)
        if dep and dep not in depends:
            depends.append(dep)
    return {"name": name, "version": version, "licenses": [x for x in licenses if x], "depends": depends}
