"""``quay-cr`` against Quay's documented behaviour.

Shapes from ../shared/docs/registries.md §7 and Quay's source (QY): ``endpoints/v2/v2auth.py``
(``GET /v2/auth`` with Basic answers ``{"token"}`` only, no ``expires_in``; the scope grammar is
``repository:<name>:<actions>`` and anything else is a 400 "Unable to decode repository and
actions"); ``endpoints/v2/catalog.py`` (``_catalog`` lists what the token's user or robot sees and
answers anonymous callers with an empty list; ``Link`` carries ``next_page``);
``endpoints/api/__init__.py`` (API v1 authenticates OAuth tokens only, ``next_page`` paging);
``endpoints/api/repository.py`` (``{"repositories": [{namespace, name, ...}], "next_page"}``);
``endpoints/api/tag.py`` (``{"tags": [{name, start_ts, manifest_digest, ...}], "page",
"has_additional"}``, ``limit`` <= 100); API errors ``{"status", "error_message", "title",
"error_type", "detail"}``; ``auth/credential_consts.py`` (``$oauthtoken``); robots ``ns+name``.
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
    connect,
    json_reply,
    link_pages,
    query,
)

HOST = "quay.io"
API = f"https://{HOST}/api/v1"
ROBOT = "acme+scanner"
SECRET = "QUAY-ROBOT-TOKEN-Unique-55AB"
OAUTH = "$oauthtoken"


def registry(rsps: responses.RequestsMock, user: str = ROBOT) -> MockRegistry:
    reg = MockRegistry(
        rsps,
        HOST,
        accepts=lambda u, p: (u, p) == (user, SECRET),
        realm=f"https://{HOST}/v2/auth",
        service=HOST,
        token_body=lambda n: {"token": f"quay-jwt-{n}"},  # no expires_in, as Quay answers
        scope_ok=lambda scopes: all(s.startswith("repository:") for s in scopes),
    )
    reg.route("GET", "/v2/", lambda _: (200, {}, "true"))
    return reg


def api_error(status: int, message: str) -> Reply:
    return json_reply(
        {"status": status, "error_message": message, "title": "x", "error_type": "x", "detail": message},
        status,
    )


def oauth_api(rsps: responses.RequestsMock, path: str, handler: Handler) -> list[requests.PreparedRequest]:
    seen: list[requests.PreparedRequest] = []

    def callback(request: requests.PreparedRequest) -> Reply:
        seen.append(request)
        if request.headers.get("Authorization") != f"Bearer {SECRET}":
            return api_error(401, "Unauthorized")
        return handler(request)

    rsps.add_callback(responses.GET, re.compile(re.escape(API + path) + r"(\?.*)?$"), callback=callback)
    return seen


def test_robot_lists_the_catalog_with_an_unscoped_token_over_three_pages(
    rsps: responses.RequestsMock,
) -> None:
    reg = registry(rsps)
    names = [f"acme/app-{i:02d}" for i in range(7)] + ["other/visible"]
    reg.route(
        "GET",
        "/v2/_catalog",
        link_pages(names, "repositories", 3, opaque=True, cursor_param="next_page"),
        anonymous=lambda _: json_reply({"repositories": []}),
    )
    client = connect("quay-cr", HOST, ROBOT, SECRET)
    assert client.list_repositories() == sorted(names)
    assert [query(r).get("scope") for r in reg.token_requests] == [None]
    catalog = [c.request.url for c in rsps.calls if "/_catalog" in (c.request.url or "")]
    assert len(catalog) == 3 and "next_page=tok0003X" in catalog[1]


def test_namespace_in_registry_base_narrows_the_catalog(rsps: responses.RequestsMock) -> None:
    reg = registry(rsps)
    reg.route("GET", "/v2/_catalog", lambda _: json_reply({"repositories": ["acme/a", "other/b"]}))
    assert connect("quay-cr", "quay.io/acme", ROBOT, SECRET).list_repositories() == ["acme/a"]


def test_oauth_token_lists_through_api_v1_over_three_pages(rsps: responses.RequestsMock) -> None:
    pages = {
        "": (
            {
                "repositories": [{"namespace": "acme", "name": "a"}, {"namespace": "acme", "name": "b"}],
                "next_page": "gAAAAB1",
            }
        ),
        "gAAAAB1": ({"repositories": [{"namespace": "acme", "name": "c"}], "next_page": "gAAAAB2"}),
        "gAAAAB2": ({"repositories": [{"namespace": "acme", "name": "d"}]}),
    }
    seen = oauth_api(rsps, "/repository", lambda r: json_reply(pages[query(r).get("next_page", [""])[0]]))
    client = connect("quay-cr", "quay.io/acme", OAUTH, SECRET)
    assert client.list_repositories() == ["acme/a", "acme/b", "acme/c", "acme/d"]
    assert len(seen) == 3 and all(query(r)["namespace"] == ["acme"] for r in seen)


def test_oauth_token_tags_with_metadata_while_has_additional(rsps: responses.RequestsMock) -> None:
    def tags(request: requests.PreparedRequest) -> Reply:
        params = query(request)
        assert params["onlyActiveTags"] == ["true"] and int(params["limit"][0]) <= 100
        page = int(params["page"][0])
        batch = [
            {
                "name": f"v{page}.{i}",
                "reversion": False,
                "start_ts": 1714557600 + page,
                "manifest_digest": f"sha256:{page:032x}{i:032x}",
                "is_manifest_list": False,
                "size": 100,
                "last_modified": "Wed, 01 May 2024 10:00:00 -0000",
            }
            for i in range(2)
        ]
        return json_reply({"tags": batch, "page": page, "has_additional": page < 3})

    seen = oauth_api(rsps, "/repository/acme/web/tag/", tags)
    client = connect("quay-cr", HOST, OAUTH, SECRET)
    infos = client.list_tags_with_metadata("acme/web")
    assert [i.tag for i in infos] == ["v1.0", "v1.1", "v2.0", "v2.1", "v3.0", "v3.1"]
    assert len(seen) == 3
    assert infos[0].digest == f"sha256:{1:032x}{0:032x}"
    assert (
        infos[0].last_pushed is not None and infos[0].last_pushed.isoformat() == "2024-05-01T10:00:01+00:00"
    )


def test_robot_tags_come_from_the_registry_with_head_digests(rsps: responses.RequestsMock) -> None:
    reg = registry(rsps)
    reg.route(
        "GET",
        "/v2/acme/web/tags/list",
        link_pages(["1", "2", "3", "4"], "tags", 2, name="acme/web", opaque=True, cursor_param="next_page"),
    )
    for tag in "1234":
        reg.route(
            "HEAD",
            f"/v2/acme/web/manifests/{tag}",
            lambda _, t=tag: (200, {"Docker-Content-Digest": "sha256:" + t * 64}, ""),
        )
    infos = connect("quay-cr", HOST, ROBOT, SECRET).list_tags_with_metadata("acme/web")
    assert [(i.tag, i.digest) for i in infos] == [(t, "sha256:" + t * 64) for t in "1234"]


def test_wrong_robot_token_is_unauthorized_and_not_repeated(rsps: responses.RequestsMock) -> None:
    registry(rsps)
    with pytest.raises(errors.Unauthorized) as caught:
        connect("quay-cr", HOST, ROBOT, SECRET + "x").list_repositories()
    assert SECRET not in str(caught.value)


def test_api_forbidden_is_denied_and_scrubbed(rsps: responses.RequestsMock) -> None:
    oauth_api(rsps, "/repository", lambda _: api_error(403, f"token {SECRET} lacks repo:read"))
    with pytest.raises(errors.Denied) as caught:
        connect("quay-cr", "quay.io/acme", OAUTH, SECRET).list_repositories()
    assert SECRET not in caught.value.message and "lacks repo:read" in caught.value.message


def test_unknown_repository_is_not_found(rsps: responses.RequestsMock) -> None:
    oauth_api(rsps, "/repository/acme/gone/tag/", lambda _: api_error(404, "Not Found"))
    with pytest.raises(errors.NotFound):
        connect("quay-cr", HOST, OAUTH, SECRET).list_tags_with_metadata("acme/gone")


def test_429_is_retried_with_back_off(rsps: responses.RequestsMock, sleeps: list[float]) -> None:
    reg = registry(rsps)
    answers = iter([(429, {"Retry-After": "2"}, "{}")])
    reg.route(
        "GET", "/v2/_catalog", lambda _: next(answers, None) or json_reply({"repositories": ["acme/a"]})
    )
    assert connect("quay-cr", HOST, ROBOT, SECRET, sleeps=sleeps).list_repositories() == ["acme/a"]
    assert sleeps == [2.0]


def test_token_without_expiry_lives_the_spec_default_of_60_seconds(rsps: responses.RequestsMock) -> None:
    reg = registry(rsps)
    reg.route(
        "HEAD",
        "/v2/acme/web/manifests/1",
        lambda _: (200, {"Docker-Content-Digest": "sha256:" + "1" * 64}, ""),
    )
    client = connect("quay-cr", HOST, ROBOT, SECRET)
    now = [5000.0]
    client.transport.auth.clock = lambda: now[0]
    client.head_digest("acme/web", "1")
    now[0] += 40
    client.head_digest("acme/web", "1")
    assert reg.issued == 1
    now[0] += 30  # 70 s after issue: past the 60 s default
    client.head_digest("acme/web", "1")
    assert reg.issued == 2


def test_expired_token_is_refreshed_after_a_401(rsps: responses.RequestsMock) -> None:
    reg = registry(rsps)
    reg.route(
        "HEAD",
        "/v2/acme/web/manifests/1",
        lambda _: (200, {"Docker-Content-Digest": "sha256:" + "1" * 64}, ""),
    )
    client = connect("quay-cr", HOST, ROBOT, SECRET)
    client.head_digest("acme/web", "1")
    reg.expire_tokens()
    assert client.head_digest("acme/web", "1") == "sha256:" + "1" * 64
    assert reg.issued == 2


def test_legacy_type_name(rsps: responses.RequestsMock) -> None:
    reg = registry(rsps)
    reg.route("GET", "/v2/_catalog", lambda _: json_reply({"repositories": ["acme/a"]}))
    client = connect("QuayCR", HOST, ROBOT, SECRET)
    assert type(client).__name__ == "Quay" and client.list_repositories() == ["acme/a"]
