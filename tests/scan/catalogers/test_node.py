"""Installed npm packages under node_modules.

Oracle: ``syft dir:`` with its image catalogers over `apptree`. Two deliberate differences, both
asserted: syft also reports ``node_modules/rxjs/ajax/package.json`` (a module-resolution stub below
the rxjs root, which Trivy's package-root rule excludes) and the project's own ``/srv/app/package.json``
(the application, not an installed dependency; Snyk scans it as the project manifest).
"""

from __future__ import annotations

from typing import Any

from shared.scan.catalogers.node import NodeCataloger, is_package_root
from tests.scan.catalogers import apptree
from tests.scan.catalogers.helpers import run_cataloger


def test_matches_syft_except_non_roots(syft_apps: dict[str, list[dict[str, Any]]]) -> None:
    packages = run_cataloger(NodeCataloger(), apptree.APP_FILES)
    ours = sorted(
        (f"{p.namespace}/{p.name}" if p.namespace else p.name, p.version, p.location) for p in packages
    )
    theirs = sorted((a["name"], a["version"], a["locations"][0]["path"]) for a in syft_apps["npm"])
    not_roots = {apptree.RXJS_AJAX, apptree.APP_MANIFEST}
    assert {t[2] for t in theirs} - {o[2] for o in ours} == not_roots
    assert ours == [t for t in theirs if t[2] not in not_roots]


def test_fields() -> None:
    packages = {p.location: p for p in run_cataloger(NodeCataloger(), apptree.APP_FILES)}
    express = packages[apptree.EXPRESS]
    assert express.depends == ("accepts", "debug")  # devDependencies are not installed deps
    babel = packages[apptree.BABEL]
    assert (babel.namespace, babel.name, babel.licenses) == ("@babel", "core", ("MIT",))
    assert packages[apptree.NESTED_DEBUG].licenses == ("MIT",)  # legacy "licenses" array
    assert {p.metadata["project"] for p in packages.values()} == {"/srv/app"}  # nested ones too
    assert all(p.type == "npm" for p in packages.values())


def test_package_root_rule() -> None:
    assert is_package_root("/a/node_modules/left-pad/package.json")
    assert is_package_root("/a/node_modules/@scope/pkg/package.json")
    assert is_package_root("/a/node_modules/x/node_modules/y/package.json")
    assert not is_package_root("/a/node_modules/rxjs/ajax/package.json")
    assert not is_package_root("/a/node_modules/@scope/package.json")
    assert not is_package_root("/a/package.json")
    assert not is_package_root("/a/node_modules/x/index.js")


def test_unparseable_or_incomplete_manifests_are_skipped() -> None:
    cataloger = NodeCataloger()
    assert cataloger.extract("/n/node_modules/x/package.json", b"{not json") is None
    assert cataloger.extract("/n/node_modules/x/package.json", b'{"name": "x"}') is None
    assert cataloger.extract("/n/node_modules/x/package.json", b"[1]") is None
