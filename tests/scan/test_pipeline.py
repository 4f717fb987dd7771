"""A stored scan renders later exactly as it would have at scan time (GET /scan/<id>?format=)."""

from __future__ import annotations

import json
from pathlib import Path

from shared.scan.pipeline import ScanOutcome, scan_image
from shared.settings import Settings

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
