"""The load benchmark still runs: ``bench/load.py --tiny`` end to end, in well under a minute.

It seeds a small registry (token auth), runs the real agent under concurrent listing load, counts
what single requests cost the registry, then queues scans with ``MAX_ACTIVE_OPERATIONS`` 1 and 2.
Timings are NOT asserted (a tiny run on a shared CI machine says nothing about speed); what is
checked is that every request got the right answer, that every scan delivered its ``result`` and
``done`` callbacks exactly once, and that one listing or describe costs one TCP connection to the
registry and one token (the bench exits 1 on the first two as well).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.registry import registry_binary
from tests.harness.skopeo import skopeo_path

ROOT = Path(__file__).resolve().parents[2]


def test_load_bench_tiny(tmp_path: Path) -> None:
    if registry_binary() is None or skopeo_path() is None:
        pytest.skip("docker-registry and skopeo are needed: apt-get install docker-registry skopeo")
    summary = tmp_path / "load.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "load.py"), "--tiny", "--json", str(summary)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "### Listing:" in result.stdout and "### Scans:" in result.stdout
    data = json.loads(summary.read_text())
    assert data["problems"] == []

    listing = data["listing"]
    assert listing["errors"] == 0 and listing["not_sent"] == 0
    assert listing["requests"] == 30
    assert {k["kind"] for k in listing["by_kind"] if k["count"]} == {"catalog", "tags", "metadata"}
    assert listing["peak_rss_bytes"] > 0
    # One agent request = one registry connection (the 401 challenge's connection is reused) and
    # one token for its one scope.
    for cost in listing["cost"]:
        assert cost["connections"] == 1, cost
        assert list(cost["tokens"].values()) == [1], cost

    assert [s["max_active"] for s in data["scans"]] == [1, 2]
    for scans in data["scans"]:
        assert scans["done"] == scans["scans"] == 6, scans
        assert scans["delivered_results"] == scans["delivered_dones"] == 6, scans
        assert scans["missing"] == scans["duplicated"] == 0, scans
        assert scans["packages_in_one_result"] > 0
        assert 0 < scans["peak_rss_bytes"] < 2 * 1000**3
