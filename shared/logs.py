"""Structured logging: one JSON object per line, carrying the id of the request it belongs to.

Every line has ``ts``, ``level``, ``logger``, ``message`` and ``request_id`` (null outside a request),
plus ``severity`` (Cloud Logging reads it from JSON lines on stdout/stderr), any ``extra=`` fields the
call passed, and ``exc`` when a traceback is attached. The request id comes from the broker
(``snyk-request-id``, else ``x-request-id``, else a new one) and travels with a scan into its job,
the worker's lines and the callbacks, so one grep follows a request from the broker to its results.

Two context variables hold the per-request state, so every thread and every nested call sees the
right values without passing them around: the request id, and the secrets seen while serving the
request (credentials, the agent's API key). The formatter replaces those secrets in the whole line,
traceback included, as a last line of defence behind the scrubbing each error path does itself.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
import threading
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, Protocol

from shared.redact import scrub

REQUEST_ID_HEADERS = ("snyk-request-id", "x-request-id")
# What a request id from outside may look like: a broker id is a UUID; anything else is replaced,
# so a header cannot smuggle control characters, markup or megabytes into every log line.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}\Z")

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_secrets: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("log_secrets", default=())

# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is logged.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
_SEVERITY = {"DEBUG": "DEBUG", "INFO": "INFO", "WARNING": "WARNING", "ERROR": "ERROR", "CRITICAL": "CRITICAL"}


def valid_request_id(value: str | None) -> str | None:
    value = (value or "").strip()
    return value if _REQUEST_ID.match(value) else None


def new_request_id() -> str:
    return str(uuid.uuid4())


class HeaderItems(Protocol):
    """A plain dict of headers or werkzeug's ``Headers``: anything with ``items()``."""

    def items(self) -> Iterable[tuple[str, str]]: ...


def request_id_from(headers: HeaderItems) -> str:
    """The broker's request id (``snyk-request-id``, else ``x-request-id``), or a new one."""
    lowered = {k.lower(): v for k, v in headers.items()}  # werkzeug Headers or a plain dict
    for name in REQUEST_ID_HEADERS:
        found = valid_request_id(lowered.get(name))
        if found:
            return found
    return new_request_id()


def current_request_id() -> str | None:
    return _request_id.get()


def current_secrets() -> tuple[str, ...]:
    return _secrets.get()


def add_secrets(values: Iterable[str]) -> None:
    """Mask these values in every line logged from now on in this context (this request or job)."""
    _secrets.set((*_secrets.get(), *(v for v in values if v)))


@contextlib.contextmanager
def log_context(request_id: str | None, secrets: Iterable[str] = ()) -> Iterator[None]:
    """Within the block, lines carry ``request_id`` and mask ``secrets``; both are restored after."""
    id_token = _request_id.set(request_id)
    secrets_token = _secrets.set(tuple(s for s in secrets if s))
    try:
        yield
    finally:
        _secrets.reset(secrets_token)
        _request_id.reset(id_token)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (a traceback is a field, not extra lines)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "severity": _SEVERITY.get(record.levelname, "DEFAULT"),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or _request_id.get(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry and not key.startswith("_"):
                entry[key] = _jsonable(value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        line = json.dumps(entry, ensure_ascii=False, separators=(",", ":"))
        secrets = _secrets.get()
        if secrets:
            # Each secret is masked both as it is and as it looks once JSON-escaped.
            line = scrub(line, (*secrets, *(json.dumps(s)[1:-1] for s in secrets)))
        return line


_HANDLER_MARK = "_registry_agent_json"


def json_handler(stream: Any = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    setattr(handler, _HANDLER_MARK, True)
    return handler


def configure_logging(level: str = "info", *, only_if_unconfigured: bool = False) -> bool:
    """Route every logger through one JSON handler on stderr at ``level``; True when it did.

    Idempotent. ``only_if_unconfigured`` leaves a root logger that already has handlers alone: that
    is how the functions' entry file calls it, so that functions-framework alone gets JSON lines
    while a host that set logging up itself (the emulator, a test runner) keeps its own.
    """
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]
    if only_if_unconfigured and root.handlers and not ours:
        return False
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(ours[0] if ours else json_handler())
    name = level.strip().upper()
    root.setLevel(name if name in logging.getLevelNamesMapping() else "INFO")
    # Python's own warnings (deprecations in libraries) become log lines too, not bare stderr text,
    # and so does an exception that escapes a thread (which would otherwise print a bare traceback).
    logging.captureWarnings(True)
    threading.excepthook = _log_thread_exception
    return True


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    exc_info = (args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback)
    logging.getLogger("registry_agent.threads").critical("thread %s died", name, exc_info=exc_info)
