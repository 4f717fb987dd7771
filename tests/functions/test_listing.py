"""list_images: /list, /list/<repo>, /list-paginated/<repo>, /list-with-metadata/<repo>."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from werkzeug.test import Client

from emulator.router import Router, function_app
from functions.listing import list_images
from functions.manifest import load_manifest
from shared import errors
from tests.functions.conftest import call
from tests.functions.fakes import AMD64_DIGEST, ENCODED, PASSWORD, FakeRegistry

AUTH = {"Authorization": ENCODED}


def test_list_repositories(fake_registry: FakeRegistry) -> None:
    response = call(list_images, "GET", "/list", headers=AUTH)
    assert response.status_code == 200
    assert response.get_json() == ["library/nginx", "team/app"]
    assert fake_registry.credentials_seen[0].password.get_secret_value() == PASSWORD
    assert fake_registry.closed == 1  # the client is closed after every request


def test_list_repositories_disabled_makes_no_registry_call(
    fake_registry: FakeRegistry, agent_env: Callable[..., None]
) -> None:
    agent_env(SNYK_DISABLE_LIST_REPOS="true")
    response = call(list_images, "GET", "/list")  # not even credentials are needed
    assert (response.status_code, response.get_json()) == (200, [])
    assert fake_registry.calls == []


def test_list_tags_of_a_nested_repository(fake_registry: FakeRegistry) -> None:
    response = call(list_images, "GET", "/list/library/nginx", headers=AUTH)
    assert response.get_json() == ["1.25", "1.26", "latest"]
    assert fake_registry.calls == [("list_tags", ("library/nginx",))]


def test_list_paginated_walks_the_cursor(fake_registry: FakeRegistry) -> None:
    first = call(list_images, "GET", "/list-paginated/library/nginx?n=2", headers=AUTH).get_json()
    assert first == {"tags": ["1.25", "1.26"], "next": "2"}
    second = call(
        list_images, "GET", f"/list-paginated/library/nginx?n=2&cursor={first['next']}", headers=AUTH
    ).get_json()
    assert second == {"tags": ["latest"], "next": None}


@pytest.mark.parametrize("query", ["n=0", "n=abc", "n=100000", "cursor="])
def test_list_paginated_rejects_bad_parameters(fake_registry: FakeRegistry, query: str) -> None:
    response = call(list_images, "GET", f"/list-paginated/library/nginx?{query}", headers=AUTH)
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "INVALID_REQUEST"
    assert fake_registry.calls == []


def test_list_with_metadata(fake_registry: FakeRegistry) -> None:
    body = call(list_images, "GET", "/list-with-metadata/team/app", headers=AUTH).get_json()
    assert body == [{"tag": "v1", "digest": AMD64_DIGEST, "lastPushed": "2024-05-01T12:00:00Z"}]


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (errors.Unauthorized("the registry refused the credentials"), 401, "UNAUTHORIZED"),
        (errors.Denied("denied"), 403, "DENIED"),
        (errors.RegistryUnavailable("connection refused"), 502, "REGISTRY_UNAVAILABLE"),
        (errors.RegistryTimeout("timed out"), 504, "REGISTRY_TIMEOUT"),
        (errors.RateLimited("slow down"), 429, "TOOMANYREQUESTS"),
    ],
)
def test_registry_errors_keep_their_status(
    fake_registry: FakeRegistry, error: errors.AgentError, status: int, code: str
) -> None:
    fake_registry.error = error
    response = call(list_images, "GET", "/list/library/nginx", headers=AUTH)
    assert response.status_code == status
    assert response.get_json() == {"error": {"code": code, "message": error.message}}


def test_unknown_repository_is_404(fake_registry: FakeRegistry) -> None:
    response = call(list_images, "GET", "/list/nope/nothing", headers=AUTH)
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "NOT_FOUND"


def test_unknown_path_and_method(fake_registry: FakeRegistry) -> None:
    assert call(list_images, "GET", "/listing", headers=AUTH).status_code == 404
    response = call(list_images, "POST", "/list", headers=AUTH)
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "METHOD_NOT_ALLOWED"


# The same request through the three ways of running a function must reach the function with the
# same full broker path, hence the same repository argument.
def _direct(path: str) -> Any:
    return call(list_images, "GET", path, headers=AUTH)


def _standalone(path: str) -> Any:
    spec = next(f for f in load_manifest().functions if f.entry_point == "list_images")
    return Client(function_app(spec, load_manifest().source_path)).get(path, headers=AUTH)


@pytest.mark.parametrize("caller", ["direct", "standalone", "router"])
def test_every_way_of_running_sees_the_full_path(
    fake_registry: FakeRegistry, router: Router, caller: str
) -> None:
    callers = {
        "direct": _direct,
        "standalone": _standalone,
        "router": lambda path: Client(router).get(path, headers=AUTH),
    }
    for path, expected in [
        ("/list/library/nginx", ("list_tags", ("library/nginx",))),
        ("/list-paginated/team/app?n=5", ("list_tags_page", ("team/app", 5, None))),
        ("/list-with-metadata/team/app", ("list_tags_with_metadata", ("team/app",))),
    ]:
        fake_registry.calls.clear()
        response = callers[caller](path)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert fake_registry.calls == [expected]
