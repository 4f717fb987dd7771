"""Fixtures shared by the deploy tests: the per-function zips and the wheelhouse built from them."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tests.deploy.artifacts import package_functions, wheelhouse


@pytest.fixture(scope="session")
def function_zips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{function name: zip}``, made by the documented command (scripts/package_functions.py)."""
    out = tmp_path_factory.mktemp("function-zips")
    return {path.stem: path for path in package_functions(out)}


@pytest.fixture(scope="session")
def requirements_txt(function_zips: dict[str, Path]) -> str:
    """The pinned requirements every zip carries (one text: they are identical by construction)."""
    texts = set()
    for path in function_zips.values():
        with zipfile.ZipFile(path) as archive:
            texts.add(archive.read("requirements.txt").decode())
    assert len(texts) == 1, "the zips disagree on requirements.txt"
    return texts.pop()


@pytest.fixture(scope="session")
def wheelhouse_dir(requirements_txt: str) -> Path:
    """Wheels for those requirements (and the build backend): built once, then cached across runs."""
    return wheelhouse(requirements_txt)
