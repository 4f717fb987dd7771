"""The README keeps its promises: the two set-up commands first, a configuration table that is current."""

from __future__ import annotations

from pathlib import Path

from shared.settings import configuration_table

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_opens_with_the_two_commands() -> None:
    first_block = README.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    assert [line.split("#")[0].strip() for line in first_block] == ["bash scripts/serve", "bash scripts/test"]
    assert (ROOT / "scripts" / "serve").is_file() and (ROOT / "scripts" / "test").is_file()


def test_ci_runs_the_readme_test_command() -> None:
    assert "exec bash scripts/test" in (ROOT / ".ci" / "run").read_text()


def test_configuration_table_is_current() -> None:
    assert configuration_table() in README, "regenerate the table with shared.settings.configuration_table()"


def test_registry_types_table_matches_its_doc() -> None:
    doc = (ROOT / "docs" / "registry-types.md").read_text()
    table = doc[doc.index("| type | authentication") : doc.index("`SNYK_DISABLE_LIST_REPOS=true`")].strip()
    assert table in README
