"""HTTP to one registry: timeouts, retries, redirects and authentication in one place.

One ``requests.Session`` per registry keeps connections alive, so a listing of many pages costs one
TLS handshake. Redirects are followed by hand so that ``Authorization`` never reaches another host
(blob storage behind S3 or a CDN).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.exceptions

from shared import errors
from shared.redact import scrub
from shared.registry.auth import Authenticator
from shared.registry.destinations import refuse_metadata_url
from shared.registry.errors_map import error_for
from shared.registry.login import Login, static_login
from shared.registry.policy import ResponsePolicy
from shared.registry.retry import RETRY_STATUSES, RetryPolicy

MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "registry-agent/0.1"


# A dropped response whose body is at most this long is read to its end first: urllib3 returns a
# connection to the pool only once the whole body has gone by and closes the socket otherwise, so
# an unread 401 challenge cost every agent request a second TCP (and TLS) handshake.
DRAIN_LIMIT = 64 * 1024


def discard(response: requests.Response) -> None:
    """Close a response the caller does not need, keeping its connection alive when the body is small."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) <= DRAIN_LIMIT:
        # A connection that breaks while draining is simply closed below, as it would have been anyway.
        with contextlib.suppress(urllib3.exceptions.HTTPError, requests.RequestException, OSError):
            response.raw.read(DRAIN_LIMIT + 1, decode_content=False)
    response.close()


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port


class Transport:
    def __init__(
        self,
        base_url: str,
        *,
        username: str = "",
        password: str = "",
        verify: bool | str = True,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        secrets: tuple[str, ...] = (),
        sleep: Callable[[float], None] = time.sleep,
        login: Login | None = None,
        policy: ResponsePolicy | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.verify = verify
        self.timeout = (min(10.0, timeout), timeout)
        self.retry = retry or RetryPolicy()
        self._secrets = tuple(s for s in (password, *secrets) if s)
        self.sleep = sleep
        self.policy = policy or ResponsePolicy()
        self._logins: list[Login] = []
        self.auth = Authenticator(
            login or static_login(username, password),
            plain_http=self.base_url.startswith("http://"),
            send=self.send,
        )

    @property
    def secrets(self) -> tuple[str, ...]:
        """Everything to scrub from messages: fixed secrets and whatever any login minted."""
        minted = [s for login in (self.auth.login, *self._logins) for s in login.secrets]
        return self._secrets + tuple(minted)

    def track(self, login: Login) -> None:
        """Scrub what another login (a vendor API's) mints from this transport's messages too."""
        self._logins.append(login)

    def add_secrets(self, *secrets: str) -> None:
        self._secrets += tuple(s for s in secrets if s and s not in self._secrets)

    def close(self) -> None:
        self.session.close()

    def url(self, path: str) -> str:
        return self.base_url + path

    def request(
        self,
        method: str,
        url: str,
        *,
        scope: str | None,
        what: str,
        headers: dict[str, str] | None = None,
        ok: frozenset[int] = frozenset({200}),
    ) -> requests.Response:
        """Send with the scope's credentials; one 401 round trip is allowed to (re)authenticate.

        The response body is streamed: the caller reads it and closes it.
        """
        tries = 3  # first try, re-authenticate, widen an insufficient scope
        for attempt in range(tries):
            request_headers = dict(headers or {})
            authorization = self.auth.header_for(scope)
            if authorization:
                request_headers["Authorization"] = authorization
            response = self.send(method, url, headers=request_headers, what=what)
            if response.status_code != 401 or attempt == tries - 1:
                break
            if not self.auth.on_unauthorized(response, scope, sent=authorization is not None):
                break
            discard(response)
        if response.status_code not in ok:
            raise error_for(response, what, self.secrets)
        return response

    def send(
        self,
        method: str,
        url: str,
        *,
        what: str,
        headers: dict[str, str] | None = None,
        params: Any = None,
        data: Any = None,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> requests.Response:
        """One logical request: retried on transient failures, redirects followed by hand.

        ``timeout`` and ``retry`` override the registry's for calls that must fail fast (a cloud
        metadata service that is not there).
        """
        retry = retry or self.retry
        deadline = time.monotonic() + retry.budget_seconds
        attempt = 0
        self.policy.before(method, url, what)
        while True:
            try:
                response = self._follow_redirects(method, url, headers or {}, params, data, what, timeout)
            except (requests.ConnectionError, requests.Timeout) as failure:
                delay = retry.backoff(attempt)
                if attempt >= retry.max_retries or time.monotonic() + delay > deadline:
                    raise self._connection_error(failure, what, url) from None
            else:
                self.policy.after(response)
                if response.status_code not in RETRY_STATUSES or method not in ("GET", "HEAD", "POST"):
                    return response
                retry_after = self.policy.retry_delay(response)
                delay = retry_after if retry_after is not None else retry.backoff(attempt)
                if attempt >= retry.max_retries or time.monotonic() + delay > deadline:
                    return response  # the caller maps the final status to a typed error
                discard(response)
            attempt += 1
            self.sleep(delay)

    def _follow_redirects(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        params: Any,
        data: Any,
        what: str,
        timeout: float | None = None,
    ) -> requests.Response:
        origin = _origin(url)
        for _ in range(MAX_REDIRECTS + 1):
            response = self.session.request(
                method,
                url,
                headers=headers,
                params=params,
                data=data,
                stream=True,
                allow_redirects=False,
                timeout=(timeout, timeout) if timeout else self.timeout,
                verify=self.verify,
            )
            if response.status_code not in REDIRECT_STATUSES or "Location" not in response.headers:
                return response
            discard(response)
            url = urljoin(response.url, response.headers["Location"])
            if urlsplit(url).scheme not in ("http", "https"):
                raise errors.RefusedHost(f"{what}: redirect to a non-HTTP URL")
            # A blob may live on another host (S3, a CDN), but never on a metadata service.
            refuse_metadata_url(url, f"{what}: redirect")
            params = None  # the Location already carries its query
            if _origin(url) != origin:
                # The spec forbids forwarding credentials across hosts; presigned URLs also break with them.
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            if response.status_code == 303:
                method, data = "GET", None
        raise errors.ProtocolError(f"{what}: more than {MAX_REDIRECTS} redirects")

    def _connection_error(self, failure: Exception, what: str, url: str) -> errors.RegistryError:
        host = urlsplit(url).netloc or urlsplit(self.base_url).netloc
        if isinstance(failure, requests.Timeout):
            return errors.RegistryTimeout(f"{what}: {host} did not answer in time")
        if isinstance(failure, requests.exceptions.SSLError):
            return errors.RegistryUnavailable(
                f"{what}: TLS verification failed for {host} "
                "(set REQUESTS_CA_BUNDLE, or INSECURE_REGISTRIES for plain HTTP)"
            )
        detail = scrub(type(failure).__name__, self.secrets)
        return errors.RegistryUnavailable(f"{what}: cannot connect to {host} ({detail})")
