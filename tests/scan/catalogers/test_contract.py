"""The cataloger contract (shared/scan/model.py) for every default cataloger, and robustness.

No oracle is needed here: the expectations are the contract itself. ``extract`` on damaged input
(real fixtures cut short, deterministic random bytes) must return a JSON-able value or None, or
raise `CatalogerError`; any other exception would abort a whole image scan on one bad file.
"""

from __future__ import annotations

import json
import random
import time

import pytest

from shared.scan.catalogers import CatalogerError, default_catalogers
from shared.scan.model import Cataloger
from tests.scan.catalogers.helpers import fixture_path

# One path each cataloger wants, and a real file of that kind to damage.
SAMPLES = {
    "os-release": ("/etc/os-release", None),
    "dpkg": ("/var/lib/dpkg/status", None),
    "apk": ("/lib/apk/db/installed", None),
    "rpm": ("/var/lib/rpm/Packages", ("rpmdb", "bdb-libuuid.Packages")),
    "chisel": ("/var/lib/chisel/manifest.wall", None),
    "python": ("/usr/lib/python3/dist-packages/a-1.dist-info/METADATA", None),
    "node": ("/app/node_modules/a/package.json", None),
    "java-archive": ("/app/app.jar", ("binaries", "nested.jar")),
    "go-binary": ("/usr/bin/app", ("binaries", "go-buildinfo.elf")),
    "rust-binary": ("/usr/bin/app", ("binaries", "rust-cargo-auditable.elf")),
    "dotnet-deps": ("/app/a.deps.json", None),
    "php-composer": ("/app/vendor/composer/installed.json", None),
    "ruby-gemspec": ("/gems/specifications/a-1.gemspec", None),
}
EXTRA_DAMAGED = {
    "rpm": [("rpmdb", "ndb-sle15-bci.Packages.db"), ("rpmdb", "sqlite-cbl-mariner-2.0.rpmdb.sqlite")],
    "java-archive": [("binaries", "java-app.jar")],
}


def _catalogers() -> list[Cataloger]:
    return default_catalogers()


def test_every_default_cataloger_has_a_sample_and_a_unique_name() -> None:
    names = [c.name for c in _catalogers()]
    assert sorted(names) == sorted(SAMPLES)
    assert all(c.ecosystem for c in _catalogers())
    assert {c.name for c in _catalogers() if c.ecosystem == "os"} == {
        "os-release",
        "dpkg",
        "apk",
        "rpm",
        "chisel",
    }


@pytest.mark.parametrize("cataloger", _catalogers(), ids=lambda c: c.name)
def test_wants_its_sample_and_is_cheap(cataloger: Cataloger) -> None:
    path, _ = SAMPLES[cataloger.name]
    assert cataloger.wants(path, 4096, 0o755) is True
    assert cataloger.wants("/srv/data/unrelated.bin.dat", 4096, 0o644) is False
    started = time.perf_counter()
    for i in range(2000):
        cataloger.wants(f"/usr/share/doc/pkg{i}/copyright.txt", 1000, 0o644)
    # 2000 calls well under 50 ms: wants() runs for every file of every layer.
    assert time.perf_counter() - started < 0.05 * 4  # margin for a loaded CI machine


def _damaged(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    cuts = [data[:n] for n in (0, 1, 16, 64, 100, 511, 4096, len(data) // 2, len(data) - 1) if n <= len(data)]
    variants = [*cuts, bytes(rng.randrange(256) for _ in range(2048))]
    for _ in range(4):  # scattered damage, then damage concentrated in the headers
        for span in (len(data), min(len(data), 512)):
            flipped = bytearray(data)
            for _ in range(max(1, span // 200)):
                if span:
                    flipped[rng.randrange(span)] = rng.randrange(256)
            variants.append(bytes(flipped))
    return variants


@pytest.mark.timeout(60)
@pytest.mark.parametrize("cataloger", _catalogers(), ids=lambda c: c.name)
def test_extract_on_damaged_input_fails_cleanly(cataloger: Cataloger) -> None:
    path, real = SAMPLES[cataloger.name]
    sources = [b'{"name": "x", "version": "1"}\nPackage: x\nP:x\n' * 20]
    for parts in ([real] if real else []) + EXTRA_DAMAGED.get(cataloger.name, []):
        sources.append(fixture_path(*parts).read_bytes())
    outcomes = {"value": 0, "error": 0}
    for seed, source in enumerate(sources):
        for data in _damaged(source, seed):
            try:
                value = cataloger.extract(path, data)
            except CatalogerError:
                outcomes["error"] += 1
                continue
            json.dumps(value)  # must stay cacheable
            outcomes["value"] += 1
    assert sum(outcomes.values()) >= 10
