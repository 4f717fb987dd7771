"""The benchmark still runs: ``bench/scan_vs_references.py --smoke`` end to end, on tiny images.

It starts its own registry, builds and pushes two small images, runs the agent, syft and
snyk-docker-plugin once each on the registry and on a docker archive, and prints the comparison
table. Timings and ratios are NOT asserted (tiny images on a shared CI machine say nothing); what is
checked is that every tool ran, that the report has its parts, and that the agent found exactly the
packages the image generator put in (the bench exits 1 otherwise).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.scan.oracles import tools

ROOT = Path(__file__).resolve().parents[2]


def test_bench_smoke(tmp_path: Path) -> None:
    for name in ("syft", "node", "docker-registry", "skopeo"):
        tools.tool(name)
    if not tools.SDP_PACKAGE.is_file():
        tools.sdp("docker-archive:/nonexistent", tmp_path)  # skips (fails in CI) with the install hint
    summary = tmp_path / "summary.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "scan_vs_references.py"), "--smoke", "--json", str(summary)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    for part in (
        "agent/syft: time",
        "agent/snyk-docker-plugin: time",
        "(flatness)",
        "source: registry",
        "source: archive",
    ):
        assert part in out
    data = json.loads(summary.read_text())
    seen = {(r["tool"], r["source"], r["size_mib"]) for r in data["runs"]}
    assert seen == {
        (t, s, z) for t in ("agent", "syft", "sdp") for s in ("registry", "archive") for z in (2, 6)
    }
    # Every reference found the OS packages too: all three did the same job on the same image.
    assert {r["counts"]["os"] for r in data["runs"]} == {84}
