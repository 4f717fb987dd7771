"""``harbor-cr`` against Harbor's documented API.

Shapes from ../shared/docs/registries.md §3 and Harbor's ``api/v2.0/swagger.yaml`` (HB): projects
``[{project_id, name}]``, repositories ``[{id, project_id, name: "proj/repo"}]``, artifacts
``[{digest, push_time, tags: [{name, push_time}]}]``; ``page`` / ``page_size`` (max 100) with
``X-Total-Count`` and a relative ``Link: <...>; rel="next"``; a repository name containing ``/``
double URL-encoded in the path; Basic auth for users and robots (``robot$<project>+<name>``,
``robot$<name>``); ``/v2/_catalog`` for system administrators only, behind the ``/service/token``
realm (service ``harbor-registry``) of distribution's token spec.
"""

from __future__ import annotations

import re

import pytest
import requests
import responses

from shared import errors
from tests.registry_vendors.support import (
    Handler,
    MockRegistry,
    Reply,
    basic,
    connect,
    decode_basic,
    json_reply,
    link_pages,
    query,
)

HOST = "harbor.example.com"
API = f"https://{HOST}/api/v2.0"
PASSWORD = "Harbor-Robot-Secret-9c1f"
ROBOT = "robot$library+scanner"


def harbor_pages(items: list[dict[str, object]], path: str) -> Handler:
    """A Harbor list endpoint: ``page``/``page_size`` slices with X-Total-Count and a Link that
    keeps the request's other query parameters, as Harbor builds it from the request URL."""

    def handler(request: requests.PreparedRequest) -> Reply:
        params = query(request)
        page, size = int(params["page"][0]), int(params["page_size"][0])
        assert size <= 100
        chunk = items[(page - 1) * size : page * size]
        headers = {"X-Total-Count": str(len(items))}
        others = "".join(f"&{k}={v[0]}" for k, v in params.items() if k not in ("page", "page_size"))
        links = []
        if page > 1:
            links.append(f'<{path}?page={page - 1}&page_size={size}{others}>; rel="prev"')
        if page * size < len(items):
            links.append(f'<{path}?page={page + 1}&page_size={size}{others}>; rel="next"')
        if links:
            headers["Link"] = " , ".join(links)
        return json_reply(chunk, headers=headers)

    return handler


def api_route(
    rsps: responses.RequestsMock, path: str, handler: Handler, user: str = ROBOT
) -> list[requests.PreparedRequest]:
    """An API endpoint behind Basic auth; returns the requests it received."""
    seen: list[requests.PreparedRequest] = []

    def callback(request: requests.PreparedRequest) -> Reply:
        seen.append(request)
        if decode_basic(request.headers.get("Authorization")) != (user, PASSWORD):
            return json_reply({"errors": [{"code": "UNAUTHORIZED", "message": "unauthorized"}]}, 401)
        return handler(request)

    rsps.add_callback(responses.GET, re.compile(re.escape(API + path) + r"(\?.*)?$"), callback=callback)
    return seen


def registry(rsps: responses.RequestsMock, user: str = ROBOT) -> MockRegistry:
    return MockRegistry(
        rsps,
        HOST,
        accepts=lambda u, p: (u, p) == (user, PASSWORD),
        realm=f"https://{HOST}/service/token",
        service="harbor-registry",
    )


def test_project_robot_lists_its_project_over_three_pages(rsps: responses.RequestsMock) -> None:
    repos = [{"id": i, "project_id": 1, "name": f"library/app-{i:03d}"} for i in range(250)]
    seen = api_route(
        rsps, "/projects/library/repositories", harbor_pages(repos, "/api/v2.0/projects/library/repositories")
    )
    client = connect("harbor-cr", HOST, ROBOT, PASSWORD)
    assert client.list_repositories() == sorted(r["name"] for r in repos)
    assert [query(r)["page"] for r in seen] == [["1"], ["2"], ["3"]]
    assert all(r.headers["Authorization"] == basic(ROBOT, PASSWORD) for r in seen)


def test_user_lists_every_visible_project(rsps: responses.RequestsMock) -> None:
    projects = [{"project_id": i, "name": f"p{i:03d}"} for i in range(201)]
    user = "alice"
    api_route(rsps, "/projects", harbor_pages(projects, "/api/v2.0/projects"), user=user)
    for project in projects:
        name = project["name"]
        items = [{"id": 1, "project_id": project["project_id"], "name": f"{name}/web"}]
        api_route(
            rsps,
            f"/projects/{name}/repositories",
            harbor_pages(items, f"/api/v2.0/projects/{name}/repositories"),
            user=user,
        )
    client = connect("harbor-cr", HOST, user, PASSWORD)
    assert client.list_repositories() == [f"p{i:03d}/web" for i in range(201)]


def test_system_admin_falls_back_to_the_catalog(rsps: responses.RequestsMock) -> None:
    api_route(
        rsps,
        "/projects",
        lambda _: json_reply({"errors": [{"code": "FORBIDDEN", "message": "forbidden"}]}, 403),
        user="admin",
    )
    reg = registry(rsps, user="admin")
    names = [f"proj/img-{i:02d}" for i in range(7)]
    reg.route("GET", "/v2/_catalog", link_pages(names, "repositories", size=3))
    client = connect("harbor-cr", HOST, "admin", PASSWORD)
    assert client.list_repositories() == names
    assert "scope=registry%3Acatalog%3A%2A" in (reg.token_requests[0].url or "")


def test_tags_with_metadata_double_encode_nested_names_and_page(rsps: responses.RequestsMock) -> None:
    artifacts = [
        {
            "digest": f"sha256:{i:064x}",
            "push_time": "2024-05-01T10:00:00.000Z",
            "tags": [{"name": f"v{i:03d}", "push_time": f"2024-05-{1 + i % 28:02d}T10:00:00.123Z"}],
        }
        for i in range(230)
    ]
    artifacts.append({"digest": "sha256:" + "f" * 64, "push_time": "2024-01-01T00:00:00Z", "tags": None})
    path = "/projects/library/repositories/team%252Fapp/artifacts"
    seen = api_route(rsps, path, harbor_pages(artifacts, "/api/v2.0" + path))
    client = connect("harbor-cr", HOST, ROBOT, PASSWORD)
    infos = client.list_tags_with_metadata("library/team/app")
    assert len(infos) == 230 and len(seen) == 3
    assert all("with_tag=true" in (r.url or "") for r in seen)
    first = infos[0]
    assert (first.tag, first.digest) == ("v000", "sha256:" + "0" * 64)
    assert (
        first.last_pushed is not None and first.last_pushed.isoformat() == "2024-05-01T10:00:00.123000+00:00"
    )


def test_wrong_password_is_unauthorized_without_the_password(rsps: responses.RequestsMock) -> None:
    api_route(rsps, "/projects/library/repositories", lambda _: json_reply([]))
    registry(rsps).route("GET", "/v2/_catalog", link_pages([], "repositories", 10))
    client = connect("harbor-cr", HOST, ROBOT, "wrong-" + PASSWORD)
    with pytest.raises(errors.Unauthorized) as caught:
        client.list_repositories()
    assert PASSWORD not in str(caught.value) and PASSWORD not in repr(caught.value.args)


def test_forbidden_project_is_denied(rsps: responses.RequestsMock) -> None:
    api_route(
        rsps,
        "/projects/library/repositories",
        lambda _: json_reply(
            {"errors": [{"code": "FORBIDDEN", "message": f"robot {PASSWORD} has no access"}]}, 403
        ),
    )
    reg = registry(rsps)
    reg.route(
        "GET",
        "/v2/_catalog",
        lambda _: json_reply(
            {"errors": [{"code": "UNAUTHORIZED", "message": "unauthorized to list catalog"}]}, 401
        ),
    )
    client = connect("harbor-cr", HOST, ROBOT, PASSWORD)
    with pytest.raises(errors.Denied) as caught:
        client.list_repositories()
    assert PASSWORD not in caught.value.message  # the server echoed it; the agent scrubbed it


def test_missing_repository_is_not_found(rsps: responses.RequestsMock) -> None:
    path = "/projects/library/repositories/gone/artifacts"
    api_route(
        rsps,
        path,
        lambda _: json_reply(
            {"errors": [{"code": "NOT_FOUND", "message": "repository library/gone not found"}]}, 404
        ),
    )
    client = connect("harbor-cr", HOST, ROBOT, PASSWORD)
    with pytest.raises(errors.NotFound):
        client.list_tags_with_metadata("library/gone")


def test_429_is_waited_out_as_retry_after_says(rsps: responses.RequestsMock, sleeps: list[float]) -> None:
    replies = iter(
        [
            json_reply(
                {"errors": [{"code": "TOO_MANY_REQUESTS", "message": "slow down"}]}, 429, {"Retry-After": "3"}
            )
        ]
    )
    repos = [{"id": 1, "project_id": 1, "name": "library/web"}]
    ok = harbor_pages(repos, "/api/v2.0/projects/library/repositories")
    api_route(rsps, "/projects/library/repositories", lambda r: next(replies, None) or ok(r))
    client = connect("harbor-cr", HOST, ROBOT, PASSWORD, sleeps=sleeps)
    assert client.list_repositories() == ["library/web"]
    assert sleeps == [3.0]


def test_expired_registry_token_is_refreshed(rsps: responses.RequestsMock) -> None:
    reg = registry(rsps)
    reg.route(
        "GET",
        "/v2/library/web/tags/list",
        link_pages(["a", "b", "c", "d", "e", "f", "g"], "tags", 3, name="library/web"),
    )
    client = connect("harbor-cr", HOST, ROBOT, PASSWORD)
    assert client.list_tags("library/web") == list("abcdefg")  # three pages, one token
    assert reg.issued == 1
    reg.expire_tokens()
    assert client.list_tags("library/web") == list("abcdefg")
    assert reg.issued == 2


def test_legacy_type_name_and_system_robot(rsps: responses.RequestsMock) -> None:
    user = "robot$ci"
    projects = [{"project_id": 1, "name": "team"}]
    api_route(rsps, "/projects", harbor_pages(projects, "/api/v2.0/projects"), user=user)
    api_route(
        rsps,
        "/projects/team/repositories",
        harbor_pages([{"name": "team/api"}], "/api/v2.0/projects/team/repositories"),
        user=user,
    )
    client = connect("HarborCR", HOST, user, PASSWORD)
    assert type(client).__name__ == "Harbor"
    assert client.list_repositories() == ["team/api"]


def test_pull_only_robot_gets_tags_from_the_registry(rsps: responses.RequestsMock) -> None:
    path = "/projects/library/repositories/web/artifacts"
    api_route(
        rsps, path, lambda _: json_reply({"errors": [{"code": "FORBIDDEN", "message": "forbidden"}]}, 403)
    )
    reg = registry(rsps)
    reg.route("GET", "/v2/library/web/tags/list", link_pages(["1", "2", "3"], "tags", 1, name="library/web"))
    for tag in "123":
        reg.route(
            "HEAD",
            f"/v2/library/web/manifests/{tag}",
            lambda _, t=tag: (200, {"Docker-Content-Digest": "sha256:" + t * 64}, ""),
        )
    infos = connect("harbor-cr", HOST, ROBOT, PASSWORD).list_tags_with_metadata("library/web")
    assert [(i.tag, i.digest, i.last_pushed) for i in infos] == [(t, "sha256:" + t * 64, None) for t in "123"]


def test_project_in_registry_base_is_a_project_not_a_path_prefix(rsps: responses.RequestsMock) -> None:
    api_route(
        rsps,
        "/projects/team/repositories",
        harbor_pages([{"name": "team/api"}], "/api/v2.0/projects/team/repositories"),
        user="alice",
    )
    reg = registry(rsps, user="alice")
    reg.route("GET", "/v2/team/api/tags/list", lambda _: json_reply({"name": "team/api", "tags": ["1"]}))
    client = connect("harbor-cr", f"{HOST}/team", "alice", PASSWORD)
    assert client.list_repositories() == ["team/api"]
    assert client.list_tags("team/api") == ["1"]
