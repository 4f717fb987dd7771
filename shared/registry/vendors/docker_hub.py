"""``docker-hub``: Docker Hub (registries.md §2, §1.6).

* Registry ``registry-1.docker.io`` (``docker.io`` and its other names map to it); registry tokens
  from ``auth.docker.io`` through the standard Bearer challenge; official images live under
  ``library/``, so ``nginx`` means ``library/nginx``.
* ``_catalog`` is never granted, so repositories come from the Hub API: log in with
  ``POST /v2/auth/token`` (``identifier`` + ``secret`` -> ``access_token``, valid 10 minutes), then
  ``GET /v2/namespaces/{ns}/repositories?page_size=100`` following ``next``. The namespace is the
  path in ``registryBase`` (``docker.io/<org>``) or else the username.
* Tag metadata from ``/v2/namespaces/{ns}/repositories/{repo}/tags`` (``digest``,
  ``tag_last_pushed``); tags without a digest there, or every tag when the Hub API refuses, are
  resolved with manifest HEAD requests, which do not count as pulls.
* ``ratelimit-limit`` / ``ratelimit-remaining`` (``N;w=<seconds>``) are read from every answer. Once
  the pull allowance is spent, manifest GETs (the requests that count as pulls) are refused locally
  until the window has passed instead of being sent, and a 429 without ``Retry-After`` waits for
  the window, which in practice means failing at once with a clear rate-limit error.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import cached_property

import requests

from shared import errors
from shared.credentials import UserPassCredentials
from shared.registry.login import Login, Minted, MintedLogin, RegistryCredential, static_login
from shared.registry.models import TagInfo
from shared.registry.policy import ResponsePolicy
from shared.registry.timestamps import from_iso
from shared.registry.vendors.api import ApiAuth, RestApi, expect_list
from shared.registry.vendors.base import OciVendor, register

REGISTRY_HOST = "registry-1.docker.io"
HUB_API = "https://hub.docker.com"
_HOST_ALIASES = frozenset(
    {"docker.io", "index.docker.io", "registry.hub.docker.com", "hub.docker.com", REGISTRY_HOST}
)
PAGE_SIZE = 100  # the Hub API's maximum page_size
HUB_TOKEN_LIFETIME = 600.0  # "expires in 10 minutes" (AuthCreateAccessToken)


def _policy_value(header: str | None) -> tuple[int, int | None] | None:
    """``"100;w=21600"`` -> ``(100, 21600)``: the quota and its window in seconds."""
    if not header:
        return None
    first, *params = header.split(",")[0].split(";")
    try:
        value = int(first.strip())
    except ValueError:
        return None
    window = None
    for param in params:
        key, _, raw = param.strip().partition("=")
        if key == "w" and raw.isdigit():
            window = int(raw)
    return value, window


class HubRateLimits(ResponsePolicy):
    """Reads Docker Hub's ``ratelimit-*`` headers and stops spending pulls once none are left."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.limit: int | None = None
        self.remaining: int | None = None
        self.window: int | None = None
        self._blocked_until = 0.0
        self._lock = threading.Lock()

    def after(self, response: requests.Response) -> None:
        remaining = _policy_value(response.headers.get("ratelimit-remaining"))
        if remaining is None:
            return
        limit = _policy_value(response.headers.get("ratelimit-limit"))
        with self._lock:
            self.remaining, self.window = remaining[0], remaining[1] or self.window
            self.limit = limit[0] if limit else self.limit
            if self.remaining <= 0:
                self._blocked_until = self.clock() + float(self._reset(response) or self.window or 0)

    @staticmethod
    def _reset(response: requests.Response) -> float | None:
        reset = response.headers.get("ratelimit-reset")
        return float(reset) if reset and reset.strip().isdigit() else None

    def before(self, method: str, url: str, what: str) -> None:
        # Only a manifest GET counts as a pull; HEAD requests and token or API calls do not.
        if method != "GET" or "/manifests/" not in url:
            return
        with self._lock:
            wait = self._blocked_until - self.clock()
        if wait > 0:
            quota = f"{self.limit} pulls per {self.window} s" if self.limit and self.window else "pulls"
            raise errors.RateLimited(
                f"{what}: Docker Hub's pull limit ({quota}) is used up; about {int(wait)} s until "
                "it resets (no request was sent)"
            )

    def retry_delay(self, response: requests.Response) -> float | None:
        delay = super().retry_delay(response) or self._reset(response)
        if delay is None and response.status_code == 429 and self.remaining == 0 and self.window:
            return float(self.window)
        return delay


@register("docker-hub")
class DockerHub(OciVendor):
    @classmethod
    def host_of(cls, credentials: UserPassCredentials) -> str:
        host = credentials.host.lower()
        return REGISTRY_HOST if host in _HOST_ALIASES else credentials.host

    @classmethod
    def registry_names(cls, credentials: UserPassCredentials) -> frozenset[str]:
        # docker.io/library/nginx and registry-1.docker.io/library/nginx are the same image.
        names = super().registry_names(credentials)
        return names | _HOST_ALIASES if names & _HOST_ALIASES else names

    def v2_prefix(self) -> str:
        return ""  # a path in registryBase names a namespace, not a prefix before /v2

    def response_policy(self) -> ResponsePolicy:
        return HubRateLimits()

    def canonical_repository(self, repository: str) -> str:
        repository = repository.strip("/")
        return repository if "/" in repository else f"library/{repository}"

    # -- Hub API ---------------------------------------------------------------------------

    @cached_property
    def hub(self) -> RestApi:
        login: Login = MintedLogin(self._hub_login) if self.username and self.password else static_login()
        return RestApi(self.transport, HUB_API, "Docker Hub API", ApiAuth(login))

    def _hub_login(self) -> Minted:
        document, _ = self.hub.request(
            "POST",
            "/v2/auth/token",
            what="Docker Hub login",
            json_body={"identifier": self.username, "secret": self.password},
            authenticated=False,
        )
        token = document.get("access_token") if isinstance(document, dict) else None
        if not isinstance(token, str) or not token:
            raise errors.ProtocolError("Docker Hub login: answer has no access_token")
        return Minted(RegistryCredential(bearer=token), lifetime=HUB_TOKEN_LIFETIME)

    def _namespace(self) -> str:
        namespace = self.namespace or self.username
        if not namespace:
            raise errors.Unsupported(
                "Docker Hub needs a namespace to list: set registryBase to docker.io/<namespace> "
                "or give a username"
            )
        return namespace

    @staticmethod
    def _next(document: object, _: requests.Response) -> str | None:
        found = document.get("next") if isinstance(document, dict) else None
        return found if isinstance(found, str) and found else None

    def list_repositories(self) -> list[str]:
        namespace = self._namespace()
        what = f"list Docker Hub repositories of {namespace}"
        first = self.hub.url(f"/v2/namespaces/{namespace}/repositories?page_size={PAGE_SIZE}")
        names: set[str] = set()
        for page in self.hub.pages(first, what=what, next_url=self._next):
            for item in expect_list(page, what, "results"):
                if item.get("name"):
                    names.add(f"{item.get('namespace') or namespace}/{item['name']}")
        return sorted(names)

    def list_tags_with_metadata(self, repository: str) -> list[TagInfo]:
        repository = self.canonical_repository(repository)
        namespace, name = self.repository_parts(repository, 2, "Docker Hub tag listing")
        what = f"list Docker Hub tags of {repository}"
        first = self.hub.url(f"/v2/namespaces/{namespace}/repositories/{name}/tags?page_size={PAGE_SIZE}")
        found: dict[str, TagInfo] = {}
        try:
            for page in self.hub.pages(first, what=what, next_url=self._next):
                for item in expect_list(page, what, "results"):
                    if item.get("name"):
                        pushed = from_iso(item.get("tag_last_pushed")) or from_iso(item.get("last_updated"))
                        found[item["name"]] = TagInfo(item["name"], item.get("digest") or None, pushed)
        except (errors.Unauthorized, errors.Denied, errors.NotFound):
            return super().list_tags_with_metadata(repository)
        for tag, info in found.items():
            if info.digest is None:
                found[tag] = TagInfo(tag, self.head_digest(repository, tag), info.last_pushed)
        return [found[t] for t in sorted(found)]
