"""Scan -> callback end to end: the real agent process against the real registry in each of its four modes.

No broker here: the recorder plays the broker client (it is the agent's ``BROKER_CLIENT_URL``), so these
tests pin down the agent's own behaviour - list, scan (v2) and discover (v1) with credentials in a header
or in the body, the scan status, and the callbacks that follow - with skopeo and the registry's own
catalog as the oracles. One agent process serves every test of the module and all four registries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.agent import AgentProcess, cr_credentials, running_agent
from tests.e2e.support import (
    DEPENDENCIES,
    DONE,
    RESULT,
    assert_exactly_once,
    callbacks_of,
    expect_scan,
    for_import,
    new_import_id,
    payload_of,
    scan_body,
)
from tests.harness.recorder import SnykApiRecorder
from tests.harness.registry import Mode, RunningRegistry
from tests.harness.seed import SeedInfo

SkopeoJson = Callable[..., Any]


@pytest.fixture(scope="module")
def broker_client_stand_in() -> Iterator[SnykApiRecorder]:
    """Where the agent posts callbacks; answers 200 like a healthy broker client."""
    with SnykApiRecorder() as api:
        yield api


@pytest.fixture(scope="module")
def agent(
    tmp_path_factory: pytest.TempPathFactory,
    agent_registry_env: dict[str, str],
    broker_client_stand_in: SnykApiRecorder,
) -> Iterator[AgentProcess]:
    env = agent_registry_env | {"BROKER_CLIENT_URL": broker_client_stand_in.url, "MAX_ACTIVE_OPERATIONS": "2"}
    with running_agent(tmp_path_factory.mktemp("agent-direct"), env) as started:
        yield started


def _catalog(registry: RunningRegistry) -> list[str]:
    """The registry's own answer, fetched by the harness (not by the agent's client)."""
    answer = registry.request("GET", "/v2/_catalog?n=1000")
    answer.raise_for_status()
    return list(answer.json()["repositories"])


def test_list_repositories_and_tags(
    agent: AgentProcess, registry: RunningRegistry, seeded_images: SeedInfo, skopeo_json: SkopeoJson
) -> None:
    auth = {"Authorization": cr_credentials(registry)}
    listed = agent.get("/list", headers=auth)
    assert listed.status_code == 200, listed.text
    repositories = listed.json()
    assert set(seeded_images.repositories) <= set(repositories)
    assert sorted(repositories) == sorted(_catalog(registry))

    for repository in ("library/nginx", "many/tags"):
        tags = agent.get(f"/list/{repository}", headers=auth)
        assert tags.status_code == 200, tags.text
        assert tags.json() == skopeo_json(registry, "list-tags", repository)["Tags"]
        assert sorted(tags.json()) == seeded_images.repositories[repository]


SCANS = {
    # credentials variant -> image: a single Docker manifest, and an OCI index (platform picked by the agent).
    "authorization-header": "library/nginx:latest",
    "x-cr-credentials-header": "alpine:3.14",
    "body-base64": "built/multi-oci:latest",
}


@pytest.mark.parametrize("variant", list(SCANS))
def test_scan_v2_reports_the_image_and_calls_back(
    agent: AgentProcess,
    broker_client_stand_in: SnykApiRecorder,
    registry: RunningRegistry,
    skopeo_json: SkopeoJson,
    variant: str,
) -> None:
    image = SCANS[variant]
    import_id = new_import_id()
    credentials = cr_credentials(registry)
    body = scan_body(image, import_id, callbackUrl=broker_client_stand_in.url + RESULT)
    headers: dict[str, str] = {}
    if variant == "authorization-header":
        headers["Authorization"] = credentials
    elif variant == "x-cr-credentials-header":
        headers["X-CR-Credentials"] = credentials
    else:
        body["credentials"] = credentials

    accepted = agent.post("/scan", json=body, headers=headers)
    assert accepted.status_code == 202, accepted.text
    scan_id = accepted.json()["scanId"]
    assert accepted.headers["Location"] == f"/scan/{scan_id}"

    status = agent.wait_scan(scan_id)
    assert status["status"] == "done", status
    assert status["error"] is None
    expect_scan(registry, image, status["result"], skopeo_json)

    callbacks = broker_client_stand_in.wait_for_count(for_import(import_id), 2)
    result, done = callbacks
    # Once the agent has recorded the last acknowledgement nothing of this scan can be sent again.
    agent.wait_recorded(payload_of(done))
    assert_exactly_once(callbacks_of(broker_client_stand_in, import_id), [RESULT, DONE])
    assert payload_of(result)["scanId"] == payload_of(done)["scanId"] == scan_id
    assert payload_of(result)["status"] == payload_of(done)["status"] == "done"
    assert payload_of(result)["image"] == image
    assert payload_of(result)["result"] == status["result"]
    assert payload_of(result)["orgId"] == "org-e2e"  # Snyk's opaque fields are echoed
    assert result.headers["idempotency-key"] == payload_of(result)["callbackId"]
    assert (
        done.headers["idempotency-key"] == payload_of(done)["callbackId"] != payload_of(result)["callbackId"]
    )
    assert "credentials" not in payload_of(result) and "credentials" not in payload_of(done)


def test_discover_v1_posts_recurring_test_dependencies(
    agent: AgentProcess,
    broker_client_stand_in: SnykApiRecorder,
    registry: RunningRegistry,
    skopeo_json: SkopeoJson,
) -> None:
    import_id = new_import_id()
    # No callbackUrl: v1 goes to its default path under BROKER_CLIENT_URL.
    accepted = agent.post(
        "/discover",
        json=scan_body("busybox:1.31.1", import_id),
        headers={"Authorization": cr_credentials(registry)},
    )
    assert accepted.status_code == 202, accepted.text
    scan_id = accepted.json()["scanId"]
    assert agent.wait_scan(scan_id)["status"] == "done"

    callback = broker_client_stand_in.wait_for(for_import(import_id))
    assert callback.method == "POST" and callback.path == DEPENDENCIES
    assert payload_of(callback)["scanId"] == scan_id and payload_of(callback)["status"] == "done"
    expect_scan(registry, "busybox:1.31.1", payload_of(callback)["result"], skopeo_json)
    # Exactly one v1 callback (no v2 result/done pair), and it is not repeated.
    agent.wait_recorded(payload_of(callback))
    assert_exactly_once(callbacks_of(broker_client_stand_in, import_id), [DEPENDENCIES])


@pytest.mark.parametrize("mode", [Mode.BASIC, Mode.TOKEN, Mode.TLS])
def test_wrong_password_is_a_failed_scan_with_callbacks(
    agent: AgentProcess,
    broker_client_stand_in: SnykApiRecorder,
    registries: dict[Mode, RunningRegistry],
    mode: Mode,
) -> None:
    registry = registries[mode]
    wrong = cr_credentials(registry, "not-the-password")
    assert agent.get("/list", headers={"Authorization": wrong}).status_code == 401
    check = agent.get("/validate-credentials", headers={"Authorization": wrong})
    assert check.status_code == 401 and check.json()["error"]["code"] == "UNAUTHORIZED"

    import_id = new_import_id()
    accepted = agent.post("/scan", json=scan_body("hello-world:latest", import_id, credentials=wrong))
    assert accepted.status_code == 202, accepted.text
    status = agent.wait_scan(accepted.json()["scanId"])
    assert status["status"] == "failed" and status["result"] is None
    assert status["error"]["code"] == "UNAUTHORIZED"

    callbacks = broker_client_stand_in.wait_for_count(for_import(import_id), 2)
    agent.wait_recorded(payload_of(callbacks[1]))
    assert_exactly_once(callbacks_of(broker_client_stand_in, import_id), [RESULT, DONE])
    assert payload_of(callbacks[0])["status"] == "failed"
    assert payload_of(callbacks[0])["error"] == status["error"]


def test_scan_requests_rejected_before_queueing(
    agent: AgentProcess, registry_noauth: RunningRegistry, tmp_path: Path
) -> None:
    credentials = {"Authorization": cr_credentials(registry_noauth)}
    # The agent has no CR_CREDENTIALS of its own: a scan without any is refused now, not in a callback.
    missing = agent.post("/scan", json=scan_body("busybox:1.31.1", new_import_id()))
    assert missing.status_code == 400, missing.text
    # A callback target outside BROKER_CLIENT_URL could turn the agent into an open relay.
    elsewhere = agent.post(
        "/scan",
        json=scan_body(
            "busybox:1.31.1", new_import_id(), callbackUrl="http://127.0.0.1:9/api/v2/import/result"
        ),
        headers=credentials,
    )
    assert elsewhere.status_code == 400 and elsewhere.json()["error"]["code"] == "CALLBACK_REFUSED"
    bad_image = agent.post("/scan", json=scan_body("UPPER/Case:tag", new_import_id()), headers=credentials)
    assert bad_image.status_code == 400, bad_image.text
    assert agent.get("/scan/no-such-scan").status_code == 404
