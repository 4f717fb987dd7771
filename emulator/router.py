"""One WSGI app serving every HTTP function of the manifest at the broker's paths.

Each function is mounted as the exact app production runs (``functions_framework.create_app``), so
the framework's wrappers are exercised locally too. Unlike werkzeug's ``DispatcherMiddleware``
this router does not move the matched prefix into ``SCRIPT_NAME``: the broker sends paths such as
``/list/library/nginx``, and a function must see that whole path in ``request.path`` exactly as it
does when called directly or deployed alone.

``create_app`` has process-wide side effects (serverless.md §1.2): it re-executes the source file,
writes ``FUNCTION_TARGET`` / ``FUNCTION_SIGNATURE_TYPE`` into the environment and appends to
``sys.path``. The source is the thin ``main.py`` (so the package loads once), the signature type
is always passed, and the environment and ``sys.path`` are restored after each build.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import functions_framework
from werkzeug.datastructures import EnvironHeaders
from werkzeug.wrappers import Response

from functions._api_key import check_api_key
from functions.manifest import FunctionSpec, Manifest, Route, load_manifest
from shared.errors import AgentError, ConfigurationError
from shared.logs import request_id_from
from shared.settings import get_settings

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

_FRAMEWORK_ENV = ("FUNCTION_TARGET", "FUNCTION_SIGNATURE_TYPE", "FUNCTION_TRIGGER_TYPE")


@dataclass(frozen=True)
class Mount:
    route: Route
    function: FunctionSpec
    app: WSGIApplication


@contextmanager
def _framework_side_effects_undone() -> Iterator[None]:
    saved_env = {name: os.environ.get(name) for name in _FRAMEWORK_ENV}
    saved_path = list(sys.path)
    saved_main = sys.modules.get("main")
    try:
        yield
    finally:
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        sys.path[:] = saved_path
        if saved_main is not None:
            sys.modules["main"] = saved_main


def function_app(spec: FunctionSpec, source: Path) -> WSGIApplication:
    """The functions-framework app of one function, as ``functions-framework --target`` would build it."""
    with _framework_side_effects_undone():
        app: WSGIApplication = functions_framework.create_app(
            spec.entry_point, str(source), spec.signature_type
        )
    return app


def _json_error(code: str, message: str, status: int, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps({"error": {"code": code, "message": message}})
    return Response(body, status=status, headers=headers, mimetype="application/json")


class Router:
    def __init__(self, manifest: Manifest, mounts: list[Mount]) -> None:
        self.manifest = manifest
        self.mounts = mounts

    def route_table(self) -> list[tuple[str, str, str]]:
        """(method, path, entry point) of every mount, in matching order."""
        return [(m.route.method, m.route.pattern, m.function.entry_point) for m in self.mounts]

    def _index(self) -> Response:
        body = {
            "service": "registry-agent",
            "functions": [
                {
                    "name": f.name,
                    "entryPoint": f.entry_point,
                    "trigger": f.trigger,
                    "routes": [str(r) for r in f.routes],
                }
                for f in self.manifest.functions
            ],
        }
        return Response(json.dumps(body), mimetype="application/json")

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        # An empty PATH_INFO would make Flask redirect to "/"; the function always gets a real path.
        path = environ.get("PATH_INFO") or "/"
        environ["PATH_INFO"] = path
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        candidates = [m for m in self.mounts if m.route.matches(path)]
        for mount in candidates:
            if mount.route.method == method or (method == "HEAD" and mount.route.method == "GET"):
                return mount.app(environ, start_response)
        response: Response
        if candidates:
            allowed = ", ".join(sorted({m.route.method for m in candidates}))
            response = _json_error(
                "METHOD_NOT_ALLOWED", f"{method} is not allowed here", 405, {"Allow": allowed}
            )
        elif path == "/" and method in {"GET", "HEAD"}:
            response = self._guarded(environ, self._index)
        else:
            response = _json_error("NOT_FOUND", "no such route", 404)
        # The router's own answers are requests too: same request id header and access line as a function's.
        request_id = request_id_from(EnvironHeaders(environ))
        response.headers["X-Request-Id"] = request_id
        log.info(
            "%s %s -> %d",
            method,
            path,
            response.status_code,
            extra={"request_id": request_id, "method": method, "path": path, "status": response.status_code},
        )
        return response(environ, start_response)

    @staticmethod
    def _guarded(environ: WSGIEnvironment, answer: Callable[[], Response]) -> Response:
        """The router's own answers need the agent's API key like the functions' routes do."""
        key = get_settings().agent_api_key
        try:
            check_api_key(EnvironHeaders(environ), key.get_secret_value() if key else None)
        except AgentError as refused:
            return _json_error(refused.code, refused.message, refused.status)
        return answer()


def build_router(manifest: Manifest | None = None, source: Path | None = None) -> Router:
    manifest = manifest or load_manifest()
    source = source or manifest.source_path
    if not source.is_file():
        raise ConfigurationError(
            f"the functions' entry file {source} is missing; ship main.py next to the functions package"
        )
    apps: dict[str, Any] = {spec.entry_point: function_app(spec, source) for spec in manifest.http_functions}
    mounts = [Mount(route, spec, apps[spec.entry_point]) for route, spec in manifest.route_table()]
    return Router(manifest, mounts)
