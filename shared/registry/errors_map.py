"""Turning a registry's error response into one of the typed errors in ``shared.errors``."""

from __future__ import annotations

import json

import requests

from shared import errors
from shared.redact import scrub

_BY_STATUS: dict[int, type[errors.RegistryError]] = {
    401: errors.Unauthorized,
    403: errors.Denied,
    404: errors.NotFound,
    429: errors.RateLimited,
    405: errors.Unsupported,
    501: errors.Unsupported,
}
_BY_CODE: dict[str, type[errors.RegistryError]] = {
    "UNAUTHORIZED": errors.Unauthorized,
    "DENIED": errors.Denied,
    "NAME_UNKNOWN": errors.NotFound,
    "MANIFEST_UNKNOWN": errors.NotFound,
    "BLOB_UNKNOWN": errors.NotFound,
    "TOOMANYREQUESTS": errors.RateLimited,
    "UNSUPPORTED": errors.Unsupported,
}
MAX_ERROR_BODY = 64 * 1024


def oci_errors(body: bytes) -> list[tuple[str, str]]:
    """``[(code, message)]`` from an OCI error body; empty when the body is something else."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return []
    items = document.get("errors") if isinstance(document, dict) else None
    if not isinstance(items, list):
        return []
    return [
        (str(item.get("code", "")), str(item.get("message") or ""))
        for item in items
        if isinstance(item, dict)
    ]


def api_message(body: bytes) -> str:
    """The human message of a vendor API's error body, whichever of the usual shapes it has.

    GitHub, GitLab, DigitalOcean and Docker Hub send ``message``; Quay ``error_message``/``detail``;
    Google APIs ``{"error": {"message": ...}}``; OAuth2 endpoints ``error_description``.
    """
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return ""
    if not isinstance(document, dict):
        return ""
    nested = document.get("error")
    if isinstance(nested, dict):
        document = nested
    for key in ("message", "error_message", "error_description", "detail", "error"):
        value = document.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def error_for(
    response: requests.Response, what: str, secrets: tuple[str, ...] = (), *, who: str = "registry"
) -> errors.RegistryError:
    """The typed error for a failed response; reads at most 64 KiB of its body.

    ``who`` names the answering service in the message (a vendor API rather than the registry).
    """
    body = b""
    try:
        body = response.raw.read(MAX_ERROR_BODY, decode_content=True) if response.raw else response.content
    except (requests.RequestException, OSError, ValueError):
        pass
    finally:
        response.close()
    found = oci_errors(body)
    code, detail = found[0] if found else ("", api_message(body))
    cls = _BY_CODE.get(code) or _BY_STATUS.get(response.status_code)
    if cls is None:
        cls = errors.RegistryUnavailable if response.status_code >= 500 else errors.RegistryError
    message = f"{what}: {who} answered {response.status_code}"
    if code:
        message += f" {code}: {detail}".rstrip(": ")
    elif detail:
        message += f": {detail}"
    error = cls(scrub(message[:500], secrets))
    if code and cls.code != code and cls in (errors.RegistryError, errors.NotFound):
        error.code = code
    error.http_status = response.status_code  # type: ignore[attr-defined]
    return error
