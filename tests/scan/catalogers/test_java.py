"""Java archives: coordinates, manifest fallback, SHA-1 fingerprints, nesting and zip-bomb caps.

Oracles: Info-ZIP ``unzip`` (``unzip -p`` of ``pom.properties`` and ``MANIFEST.MF``, and ``unzip``
of nested jars level by level) and coreutils ``sha1sum`` for fingerprints; ``syft dir:`` for the
manifest-only jar and a synthetic shaded jar. syft does not report ``nested.jar`` at all because
its ``pom.properties`` files are not under ``META-INF/maven/``; they are Maven's coordinates all the
same (Trivy reads them), so there unzip is the oracle and syft is wrong.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest

from shared.scan.catalogers import java
from shared.scan.catalogers.java import JavaArchiveCataloger, name_from_filename, parse_manifest
from tests.scan.catalogers.conftest import SHADED_JAR
from tests.scan.catalogers.helpers import (
    build_jar,
    fixture_path,
    offer,
    require_tool,
    run_cataloger,
    run_tool,
    shaded_jar,
)


def _sha1(path: Path) -> str:
    return run_tool([require_tool("sha1sum"), str(path)]).split()[0]


def _unzip_tree(jar: Path, into: Path) -> dict[str, Path]:
    """Every archive reachable from ``jar`` (virtual path -> extracted file), unpacked with unzip."""
    unzip = require_tool("unzip")
    found = {"": jar}
    pending = [("", jar)]
    while pending:
        prefix, archive = pending.pop()
        target = into / f"x{len(found)}"
        run_tool([unzip, "-q", "-o", str(archive), "-d", str(target)])
        for inner in sorted(target.rglob("*.jar")):
            virtual = f"{prefix}!/{inner.relative_to(target)}"
            found[virtual] = inner
            pending.append((virtual, inner))
    return found


def _pom_coordinates(archive: Path) -> list[tuple[str, str, str]]:
    unzip = require_tool("unzip")
    listing = run_tool([unzip, "-Z1", str(archive)]).split()
    coordinates = []
    for entry in listing:
        if entry.endswith("pom.properties"):
            text = run_tool([unzip, "-p", str(archive), entry])
            values = dict(re.findall(r"^(\w+)=(.*)$", text, re.MULTILINE))
            coordinates.append((values["groupId"], values["artifactId"], values["version"]))
    return coordinates


def test_nested_jars_match_unzip(tmp_path: Path) -> None:
    jar = fixture_path("binaries", "nested.jar")
    archives = _unzip_tree(jar, tmp_path)
    expected = sorted(c for path in archives.values() for c in _pom_coordinates(path))
    assert expected == [
        ("test", "nested", "0.0.1"),
        ("test", "nested2", "0.0.2"),
        ("test", "nested3", "0.0.3"),
    ]

    packages = run_cataloger(JavaArchiveCataloger(), {"/opt/app/nested.jar": jar.read_bytes()})
    assert sorted((p.namespace, p.name, p.version) for p in packages) == expected
    assert all(p.location == "/opt/app/nested.jar" and p.metadata["coordinates"] for p in packages)
    # Fingerprints: each archive's SHA-1 as sha1sum computes it on the unzipped copy.
    by_archive = {p.metadata.get("archive", "/opt/app/nested.jar"): p.metadata["sha1"] for p in packages}
    for virtual, path in archives.items():
        assert by_archive["/opt/app/nested.jar" + virtual] == _sha1(path)


def test_nesting_depth_is_bounded() -> None:
    jar = fixture_path("binaries", "nested.jar").read_bytes()
    files = offer(JavaArchiveCataloger(max_depth=1), {"/a.jar": jar})
    records = files["/a.jar"].value
    assert [r["archive"] for r in records] == ["/a.jar", "/a.jar!/META-INF/jars/nested2.jar"]
    assert records[1]["skipped_nested"] == 1


def test_manifest_only_jar_matches_syft_and_unzip(tmp_path: Path, syft_binaries: dict[str, Any]) -> None:
    jar = fixture_path("binaries", "java-app.jar")
    (package,) = run_cataloger(JavaArchiveCataloger(), {"/opt/app/java-app.jar": jar.read_bytes()})
    manifest = run_tool([require_tool("unzip"), "-p", str(jar), "META-INF/MANIFEST.MF"])
    assert re.search(r"^Implementation-Version: 9\.0\.65\s*$", manifest, re.MULTILINE)
    theirs = [
        a
        for a in syft_binaries["artifacts"]
        if a["type"] == "java-archive" and a["locations"][0]["path"] == "/opt/app/java-app.jar"
    ]
    assert (
        [(a["name"], a["version"]) for a in theirs]
        == [(package.name, package.version)]
        == [("java-app", "9.0.65")]
    )
    assert package.metadata["coordinates"] is False  # a guess from the file name and manifest
    assert package.metadata["sha1"] == _sha1(jar)
    assert package.metadata["manifest"]["Bundle-SymbolicName"] == "org.apache.tomcat-embed-websocket"


def test_shaded_jar_matches_syft(syft_binaries: dict[str, Any]) -> None:
    packages = run_cataloger(JavaArchiveCataloger(), {SHADED_JAR: shaded_jar()})
    theirs = [
        a
        for a in syft_binaries["artifacts"]
        if a["type"] == "java-archive" and a["locations"][0]["path"] == SHADED_JAR
    ]
    assert sorted((p.name, p.version) for p in packages) == sorted((a["name"], a["version"]) for a in theirs)
    assert sorted((p.namespace, p.name) for p in packages) == [("com.example", "app"), ("org.lib", "lib")]


def _stored_jar(name: str, padding: int) -> bytes:
    """A valid jar with one pom and ``padding`` bytes stored uncompressed (so it inflates big)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(
            f"META-INF/maven/g/{name}/pom.properties", f"groupId=g\nartifactId={name}\nversion=1\n"
        )
        archive.writestr("padding.bin", b"\0" * padding)
    return buffer.getvalue()


def test_nested_archives_past_the_entry_cap_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(java, "MAX_NESTED_ENTRY", 100_000)
    # Deflated inside the outer jar, big.jar takes a few hundred bytes but declares 200 kB inflated.
    outer = build_jar(
        {
            "BOOT-INF/lib/big.jar": _stored_jar("big", 200_000),
            "BOOT-INF/lib/small.jar": _stored_jar("small", 10),
        }
    )
    assert len(outer) < 5_000
    records = offer(JavaArchiveCataloger(), {"/app.jar": outer})["/app.jar"].value
    assert [r["archive"] for r in records] == ["/app.jar", "/app.jar!/BOOT-INF/lib/small.jar"]
    assert records[0]["skipped"] == ["BOOT-INF/lib/big.jar"]


def test_nested_archives_share_one_inflation_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(java, "MAX_TOTAL_INFLATED", 150_000)
    outer = build_jar({f"WEB-INF/lib/lib{i}.jar": _stored_jar(f"lib{i}", 60_000) for i in range(4)})
    records = offer(JavaArchiveCataloger(), {"/app.war": outer})["/app.war"].value
    opened = [r["archive"] for r in records[1:]]
    assert opened == ["/app.war!/WEB-INF/lib/lib0.jar", "/app.war!/WEB-INF/lib/lib1.jar"]
    assert records[0]["skipped"] == ["WEB-INF/lib/lib2.jar", "WEB-INF/lib/lib3.jar"]


def test_damaged_archive_is_still_fingerprinted(tmp_path: Path) -> None:
    garbage = b"PK\x03\x04 this is not really a zip" * 20
    (package,) = run_cataloger(JavaArchiveCataloger(), {"/opt/lib/broken-2.1.jar": garbage})
    (tmp_path / "broken.jar").write_bytes(garbage)
    assert (package.name, package.version) == ("broken", "2.1")
    assert package.metadata["sha1"] == _sha1(tmp_path / "broken.jar")
    records = offer(JavaArchiveCataloger(), {"/opt/lib/broken-2.1.jar": garbage})[
        "/opt/lib/broken-2.1.jar"
    ].value
    assert "unreadable archive" in records[0]["error"]


def test_system_jars_follow_snyks_default() -> None:
    default, everything = JavaArchiveCataloger(), JavaArchiveCataloger(include_system_jars=True)
    path = "/usr/lib/jvm/java-17/lib/jrt-fs.jar"
    assert not default.wants(path, 1000, 0o644) and everything.wants(path, 1000, 0o644)
    assert default.wants("/app/lib/guava-31.1-jre.JAR", 1000, 0o644)
    assert not default.wants("/app/lib/notes.txt", 1000, 0o644)
    assert not default.wants("/root/.gradle/caches/modules-2/files-2.1/x.jar", 1000, 0o644)


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("/a/commons-lang3-3.12.0.jar", ("commons-lang3", "3.12.0")),
        ("/a/guava-31.1-jre.jar", ("guava", "31.1-jre")),
        ("/a/netty-all-4.1.77.Final.jar", ("netty-all", "4.1.77.Final")),
        ("/a/spring-core-5.3.20-SNAPSHOT.jar", ("spring-core", "5.3.20-SNAPSHOT")),
        ("/a/java-app.jar", ("java-app", "")),
    ],
)
def test_name_from_filename(filename: str, expected: tuple[str, str]) -> None:
    assert name_from_filename(filename) == expected


def test_manifest_main_section_and_continuations() -> None:
    text = (
        "Manifest-Version: 1.0\r\nImplementation-Title: very long\r\n  title\r\nBundle-Version: 2\r\n"
        "\r\nName: x/\r\nImplementation-Version: 9\r\n"
    )
    assert parse_manifest(text) == {"Implementation-Title": "very long title", "Bundle-Version": "2"}
