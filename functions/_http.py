"""What every HTTP function shares: routing by path, JSON bodies and the one error boundary.

A function answers several broker paths (``/list``, ``/list/<repo>`` ...), so each module declares a
``Routes`` table and its entry point calls ``routes.handle(request)``. The function always sees the
full broker path in ``request.path``, whether it is called directly, served by functions-framework
alone or mounted in the emulator router (which keeps ``PATH_INFO`` whole).

The error boundary turns every exception into ``{"error": {"code", "message"}}``: an ``AgentError``
keeps its code and status, a bad request field becomes 422 naming the field but never its value, and
anything unexpected becomes a generic 500 whose traceback is logged with the request's secrets
scrubbed out.

Before a handler runs, ``handle`` binds the request's log context (``shared.logs``): the broker's
request id, echoed back as ``X-Request-Id``, and the secrets to mask; it checks the optional API key
(``functions._api_key``) on every route not declared ``public``; and after it, one access line
records method, path, status and duration.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import flask
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import Map, Rule

from functions._api_key import check_api_key, key_in_authorization
from shared.errors import AgentError, BadRequest
from shared.logs import add_secrets, current_request_id, current_secrets, log_context, request_id_from
from shared.redact import scrub
from shared.request_credentials import HEADER_SOURCES, RequestCredentials, credentials_from_request
from shared.settings import get_settings

log = logging.getLogger(__name__)

Reply = BaseModel | tuple[BaseModel, int] | flask.Response
Handler = Callable[..., Reply]
M = TypeVar("M", bound=BaseModel)

# Request bodies are small JSON documents; functions-framework sets no limit of its own.
MAX_BODY_BYTES = 1024 * 1024

# Set on a request whose Authorization header carries the agent's API key, not registry credentials.
_KEY_IN_AUTHORIZATION = "registry_agent.api_key_in_authorization"


class InvalidRequest(BadRequest):
    """A query parameter or body field failed validation."""

    code = "INVALID_REQUEST"
    status = 422


class BodyTooLarge(AgentError):
    code = "PAYLOAD_TOO_LARGE"
    status = 413


def remember_secrets(values: Iterable[str]) -> None:
    """Scrub these from every response and log line of the current request."""
    add_secrets(values)


def request_credentials(request: flask.Request, body: Mapping[str, Any] | None = None) -> RequestCredentials:
    """The request's registry credentials (broker-protocol.md §4.4), registered for scrubbing."""
    headers = dict(request.headers.items())
    if request.environ.get(_KEY_IN_AUTHORIZATION):
        headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
    found = credentials_from_request(headers, body)
    remember_secrets(found.secrets)
    return found


def json_response(
    payload: BaseModel | Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None
) -> flask.Response:
    text = (
        payload.model_dump_json(by_alias=True)
        if isinstance(payload, BaseModel)
        else json.dumps(payload, separators=(",", ":"))
    )
    return flask.Response(text, status=status, headers=dict(headers or {}), mimetype="application/json")


def error_response(
    code: str, message: str, status: int, headers: Mapping[str, str] | None = None
) -> flask.Response:
    body = {"error": {"code": code, "message": scrub(message, current_secrets())}}
    return json_response(body, status, headers)


def _field_names(error: ValidationError) -> str:
    names = []
    for item in error.errors(include_input=False, include_url=False, include_context=False):
        name = ".".join(str(part) for part in item["loc"]) or "body"
        names.append(f"{name} ({item['type']})")
    return ", ".join(dict.fromkeys(names))


def parse_model(model: type[M], data: Any) -> M:
    """Validate request data; a failure is a 422 naming the fields only."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise InvalidRequest(f"invalid request: {_field_names(error)}") from None


def parse_query(model: type[M], request: flask.Request) -> M:
    return parse_model(model, request.args.to_dict())


def read_json_object(request: flask.Request, max_bytes: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """The body as a JSON object, whatever Content-Type the sender set."""
    if (request.content_length or 0) > max_bytes:
        raise BodyTooLarge(f"the body is larger than {max_bytes} bytes")
    raw = request.stream.read(max_bytes + 1)  # bounded even without a Content-Length (chunked)
    if len(raw) > max_bytes:
        raise BodyTooLarge(f"the body is larger than {max_bytes} bytes")
    try:
        data = json.loads(raw) if raw.strip() else None
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return data


def _unexpected(exc: BaseException, request: flask.Request) -> flask.Response:
    text = "".join(traceback.format_exception(exc))
    log.error(
        "unexpected error serving %s %s\n%s", request.method, request.path, scrub(text, current_secrets())
    )
    return error_response("INTERNAL", "internal error; the agent's log has the details", 500)


def response_for_error(exc: BaseException, request: flask.Request) -> flask.Response:
    if isinstance(exc, AgentError):
        level = logging.WARNING if exc.status >= 500 else logging.INFO
        log.log(
            level,
            "%s %s -> %d %s: %s",
            request.method,
            request.path,
            exc.status,
            exc.code,
            scrub(exc.message, current_secrets()),
        )
        return error_response(exc.code, exc.message, exc.status, exc.headers)
    if isinstance(exc, MethodNotAllowed):
        allowed = ", ".join(sorted(exc.valid_methods or ()))
        return error_response(
            "METHOD_NOT_ALLOWED", f"{request.method} is not allowed here", 405, {"Allow": allowed}
        )
    if isinstance(exc, HTTPException) and exc.code is not None and exc.code < 500:
        code = (exc.name or "error").upper().replace(" ", "_")
        message = "no such route" if exc.code == 404 else exc.name or "error"
        return error_response(code, message, exc.code)
    return _unexpected(exc, request)


class Routes:
    """The paths one function answers, matched with werkzeug's router on the full request path."""

    def __init__(self) -> None:
        self._map = Map(strict_slashes=False, merge_slashes=False)
        self._handlers: dict[str, Handler] = {}
        self._rules: list[tuple[str, str]] = []
        self._public: set[str] = set()

    def route(self, method: str, rule: str, *, public: bool = False) -> Callable[[Handler], Handler]:
        """``public``: answered without the agent's API key (only ``/healthcheck`` is)."""

        def register(handler: Handler) -> Handler:
            endpoint = f"{method} {rule}"
            self._map.add(Rule(rule, endpoint=endpoint, methods=[method]))
            self._handlers[endpoint] = handler
            self._rules.append((method, rule))
            if public:
                self._public.add(endpoint)
            return handler

        return register

    def get(self, rule: str, *, public: bool = False) -> Callable[[Handler], Handler]:
        return self.route("GET", rule, public=public)

    def post(self, rule: str) -> Callable[[Handler], Handler]:
        return self.route("POST", rule)

    @property
    def rules(self) -> list[tuple[str, str]]:
        """(method, werkzeug rule) of every route, for the manifest consistency test."""
        return list(self._rules)

    def handle(self, request: flask.Request) -> flask.Response:
        # Credential headers are secrets before anyone parses them: a parse error must not echo them.
        secrets = [v.strip() for name in HEADER_SOURCES if (v := request.headers.get(name))]
        started = time.monotonic()
        with log_context(request_id_from(dict(request.headers.items())), secrets):
            response = self._dispatch(request)
            response.headers["X-Request-Id"] = current_request_id() or ""
            log.info(
                "%s %s -> %d",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.monotonic() - started) * 1000, 1),
                },
            )
            return response

    def _dispatch(self, request: flask.Request) -> flask.Response:
        try:
            adapter = self._map.bind("agent", path_info=request.path)
            endpoint, args = adapter.match(method=request.method)
            if str(endpoint) not in self._public:
                self._check_api_key(request)
            reply = self._handlers[str(endpoint)](request, **args)
            if isinstance(reply, flask.Response):
                return reply
            if isinstance(reply, tuple):
                return json_response(reply[0], reply[1])
            return json_response(reply)
        except Exception as exc:  # noqa: BLE001 - the error boundary: nothing escapes as a stack trace
            return response_for_error(exc, request)

    @staticmethod
    def _check_api_key(request: flask.Request) -> None:
        # Read here, inside the error boundary: a bad setting is answered like any other error.
        setting = get_settings().agent_api_key
        if setting is None:
            return
        key = setting.get_secret_value()
        remember_secrets([key])  # masked even where a caller put it by mistake
        check_api_key(request.headers, key)
        if key_in_authorization(request.headers, key):
            request.environ[_KEY_IN_AUTHORIZATION] = True
