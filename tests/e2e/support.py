"""Small helpers the e2e modules share: scan bodies, reading callbacks back, the secret check."""

from __future__ import annotations

import base64
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from tests.harness.recorder import RecordedRequest, SnykApiRecorder
from tests.harness.registry import RunningRegistry

RESULT = "/api/v2/import/result"
DONE = "/api/v2/import/done"
DEPENDENCIES = "/api/v1/recurring-tests/dependencies"


def new_import_id() -> str:
    """An opaque Snyk-side id: the agent must echo it in every callback, so tests find theirs by it."""
    return f"imp-{uuid.uuid4()}"


def scan_body(image: str, import_id: str, **fields: Any) -> dict[str, Any]:
    return {"image": image, "importId": import_id, "orgId": "org-e2e", **fields}


def for_import(import_id: str) -> Any:
    """Recorder predicate: a callback of this scan (by the echoed opaque id)."""

    def match(request: RecordedRequest) -> bool:
        parsed = request.json
        return isinstance(parsed, dict) and parsed.get("importId") == import_id

    return match


def payload_of(request: RecordedRequest) -> dict[str, Any]:
    """A callback's JSON object body (every callback the agent sends is one)."""
    parsed = request.json
    assert isinstance(parsed, dict), f"{request.path}: not a JSON object: {request.body[:200]!r}"
    return parsed


def callbacks_of(api: SnykApiRecorder, import_id: str) -> list[RecordedRequest]:
    return api.matching(for_import(import_id))


def acknowledged(requests: Iterable[RecordedRequest]) -> list[RecordedRequest]:
    """The deliveries the receiver acknowledged (2xx); the others were injected faults."""
    return [r for r in requests if 200 <= r.status < 300]


def assert_exactly_once(requests: Iterable[RecordedRequest], expected_paths: list[str]) -> None:
    """Each callback acknowledged exactly once, in ``expected_paths`` order, none sent after its ack."""
    requests = list(requests)
    acked = acknowledged(requests)
    assert [r.path for r in acked] == expected_paths, [(r.path, r.status) for r in requests]
    ids = Counter(payload_of(r)["callbackId"] for r in acked)
    assert all(n == 1 for n in ids.values()), ids
    for ack in acked:
        later = [
            r
            for r in requests
            if payload_of(r)["callbackId"] == payload_of(ack)["callbackId"]
            and r.received_at > ack.received_at
        ]
        assert later == [], f"{ack.path} was sent again after it had been acknowledged"


def secret_forms(*secrets: str) -> set[str]:
    """Each secret plus the encodings it could leak in (base64 alone, and as a Basic header value)."""
    forms: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        forms.add(secret)
        forms.add(base64.b64encode(secret.encode()).decode().rstrip("="))
    return forms


def basic_header_value(username: str, password: str) -> str:
    return base64.b64encode(f"{username}:{password}".encode()).decode()


def assert_no_secret(text: str, secrets: Iterable[str], where: str) -> None:
    leaked = sorted((s for s in secrets if s and s in text), key=len, reverse=True)
    if leaked:
        # Name the kind of leak, never the secret itself: pytest output ends up in CI logs.
        lines = [line for line in text.splitlines() if any(s in line for s in leaked)]
        for secret in leaked:
            lines = [line.replace(secret, "<SECRET>") for line in lines]
        shown = "\n".join(lines[:5])
        raise AssertionError(f"{len(leaked)} secret form(s) found in {where}:\n{shown}")


# What each scanned image must be found to contain: (package manager of its OS depGraph, one package).
CONTENTS = {
    "library/nginx:latest": ("deb", "apt"),
    "alpine:3.14": ("apk", "musl/musl"),
    "built/multi-oci:latest": ("apk", "musl/musl"),
    "busybox:1.31.1": ("linux", None),
}


def expect_scan(
    registry: RunningRegistry, image: str, result: dict[str, Any], skopeo_json: Callable[..., Any]
) -> None:
    """The scanned image is the one skopeo sees (linux/amd64, the agent's default); its packages were read."""
    repository, tag = image.split(":")
    facts = result["image"]
    inspected = skopeo_json(registry, "inspect", image, platform="linux/amd64")
    raw = skopeo_json(registry, "inspect", image, raw=True)
    assert facts["platform"] == "linux/amd64"
    assert facts["name"] == f"{registry.host}/{repository}" and facts["tag"] == tag
    if "manifests" in raw:
        # skopeo reports the digest the tag points to: the index; the agent names the index and its entry.
        assert facts["indexDigest"] == inspected["Digest"]
        entry = next(m for m in raw["manifests"] if m["platform"]["architecture"] == "amd64")
        assert facts["digest"] == entry["digest"]
    else:
        assert facts["digest"] == inspected["Digest"]
        assert facts["indexDigest"] is None

    graphs = [f["data"] for r in result["scanResults"] for f in r["facts"] if f["type"] == "depGraph"]
    assert graphs, "no depGraph in the scan result"
    manager, package = CONTENTS[image]
    assert graphs[0]["pkgManager"]["name"] == manager
    names = {p["info"]["name"] for p in graphs[0]["pkgs"]}
    assert f"docker-image|{registry.host}/{repository}" in names
    if package is not None:
        assert package in names
