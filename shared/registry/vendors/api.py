"""JSON over HTTP to a vendor's management API (Docker Hub, Harbor, Quay, GitHub, GitLab, ...).

Vendors list repositories and tag metadata through their own REST APIs, because ``/v2/_catalog``
is missing or restricted on most of them (registries.md §1.2). These calls share the registry
transport: its session, TLS settings, timeouts, retries with back-off and redirect rules, so a
429 from an API is waited out exactly like one from the registry. Authentication differs per API
and comes from an ``ApiAuth``; a refused minted token is renewed once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests

from shared import errors
from shared.registry.auth import basic_header
from shared.registry.client import MAX_LIST_BYTES, read_limited
from shared.registry.destinations import refuse_metadata_url
from shared.registry.errors_map import error_for
from shared.registry.login import Login, RegistryCredential
from shared.registry.paging import follow_pages, next_link
from shared.registry.transport import Transport


def standard_headers(credential: RegistryCredential) -> dict[str, str]:
    """``Authorization: Bearer`` for a token, Basic for a username and password, else nothing."""
    if credential.bearer:
        return {"Authorization": f"Bearer {credential.bearer}"}
    if credential.has_basic:
        return {"Authorization": basic_header(credential.username, credential.password)}
    return {}


class ApiAuth:
    """The headers that authenticate to one API, from a ``Login`` that may mint and renew them."""

    def __init__(
        self,
        login: Login | None = None,
        render: Callable[[RegistryCredential], dict[str, str]] = standard_headers,
    ) -> None:
        self.login = login or Login()
        self._render = render

    def headers(self) -> dict[str, str]:
        return self._render(self.login.current())

    def renew(self) -> bool:
        return self.login.renew()


class RestApi:
    """One vendor API rooted at ``base_url``; every URL it follows must stay on that host."""

    def __init__(self, transport: Transport, base_url: str, name: str, auth: ApiAuth | None = None) -> None:
        self.transport = transport
        self.base_url = base_url.rstrip("/")
        self.name = name
        self.auth = auth or ApiAuth()
        transport.track(self.auth.login)

    def url(self, path: str) -> str:
        return self.base_url + path

    def _check_host(self, url: str) -> str:
        target = urljoin(self.base_url + "/", url)
        if urlsplit(target)[:2] != urlsplit(self.base_url)[:2]:
            # A next-page URL from the body is data from the server: never follow it elsewhere.
            raise errors.RefusedHost(f"{self.name}: refusing to follow a URL to another host")
        refuse_metadata_url(target, self.name)
        return target

    def request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        params: Any = None,
        json_body: Any = None,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        authenticated: bool = True,
    ) -> tuple[Any, requests.Response]:
        """The parsed JSON body of a 2xx answer; a typed error otherwise."""
        url = self._check_host(url)
        for attempt in range(2):
            request_headers = {"Accept": "application/json", **(headers or {})}
            if authenticated:
                request_headers.update(self.auth.headers())
            data: Any = form
            if json_body is not None:
                request_headers["Content-Type"] = "application/json"
                data = json.dumps(json_body)
            response = self.transport.send(
                method, url, what=what, headers=request_headers, params=params, data=data
            )
            # An expired or revoked minted token: mint once more and repeat the call.
            if response.status_code == 401 and authenticated and attempt == 0 and self.auth.renew():
                response.close()
                continue
            break
        if not 200 <= response.status_code < 300:
            raise error_for(response, what, self.transport.secrets, who=self.name)
        body = read_limited(response, MAX_LIST_BYTES, what)
        if not body.strip():
            return None, response
        try:
            return json.loads(body), response
        except (ValueError, UnicodeDecodeError):
            raise errors.ProtocolError(f"{what}: {self.name} sent malformed JSON") from None

    def get(self, url: str, *, what: str, params: Any = None) -> tuple[Any, requests.Response]:
        return self.request("GET", url, what=what, params=params)

    def pages(
        self,
        first_url: str,
        *,
        what: str,
        next_url: Callable[[Any, requests.Response], str | None],
        params: Any = None,
    ) -> Iterator[Any]:
        """Each page's document, following ``next_url(document, response)`` until it is None."""

        def fetch(url: str) -> tuple[Any, str | None]:
            # The query parameters belong to the first request; next links carry their own.
            document, response = self.get(url, what=what, params=params if url == first_url else None)
            found = next_url(document, response)
            return document, self._check_host(found) if found else None

        return follow_pages(first_url, fetch, what)


def with_query(url: str, **params: str) -> str:
    """``url`` with each of ``params`` set, replacing any value it had (a page token, a page)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query.extend(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def token_next(key: str, param: str) -> Callable[[Any, requests.Response], str | None]:
    """Next page = this URL with ``param`` set to the body's ``key`` (a page token), while present."""

    def find(document: Any, response: requests.Response) -> str | None:
        token = document.get(key) if isinstance(document, dict) else None
        return with_query(response.url, **{param: str(token)}) if token else None

    return find


def link_next(_: Any, response: requests.Response) -> str | None:
    """The RFC 8288 ``rel="next"`` link (GitHub, Harbor, ACR)."""
    return next_link(response.headers.get("Link"), response.url)


def expect_list(document: Any, what: str, key: str | None = None) -> list[dict[str, Any]]:
    """``document[key]`` (or the document itself) as a list of objects, or a ProtocolError."""
    items = document.get(key) if key is not None and isinstance(document, dict) else document
    if items is None and key is not None and isinstance(document, dict):
        return []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise errors.ProtocolError(f"{what}: unexpected answer shape")
    return items
