"""Shared pytest fixtures: real registries on 127.0.0.1, seeded with real images (see tests/harness/).

Session-scoped, started lazily on first use and stopped by PID at session end:

* ``registry_noauth``, ``registry_basic``, ``registry_token``, ``registry_tls`` -> `RunningRegistry`
* ``registry``: parametrised over the four modes (test ids ``noauth``/``basic``/``token``/``tls``)
* ``seeded_images``: `SeedInfo` (repositories -> tags, digests, media types, built images)
* ``skopeo_json``: ``skopeo_json(registry, "list-tags"|"inspect", "repo[:tag]", *extra, raw=False,
  platform=None, anonymous=False)``

The session registries are shared: a test that pushes, deletes or changes token-server knobs must use
its own repository name and restore knobs, or use ``registry_factory`` for a private registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness.certs import TestCA
from tests.harness.registry import Mode, RunningRegistry, registry_binary, start_registry
from tests.harness.seed import SeedInfo, build_seed_storage
from tests.harness.skopeo import skopeo_path


@pytest.fixture(scope="session")
def harness_ca() -> TestCA:
    """Session test CA: signs the TLS registry's certificate and the token server's signing cert."""
    if registry_binary() is None:
        pytest.skip("docker-registry (CNCF distribution) not installed: apt-get install docker-registry")
    if skopeo_path() is None:
        pytest.skip("skopeo not installed: apt-get install skopeo")
    return TestCA()


@pytest.fixture(scope="session")
def seeded_images(tmp_path_factory: pytest.TempPathFactory, harness_ca: TestCA) -> SeedInfo:
    return build_seed_storage(tmp_path_factory.mktemp("seed"), harness_ca)


def _start(
    mode: Mode, request: pytest.FixtureRequest, workdir: Path, ca: TestCA, seed: SeedInfo
) -> RunningRegistry:
    reg = start_registry(mode, workdir, ca=ca, seed_storage=seed.storage)
    request.addfinalizer(reg.stop)
    return reg


@pytest.fixture(scope="session")
def registry_noauth(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    harness_ca: TestCA,
    seeded_images: SeedInfo,
) -> RunningRegistry:
    return _start(Mode.NOAUTH, request, tmp_path_factory.mktemp("registry-noauth"), harness_ca, seeded_images)


@pytest.fixture(scope="session")
def registry_basic(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    harness_ca: TestCA,
    seeded_images: SeedInfo,
) -> RunningRegistry:
    return _start(Mode.BASIC, request, tmp_path_factory.mktemp("registry-basic"), harness_ca, seeded_images)


@pytest.fixture(scope="session")
def registry_token(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    harness_ca: TestCA,
    seeded_images: SeedInfo,
) -> RunningRegistry:
    return _start(Mode.TOKEN, request, tmp_path_factory.mktemp("registry-token"), harness_ca, seeded_images)


@pytest.fixture(scope="session")
def registry_tls(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    harness_ca: TestCA,
    seeded_images: SeedInfo,
) -> RunningRegistry:
    return _start(Mode.TLS, request, tmp_path_factory.mktemp("registry-tls"), harness_ca, seeded_images)


@pytest.fixture(scope="session", params=[m.value for m in Mode])
def registry(request: pytest.FixtureRequest) -> RunningRegistry:
    """The same seeded content behind each of the four modes."""
    reg: RunningRegistry = request.getfixturevalue(f"registry_{request.param}")
    return reg


@pytest.fixture
def registry_factory(
    tmp_path: Path, harness_ca: TestCA, seeded_images: SeedInfo
) -> Iterator[Callable[..., RunningRegistry]]:
    """``registry_factory(mode, seeded=True)``: a private registry for destructive tests, stopped after."""
    started: list[RunningRegistry] = []

    def factory(mode: Mode | str, seeded: bool = True) -> RunningRegistry:
        reg = start_registry(
            mode,
            tmp_path / f"registry-{len(started)}",
            ca=harness_ca,
            seed_storage=seeded_images.storage if seeded else None,
        )
        started.append(reg)
        return reg

    yield factory
    for reg in started:
        reg.stop()


@pytest.fixture(scope="session")
def skopeo_json(harness_ca: TestCA) -> Callable[..., Any]:
    """Independent oracle: parsed JSON of skopeo list-tags/inspect against a harness registry."""

    def run(registry: RunningRegistry, command: str, name: str, *extra: str, **options: Any) -> Any:
        return registry.skopeo_json(command, name, *extra, **options)

    return run
