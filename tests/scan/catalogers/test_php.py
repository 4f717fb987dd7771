"""Composer's installed.json, versions 1 and 2.

Oracle: ``syft dir:`` (its php-composer-installed cataloger, image set) over `apptree`. Dependency
edges and dev flags are the ``require`` and ``dev-package-names`` written in `apptree`.
"""

from __future__ import annotations

from typing import Any

from shared.scan.catalogers.php import ComposerInstalledCataloger
from tests.scan.catalogers import apptree
from tests.scan.catalogers.helpers import run_cataloger


def test_matches_syft(syft_apps: dict[str, list[dict[str, Any]]]) -> None:
    packages = run_cataloger(ComposerInstalledCataloger(), apptree.APP_FILES)
    assert sorted((f"{p.namespace}/{p.name}", p.version, p.location, p.licenses) for p in packages) == sorted(
        (a["name"], a["version"], a["locations"][0]["path"], tuple(lic["value"] for lic in a["licenses"]))
        for a in syft_apps["php-composer"]
    )


def test_fields() -> None:
    found = {
        f"{p.namespace}/{p.name}": p for p in run_cataloger(ComposerInstalledCataloger(), apptree.APP_FILES)
    }
    assert found["monolog/monolog"].depends == ("psr/log",)  # php and ext-json are platform requirements
    assert found["phpunit/phpunit"].metadata == {"dev": True}
    assert found["symfony/polyfill-mbstring"].location == apptree.COMPOSER1
    assert all(p.type == "composer" for p in found.values())
