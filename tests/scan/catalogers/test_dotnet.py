"""NuGet packages from .deps.json.

Oracle: ``syft dir:`` (its dotnet-deps cataloger) over `apptree`. syft also reports the
``type: project`` library (the application itself, ``webapi``); we do not, since it is not a NuGet
package. Dependency edges are the ``dependencies`` of the runtime target written in `apptree`.
"""

from __future__ import annotations

from typing import Any

from shared.scan.catalogers.dotnet import DotnetDepsCataloger
from tests.scan.catalogers import apptree
from tests.scan.catalogers.helpers import by_name, run_cataloger


def test_matches_syft_without_the_project(syft_apps: dict[str, list[dict[str, Any]]]) -> None:
    packages = run_cataloger(DotnetDepsCataloger(), apptree.APP_FILES)
    theirs = sorted((a["name"], a["version"]) for a in syft_apps["dotnet"] if a["name"] != "webapi")
    assert {a["name"] for a in syft_apps["dotnet"]} - {p.name for p in packages} == {"webapi"}
    assert sorted((p.name, p.version) for p in packages) == theirs


def test_fields() -> None:
    found = by_name(run_cataloger(DotnetDepsCataloger(), apptree.APP_FILES))
    assert found["Serilog"].depends == ("System.Diagnostics.DiagnosticSource",)
    assert found["Newtonsoft.Json"].metadata["sha512"].startswith("sha512-HrC5")
    assert all(p.type == "nuget" and p.location == apptree.DEPS_JSON for p in found.values())


def test_runtime_framework_files_are_skipped() -> None:
    cataloger = DotnetDepsCataloger()
    assert not cataloger.wants("/usr/share/dotnet/shared/Microsoft.NETCore.App/8.0.0/x.deps.json", 10, 0o644)
    assert cataloger.wants("/app/x.deps.json", 10, 0o644)
    assert cataloger.extract("/app/x.deps.json", b"not json") is None
