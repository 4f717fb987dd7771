"""Errors are always {"error": {"code", "message"}}: no stack trace, no secret, in bodies or logs."""

from __future__ import annotations

import logging

import pytest
from werkzeug.test import Client

from functions.describe import describe
from functions.listing import list_images
from functions.scan import scan
from shared import errors
from tests.functions.conftest import call
from tests.functions.fakes import ENCODED, PASSWORD, FakeRegistry

AUTH = {"Authorization": ENCODED}


def _assert_clean(text: str) -> None:
    assert PASSWORD not in text
    assert ENCODED not in text
    assert "Traceback" not in text


def test_unexpected_exception_is_a_generic_500_logged_without_secrets(
    fake_registry: FakeRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    fake_registry.error = RuntimeError(f"boom while using {PASSWORD} / {ENCODED}")
    with caplog.at_level(logging.DEBUG):
        response = call(list_images, "GET", "/list/library/nginx", headers=AUTH)
    assert response.status_code == 500
    assert response.get_json() == {
        "error": {"code": "INTERNAL", "message": "internal error; the agent's log has the details"}
    }
    _assert_clean(response.get_data(as_text=True))
    assert "RuntimeError" in caplog.text and "Traceback" in caplog.text  # the operator gets the details...
    assert PASSWORD not in caplog.text and ENCODED not in caplog.text  # ...without the secrets


def test_agent_error_messages_are_scrubbed(
    fake_registry: FakeRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    fake_registry.error = errors.RegistryUnavailable(f"could not log in as robot:{PASSWORD}")
    with caplog.at_level(logging.DEBUG):
        response = call(describe, "GET", "/systemcheck", headers=AUTH)
    assert response.status_code == 502
    _assert_clean(response.get_data(as_text=True))
    assert PASSWORD not in caplog.text


def test_validation_errors_name_fields_but_never_echo_input(
    fake_registry: FakeRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        response = call(
            scan,
            "POST",
            "/scan",
            headers=AUTH,
            json={"image": {"nested": PASSWORD}, "platform": [PASSWORD], "credentials": ENCODED},
        )
    assert response.status_code == 422
    message = response.get_json()["error"]["message"]
    assert "image" in message and "platform" in message
    _assert_clean(response.get_data(as_text=True))
    _assert_clean(caplog.text)


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b""])
def test_a_body_that_is_not_a_json_object_is_400(fake_registry: FakeRegistry, body: bytes) -> None:
    response = call(scan, "POST", "/scan", headers=AUTH, data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "BAD_REQUEST"


def test_successful_requests_log_no_secret(
    fake_registry: FakeRegistry, router_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        for path in [
            "/list",
            "/list/library/nginx",
            "/systemcheck",
            "/image-metadata/library/nginx:1.25",
            "/get-state-identifier?image=library/nginx",
        ]:
            response = router_client.get(path, headers=AUTH)
            assert response.status_code == 200
            _assert_clean(response.get_data(as_text=True))
    _assert_clean(caplog.text)


def test_router_errors_are_json_too(router_client: Client) -> None:
    for method, path, status in [("GET", "/nope", 404), ("DELETE", "/scan", 405), ("PUT", "/list/x", 405)]:
        response = router_client.open(path, method=method)
        assert response.status_code == status
        assert set(response.get_json()) == {"error"}


def test_an_oversized_body_is_413(fake_registry: FakeRegistry) -> None:
    big = b'{"image": "' + b"a" * (1024 * 1024) + b'"}'
    response = call(scan, "POST", "/scan", headers=AUTH, data=big, content_type="application/json")
    assert (response.status_code, response.get_json()["error"]["code"]) == (413, "PAYLOAD_TOO_LARGE")
