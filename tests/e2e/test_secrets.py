"""No registry secret leaves the agent: not in a log line, a response body, a callback or the state on disk.

Every flow runs against the basic-auth registry with its real password and with a recognisable wrong
one (registry 401), plus malformed credentials that still carry a password (400 before any registry call).
The agent runs at LOG_LEVEL=debug, the level most likely to leak; its stdout and stderr (gunicorn and the
app) are captured to one file across the whole module. The secret forms looked for are each password, the
base64 ``CR_CREDENTIALS`` values, and the HTTP Basic header value the agent sends to the registry.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.e2e.agent import AgentProcess, cr_credentials
from tests.e2e.stack import agent_behind_broker
from tests.e2e.support import (
    DEPENDENCIES,
    RESULT,
    assert_no_secret,
    basic_header_value,
    for_import,
    new_import_id,
    scan_body,
    secret_forms,
)
from tests.harness.broker import BrokerPair, broker_client, snyk_style_request
from tests.harness.recorder import RecordedRequest, SnykApiRecorder
from tests.harness.registry import RunningRegistry

# Recognisable, and unique per run so a hit cannot come from an earlier run's files.
WRONG_PASSWORD = f"Wr0ng-S3cret-{uuid.uuid4().hex[:12]}"


@dataclass
class Leakable:
    """Everything that left the agent during the module, to be searched for secrets at the end."""

    agent: AgentProcess
    pair: BrokerPair
    snyk_api: SnykApiRecorder  # behind the broker server: every callback arrives here
    registry: RunningRegistry
    workdir: Path
    responses: list[str] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)

    def keep(self, response: requests.Response) -> requests.Response:
        self.responses.append(f"{response.status_code} {dict(response.headers)} {response.text}")
        return response

    def callbacks(self) -> list[RecordedRequest]:
        return self.snyk_api.requests


@pytest.fixture(scope="module")
def leakable(
    broker_install: Path,
    tmp_path_factory: pytest.TempPathFactory,
    registry_basic: RunningRegistry,
    agent_registry_env: dict[str, str],
) -> Iterator[Leakable]:
    workdir = tmp_path_factory.mktemp("secrets")
    good = cr_credentials(registry_basic)
    with SnykApiRecorder() as snyk_api:
        stack = agent_behind_broker(workdir, agent_registry_env, credentials=good, snyk_api=snyk_api)
        with stack as (pair, agent):
            leak = Leakable(agent, pair, snyk_api, registry_basic, workdir)
            user, password = registry_basic.username or "", registry_basic.password or ""
            assert password, "the basic registry must have a password for this module to mean anything"
            leak.secrets = secret_forms(password, WRONG_PASSWORD) | {
                good,
                cr_credentials(registry_basic, WRONG_PASSWORD),
                basic_header_value(user, password),
                basic_header_value(user, WRONG_PASSWORD),
            }
            yield leak


def _credential_variants(registry: RunningRegistry) -> dict[str, dict[str, str]]:
    """Headers carrying good, wrong and malformed-but-secret-bearing credentials."""
    user, password = registry.username or "", registry.password or ""
    unsupported = base64.b64encode(
        json.dumps(
            {"type": "no-such-type", "username": user, "password": password, "registryBase": registry.host}
        ).encode()
    ).decode()
    return {
        "good": {"Authorization": cr_credentials(registry)},
        "wrong": {"Authorization": cr_credentials(registry, WRONG_PASSWORD)},
        "wrong-x-cr": {"X-CR-Credentials": cr_credentials(registry, WRONG_PASSWORD)},
        "unsupported-type": {"Authorization": unsupported},
        "not-base64": {"Authorization": f"Basic {user}:{password}"},
        "raw-json": {"X-CR-Credentials": json.dumps({"type": "generic", "password": WRONG_PASSWORD})},
    }


ROUTES = (
    "/list",
    "/list/library/nginx",
    "/list-with-metadata/library/nginx",
    "/list-paginated/many/tags?n=5",
    "/image-metadata/library/nginx?reference=latest",
    "/get-state-identifier?image=library/nginx:latest",
    "/validate-credentials",
    "/systemcheck",
)


def test_direct_requests_leak_nothing(leakable: Leakable) -> None:
    agent = leakable.agent
    statuses: dict[tuple[str, str], int] = {}
    for variant, headers in _credential_variants(leakable.registry).items():
        for route in ROUTES:
            answer = leakable.keep(agent.get(route, headers=headers))
            statuses[(variant, route)] = answer.status_code
    # The flows really ran: good credentials worked, wrong ones reached the registry, broken ones did not.
    assert {statuses[("good", r)] for r in ROUTES} == {200}
    assert {statuses[("wrong", r)] for r in ROUTES} == {401}
    assert {statuses[("not-base64", r)] for r in ROUTES} == {400}
    assert {statuses[("unsupported-type", r)] for r in ROUTES} == {400}

    scans = {}
    for variant in ("good", "wrong"):
        password = leakable.registry.password if variant == "good" else WRONG_PASSWORD
        credentials = cr_credentials(leakable.registry, password)
        for where in ("header", "body", "body-object"):
            import_id = new_import_id()
            body = scan_body("library/nginx:latest", import_id, callbackUrl=leakable.pair.client_url + RESULT)
            scan_headers: dict[str, str] = {}
            if where == "header":
                scan_headers["Authorization"] = credentials
            elif where == "body":
                body["credentials"] = credentials
            else:
                body["credentials"] = json.loads(base64.b64decode(credentials))
            answer = leakable.keep(agent.post("/scan", json=body, headers=scan_headers))
            assert answer.status_code == 202, answer.text
            scans[import_id] = (variant, answer.json()["scanId"])
        import_id = new_import_id()
        answer = leakable.keep(
            agent.post(
                "/discover",
                json=scan_body("busybox:1.31.1", import_id),
                headers={"Authorization": credentials},
            )
        )
        assert answer.status_code == 202, answer.text
        scans[import_id] = (variant, answer.json()["scanId"])
    # Malformed credentials in a scan body are refused up front, without echoing them.
    refused = leakable.keep(
        agent.post(
            "/scan",
            json=scan_body(
                "library/nginx:latest",
                new_import_id(),
                credentials=f"{leakable.registry.password}-not-base64",
            ),
        )
    )
    assert refused.status_code == 400

    for import_id, (variant, scan_id) in scans.items():
        status = agent.wait_scan(scan_id)
        leakable.keep(agent.get(f"/scan/{scan_id}"))
        assert status["status"] == ("done" if variant == "good" else "failed"), status
        leakable.snyk_api.wait_for(for_import(import_id), timeout=30)

    _assert_clean(leakable, "direct flows")


def test_broker_flows_leak_nothing(leakable: Leakable) -> None:
    pair = leakable.pair
    for route in ROUTES[:-1]:  # /systemcheck is not a broker route
        path, _, query = route.partition("?")
        params = dict(p.split("=", 1) for p in query.split("&")) if query else None
        answer = leakable.keep(pair.snyk_request("GET", path, params=params))
        assert answer.status_code == 200, (route, answer.text)
    import_id = new_import_id()
    accepted = leakable.keep(
        pair.snyk_request("POST", "/scan", json=scan_body("library/nginx:latest", import_id))
    )
    assert accepted.status_code == 202, accepted.text
    leakable.snyk_api.wait_for_count(for_import(import_id), 2, timeout=30)
    discover_id = new_import_id()
    accepted = leakable.keep(
        pair.snyk_request(
            "POST", "/discover", json=scan_body("busybox:1.31.1", discover_id), callback_path=DEPENDENCIES
        )
    )
    assert accepted.status_code == 202, accepted.text
    leakable.snyk_api.wait_for(for_import(discover_id), timeout=30)

    assert leakable.keep(pair.client.systemcheck()).status_code == 200
    wrong = cr_credentials(leakable.registry, WRONG_PASSWORD)
    with broker_client(pair.server, leakable.agent.url, wrong, leakable.workdir / "client-wrong") as client:
        assert client.systemcheck().status_code == 500  # the broker's own answer: not the agent's to judge
        # A Snyk-side request through the wrong-credentials client: the agent answers 401, nothing more.
        answer = leakable.keep(
            snyk_style_request(pair.server.url, client.token, "GET", "/validate-credentials")
        )
        assert answer.status_code == 401, answer.text

    _assert_clean(leakable, "broker flows")


def test_state_on_disk_and_full_log_after_shutdown(leakable: Leakable) -> None:
    # Stopping flushes and includes the shutdown path's own log lines; the module's later teardown is a no-op.
    leakable.agent.stop()
    _assert_clean(leakable, "the whole module, after shutdown")
    # Finished scans forget their credentials: nothing secret stays in STATE_DIR.
    for path in sorted(leakable.agent.state_dir.rglob("*")):
        if path.is_file():
            assert_no_secret(path.read_bytes().decode("latin-1"), leakable.secrets, f"state file {path.name}")


def _decoded_log(log: str) -> str:
    """Every JSON log line's values, unescaped (a secret with a quote or backslash in it would be escaped in
    the raw line and slip past a plain search), tracebacks (``exc``) included."""
    values: list[str] = []
    for line in log.splitlines():
        if not line.startswith("{"):
            assert line.startswith("--- start "), f"a log line that is not JSON: {line[:200]!r}"
            continue
        values.extend(str(value) for value in json.loads(line).values())
    return "\n".join(values)


def _assert_clean(leakable: Leakable, what: str) -> None:
    log = leakable.agent.log_text()
    assert "registry credentials (type generic) from Authorization" in log  # the log is the real one
    assert_no_secret(log, leakable.secrets, f"the agent log ({what})")
    assert_no_secret(_decoded_log(log), leakable.secrets, f"the agent log's decoded JSON values ({what})")
    for index, text in enumerate(leakable.responses):
        assert_no_secret(text, leakable.secrets, f"response #{index} ({what})")
    callbacks = leakable.callbacks()
    assert callbacks, "no callback arrived: nothing was checked"
    for request in callbacks:
        text = f"{request.headers} {request.body.decode(errors='replace')}"
        assert_no_secret(text, leakable.secrets, f"callback {request.path} ({what})")


def test_the_secret_check_is_not_vacuous() -> None:
    secrets = secret_forms("tester-pass")
    for leak in ("password=tester-pass", base64.b64encode(b"tester-pass").decode()):
        with pytest.raises(AssertionError, match="1 secret form"):
            assert_no_secret(f"line one\n{leak}\n", secrets, "sample")
    assert_no_secret("tester-pa ss", secrets, "sample")
