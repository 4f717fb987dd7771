"""What the agent refuses, through the real agent process: other registries, malformed names, oversized
bodies, bomb layers, a full queue, callers without the API key.

The registry sits behind the fault proxy, which records every request: "refused before any URL was
built" is checked as "the registry saw no request at all", not only as the agent's status code. Every
refusal must be the right status with the ``{"error": {"code", "message"}}`` body, never a traceback.
"""

from __future__ import annotations

import base64
import http.client
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.e2e.agent import AgentProcess, cr_credentials, running_agent
from tests.e2e.proxy import PausableProxy
from tests.e2e.support import assert_no_secret, new_import_id, payload_of, scan_body
from tests.harness.broker import make_cr_credentials
from tests.harness.faultproxy import FaultProxy
from tests.harness.images import build_layer
from tests.harness.procs import LOOPBACK
from tests.harness.recorder import SnykApiRecorder
from tests.harness.registry import RunningRegistry

MiB = 1024 * 1024


@dataclass
class Guarded:
    agent: AgentProcess
    proxy: FaultProxy  # in front of the noauth registry: what reached the registry
    callbacks: SnykApiRecorder
    registry: RunningRegistry

    @property
    def credentials(self) -> str:
        return make_cr_credentials("generic", "", "", self.proxy.host)

    def raw(self, method: str, target: str, headers: dict[str, str] | None = None, body: bytes = b"") -> Any:
        """A request exactly as written: no client-side normalisation of ``..`` or escapes."""
        conn = http.client.HTTPConnection(LOOPBACK, self.agent.port, timeout=30)
        try:
            conn.putrequest(method, target, skip_accept_encoding=True)
            for name, value in {"Authorization": self.credentials, **(headers or {})}.items():
                conn.putheader(name, value)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
            response = conn.getresponse()
            return response.status, response.read().decode(errors="replace")
        finally:
            conn.close()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, registry_noauth: RunningRegistry) -> Iterator[Guarded]:
    with FaultProxy(registry_noauth.host) as proxy, SnykApiRecorder() as callbacks:
        env = {
            "INSECURE_REGISTRIES": f"{proxy.host},{registry_noauth.host}",
            "BROKER_CLIENT_URL": callbacks.url,
            "SCAN_MAX_LAYER_BYTES": str(16 * MiB),
            "SCAN_MAX_LAYER_ENTRIES": "2000",
            "LAYER_CACHE_MAX_BYTES": "0",
        }
        with running_agent(tmp_path_factory.mktemp("security"), env) as agent:
            yield Guarded(agent, proxy, callbacks, registry_noauth)


@pytest.fixture
def g(guarded: Guarded) -> Guarded:
    guarded.proxy.clear()
    return guarded


def error_of(status: int, text: str, expected_status: int) -> dict[str, str]:
    assert status == expected_status, (status, text)
    assert "Traceback" not in text
    error: dict[str, str] = json.loads(text)["error"]
    assert set(error) == {"code", "message"} and error["message"]
    return error


# -- only the credentials' registry --------------------------------------------------------------------------


OTHER_HOSTS = ["registry.example.com", "127.0.0.1:1", "localhost:5000", "[::1]:5000", "oci-dir:5000"]


@pytest.mark.parametrize("other", OTHER_HOSTS)
def test_an_image_on_another_registry_is_refused_on_every_route(g: Guarded, other: str) -> None:
    scan = g.agent.post(
        "/scan", json=scan_body(f"{other}/busybox:1.31.1", new_import_id(), credentials=g.credentials)
    )
    assert error_of(scan.status_code, scan.text, 400)["code"] == "REGISTRY_MISMATCH"
    metadata = g.raw("GET", f"/image-metadata/{other}/busybox?reference=1.31.1")
    assert error_of(*metadata, 400)["code"] in {"REGISTRY_MISMATCH", "INVALID_REFERENCE"}
    state = g.agent.get(
        "/get-state-identifier",
        params={"image": f"{other}/busybox:1.31.1"},
        headers={"Authorization": g.credentials},
    )
    assert error_of(state.status_code, state.text, 400)["code"] == "REGISTRY_MISMATCH"
    assert g.proxy.seen == [], "a refused reference still reached the registry"


def test_an_image_naming_the_credentials_registry_is_served(g: Guarded) -> None:
    image = f"{g.proxy.host}/busybox:1.31.1"
    state = g.agent.get(
        "/get-state-identifier", params={"image": image}, headers={"Authorization": g.credentials}
    )
    assert state.status_code == 200, state.text
    metadata = g.agent.get(
        f"/image-metadata/{g.proxy.host}/busybox:1.31.1", headers={"Authorization": g.credentials}
    )
    assert metadata.status_code == 200, metadata.text
    import_id = new_import_id()
    accepted = g.agent.post("/scan", json=scan_body(image, import_id, credentials=g.credentials))
    assert accepted.status_code == 202, accepted.text
    assert g.agent.wait_scan(accepted.json()["scanId"])["status"] == "done"


# -- names and references are checked before any URL is built ------------------------------------------------


HOSTILE_TARGETS = [
    "/list/a/../../v2/_catalog",
    "/list/..%2f..%2fv2%2f_catalog",
    "/list/library%2F..%2F..%2Fv2%2F_catalog",
    "/list/library%252F..%252Fsecret",
    "/list/nginx%0d%0aX-Injected:%201",
    "/list/nginx%00",
    "/list/UPPER/case",
    "/list/" + "a" * 256,
    "/list/" + "/".join(["a"] * 200),
    "/list-with-metadata/a/./b",
    "/list-paginated/..?n=5",
    "/list-paginated/busybox?n=5&cursor=Li4vLi4vdjIvX2NhdGFsb2c",  # base64 of ../../v2/_catalog
    "/image-metadata/../busybox?reference=1.31.1",
    "/image-metadata/busybox?reference=1.31.1%0d%0aX-Injected:%201",
    "/image-metadata/busybox?reference=../../_catalog",
    "/image-metadata/busybox?reference=sha256:..%2f..",
    "/image-metadata/busybox?reference=" + "t" * 129,
    "/get-state-identifier?image=busybox%0d%0aHost:%20evil",
    "/get-state-identifier?image=busybox:1.31.1%0a",
    "/get-state-identifier?image=busybox@sha256:" + "0" * 63,
    "/get-state-identifier?image=" + "a" * 2000,
    "/image-metadata/" + "a" * 60_000,
]


@pytest.mark.parametrize("target", HOSTILE_TARGETS)
def test_hostile_names_are_refused_before_the_registry_is_asked(g: Guarded, target: str) -> None:
    status, text = g.raw("GET", target)
    assert status in {400, 404, 422}, (status, text)
    error_of(status, text, status)
    assert g.proxy.seen == [], f"{target} reached the registry: {g.proxy.seen}"


@pytest.mark.parametrize(
    "image",
    [
        "../busybox",
        "busybox/../../etc",
        "busybox:1.31.1\r\nX: y",
        "busybox@sha256:abc",
        "oci-archive:/etc/passwd",
        "docker-archive:/etc/shadow",
        "a" * 1025,
    ],
)
def test_hostile_scan_images_are_refused_up_front(g: Guarded, image: str) -> None:
    answer = g.agent.post("/scan", json=scan_body(image, new_import_id(), credentials=g.credentials))
    assert error_of(answer.status_code, answer.text, 400)["code"] in {
        "INVALID_REFERENCE",
        "REGISTRY_MISMATCH",
    }
    assert g.proxy.seen == []


def test_crlf_in_credentials_cannot_reach_a_header(g: Guarded) -> None:
    sneaky = base64.b64encode(
        json.dumps(
            {"type": "generic", "username": "", "password": "", "registryBase": f"{g.proxy.host}\r\nX: y"}
        ).encode()
    ).decode()
    answer = g.agent.get("/list", headers={"X-CR-Credentials": sneaky})
    assert error_of(answer.status_code, answer.text, 400)["code"] == "INVALID_CREDENTIALS"
    assert g.proxy.seen == []


# -- request bodies are capped -------------------------------------------------------------------------------


def _big_body() -> bytes:
    return json.dumps(scan_body("busybox:1.31.1", "x", padding="p" * (2 * MiB))).encode()


def test_a_body_over_the_cap_is_413(g: Guarded) -> None:
    answer = g.agent.post("/scan", data=_big_body(), headers={"Content-Type": "application/json"})
    assert error_of(answer.status_code, answer.text, 413)["code"] == "PAYLOAD_TOO_LARGE"


def test_a_chunked_body_over_the_cap_is_413(g: Guarded) -> None:
    body = _big_body()

    def chunks() -> Iterator[bytes]:  # a generator makes requests send Transfer-Encoding: chunked
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    answer = g.agent.post("/scan", data=chunks(), headers={"Content-Type": "application/json"})
    assert answer.request.headers.get("Transfer-Encoding") == "chunked"
    assert error_of(answer.status_code, answer.text, 413)["code"] == "PAYLOAD_TOO_LARGE"
    assert g.agent.get("/healthcheck").status_code == 200


# -- bomb layers fail the scan with a precise code -----------------------------------------------------------


def push_image(registry: RunningRegistry, repository: str, layers: list[dict[str, Any]]) -> None:
    """Push a one-platform OCI image made of ``layers`` (file maps) with the distribution API."""
    session = requests.Session()
    session.trust_env = False

    def put_blob(data: bytes) -> str:
        digest = "sha256:" + __import__("hashlib").sha256(data).hexdigest()
        started = session.post(f"{registry.url}/v2/{repository}/blobs/uploads/", timeout=30)
        assert started.status_code == 202, started.text
        location = started.headers["Location"]
        if location.startswith("/"):
            location = registry.url + location
        done = session.put(
            location + ("&" if "?" in location else "?") + f"digest={digest}", data=data, timeout=60
        )
        assert done.status_code == 201, done.text
        return digest

    built = [build_layer(files) for files in layers]
    descriptors = [
        {
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": put_blob(blob),
            "size": len(blob),
        }
        for blob, _ in built
    ]
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [d for _, d in built]},
        }
    ).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": put_blob(config),
            "size": len(config),
        },
        "layers": descriptors,
    }
    put = session.put(
        f"{registry.url}/v2/{repository}/manifests/latest",
        data=json.dumps(manifest).encode(),
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        timeout=30,
    )
    assert put.status_code == 201, put.text


@pytest.mark.parametrize(
    "name, layer",
    [
        ("bytes", {"bomb/zeros": b"\0" * (64 * MiB)}),  # ~64 KiB compressed, 64 MiB out: 4x the cap
        ("entries", {f"many/f{i:05d}": b"" for i in range(3000)}),  # past SCAN_MAX_LAYER_ENTRIES=2000
    ],
)
def test_a_bomb_layer_fails_the_scan_with_a_precise_code(
    g: Guarded, name: str, layer: dict[str, Any]
) -> None:
    repository = f"security/bomb-{name}-{uuid.uuid4().hex[:8]}"
    push_image(g.registry, repository, [{"etc/os-release": b"ID=alpine\nVERSION_ID=3.19\n"}, layer])
    import_id = new_import_id()
    accepted = g.agent.post(
        "/scan", json=scan_body(f"{repository}:latest", import_id, credentials=g.credentials)
    )
    assert accepted.status_code == 202, accepted.text
    status = g.agent.wait_scan(accepted.json()["scanId"], timeout=30)
    assert status["status"] == "failed" and status["error"]["code"] == "LAYER_TOO_LARGE", status
    assert status["result"] is None
    result = g.callbacks.wait_for(lambda r: payload_of(r).get("importId") == import_id, timeout=15)
    assert payload_of(result)["error"]["code"] == "LAYER_TOO_LARGE" and payload_of(result)["result"] is None


# -- a bounded scan queue -----------------------------------------------------------------------------------


def test_a_full_queue_answers_429_with_retry_after(
    agent_factory: Callable[..., AgentProcess],
    agent_registry_env: dict[str, str],
    registry_basic: RunningRegistry,
) -> None:
    with PausableProxy(registry_basic.host) as paused, SnykApiRecorder() as callbacks:
        env = agent_registry_env | {
            "INSECURE_REGISTRIES": f"{agent_registry_env['INSECURE_REGISTRIES']},{paused.host}",
            "BROKER_CLIENT_URL": callbacks.url,
            "MAX_ACTIVE_OPERATIONS": "1",
            "MAX_QUEUED_SCANS": "2",
        }
        agent = agent_factory(env)
        credentials = make_cr_credentials(
            "generic", registry_basic.username or "", registry_basic.password or "", paused.host
        )
        paused.pause()

        def submit() -> requests.Response:
            return agent.post(
                "/scan", json=scan_body("hello-world:latest", new_import_id(), credentials=credentials)
            )

        first = submit()
        assert first.status_code == 202
        agent.wait_scan(first.json()["scanId"], states=("running",))  # holds the only worker
        queued = [submit(), submit()]
        assert [a.status_code for a in queued] == [202, 202]
        full = submit()
        assert error_of(full.status_code, full.text, 429)["code"] == "QUEUE_FULL"
        assert int(full.headers["Retry-After"]) > 0
        paused.resume()
        for accepted in [first, *queued]:
            assert agent.wait_scan(accepted.json()["scanId"], timeout=30)["status"] == "done"
        later = submit()  # the queue drained: accepted again
        assert later.status_code == 202 and agent.wait_scan(later.json()["scanId"])["status"] == "done"


# -- the optional API key ------------------------------------------------------------------------------------


API_KEY = f"agent-key-{uuid.uuid4().hex}"


def test_api_key_guards_every_route_but_healthcheck(
    agent_factory: Callable[..., AgentProcess],
    agent_registry_env: dict[str, str],
    registry_basic: RunningRegistry,
) -> None:
    agent = agent_factory(agent_registry_env | {"AGENT_API_KEY": API_KEY})
    creds = cr_credentials(registry_basic)
    assert agent.get("/healthcheck").status_code == 200
    routes = [
        ("GET", "/"),
        ("GET", "/list"),
        ("GET", "/list/busybox"),
        ("GET", "/image-metadata/busybox?reference=1.31.1"),
        ("GET", "/get-state-identifier?image=busybox:1.31.1"),
        ("GET", "/validate-credentials"),
        ("GET", "/systemcheck"),
        ("POST", "/scan"),
        ("GET", f"/scan/{uuid.uuid4()}"),
        ("POST", "/callback"),
    ]
    for method, route in routes:
        for headers in ({}, {"X-Agent-Api-Key": "wrong-" + API_KEY}, {"Authorization": f"Bearer {API_KEY}x"}):
            answer = agent.request(method, route, headers={"X-CR-Credentials": creds, **headers}, json={})
            assert error_of(answer.status_code, answer.text, 401)["code"] == "API_KEY_INVALID", (
                method,
                route,
            )
    with_key = agent.get("/list", headers={"X-CR-Credentials": creds, "X-Agent-Api-Key": API_KEY})
    assert with_key.status_code == 200 and "busybox" in with_key.json()
    # The key where the broker client can put it (Authorization); the credentials then come another way.
    as_bearer = agent.get("/list", headers={"X-CR-Credentials": creds, "Authorization": f"Bearer {API_KEY}"})
    assert as_bearer.status_code == 200, as_bearer.text
    key_only = agent.get("/list", headers={"Authorization": f"Bearer {API_KEY}"})
    assert error_of(key_only.status_code, key_only.text, 400)["code"] == "INVALID_CREDENTIALS"
    agent.stop()
    assert_no_secret(agent.log_text(), {API_KEY}, "the agent log")


def test_a_short_api_key_is_refused_at_start(tmp_path: Any, agent_registry_env: dict[str, str]) -> None:
    agent = AgentProcess(tmp_path / "short-key", agent_registry_env | {"AGENT_API_KEY": "short-secret"})
    try:
        with pytest.raises(Exception, match="exited during start-up"):
            agent.start(timeout=20)
    finally:
        agent.close()
    log = agent.log_text()
    assert "AGENT_API_KEY" in log and "at least 16" in log
    assert "short-secret" not in log
