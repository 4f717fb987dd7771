"""One signed AWS API call over the registry transport, with AWS's error conventions.

AWS reports most failures as HTTP 400 with an error code in the body, not in the status: the JSON
protocol (ECR) as ``{"__type": "...#Code", "message": ...}``, the query protocol (STS) as XML
``<ErrorResponse><Error><Code>``. Throttling codes are retried with the transport's back-off, and
an expired session token lets the caller refresh its credentials once.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree

import requests

from shared import errors
from shared.aws.sigv4 import AwsCredentials, sign
from shared.redact import scrub
from shared.registry.client import read_limited
from shared.registry.transport import Transport

MAX_BODY = 4 * 1024 * 1024
THROTTLING = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
    }
)
EXPIRED = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})
_BY_CODE: dict[str, type[errors.RegistryError]] = {
    "AccessDenied": errors.Denied,
    "AccessDeniedException": errors.Denied,
    "UnrecognizedClientException": errors.Unauthorized,
    "InvalidClientTokenId": errors.Unauthorized,
    "InvalidSignatureException": errors.Unauthorized,
    "SignatureDoesNotMatch": errors.Unauthorized,
    "IncompleteSignature": errors.Unauthorized,
    "ExpiredToken": errors.Unauthorized,
    "ExpiredTokenException": errors.Unauthorized,
    "RepositoryNotFoundException": errors.NotFound,
    "ImageNotFoundException": errors.NotFound,
    "RegistryPolicyNotFoundException": errors.NotFound,
}
_NS = re.compile(r"^\{[^}]*\}")


class AwsError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = message


def _xml_error(body: bytes) -> tuple[str, str]:
    root = parse_xml(body)
    if root is None:
        return "", ""
    code = message = ""
    for element in root.iter():
        tag = _NS.sub("", element.tag)
        if tag == "Code" and not code:
            code = (element.text or "").strip()
        elif tag == "Message" and not message:
            message = (element.text or "").strip()
    return code, message


def parse_xml(body: bytes) -> ElementTree.Element | None:
    """XML from AWS over TLS; documents with a DOCTYPE (entity tricks) are refused unparsed."""
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        return None
    try:
        return ElementTree.fromstring(body)  # noqa: S314 - no DTD allowed (checked above), bounded size
    except ElementTree.ParseError:
        return None


def error_code(response: requests.Response, body: bytes) -> tuple[str, str]:
    """(code, message) of an AWS error answer, whichever protocol it uses."""
    code = response.headers.get("x-amzn-ErrorType", "").split(":", 1)[0]
    message = ""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        document = None
    if isinstance(document, dict):
        code = str(document.get("__type") or document.get("code") or code)
        message = str(document.get("message") or document.get("Message") or "")
    else:
        xml_code, message = _xml_error(body)
        code = xml_code or code
    return code.rsplit("#", 1)[-1], message


class AwsCall:
    """Signs and sends requests to one AWS endpoint (``service`` in ``region``)."""

    def __init__(self, transport: Transport, endpoint: str, region: str, service: str) -> None:
        self.transport = transport
        self.endpoint = endpoint
        self.region = region
        self.service = service

    def send(
        self,
        body: bytes,
        headers: dict[str, str],
        credentials: Callable[[], AwsCredentials],
        what: str,
        on_expired: Callable[[], None] | None = None,
    ) -> bytes:
        """The body of a 200 answer; typed errors otherwise, with every secret scrubbed."""
        attempt = 0
        renewed = False
        deadline = time.monotonic() + self.transport.retry.budget_seconds
        while True:
            current = credentials()
            self.transport.add_secrets(*current.secrets)
            signed = sign("POST", self.endpoint, headers, body, current, self.region, self.service)
            response = self.transport.send("POST", self.endpoint, what=what, headers=signed, data=body)
            data = read_limited(response, MAX_BODY, what)
            if response.status_code == 200:
                return data
            code, message = error_code(response, data)
            if code in EXPIRED and on_expired and not renewed:
                renewed = True
                on_expired()
                continue
            delay = self.transport.retry.backoff(attempt)
            if (
                code in THROTTLING
                and attempt < self.transport.retry.max_retries
                and time.monotonic() + delay <= deadline
            ):
                attempt += 1
                self.transport.sleep(delay)
                continue
            raise self._error(response.status_code, code, message, what)

    def _error(self, status: int, code: str, message: str, what: str) -> errors.RegistryError:
        cls = _BY_CODE.get(code)
        if cls is None:
            if code in THROTTLING or status == 429:
                cls = errors.RateLimited
            elif status >= 500:
                cls = errors.RegistryUnavailable
            else:
                cls = {401: errors.Unauthorized, 403: errors.Denied, 404: errors.NotFound}.get(
                    status, errors.RegistryError
                )
        text = f"{what}: AWS answered {status} {code}: {message}".rstrip(": ")
        error = cls(scrub(text[:500], self.transport.secrets))
        if code and cls is errors.RegistryError:
            error.code = code
        return error


def form_body(fields: dict[str, str]) -> bytes:
    return urlencode(fields).encode()


def json_body(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()
