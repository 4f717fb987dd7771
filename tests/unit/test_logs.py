"""The JSON log line (shared/logs.py): fields, request id context, secret masking, request id hygiene."""

from __future__ import annotations

import io
import json
import logging
import threading

import pytest

from shared.logs import JsonFormatter, log_context, request_id_from, valid_request_id


def _line(record_logger: logging.Logger, stream: io.StringIO) -> dict:  # type: ignore[type-arg]
    return json.loads(stream.getvalue().splitlines()[-1])


@pytest.fixture
def captured() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.shared.logs")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


def test_a_line_has_the_fields_and_the_context_request_id(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    with log_context("req-1"):
        logger.info("hello %s", "world", extra={"scan_id": "s-1"})
    entry = _line(logger, stream)
    assert entry["message"] == "hello world" and entry["level"] == "info" and entry["severity"] == "INFO"
    assert (
        entry["logger"] == "test.shared.logs" and entry["request_id"] == "req-1" and entry["scan_id"] == "s-1"
    )
    assert entry["ts"].endswith("+00:00")
    logger.info("outside")
    assert _line(logger, stream)["request_id"] is None


def test_secrets_are_masked_in_message_and_traceback_even_when_json_escapes_them(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    secret = 'pa"ss\\word-1234'
    with log_context("req-2", [secret]):
        try:
            raise ValueError(f"bad password {secret}")
        except ValueError:
            logger.exception("failed with %s", secret)
    text = stream.getvalue()
    assert secret not in json.loads(text)["message"] and secret not in json.loads(text)["exc"]
    assert 'pa\\"ss' not in text and "***" in text
    assert len(text.strip().splitlines()) == 1  # the traceback is a field, not more lines


def test_contexts_do_not_leak_between_threads(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    with log_context("req-main"):
        worker = threading.Thread(target=lambda: logger.info("in a thread"))
        worker.start()
        worker.join()
    assert _line(logger, stream)["request_id"] is None  # a new thread starts with an empty context


def test_request_id_comes_from_the_broker_headers_or_is_made() -> None:
    assert request_id_from({"snyk-request-id": "a-1", "x-request-id": "b-2"}) == "a-1"
    assert request_id_from({"X-Request-Id": "b-2"}) == "b-2"
    made = request_id_from({})
    assert len(made) == 36 and made != request_id_from({})
    for hostile in ("x" * 129, "a b", "id\r\nX: y", "<script>", ""):
        assert valid_request_id(hostile) is None
        assert request_id_from({"snyk-request-id": hostile}) != hostile
