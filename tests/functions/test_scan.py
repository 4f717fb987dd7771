"""scan: POST /scan and /discover answer 202 at once; the queued job runs in a worker; GET /scan/<id>."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from werkzeug.test import Client

from functions._callbacks import callbacks_for
from functions.scan import scan
from functions.scan_work import run_scan
from shared.jobs import Outbox, OutboxMessage, ScanQueue, ScanWorkers, open_store
from shared.settings import get_settings
from tests.functions.conftest import call
from tests.functions.fakes import ENCODED, INDEX_DIGEST, PASSWORD, FakeRegistry

AUTH = {"Authorization": ENCODED}
BROKER = "http://broker-client.internal:8000"


def _queue() -> ScanQueue:
    return ScanQueue(open_store(get_settings().state_dir))


def _outbox_for(scan_id: str) -> list[OutboxMessage]:
    return Outbox(open_store(get_settings().state_dir)).for_scan(scan_id)


def _work_one() -> None:
    assert ScanWorkers(_queue(), run_scan, callbacks_for).run_one()


def test_scan_is_accepted_then_runs(fake_registry: FakeRegistry, agent_env: Callable[..., None]) -> None:
    agent_env(BROKER_CLIENT_URL=BROKER)
    response = call(
        scan,
        "POST",
        "/scan",
        headers=AUTH,
        json={"image": "library/nginx:1.25", "orgId": "org-1", "importId": "imp-9"},
    )
    assert response.status_code == 202
    scan_id = response.get_json()["scanId"]
    assert response.headers["Location"] == f"/scan/{scan_id}"
    assert fake_registry.calls == []  # nothing ran yet: the answer does not wait for the registry

    assert call(scan, "GET", f"/scan/{scan_id}").get_json() == {
        "scanId": scan_id,
        "status": "queued",
        "result": None,
        "error": None,
    }
    _work_one()
    status = call(scan, "GET", f"/scan/{scan_id}").get_json()
    assert status["status"] == "done"
    assert status["result"]["image"]["indexDigest"] == INDEX_DIGEST
    assert fake_registry.credentials_seen[0].password.get_secret_value() == PASSWORD

    job = _queue().get(scan_id)
    assert job is not None and job.credentials is None  # credentials are forgotten once the job is done
    callbacks = _outbox_for(scan_id)
    assert [m.url for m in callbacks] == [f"{BROKER}/api/v2/import/result", f"{BROKER}/api/v2/import/done"]
    # The callback carries the Snyk-shaped result, not the inventory kept for ?format=.
    assert "inventory" not in callbacks[0].payload["result"]
    assert callbacks[0].payload["result"]["scanResults"] == status["result"]["scanResults"]


def test_scan_result_holds_the_engine_inventory_in_every_format(
    fake_registry: FakeRegistry, agent_env: Callable[..., None]
) -> None:
    scan_id = call(scan, "POST", "/scan", headers=AUTH, json={"image": "library/nginx:1.25"}).get_json()[
        "scanId"
    ]
    _work_one()
    snyk = call(scan, "GET", f"/scan/{scan_id}").get_json()["result"]
    # The fake's first layer is an Alpine base whose apk database lists musl (tests/functions/fakes.py).
    os_result = snyk["scanResults"][0]
    assert os_result["identity"]["type"] == "apk"
    dep_graph = next(f["data"] for f in os_result["facts"] if f["type"] == "depGraph")
    assert dep_graph["pkgManager"]["repositories"] == [{"alias": "alpine:3.19.1"}]
    assert any(p["info"]["name"].endswith("musl") for p in dep_graph["pkgs"])
    cyclonedx = call(scan, "GET", f"/scan/{scan_id}?format=cyclonedx").get_json()["result"]
    assert cyclonedx["bomFormat"] == "CycloneDX" and any(c["name"] == "musl" for c in cyclonedx["components"])
    spdx = call(scan, "GET", f"/scan/{scan_id}?format=spdx").get_json()["result"]
    assert spdx["spdxVersion"] == "SPDX-2.3" and any(p["name"] == "musl" for p in spdx["packages"])
    bad = call(scan, "GET", f"/scan/{scan_id}?format=xml")
    assert bad.status_code == 422 and bad.get_json()["error"]["code"] == "INVALID_REQUEST"


def test_discover_is_v1(fake_registry: FakeRegistry, agent_env: Callable[..., None]) -> None:
    agent_env(BROKER_CLIENT_URL=BROKER)
    scan_id = call(scan, "POST", "/discover", headers=AUTH, json={"image": "team/app:v1"}).get_json()[
        "scanId"
    ]
    _work_one()
    [message] = _outbox_for(scan_id)
    assert message.url == f"{BROKER}/api/v1/recurring-tests/dependencies"
    assert message.payload["status"] == "done" and message.payload["image"] == "team/app:v1"


def test_a_failed_scan_reports_the_error(fake_registry: FakeRegistry) -> None:
    scan_id = call(scan, "POST", "/scan", headers=AUTH, json={"image": "library/nginx:9.9"}).get_json()[
        "scanId"
    ]
    _work_one()
    status = call(scan, "GET", f"/scan/{scan_id}").get_json()
    assert status["status"] == "failed"
    assert status["error"]["code"] == "NOT_FOUND"


def test_image_over_the_size_limit_fails(fake_registry: FakeRegistry, agent_env: Callable[..., None]) -> None:
    agent_env(SNYK_MAX_IMAGE_SIZE_IN_BYTES="100")
    scan_id = call(scan, "POST", "/scan", headers=AUTH, json={"image": "library/nginx"}).get_json()["scanId"]
    _work_one()
    assert call(scan, "GET", f"/scan/{scan_id}").get_json()["error"]["code"] == "IMAGE_TOO_LARGE"


def test_credentials_in_the_body_are_not_kept_in_the_request(fake_registry: FakeRegistry) -> None:
    scan_id = call(
        scan,
        "POST",
        "/scan",
        json={"image": "library/nginx", "credentials": ENCODED, "BROKER_VAR_SUB": ["credentials"]},
    ).get_json()["scanId"]
    job = _queue().get(scan_id)
    assert job is not None
    assert job.credentials == ENCODED  # kept apart, only while the job lives
    assert "credentials" not in job.request
    _work_one()
    assert _queue().get(scan_id).credentials is None  # type: ignore[union-attr]


def test_agent_credentials_are_not_copied_into_the_queue(
    fake_registry: FakeRegistry, agent_env: Callable[..., None]
) -> None:
    agent_env(CR_CREDENTIALS=ENCODED)
    scan_id = call(scan, "POST", "/scan", json={"image": "library/nginx"}).get_json()["scanId"]
    assert _queue().get(scan_id).credentials is None  # type: ignore[union-attr]
    _work_one()
    assert call(scan, "GET", f"/scan/{scan_id}").get_json()["status"] == "done"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 422, "INVALID_REQUEST"),
        ({"image": "Not A Reference"}, 400, "INVALID_REFERENCE"),
        ({"image": "library/nginx", "platform": "linux"}, 400, "BAD_REQUEST"),
        (
            {"image": "library/nginx", "callbackUrl": "http://evil.example/api/v2/import/result"},
            400,
            "CALLBACK_REFUSED",
        ),
    ],
)
def test_bad_scan_requests_fail_before_queueing(
    fake_registry: FakeRegistry, agent_env: Callable[..., None], body: dict[str, str], status: int, code: str
) -> None:
    agent_env(BROKER_CLIENT_URL=BROKER)
    response = call(scan, "POST", "/scan", headers=AUTH, json=body)
    assert (response.status_code, response.get_json()["error"]["code"]) == (status, code)
    assert _queue().claim() is None


def test_scan_without_credentials_is_400(fake_registry: FakeRegistry) -> None:
    response = call(scan, "POST", "/scan", json={"image": "library/nginx"})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "INVALID_CREDENTIALS"


def test_unknown_scan_is_404(fake_registry: FakeRegistry) -> None:
    response = call(scan, "GET", "/scan/00000000-0000-0000-0000-000000000000")
    assert (response.status_code, response.get_json()["error"]["code"]) == (404, "SCAN_NOT_FOUND")


def test_scan_through_the_router(fake_registry: FakeRegistry, router_client: Client) -> None:
    response = router_client.post("/scan", headers=AUTH, json={"image": "library/nginx:1.25"})
    assert response.status_code == 202
    scan_id = response.get_json()["scanId"]
    _work_one()
    assert router_client.get(f"/scan/{scan_id}").get_json()["status"] == "done"
