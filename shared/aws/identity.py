"""The agent's own AWS identity, from the places the AWS SDKs look (AWS SDKs and Tools Reference
Guide, "Standardized credential providers"), in their order:

1. environment: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, optional ``AWS_SESSION_TOKEN``;
2. container provider (ECS, EKS Pod Identity): ``AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`` under
   ``http://169.254.170.2``, or ``AWS_CONTAINER_CREDENTIALS_FULL_URI`` (plain HTTP only to the
   documented link-local and loopback addresses), with ``AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE``
   or ``AWS_CONTAINER_AUTHORIZATION_TOKEN`` as ``Authorization``;
3. EC2 instance metadata, IMDSv2 only: ``PUT /latest/api/token`` for a session token, then
   ``/latest/meta-data/iam/security-credentials/`` for the role name and its credentials.
   ``AWS_EC2_METADATA_DISABLED=true`` skips it.

Temporary credentials are cached until five minutes before their ``Expiration``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from shared import errors
from shared.aws.sigv4 import AwsCredentials
from shared.registry.retry import RetryPolicy
from shared.registry.timestamps import from_iso

CONTAINER_HOST = "http://169.254.170.2"
IMDS = "http://169.254.169.254"
_CONTAINER_HTTP_HOSTS = frozenset({"169.254.170.2", "169.254.170.23", "fd00:ec2::23", "localhost"})
RENEW_MARGIN = 300.0
# Metadata services answer in milliseconds or not at all: do not wait the registry's timeouts.
METADATA_TIMEOUT = 2.0
METADATA_RETRY = RetryPolicy(max_retries=1, budget_seconds=5.0, base_delay=0.2)
IMDS_TOKEN_TTL = "21600"  # noqa: S105 - seconds the IMDSv2 session lasts, not a secret

Send = Callable[..., requests.Response]


def _read_json(response: requests.Response, what: str) -> dict[str, Any]:
    with response:
        if response.status_code != 200:
            raise errors.Unauthorized(f"{what}: metadata service answered {response.status_code}")
        try:
            document = json.loads(response.content)
        except ValueError:
            raise errors.ProtocolError(f"{what}: metadata service sent malformed JSON") from None
    if not isinstance(document, dict):
        raise errors.ProtocolError(f"{what}: metadata service sent JSON that is not an object")
    return document


def _credentials(document: dict[str, Any], what: str) -> AwsCredentials:
    key, secret = document.get("AccessKeyId"), document.get("SecretAccessKey")
    if not isinstance(key, str) or not isinstance(secret, str) or not key or not secret:
        raise errors.ProtocolError(f"{what}: answer lacks AccessKeyId or SecretAccessKey")
    expires = from_iso(document.get("Expiration"))
    token = document.get("Token")
    return AwsCredentials(
        key,
        secret,
        token if isinstance(token, str) and token else None,
        expires.timestamp() if expires else None,
    )


def _allowed_full_uri(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "https":
        return True
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname in _CONTAINER_HTTP_HOSTS:
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


class AgentIdentity:
    """The agent's base AWS credentials, looked up on first use and again before they expire."""

    def __init__(self, send: Send, environ: dict[str, str] | None = None) -> None:
        self._send = send
        self._environ = environ
        self._cached: AwsCredentials | None = None
        self._lock = threading.Lock()

    @property
    def env(self) -> dict[str, str]:
        return dict(os.environ) if self._environ is None else self._environ

    def credentials(self) -> AwsCredentials:
        with self._lock:
            cached = self._cached
            if cached is None or (
                cached.expiration is not None and cached.expiration - RENEW_MARGIN <= time.time()
            ):
                cached = self._cached = self._look_up()
            return cached

    def forget(self) -> None:
        with self._lock:
            self._cached = None

    def _look_up(self) -> AwsCredentials:
        env = self.env
        key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
        if key and secret:
            return AwsCredentials(key, secret, env.get("AWS_SESSION_TOKEN") or None)
        if env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") or env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI"):
            return self._container(env)
        if env.get("AWS_EC2_METADATA_DISABLED", "").lower() != "true":
            return self._instance()
        raise errors.Unauthorized(
            "no AWS identity for the agent: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run it "
            "with an ECS task role, EKS Pod Identity or an EC2 instance profile"
        )

    def _container(self, env: dict[str, str]) -> AwsCredentials:
        what = "AWS container credentials"
        relative = env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        url = CONTAINER_HOST + relative if relative else env["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
        if not relative and not _allowed_full_uri(url):
            raise errors.ConfigurationError(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI must be HTTPS or a loopback / container-metadata address"
            )
        headers = {"Accept": "application/json"}
        token_file = env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
        token = (
            Path(token_file).read_text().strip()
            if token_file
            else env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN")
        )
        if token:
            headers["Authorization"] = token
        response = self._metadata("GET", url, what, headers)
        return _credentials(_read_json(response, what), what)

    def _instance(self) -> AwsCredentials:
        what = "EC2 instance metadata (IMDSv2)"
        response = self._metadata(
            "PUT", f"{IMDS}/latest/api/token", what, {"X-aws-ec2-metadata-token-ttl-seconds": IMDS_TOKEN_TTL}
        )
        with response:
            if response.status_code != 200:
                raise errors.Unauthorized(f"{what}: token request answered {response.status_code}")
            token = response.text.strip()
        headers = {"X-aws-ec2-metadata-token": token}
        base = f"{IMDS}/latest/meta-data/iam/security-credentials/"
        response = self._metadata("GET", base, what, headers)
        with response:
            if response.status_code != 200:
                raise errors.Unauthorized(f"{what}: the instance has no IAM role ({response.status_code})")
            role = response.text.strip().splitlines()[0] if response.text.strip() else ""
        if not role or "/" in role:
            raise errors.Unauthorized(f"{what}: the instance has no IAM role")
        document = _read_json(self._metadata("GET", base + role, what, headers), what)
        if document.get("Code", "Success") != "Success":
            raise errors.Unauthorized(f"{what}: credentials not available ({document.get('Code')})")
        return _credentials(document, what)

    def _metadata(self, method: str, url: str, what: str, headers: dict[str, str]) -> requests.Response:
        try:
            return self._send(
                method, url, what=what, headers=headers, timeout=METADATA_TIMEOUT, retry=METADATA_RETRY
            )
        except (errors.RegistryUnavailable, errors.RegistryTimeout):
            raise errors.Unauthorized(
                f"no AWS identity for the agent: {what} is not reachable (set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or run it with a task role, Pod Identity or instance profile)"
            ) from None
