"""Go module build info in ELF binaries.

Oracles: ``syft dir:`` (whose Go cataloger uses Go's own ``debug/buildinfo``) on the Trivy fixture
(Go 1.15, pointer format) and on synthetic Go >= 1.18 binaries (inline strings) that the test
builds with `elfbuild`; syft reading the synthetic binary the same way shows the builder follows
the format. Where syft and we differ on purpose (local-directory replacements), the test says why.
"""

from __future__ import annotations

import functools
import struct

import pytest

from shared.scan.catalogers.elf import ElfError
from shared.scan.catalogers.golang import GoBinaryCataloger, parse_modinfo
from shared.scan.model import Package
from tests.scan.catalogers.elfbuild import build_elf
from tests.scan.catalogers.helpers import fixture_path, offer, run_cataloger, syft_json, write_tree

SENTINEL_START = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
SENTINEL_END = bytes.fromhex("f932433186182072008242104116d8f2")


def _full_name(package: Package) -> str:
    return f"{package.namespace}/{package.name}" if package.namespace else package.name


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def inline_buildinfo(go_version: str, modinfo: str) -> bytes:
    """A Go >= 1.18 ``.go.buildinfo`` section: 32-byte header (flag 0x2), then two uvarint strings."""
    framed = SENTINEL_START + modinfo.encode() + SENTINEL_END
    header = b"\xff Go buildinf:" + bytes([8, 0x2]) + b"\0" * 16
    return header + _uvarint(len(go_version)) + go_version.encode() + _uvarint(len(framed)) + framed


MODINFO = (
    "path\texample.com/app/cmd/app\n"
    "mod\texample.com/app\t(devel)\t\n"
    "dep\tgithub.com/a/b\tv1.2.3\th1:aaa=\n"
    "dep\tgithub.com/old/mod\tv0.1.0\n"
    "=>\tgithub.com/new/mod\tv0.2.0\th1:bbb=\n"
    'build\t-ldflags="-s -X main.version=1.4.2"\n'
    "build\tGOOS=linux\n"
)
LOCAL_MODINFO = (
    "path\texample.com/app\nmod\texample.com/app\tv1.0.0\t\n"
    "dep\texample.com/local\tv0.0.0\n=>\t../local\t\t\n"
)
# Go's writer emits a replaced dep without a sum and a local replacement as "=>\tpath\t\t".


@functools.cache
def binaries() -> dict[str, bytes | tuple[bytes, int]]:
    """The fixture (Go 1.15, pointer format) and two synthetic Go >= 1.18 binaries, by image path."""
    return {
        "/fixture/app": (fixture_path("binaries", "go-buildinfo.elf").read_bytes(), 0o755),
        "/inline/server": (build_elf([(".go.buildinfo", inline_buildinfo("go1.21.5", MODINFO))]), 0o755),
        "/local/app": (
            build_elf([(".go.buildinfo", inline_buildinfo("go1.22.1 X:boringcrypto", LOCAL_MODINFO))]),
            0o755,
        ),
    }


@pytest.fixture(scope="module")
def syft_go(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[tuple[str, str]]]:
    """syft's Go modules per binary path, from one scan of all test binaries."""
    document = syft_json(f"dir:{write_tree(tmp_path_factory.mktemp('go'), binaries())}")
    found: dict[str, set[tuple[str, str]]] = {}
    for artifact in document["artifacts"]:
        if artifact["type"] != "go-module":
            continue
        # syft spells the stdlib version "go1.15.2"; its purl, like us, says "1.15.2".
        version = artifact["purl"].rsplit("@", 1)[1] if artifact["name"] == "stdlib" else artifact["version"]
        for location in artifact["locations"]:
            found.setdefault(location["path"], set()).add((artifact["name"], version))
    return found


def _ours(path: str) -> list[Package]:
    return run_cataloger(GoBinaryCataloger(), {path: binaries()[path]})


def _names(packages: list[Package]) -> set[tuple[str, str]]:
    return {(_full_name(p), p.version) for p in packages}


def test_pointer_format_fixture_matches_syft(syft_go: dict[str, set[tuple[str, str]]]) -> None:
    packages = _ours("/fixture/app")
    assert _names(packages) == syft_go["/fixture/app"]
    assert len(packages) == 5
    main = next(p for p in packages if p.metadata.get("main"))
    assert _full_name(main) == "github.com/aquasecurity/test"
    assert set(main.depends) == {_full_name(p) for p in packages if p.name != "stdlib" and p is not main}
    xerrors = next(p for p in packages if p.name == "xerrors")
    assert (xerrors.namespace, xerrors.location) == ("golang.org/x", "/fixture/app")


def test_stripped_section_headers_fall_back_to_the_data_segment() -> None:
    data = bytearray(fixture_path("binaries", "go-buildinfo.elf").read_bytes())
    struct.pack_into("<Q", data, 40, 0)  # e_shoff
    struct.pack_into("<HH", data, 60, 0, 0)  # e_shnum, e_shstrndx
    stripped = run_cataloger(GoBinaryCataloger(), {"/fixture/app": (bytes(data), 0o755)})
    assert stripped == _ours("/fixture/app") and len(stripped) == 5


def test_inline_format_matches_syft(syft_go: dict[str, set[tuple[str, str]]]) -> None:
    packages = _ours("/inline/server")
    assert (
        _names(packages)
        == syft_go["/inline/server"]
        == {
            ("example.com/app", "v1.4.2"),  # (devel) main module, version from -ldflags
            ("github.com/a/b", "v1.2.3"),
            ("github.com/new/mod", "v0.2.0"),  # what was compiled is the replacement
            ("stdlib", "1.21.5"),
        }
    )
    replaced = next(p for p in packages if p.name == "mod")
    assert replaced.metadata["replaces"] == "github.com/old/mod"


def test_local_replacement_keeps_the_module_path(syft_go: dict[str, set[tuple[str, str]]]) -> None:
    ours, theirs = _names(_ours("/local/app")), syft_go["/local/app"]
    # syft reports the replacement directory "../local" (version UNKNOWN). A vulnerability database
    # knows the module path, not a directory, and the code is local, so we keep the path with Go's
    # "(devel)".
    assert ("../local", "UNKNOWN") in theirs and ("example.com/local", "(devel)") in ours
    assert ours - {("example.com/local", "(devel)")} == theirs - {("../local", "UNKNOWN")}
    assert ("stdlib", "1.22.1") in ours  # the GOEXPERIMENT suffix is not part of the version


def test_modinfo_without_trailing_newline_is_ignored_as_go_does() -> None:
    section = inline_buildinfo("go1.21.0", "path\tx\nmod\tx\tv1.0.0")  # no "\n" before the end sentinel
    files = offer(GoBinaryCataloger(), {"/app": (build_elf([(".go.buildinfo", section)]), 0o755)})
    assert files["/app"].value["main"] is None and files["/app"].value["go_version"] == "go1.21.0"


def test_not_go_or_not_elf_returns_none() -> None:
    cataloger = GoBinaryCataloger()
    assert cataloger.extract("/bin/script", b"#!/bin/sh\necho hi\n" * 10) is None
    rust = fixture_path("binaries", "rust-cargo-auditable.elf").read_bytes()
    assert cataloger.extract("/bin/rust", rust) is None


def test_forged_pointers_and_lengths_raise_clear_errors() -> None:
    data = bytearray(fixture_path("binaries", "go-buildinfo.elf").read_bytes())
    section_offset = 0x19E000  # .go.buildinfo, per readelf -S on the fixture
    assert data[section_offset : section_offset + 14] == b"\xff Go buildinf:"
    struct.pack_into("<Q", data, section_offset + 16, 0xDEADBEEF)
    with pytest.raises(ElfError, match="not mapped"):
        GoBinaryCataloger().extract("/app", bytes(data))
    huge = b"\xff Go buildinf:" + bytes([8, 0x2]) + b"\0" * 16 + _uvarint(1 << 40) + b"go"
    with pytest.raises(ElfError, match="runs past the file or the cap"):
        GoBinaryCataloger().extract("/app", build_elf([(".go.buildinfo", huge)]))


def test_modinfo_lines() -> None:
    info = parse_modinfo(MODINFO)
    assert info["path"] == "example.com/app/cmd/app"
    assert info["main"] == {"path": "example.com/app", "version": "(devel)", "sum": ""}
    assert info["deps"][1]["replace"] == {"path": "github.com/new/mod", "version": "v0.2.0", "sum": "h1:bbb="}
    assert info["build"] == {"-ldflags": '"-s -X main.version=1.4.2"', "GOOS": "linux"}
