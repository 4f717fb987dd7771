"""Session fixtures shared by the cataloger tests (helpers live in `helpers`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.scan.catalogers.apptree import APP_FILES
from tests.scan.catalogers.helpers import fixture_path, shaded_jar, syft_json, write_tree
from tests.scan.catalogers.ostree import scan_tree

# Image paths for the binary fixtures: one syft scan of this tree serves the Rust and Java tests.
BINARY_TREE = {
    "/usr/local/bin/rust-app": ("binaries", "rust-cargo-auditable.elf", 0o755),
    "/opt/app/java-app.jar": ("binaries", "java-app.jar", 0o644),
    "/opt/app/nested.jar": ("binaries", "nested.jar", 0o644),
}
SHADED_JAR = "/opt/app/app-1.0.jar"


@pytest.fixture(scope="session")
def syft_binaries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    files: dict[str, bytes | tuple[bytes, int]] = {
        path: (fixture_path(folder, name).read_bytes(), mode)
        for path, (folder, name, mode) in BINARY_TREE.items()
    }
    files[SHADED_JAR] = shaded_jar()
    return syft_json(f"dir:{write_tree(tmp_path_factory.mktemp('binaries'), files)}")


@pytest.fixture(scope="session")
def syft_apps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """syft's artifacts for `apptree.APP_FILES`, by syft package type.

    A directory scan runs syft's "declared" catalogers; the image set (installed packages) is what
    an image scan uses, plus the .NET deps.json cataloger, which syft files under directories only.
    """
    tree = write_tree(tmp_path_factory.mktemp("apps"), APP_FILES)
    document = syft_json(
        f"dir:{tree}",
        "--override-default-catalogers",
        "image",
        "--select-catalogers",
        "+dotnet-deps-cataloger",
    )
    grouped: dict[str, list[dict[str, Any]]] = {}
    for artifact in document["artifacts"]:
        grouped.setdefault(artifact["type"], []).append(artifact)
    return grouped


@pytest.fixture(scope="session")
def syft_os_dbs(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], list[dict[str, Any]]]:
    """``select(prefix, type)``: syft's artifacts of one package type found under one `ostree` prefix."""
    document = syft_json(f"dir:{write_tree(tmp_path_factory.mktemp('os'), scan_tree())}")

    def select(prefix: str, kind: str) -> list[dict[str, Any]]:
        return [
            a
            for a in document["artifacts"]
            if a["type"] == kind and a["locations"][0]["path"].startswith(prefix + "/")
        ]

    return select
