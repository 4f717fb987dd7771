"""Registry faults during a scan, through the real agent process and a real registry behind a fault proxy.

For every fault the scan must end within a bounded time, either ``done`` after the registry recovered or
``failed`` with the precise error code, reported in the result callback without any inventory: a scan is
never reported complete from part of an image. The agent runs with a 1 s registry timeout, 2 retries and
the layer cache off (so every scan really downloads its layers and meets the faults).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.agent import AgentProcess, read_state, running_agent
from tests.e2e.support import DONE, RESULT, callbacks_of, new_import_id, payload_of, scan_body
from tests.harness.broker import make_cr_credentials
from tests.harness.faultproxy import Delay, FaultProxy, Flip, Stall, Status, Substitute, Truncate
from tests.harness.procs import LOOPBACK, free_port
from tests.harness.recorder import SnykApiRecorder
from tests.harness.registry import MANIFEST_ACCEPT, RunningRegistry

# Every scan here must settle well within this, retries and back-off included.
BOUND_SECONDS = 30.0
IMAGE = "alpine:3.14"


@dataclass
class Faults:
    agent: AgentProcess
    proxy: FaultProxy
    callbacks: SnykApiRecorder
    registry: RunningRegistry
    dead_host: str  # a loopback port nobody listens on

    def credentials(self, host: str | None = None) -> str:
        return make_cr_credentials("generic", "", "", host or self.proxy.host)

    def scan(
        self, image: str = IMAGE, host: str | None = None
    ) -> tuple[dict[str, Any], dict[str, Any], float]:
        """Submit, wait for both callbacks; (GET /scan body, result callback payload, seconds taken)."""
        import_id = new_import_id()
        started = time.monotonic()
        accepted = self.agent.post(
            "/scan", json=scan_body(image, import_id, credentials=self.credentials(host))
        )
        assert accepted.status_code == 202, accepted.text
        scan_id = accepted.json()["scanId"]
        status = self.agent.wait_scan(scan_id, timeout=BOUND_SECONDS)
        taken = time.monotonic() - started
        self.callbacks.wait_for_count(lambda r: payload_of(r).get("importId") == import_id, 2, timeout=15)
        sent = callbacks_of(self.callbacks, import_id)
        assert [r.path for r in sent] == [RESULT, DONE]
        return status, payload_of(sent[0]), taken

    def manifest(self, repository: str, reference: str) -> dict[str, Any]:
        answer = self.registry.request(
            "GET", f"/v2/{repository}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT}
        )
        answer.raise_for_status()
        document: dict[str, Any] = answer.json()
        return document

    def image_manifest(self, repository: str, reference: str) -> dict[str, Any]:
        """The linux/amd64 image manifest (through an index when the tag names one)."""
        document = self.manifest(repository, reference)
        if "manifests" in document:
            entry = next(m for m in document["manifests"] if m["platform"]["architecture"] == "amd64")
            document = self.manifest(repository, entry["digest"])
        return document

    def digest(self, repository: str, reference: str) -> str:
        answer = self.registry.request(
            "HEAD", f"/v2/{repository}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT}
        )
        return str(answer.headers["Docker-Content-Digest"])


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory, registry_noauth: RunningRegistry) -> Iterator[Faults]:
    dead_host = f"{LOOPBACK}:{free_port()}"
    with FaultProxy(registry_noauth.host) as proxy, SnykApiRecorder() as callbacks:
        env = {
            "INSECURE_REGISTRIES": f"{proxy.host},{dead_host}",
            "BROKER_CLIENT_URL": callbacks.url,
            "REGISTRY_TIMEOUT_SECONDS": "1",
            "REGISTRY_MAX_RETRIES": "2",
            "REGISTRY_RETRY_BUDGET_SECONDS": "10",
            "LAYER_CACHE_MAX_BYTES": "0",
        }
        with running_agent(tmp_path_factory.mktemp("registry-faults"), env) as agent:
            yield Faults(agent, proxy, callbacks, registry_noauth, dead_host)


@pytest.fixture
def f(faults: Faults) -> Iterator[Faults]:
    faults.proxy.clear()
    yield faults
    faults.proxy.clear()


def assert_failed(status: dict[str, Any], result: dict[str, Any], code: str, taken: float) -> None:
    assert status["status"] == "failed", status
    assert status["error"]["code"] == code, status["error"]
    assert status["result"] is None
    assert result["status"] == "failed" and result["error"]["code"] == code, result
    assert result["result"] is None, "a failed scan must carry no inventory"
    assert taken < BOUND_SECONDS


def assert_done(status: dict[str, Any], result: dict[str, Any], digest: str) -> None:
    assert status["status"] == "done", status
    assert result["status"] == "done" and result["error"] is None
    assert result["result"]["image"]["digest"] == digest
    names = {
        p["info"]["name"]
        for r in result["result"]["scanResults"]
        for fact in r["facts"]
        if fact["type"] == "depGraph"
        for p in fact["data"]["pkgs"]
    }
    assert "musl/musl" in names  # the layers were really read


def layer_path(f: Faults, repository: str = "alpine", reference: str = "3.14") -> str:
    layer = f.image_manifest(repository, reference)["layers"][0]["digest"]
    return f"^/v2/{repository}/blobs/{layer}$"


def amd64_digest(f: Faults) -> str:
    index = f.manifest("alpine", "3.14")
    return str(next(m for m in index["manifests"] if m["platform"]["architecture"] == "amd64")["digest"])


# -- the registry does not answer ---------------------------------------------------------------------------


def test_connection_refused_fails_the_scan_as_unavailable(f: Faults) -> None:
    status, result, taken = f.scan(host=f.dead_host)
    assert_failed(status, result, "REGISTRY_UNAVAILABLE", taken)
    assert "cannot connect" in result["error"]["message"]


def test_manifest_slower_than_the_timeout_fails_as_timeout(f: Faults) -> None:
    f.proxy.add(r"/manifests/", Delay(3), method="GET")
    status, result, taken = f.scan()
    assert_failed(status, result, "REGISTRY_TIMEOUT", taken)
    # Tried, then retried twice (REGISTRY_MAX_RETRIES=2), each cut off at the 1 s timeout.
    assert len([s for s in f.proxy.seen if s.fault == "Delay"]) == 3


def test_blob_that_stops_half_way_fails_as_timeout(f: Faults) -> None:
    f.proxy.add(layer_path(f), Stall(after=1000, seconds=4), method="GET")
    status, result, taken = f.scan()
    assert_failed(status, result, "REGISTRY_TIMEOUT", taken)
    assert "stopped sending" in result["error"]["message"]


# -- the registry answers with errors, then recovers ---------------------------------------------------------


def test_500_storm_then_recovery_completes_the_scan(f: Faults) -> None:
    f.proxy.add(r"/manifests/", Status(500), method="GET", times=2)
    f.proxy.add(layer_path(f), Status(503), method="GET", times=2)
    status, result, _ = f.scan()
    assert_done(status, result, amd64_digest(f))
    assert [s.fault for s in f.proxy.seen].count("Status") == 4


def test_500_storm_that_outlasts_the_retries_fails_as_unavailable(f: Faults) -> None:
    f.proxy.add(layer_path(f), Status(500), method="GET")
    status, result, taken = f.scan()
    assert_failed(status, result, "REGISTRY_UNAVAILABLE", taken)


def test_429_with_retry_after_is_waited_out(f: Faults) -> None:
    f.proxy.add(r"/manifests/3\.14$", Status(429, {"Retry-After": "2"}), method="GET", times=1)
    status, result, _ = f.scan()
    assert_done(status, result, amd64_digest(f))
    gets = [s for s in f.proxy.seen if s.method == "GET" and s.path.endswith("/manifests/3.14")]
    assert [s.fault for s in gets] == ["Status", "pass"]
    assert gets[1].at - gets[0].at >= 1.9, "the retry did not wait for Retry-After"


def test_429_that_never_ends_fails_as_rate_limited(f: Faults) -> None:
    f.proxy.add(r"/manifests/", Status(429, {"Retry-After": "1"}), method="GET")
    status, result, taken = f.scan()
    assert_failed(status, result, "TOOMANYREQUESTS", taken)


# -- the registry answers with the wrong bytes --------------------------------------------------------------


def test_blob_cut_off_half_way_fails_as_protocol_error(f: Faults) -> None:
    f.proxy.add(layer_path(f), Truncate(after=1500), method="GET")
    status, result, taken = f.scan()
    assert_failed(status, result, "REGISTRY_PROTOCOL", taken)
    assert "connection broke" in result["error"]["message"] or "truncated" in result["error"]["message"]


@pytest.mark.parametrize("offset", [100, 2_000_000])
def test_corrupted_layer_fails_as_digest_invalid(f: Faults, offset: int) -> None:
    """A flipped byte early (gzip breaks first) or at the very end (only the digest can tell)."""
    f.proxy.add(layer_path(f), Flip(offset), method="GET")
    status, result, taken = f.scan()
    assert_failed(status, result, "DIGEST_INVALID", taken)


def test_corrupted_config_fails_as_digest_invalid(f: Faults) -> None:
    config = f.image_manifest("alpine", "3.14")["config"]["digest"]
    f.proxy.add(f"^/v2/alpine/blobs/{config}$", Flip(10), method="GET")
    status, result, taken = f.scan()
    assert_failed(status, result, "DIGEST_INVALID", taken)


# -- the tag moves between HEAD and GET ----------------------------------------------------------------------


def test_tag_moved_between_head_and_get_scans_one_consistent_image(f: Faults) -> None:
    """HEAD (the state identifier) still names the old image, GET already serves the new one: the scan
    reports the digest of the image whose layers it read, never a mix of the two."""
    old, new = f.digest("links", "latest"), f.digest("links", "base")
    assert old != new
    f.proxy.add(r"^/v2/links/manifests/latest$", Substitute("/v2/links/manifests/base"), method="GET")
    state = f.agent.get(
        "/get-state-identifier", params={"image": "links:latest"}, headers={"Authorization": f.credentials()}
    )
    assert state.status_code == 200 and state.json()["stateIdentifier"] == old
    status, result, _ = f.scan("links:latest")
    assert status["status"] == "done", status
    assert result["result"]["image"]["digest"] == new
    new_layers = {layer["digest"] for layer in f.image_manifest("links", "base")["layers"]}
    old_only = {layer["digest"] for layer in f.image_manifest("links", "latest")["layers"]} - new_layers
    fetched = {s.path.rsplit("/", 1)[1] for s in f.proxy.seen if "/blobs/" in s.path}
    assert new_layers <= fetched and not (old_only & fetched)


def test_manifest_whose_body_disagrees_with_its_digest_header_fails(f: Faults) -> None:
    f.proxy.add(
        r"^/v2/links/manifests/latest$",
        Substitute("/v2/links/manifests/base", keep_digest_header=True),
        method="GET",
    )
    status, result, taken = f.scan("links:latest")
    assert_failed(status, result, "DIGEST_INVALID", taken)


def test_every_fault_scan_left_nothing_pending(f: Faults) -> None:
    """The module's scans all finished and every callback was acknowledged: none is stuck in the outbox."""
    jobs, outbox = read_state(f.agent.state_dir)
    assert jobs and all(job["status"] in {"done", "failed"} for job in jobs.values())
    deadline = time.monotonic() + 15
    while any(row["status"] == "pending" for row in outbox):
        assert time.monotonic() < deadline, outbox
        time.sleep(0.1)
        _, outbox = read_state(f.agent.state_dir)
