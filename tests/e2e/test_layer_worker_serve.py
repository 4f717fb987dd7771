"""The layer worker inside the production server: `registry-agent serve` (gunicorn) scanning through it.

The unit tests (tests/scan/test_layer_worker.py) drive the worker directly; here it runs where it
will in production: started from a gunicorn worker's scan thread, next to the HTTP threads. The
threshold is set to 0 so that the seeded images (far below 256 MiB) take the worker path. Oracle:
the same image scanned in this test process with the worker off (`scan_image`), which the scan tests
tie to dpkg-query, rpm and syft.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.registry import client_for
from shared.scan.pipeline import scan_image
from tests.client.conftest import credentials_for, settings_for
from tests.e2e.agent import AGENT_CLI, cr_credentials, running_agent
from tests.e2e.support import new_import_id, scan_body
from tests.harness.registry import RunningRegistry


@pytest.mark.parametrize("image", ["library/nginx:latest", "alpine:3.14"])
def test_scans_through_the_layer_worker_under_gunicorn(
    tmp_path: Path, registry_basic: RunningRegistry, agent_registry_env: dict[str, str], image: str
) -> None:
    env = agent_registry_env | {
        "SCAN_LAYER_WORKER_MIN_BYTES": "0",
        "LAYER_CACHE_MAX_BYTES": "0",
        "LOG_LEVEL": "debug",
    }
    with running_agent(tmp_path / "agent", env, command=AGENT_CLI) as agent:
        accepted = agent.post(
            "/scan",
            json=scan_body(image, new_import_id()),
            headers={"Authorization": cr_credentials(registry_basic)},
        )
        assert accepted.status_code == 202, accepted.text
        status = agent.wait_scan(accepted.json()["scanId"])
        log = agent.log_text()
    assert status["status"] == "done", status
    assert "layer worker started (pid" in log

    settings = settings_for(registry_basic).model_copy(
        update={"state_dir": tmp_path / "direct", "scan_layer_worker": False}
    )
    with client_for(credentials_for(registry_basic), settings) as client:
        direct = scan_image(image, settings, client=client, registry_host=registry_basic.host)
    expected = direct.render("snyk")
    assert isinstance(expected, dict)
    assert status["result"]["scanResults"] == expected["scanResults"]
