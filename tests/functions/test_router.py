"""The emulator router: one WSGI app, every function at the broker's paths, no framework side effects."""

from __future__ import annotations

import os
import sys

import flask
from werkzeug.test import Client

from emulator.router import Router, build_router
from tests.functions.fakes import ENCODED, FakeRegistry


def test_index_lists_functions(router_client: Client) -> None:
    body = router_client.get("/").get_json()
    assert [f["entryPoint"] for f in body["functions"]] == [
        "list_images",
        "describe",
        "scan",
        "callback",
        "scan_event",
    ]


def test_route_table_follows_the_manifest(router: Router) -> None:
    table = router.route_table()
    assert ("GET", "/list/*", "list_images") in table
    assert ("POST", "/scan", "scan") in table and ("GET", "/scan/*", "scan") in table
    assert all(function != "scan_event" for _, _, function in table)  # Pub/Sub-triggered: not mounted


def test_every_mount_is_a_functions_framework_app(router: Router) -> None:
    # Built by create_app: a Flask app named after the target, wrapped in the execution-id middleware.
    for mount in router.mounts:
        assert isinstance(mount.app, flask.Flask) and mount.app.name == mount.function.entry_point
        assert type(mount.app.wsgi_app).__module__ == "functions_framework.execution_id"


def test_head_and_empty_path(router_client: Client) -> None:
    assert router_client.head("/healthcheck").status_code == 200
    response = router_client.get("", environ_overrides={"PATH_INFO": ""})
    assert response.status_code == 200  # the index, not a redirect


def test_building_leaves_no_framework_state_behind() -> None:
    before_env = {k: os.environ.get(k) for k in ("FUNCTION_TARGET", "FUNCTION_SIGNATURE_TYPE")}
    before_path = list(sys.path)
    build_router()
    assert {k: os.environ.get(k) for k in before_env} == before_env
    assert sys.path == before_path


def test_functions_share_one_package(fake_registry: FakeRegistry, router_client: Client) -> None:
    # The injection point patched on the package reaches the mounted apps: the package loaded once.
    assert router_client.get("/list", headers={"Authorization": ENCODED}).status_code == 200
    assert fake_registry.calls == [("list_repositories", ())]


def test_a_trailing_slash_is_tolerated_like_in_the_functions(router_client: Client) -> None:
    assert router_client.get("/healthcheck/").status_code == 200
    assert router_client.get("/healthchecks").status_code == 404
