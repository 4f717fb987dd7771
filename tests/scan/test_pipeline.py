"""One scan from image to outcome: a stored scan renders later exactly as it would have at scan time
(GET /scan/<id>?format=), and layers are read in a worker process only where that can help."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from shared.image.layer_worker import LayerWorker
from shared.scan import pipeline
from shared.scan.pipeline import ScanOutcome, scan_image
from shared.settings import Settings
from tests.harness.procs import is_alive

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "images"


def test_outcome_survives_a_json_round_trip(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    outcome = scan_image(f"docker-archive:{FIXTURES / 'nginx-debian10.docker.tar'}", settings)
    assert outcome.inventory.os_packages  # a real inventory, not an empty one
    stored = json.loads(json.dumps(outcome.to_json()))
    restored = ScanOutcome.from_json(stored)
    assert restored.inventory == outcome.inventory
    assert restored.image == outcome.image
    for output_format in ("snyk", "table"):
        assert restored.render(output_format) == outcome.render(output_format)


def test_scans_read_layers_in_a_worker_process_when_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[int] = []
    original = LayerWorker.start

    def recording(self: LayerWorker) -> None:
        original(self)
        if self.pid is not None and self.pid not in started:
            started.append(self.pid)

    monkeypatch.setattr(LayerWorker, "start", recording)
    image = f"docker-archive:{FIXTURES / 'nginx-debian10.docker.tar'}"
    monkeypatch.setattr(pipeline, "usable_cpus", lambda: 2)
    scan_image(image, Settings(state_dir=tmp_path / "small", layer_cache_max_bytes=0))
    assert not started  # a few kilobytes of layers: not worth a process
    # As if the image were hundreds of megabytes:
    every_size = Settings(state_dir=tmp_path / "a", layer_cache_max_bytes=0, scan_layer_worker_min_bytes=0)
    two_cores = scan_image(image, every_size)
    assert len(started) == 1 and not is_alive(started[0])  # one child for the scan, ended with it
    in_process = scan_image(
        image, Settings(state_dir=tmp_path / "b", scan_layer_worker=False, layer_cache_max_bytes=0)
    )
    monkeypatch.setattr(pipeline, "usable_cpus", lambda: 1)
    one_core = scan_image(
        image, Settings(state_dir=tmp_path / "c", layer_cache_max_bytes=0, scan_layer_worker_min_bytes=0)
    )
    assert len(started) == 1  # neither turned off nor on a single CPU did a child start
    assert two_cores.inventory == in_process.inventory == one_core.inventory


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [
        ("max 100000\n", 2),  # no quota: the affinity mask decides
        ("100000 100000\n", 1),  # docker --cpus 1
        ("150000 100000\n", 2),  # 1.5 CPUs: the second core is partly usable
        ("50000 100000\n", 1),  # half a CPU is still one process at a time
        ("garbage", 2),
    ],
)
def test_usable_cpus_respects_the_cgroup_quota(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cpu_max: str, expected: int
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    limit = tmp_path / "cpu.max"
    limit.write_text(cpu_max)
    assert pipeline.usable_cpus(limit) == expected
    assert pipeline.usable_cpus(tmp_path / "absent") == 2
