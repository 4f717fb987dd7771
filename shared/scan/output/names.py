"""A package's name as its own ecosystem spells it in full.

Catalogers may keep a namespace apart (``namespace="@angular", name="core"``) or leave it inside the
name (``name="@angular/core"``); every format wants one spelling, so both are folded here.
"""

from __future__ import annotations

import re

from shared.scan.model import Package

_PEP503_SEPARATORS = re.compile(r"[-_.]+")


def pep503(name: str) -> str:
    """PEP 503 normalised Python project name: the form PyPI and the purl spec compare on."""
    return _PEP503_SEPARATORS.sub("-", name).lower()


def native_name(pkg: Package) -> str:
    """``@angular/core``, ``org.apache:commons-lang3``, ``github.com/gorilla/mux``, ``laravel/framework``."""
    ns, name = pkg.namespace, pkg.name
    if not ns:
        return name
    if pkg.type == "maven":
        return name if ":" in name else f"{ns}:{name}"
    if pkg.type == "npm":
        if "/" in name:
            return name
        return f"{ns if ns.startswith('@') else '@' + ns}/{name}"
    if pkg.type in ("golang", "composer"):
        return name if name.startswith(f"{ns}/") else f"{ns}/{name}"
    return name


def match_keys(pkg: Package) -> set[str]:
    """The names a ``depends`` entry may use to point at this package.

    Besides its own names, the virtual names it provides when the cataloger recorded them in
    ``metadata["provides"]`` (dpkg ``Provides:``, apk ``p:``): ``base-files`` pre-depends on ``awk``,
    which only ``mawk`` provides.
    """
    keys = {pkg.name, native_name(pkg)}
    provides = pkg.metadata.get("provides")
    if isinstance(provides, (list, tuple)):
        keys |= {p for p in provides if isinstance(p, str) and p}
    if pkg.type == "pypi":
        keys |= {pep503(k) for k in keys}
    return keys


def depends_key(pkg_type: str, name: str) -> str:
    """Normalise a ``depends`` entry the way :func:`match_keys` normalised the targets."""
    return pep503(name) if pkg_type == "pypi" else name
