"""Installed Python distributions.

Oracle: ``syft dir:`` with its image catalogers over `apptree` (names, versions, locations). Where
we differ on purpose: syft lower-cases names (``jinja2``), we keep them as written because PEP 503
normalisation belongs to purl building; syft reports a pasted licence text and ``UNKNOWN`` as
licences, we report neither (a pasted text is not an identifier, ``UNKNOWN`` is no licence) and fall
back to the ``License ::`` classifier. Dependency names are checked against the ``Requires-Dist``
lines written in `apptree` (an environment marker means optional, so no edge).
"""

from __future__ import annotations

from typing import Any

from shared.scan.catalogers.python import PythonCataloger, parse_metadata
from tests.scan.catalogers import apptree
from tests.scan.catalogers.helpers import by_name, run_cataloger


def test_matches_syft(syft_apps: dict[str, list[dict[str, Any]]]) -> None:
    packages = run_cataloger(PythonCataloger(), apptree.APP_FILES)
    assert sorted((p.name.lower(), p.version, p.location) for p in packages) == sorted(
        (a["name"], a["version"], a["locations"][0]["path"]) for a in syft_apps["python"]
    )
    assert all(p.type == "pypi" for p in packages)


def test_fields_and_licence_choice() -> None:
    found = by_name(run_cataloger(PythonCataloger(), apptree.APP_FILES))
    assert found["requests"].depends == ("charset-normalizer", "idna", "urllib3", "certifi")
    assert found["requests"].licenses == ("Apache 2.0",)
    assert found["Jinja2"].licenses == ("BSD-3-Clause",)  # License-Expression (Metadata 2.4)
    assert found["Jinja2"].depends == ("MarkupSafe",)
    assert found["classified"].licenses == ("MIT License",)  # the pasted text is skipped
    assert found["old-pkg"].licenses == () and found["old-pkg"].location == apptree.OLD_EGG
    assert found["six"].location == apptree.SIX


def test_body_after_headers_is_not_read() -> None:
    assert parse_metadata(apptree.APP_FILES[apptree.REQUESTS].decode())["name"] == "requests"


def test_wants() -> None:
    cataloger = PythonCataloger()
    assert cataloger.wants("/x/site-packages/a-1.dist-info/METADATA", 100, 0o644)
    assert cataloger.wants("/x/site-packages/a-1.egg-info", 100, 0o644)
    assert cataloger.wants("/x/site-packages/a-1.egg/EGG-INFO/PKG-INFO", 100, 0o644)
    assert not cataloger.wants("/x/site-packages/a-1.dist-info/RECORD", 100, 0o644)
    assert not cataloger.wants("/x/site-packages/a-1.dist-info/METADATA", 50 * 1024 * 1024, 0o644)
