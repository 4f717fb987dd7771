"""describe: /healthcheck, /systemcheck, /validate-credentials, /image-metadata, /get-state-identifier."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest

from functions.describe import describe
from shared import errors
from shared.registry import Platform
from tests.functions.conftest import call
from tests.functions.fakes import (
    AMD64_DIGEST,
    ARM64_DIGEST,
    ENCODED,
    ENV_SECRET,
    INDEX_DIGEST,
    LAYERS,
    FakeRegistry,
)

AUTH = {"Authorization": ENCODED}


def test_healthcheck_ignores_credentials_and_calls_nothing(fake_registry: FakeRegistry) -> None:
    for headers in ({}, {"Authorization": "not base64 at all"}, AUTH):
        response = call(describe, "GET", "/healthcheck", headers=headers)
        assert response.status_code == 200
        assert response.get_json()["ok"] is True
    assert fake_registry.calls == []


@pytest.mark.parametrize("path", ["/systemcheck", "/validate-credentials"])
def test_credential_check_calls_the_registry(fake_registry: FakeRegistry, path: str) -> None:
    response = call(describe, "GET", path, headers=AUTH)
    assert response.status_code == 200
    assert response.get_json() == {"ok": True, "type": "harbor-cr", "registry": "reg.example.com"}
    assert fake_registry.calls == [("ping", ())]


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.Unauthorized("the registry refused the credentials"), 401),
        (errors.Denied("denied"), 403),
        (errors.RegistryUnavailable("could not connect"), 502),
        (errors.RegistryTimeout("timed out"), 504),
    ],
)
def test_credential_check_failures(
    fake_registry: FakeRegistry, error: errors.AgentError, status: int
) -> None:
    fake_registry.error = error
    response = call(describe, "GET", "/systemcheck", headers=AUTH)
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == error.code


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "%%% not base64"},
        {"Authorization": base64.b64encode(b"not json").decode()},
        {"Authorization": base64.b64encode(json.dumps({"type": "harbor-cr"}).encode()).decode()},
        {"Authorization": "${CR_CREDENTIALS}"},
    ],
)
def test_credential_check_missing_or_malformed_is_400(
    fake_registry: FakeRegistry, headers: dict[str, str]
) -> None:
    response = call(describe, "GET", "/validate-credentials", headers=headers)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "INVALID_CREDENTIALS"
    assert fake_registry.calls == []


def test_credentials_fall_back_to_the_agents_own(
    fake_registry: FakeRegistry, agent_env: Callable[..., None]
) -> None:
    agent_env(CR_CREDENTIALS=ENCODED)
    assert call(describe, "GET", "/systemcheck").status_code == 200


@pytest.mark.parametrize(
    ("path", "repository", "reference"),
    [
        ("/image-metadata/library/nginx", "library/nginx", "latest"),
        ("/image-metadata/library/nginx:1.25", "library/nginx", "1.25"),
        ("/image-metadata/library/nginx?reference=1.26", "library/nginx", "1.26"),
        (f"/image-metadata/library/nginx@{AMD64_DIGEST}", "library/nginx", AMD64_DIGEST),
        (f"/image-metadata/library/nginx?reference={AMD64_DIGEST}", "library/nginx", AMD64_DIGEST),
    ],
)
def test_image_metadata_references(
    fake_registry: FakeRegistry, path: str, repository: str, reference: str
) -> None:
    response = call(describe, "GET", path, headers=AUTH)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert fake_registry.calls == [("resolve", (repository, reference, None))]
    assert response.get_json()["reference"] == reference


def test_image_metadata_body(fake_registry: FakeRegistry) -> None:
    response = call(
        describe, "GET", "/image-metadata/library/nginx:1.25?platform=linux/arm64/v8", headers=AUTH
    )
    body = response.get_json()
    assert fake_registry.calls == [("resolve", ("library/nginx", "1.25", Platform("linux", "arm64", "v8")))]
    assert body["digest"] == ARM64_DIGEST
    assert body["indexDigest"] == INDEX_DIGEST
    assert body["platform"] == "linux/arm64/v8"
    assert body["platforms"] == ["linux/amd64", "linux/arm64/v8"]
    assert body["config"]["envNames"] == ["PATH", "API_TOKEN"]
    assert body["config"]["entrypoint"] == ["/docker-entrypoint.sh"]
    assert body["config"]["labels"] == {"maintainer": "team@example.com"}
    assert [layer["size"] for layer in body["layers"]] == [len(blob) for blob in LAYERS]
    assert body["totalSize"] == sum(len(blob) for blob in LAYERS)
    # Environment values and build arguments never leave, not even through the history.
    assert ENV_SECRET not in response.get_data(as_text=True)
    assert body["config"]["history"][1]["createdBy"] == "ENV API_TOKEN=***"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/image-metadata/library/nginx:1.25?reference=1.26", 400),  # reference given twice
        ("/image-metadata/Library/NGINX", 400),  # not a valid repository name
        ("/image-metadata/library/nginx?platform=linux", 400),  # platform without architecture
        ("/image-metadata/library/nginx:nope", 404),
    ],
)
def test_image_metadata_errors(fake_registry: FakeRegistry, path: str, status: int) -> None:
    response = call(describe, "GET", path, headers=AUTH)
    assert response.status_code == status
    assert set(response.get_json()) == {"error"}


def test_state_identifier(fake_registry: FakeRegistry) -> None:
    response = call(describe, "GET", "/get-state-identifier?image=library/nginx:1.25", headers=AUTH)
    assert response.get_json() == {"stateIdentifier": INDEX_DIGEST}
    assert fake_registry.calls == [("head_digest", ("library/nginx", "1.25"))]


def test_state_identifier_needs_the_image(fake_registry: FakeRegistry) -> None:
    response = call(describe, "GET", "/get-state-identifier", headers=AUTH)
    assert response.status_code == 422
    assert response.get_json()["error"] == {
        "code": "INVALID_REQUEST",
        "message": "invalid request: image (missing)",
    }
