"""Installed gem specifications.

Oracle: ``syft dir:`` (its ruby-gemspec cataloger, image set) over `apptree`, whose gemspecs are
in the form RubyGems generates. Dependency names are the ``add_runtime_dependency`` lines written.
"""

from __future__ import annotations

from typing import Any

from shared.scan.catalogers.ruby import GemspecCataloger, parse_gemspec
from tests.scan.catalogers import apptree
from tests.scan.catalogers.helpers import by_name, run_cataloger


def test_matches_syft(syft_apps: dict[str, list[dict[str, Any]]]) -> None:
    packages = run_cataloger(GemspecCataloger(), apptree.APP_FILES)
    assert sorted((p.name, p.version, p.location, p.licenses) for p in packages) == sorted(
        (a["name"], a["version"], a["locations"][0]["path"], tuple(lic["value"] for lic in a["licenses"]))
        for a in syft_apps["gem"]
    )


def test_dependencies_and_value_forms() -> None:
    found = by_name(run_cataloger(GemspecCataloger(), apptree.APP_FILES))
    assert found["i18n"].depends == ("concurrent-ruby",)  # minitest is a development dependency
    assert found["rake"].depends == ()
    old_style = (
        'Gem::Specification.new do |s|\n  s.name = %q{json}\n  s.version = "2.6.3"\n'
        "  s.license = %q(Ruby)\nend\n"
    )
    assert parse_gemspec(old_style) == {
        "name": "json",
        "version": "2.6.3",
        "licenses": ["Ruby"],
        "depends": [],
    }
    assert parse_gemspec("s.summary = 'no name'") is None


def test_wants_only_specifications() -> None:
    cataloger = GemspecCataloger()
    assert cataloger.wants("/usr/lib/ruby/gems/3.1.0/specifications/default/json-2.6.1.gemspec", 10, 0o644)
    assert not cataloger.wants("/src/myapp/myapp.gemspec", 10, 0o644)
