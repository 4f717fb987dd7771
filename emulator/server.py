"""gunicorn, in-process, serving the router: one worker process with request threads.

One worker (not configurable) because the scan workers and the registry-client cache live in that
process; request concurrency comes from threads. ``timeout=0`` as in functions-framework: a slow
registry call must not get the worker killed mid-request (the platform timeout is the real limit).
"""

from __future__ import annotations

import logging
from typing import Any, TextIO

import gunicorn.app.base
import gunicorn.glogging

from emulator.background import start_background, stop_background
from emulator.router import Router, build_router
from shared.errors import ConfigurationError
from shared.logs import JsonFormatter, configure_logging
from shared.settings import Settings, get_settings

DEFAULT_THREADS = 8
# Settings only newer gunicorn releases know; older ones run fine without them.
_OPTIONAL_SETTINGS = frozenset({"control_socket_disable"})

log = logging.getLogger(__name__)


class JsonGunicornLogger(gunicorn.glogging.Logger):
    """gunicorn's own lines (``Listening at``, ``Booting worker``, request debug lines) as JSON too,
    so that every line the process writes is one JSON object."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for handler in (*self.error_log.handlers, *self.access_log.handlers):
            handler.setFormatter(JsonFormatter())


def _post_worker_init(worker: Any) -> None:
    # Runs in the worker process after the fork: the only place threads started here will live.
    start_background(get_settings())


def _worker_exit(server: Any, worker: Any) -> None:
    stop_background()


def gunicorn_options(settings: Settings, host: str, port: int, threads: int) -> dict[str, Any]:
    options: dict[str, Any] = {
        "bind": f"{host}:{port}",
        "workers": 1,
        "worker_class": "gthread",
        "threads": threads,
        "timeout": 0,
        "graceful_timeout": 30,
        "limit_request_line": 0,  # image references and cursors can be long
        "loglevel": settings.log_level,
        "logger_class": JsonGunicornLogger,
        "post_worker_init": _post_worker_init,
        "worker_exit": _worker_exit,
        # gunicorn >= 25 opens a control socket under $HOME that can change the worker count at run
        # time; the scan workers rely on exactly one worker process, and $HOME may be read-only.
        "control_socket_disable": True,
    }
    if bool(settings.https_cert) != bool(settings.https_key):
        raise ConfigurationError("HTTPS_CERT and HTTPS_KEY must be set together")
    if settings.https_cert and settings.https_key:
        options.update(certfile=str(settings.https_cert), keyfile=str(settings.https_key))
    return options


class EmulatorServer(gunicorn.app.base.BaseApplication):
    def __init__(self, app: Router, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings or key not in _OPTIONAL_SETTINGS:
                self.cfg.set(key, value)

    def load(self) -> Router:
        return self.application


def banner(router: Router, settings: Settings, host: str, port: int, out: TextIO | None = None) -> None:
    """What the agent serves, as log lines (``out``: also print them there, e.g. for a terminal)."""
    scheme = "https" if settings.https_cert else "http"
    if settings.scan_dispatch == "local":
        dispatch = f"local, {settings.max_active_operations} worker thread(s)"
    else:
        dispatch = f"Pub/Sub topic {settings.pubsub_topic}"
    lines = [
        f"registry-agent listening on {scheme}://{host}:{port}",
        f"state dir: {settings.state_dir}",
        f"scan dispatch: {dispatch}",
        "API key: " + ("required (AGENT_API_KEY)" if settings.agent_api_key else "not required"),
        f"{'METHOD':<7} {'PATH':<28} FUNCTION",
    ]
    lines += [f"{method:<7} {path:<28} {function}" for method, path, function in router.route_table()]
    for line in lines:
        log.info(line)
        if out is not None:
            print(line, file=out)
    if out is not None:
        out.flush()


def serve(
    settings: Settings | None = None,
    host: str | None = None,
    port: int | None = None,
    threads: int = DEFAULT_THREADS,
) -> None:
    """Serve every HTTP function until stopped (SIGINT/SIGTERM); scan workers run in the worker process."""
    settings = settings or get_settings()
    # One JSON line per log record, for the app, gunicorn and the scan workers alike (shared/logs.py).
    configure_logging(settings.log_level)
    host = host or settings.agent_host
    port = port or settings.listen_port
    router = build_router()
    options = gunicorn_options(settings, host, port, max(1, threads))
    banner(router, settings, host, port)
    EmulatorServer(router, options).run()
