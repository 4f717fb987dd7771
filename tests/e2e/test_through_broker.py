"""The agent behind the REAL snyk-broker: Snyk -> broker server -> websocket -> broker client -> agent.

The broker client runs the real CRA accept rules (broker-protocol.md §3) and holds ``CR_CREDENTIALS`` for
the token-auth registry; requests are sent to the broker server as Snyk SaaS sends them, asking the client
to substitute the credentials (``x-broker-var-sub`` header or ``BROKER_VAR_SUB`` body fields, §4.4).
Callbacks travel back agent -> client -> server -> the recording Snyk API. The agent is started with
``registry-agent serve`` (the other modules use ``python -m emulator``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.agent import AGENT_CLI, AgentProcess, cr_credentials
from tests.e2e.stack import agent_behind_broker
from tests.e2e.support import (
    DEPENDENCIES,
    DONE,
    RESULT,
    assert_exactly_once,
    expect_scan,
    for_import,
    new_import_id,
    payload_of,
    scan_body,
)
from tests.harness.broker import BrokerPair, broker_client
from tests.harness.recorder import SnykApiRecorder
from tests.harness.registry import RunningRegistry
from tests.harness.seed import SeedInfo

SkopeoJson = Callable[..., Any]


@dataclass
class Stack:
    pair: BrokerPair
    agent: AgentProcess
    snyk_api: SnykApiRecorder
    registry: RunningRegistry
    workdir: Path


@pytest.fixture(scope="module")
def stack(
    broker_install: Path,
    tmp_path_factory: pytest.TempPathFactory,
    registry_token: RunningRegistry,
    agent_registry_env: dict[str, str],
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("through-broker")
    with (
        SnykApiRecorder() as snyk_api,
        agent_behind_broker(
            workdir,
            agent_registry_env,
            credentials=cr_credentials(registry_token),
            snyk_api=snyk_api,
            command=AGENT_CLI,
        ) as (pair, agent),
    ):
        yield Stack(pair, agent, snyk_api, registry_token, workdir)


def _catalog(registry: RunningRegistry) -> list[str]:
    answer = registry.request("GET", "/v2/_catalog?n=1000")
    answer.raise_for_status()
    return sorted(answer.json()["repositories"])


def test_list_repositories(stack: Stack, seeded_images: SeedInfo) -> None:
    answer = stack.pair.snyk_request("GET", "/list")
    assert answer.status_code == 200, answer.text
    assert set(seeded_images.repositories) <= set(answer.json())
    assert sorted(answer.json()) == _catalog(stack.registry)
    # The credentials came from the client's config through header substitution.
    assert "registry credentials (type generic) from Authorization" in stack.agent.log_text()


def test_list_tags(stack: Stack, skopeo_json: SkopeoJson, seeded_images: SeedInfo) -> None:
    for repository in ("library/nginx", "many/tags", "built/multi-oci"):
        answer = stack.pair.snyk_request("GET", f"/list/{repository}")
        assert answer.status_code == 200, answer.text
        assert answer.json() == skopeo_json(stack.registry, "list-tags", repository)["Tags"]
        assert sorted(answer.json()) == seeded_images.repositories[repository]
    with_metadata = stack.pair.snyk_request("GET", "/list-with-metadata/library/nginx")
    assert with_metadata.status_code == 200, with_metadata.text
    digests = {t["tag"]: t["digest"] for t in with_metadata.json()}
    assert digests == {tag: seeded_images.digests[f"library/nginx:{tag}"] for tag in ("1.0", "latest")}


def test_image_metadata(stack: Stack, skopeo_json: SkopeoJson) -> None:
    answer = stack.pair.snyk_request("GET", "/image-metadata/library/nginx", params={"reference": "1.0"})
    assert answer.status_code == 200, answer.text
    inspected = skopeo_json(stack.registry, "inspect", "library/nginx:1.0")
    metadata = answer.json()
    assert metadata["repository"] == "library/nginx" and metadata["reference"] == "1.0"
    assert metadata["digest"] == inspected["Digest"]
    assert [layer["digest"] for layer in metadata["layers"]] == inspected["Layers"]

    arm = stack.pair.snyk_request(
        "GET", "/image-metadata/built/multi-oci", params={"reference": "latest", "platform": "linux/arm64/v8"}
    )
    assert arm.status_code == 200, arm.text
    index = skopeo_json(stack.registry, "inspect", "built/multi-oci:latest", raw=True)
    entry = next(m for m in index["manifests"] if m["platform"]["architecture"] == "arm64")
    assert arm.json()["digest"] == entry["digest"]
    assert arm.json()["platform"] == "linux/arm64/v8"

    missing = stack.pair.snyk_request("GET", "/image-metadata/library/nginx", params={"reference": "nope"})
    assert missing.status_code == 404, missing.text  # relayed unchanged by the broker


def test_state_identifier(stack: Stack, skopeo_json: SkopeoJson, seeded_images: SeedInfo) -> None:
    for image in ("library/nginx:1.0", "built/multi-docker:latest"):
        answer = stack.pair.snyk_request("GET", "/get-state-identifier", params={"image": image})
        assert answer.status_code == 200, answer.text
        expected = skopeo_json(stack.registry, "inspect", image, platform="linux/amd64")["Digest"]
        assert answer.json() == {"stateIdentifier": expected}
        assert expected == seeded_images.digests[image]


def test_validate_credentials(stack: Stack) -> None:
    answer = stack.pair.snyk_request("GET", "/validate-credentials")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"ok": True, "type": "generic", "registry": stack.registry.host}
    # Without substitution the literal placeholder arrives: a clear 400, not a registry call with junk.
    raw = stack.pair.snyk_request(
        "GET", "/validate-credentials", var_sub=False, headers={"authorization": "${CR_CREDENTIALS}"}
    )
    assert raw.status_code == 400 and "x-broker-var-sub" in raw.json()["error"]["message"]


def test_scan_with_body_substitution_calls_back_through_the_broker(
    stack: Stack, skopeo_json: SkopeoJson
) -> None:
    import_id = new_import_id()
    # Only BROKER_VAR_SUB: no credentials header at all, so the body is the agent's only source.
    body = scan_body(
        "library/nginx:latest",
        import_id,
        credentials="${CR_CREDENTIALS}",
        callbackUrl="${BROKER_CLIENT_URL}" + RESULT,
        BROKER_VAR_SUB=["credentials", "callbackUrl"],
    )
    accepted = stack.pair.snyk_request("POST", "/scan", json=body, var_sub=False)
    assert accepted.status_code == 202, accepted.text
    scan_id = accepted.json()["scanId"]

    callbacks = stack.snyk_api.wait_for_count(for_import(import_id), 2, timeout=30)
    result, done = callbacks
    stack.agent.wait_recorded(payload_of(done))
    assert_exactly_once(stack.snyk_api.matching(for_import(import_id)), [RESULT, DONE])
    for callback in callbacks:
        assert callback.method == "POST"
        assert callback.headers["x-broker-token"] == stack.pair.token  # added by the broker server (§6)
        assert payload_of(callback)["scanId"] == scan_id and payload_of(callback)["status"] == "done"
    expect_scan(stack.registry, "library/nginx:latest", payload_of(result)["result"], skopeo_json)
    assert done.received_at > result.received_at
    # The agent's status agrees (asked directly: GET /scan/<id> is not a broker route, see below).
    assert stack.agent.wait_scan(scan_id)["result"] == payload_of(result)["result"]
    assert "registry credentials (type generic) from body" in stack.agent.log_text()


def test_discover_with_header_substitution_calls_back_through_the_broker(stack: Stack) -> None:
    import_id = new_import_id()
    accepted = stack.pair.snyk_request(
        "POST", "/discover", json=scan_body("busybox:1.31.1", import_id), callback_path=DEPENDENCIES
    )
    assert accepted.status_code == 202, accepted.text
    callback = stack.snyk_api.wait_for(for_import(import_id), timeout=30)
    assert callback.path == DEPENDENCIES
    assert callback.headers["x-broker-token"] == stack.pair.token
    assert (
        payload_of(callback)["scanId"] == accepted.json()["scanId"]
        and payload_of(callback)["status"] == "done"
    )
    stack.agent.wait_recorded(payload_of(callback))
    assert_exactly_once(stack.snyk_api.matching(for_import(import_id)), [DEPENDENCIES])


def test_systemcheck_good_and_bad_credentials(stack: Stack) -> None:
    good = stack.pair.client.systemcheck()
    assert good.status_code == 200, good.text
    [check] = good.json()
    assert check["ok"] is True and check["brokerClientValidationUrlStatusCode"] == 200

    wrong = cr_credentials(stack.registry, "not-the-password")
    with broker_client(stack.pair.server, stack.agent.url, wrong, stack.workdir / "client-bad") as bad_client:
        bad = bad_client.systemcheck()
    assert bad.status_code == 500, bad.text
    [check] = bad.json()
    assert check["ok"] is False
    assert check["brokerClientValidationUrlStatusCode"] == 401  # what the agent answered
    assert check["error"] == "Failed due to invalid credentials"


def test_routes_outside_the_accept_rules_are_blocked(stack: Stack) -> None:
    scan_id = "00000000-0000-0000-0000-000000000000"
    blocked = {
        ("POST", "/callback"): stack.pair.snyk_request(
            "POST", "/callback", json={"scanId": scan_id, "api": "v2", "image": "x", "status": "done"}
        ),
        ("GET", f"/scan/{scan_id}"): stack.pair.snyk_request("GET", f"/scan/{scan_id}"),
        ("GET", "/systemcheck"): stack.pair.snyk_request("GET", "/systemcheck"),
        ("POST", "/list"): stack.pair.snyk_request("POST", "/list", json={}),
    }
    for (method, path), answer in blocked.items():
        assert answer.status_code == 401, (method, path, answer.text)
        assert answer.json()["code"] == "FILTER_BLOCKED", (method, path)
    # Blocked at the client: none of them reached the agent. gunicorn logs every request it gets at debug
    # (a JSON line whose message is "METHOD /path"); one that did reach it proves the check can fail.
    messages = {
        json.loads(line)["message"] for line in stack.agent.log_text().splitlines() if line.startswith("{")
    }
    assert "GET /healthcheck" in messages
    assert "POST /callback" not in messages
    assert f"GET /scan/{scan_id}" not in messages
    assert "POST /list" not in messages


def test_snyk_side_failure_is_relayed_and_the_callback_retried(stack: Stack) -> None:
    """Snyk's API answering 502 travels back through server and client to the agent, which sends again."""
    import_id = new_import_id()
    stack.snyk_api.fail_next(502, when=lambda r: for_import(import_id)(r) and r.path == RESULT)
    accepted = stack.pair.snyk_request("POST", "/scan", json=scan_body("hello-world:latest", import_id))
    assert accepted.status_code == 202, accepted.text
    seen = stack.snyk_api.wait_for_count(
        lambda r: for_import(import_id)(r) and r.status == 200, 2, timeout=30
    )
    assert [r.path for r in seen] == [RESULT, DONE]
    # The agent has recorded the last acknowledgement: nothing of this scan can be sent again.
    stack.agent.wait_recorded(payload_of(seen[1]))
    everything = stack.snyk_api.matching(for_import(import_id))
    assert [(r.path, r.status) for r in everything] == [(RESULT, 502), (RESULT, 200), (DONE, 200)]
    assert_exactly_once(everything, [RESULT, DONE])
