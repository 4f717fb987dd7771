"""Rust crates from cargo-auditable's ``.dep-v0`` section.

Oracles: binutils' ``objcopy --dump-section`` extracts the section with its own ELF reader and the
test inflates it with zlib, so the expected crate list comes from the binary itself; ``syft dir:``
(its cargo-auditable cataloger) on the same file. Synthetic sections are built in the test, so their
expected crates are the ones written.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import pytest

from shared.scan.catalogers.errors import CatalogerError
from shared.scan.catalogers.rust import RustBinaryCataloger, inflate
from tests.scan.catalogers.elfbuild import build_elf
from tests.scan.catalogers.helpers import by_name, fixture_path, require_tool, run_cataloger, run_tool

APP = "/usr/local/bin/rust-app"


def _fixture() -> bytes:
    return fixture_path("binaries", "rust-cargo-auditable.elf").read_bytes()


def test_fixture_matches_objcopy_and_syft(tmp_path: Path, syft_binaries: dict[str, Any]) -> None:
    dumped = tmp_path / "dep-v0"
    copy = tmp_path / "copy.elf"
    copy.write_bytes(_fixture())
    run_tool(
        [require_tool("objcopy"), f"--dump-section=.dep-v0={dumped}", str(copy), str(tmp_path / "out.elf")]
    )
    expected = json.loads(zlib.decompress(dumped.read_bytes()))["packages"]

    packages = run_cataloger(RustBinaryCataloger(), {APP: (_fixture(), 0o755)})
    assert sorted((p.name, p.version) for p in packages) == sorted(
        (e["name"], e["version"]) for e in expected
    )
    crates = [a for a in syft_binaries["artifacts"] if a["type"] == "rust-crate"]
    assert sorted((p.name, p.version) for p in packages) == sorted((a["name"], a["version"]) for a in crates)

    found = by_name(packages)
    assert found["crate_with_features"].depends == ("library_crate",)  # "dependencies": [1]
    assert found["crate_with_features"].metadata == {"source": "local", "root": True}
    assert all(p.type == "cargo" and p.location == APP for p in packages)


def _audit_binary(packages: list[dict[str, Any]], level: int = 6) -> bytes:
    section = zlib.compress(json.dumps({"packages": packages}).encode(), level)
    return build_elf([(".dep-v0", section)])


def test_build_time_crates_are_not_reported() -> None:
    binary = _audit_binary(
        [
            {"name": "app", "version": "0.1.0", "source": "local", "dependencies": [1, 2], "root": True},
            {"name": "serde", "version": "1.0.190", "source": "crates.io", "kind": "runtime"},
            {"name": "cc", "version": "1.0.83", "source": "crates.io", "kind": "build"},
        ]
    )
    found = by_name(run_cataloger(RustBinaryCataloger(), {"/app": (binary, 0o755)}))
    assert sorted(found) == ["app", "serde"]
    assert found["app"].depends == ("serde",)
    assert found["serde"].metadata == {"source": "crates.io"}


def test_inflation_is_capped() -> None:
    bomb = zlib.compress(b" " * 1_000_000, 9)
    assert len(bomb) < 2000
    with pytest.raises(CatalogerError, match="more than 1000 bytes"):
        inflate(bomb, limit=1000)
    assert inflate(bomb) == b" " * 1_000_000


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (b"not zlib at all", "not valid zlib"),
        (zlib.compress(b"[1, 2]"), "no 'packages' list"),
        (zlib.compress(b'{"packages": [{"name": "a", "dependencies": [7]}]}'), "invalid dependency"),
        (zlib.compress(b"{"), "not JSON"),
    ],
)
def test_damaged_sections_raise_clear_errors(section: bytes, message: str) -> None:
    with pytest.raises(CatalogerError, match=message):
        RustBinaryCataloger().extract("/app", build_elf([(".dep-v0", section)]))


def test_binaries_without_audit_data() -> None:
    cataloger = RustBinaryCataloger()
    assert cataloger.extract("/app", fixture_path("binaries", "go-buildinfo.elf").read_bytes()) is None
    assert cataloger.extract("/app", b"MZ not an elf file" * 10) is None
