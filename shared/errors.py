"""Typed errors shared by the registry client, the scan engine and the functions.

Every error carries a stable ``code`` and the HTTP ``status`` the functions answer with, so the
mapping from a registry's failure to an API response lives in one place. Messages are written for
the operator and never contain a credential.
"""

from __future__ import annotations

from collections.abc import Mapping


class AgentError(Exception):
    """Base of every error the agent reports to a caller."""

    code = "INTERNAL"
    status = 500

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        # Response headers that belong with the error (``Retry-After`` on a full queue).
        self.headers: dict[str, str] = dict(headers or {})

    def to_body(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


class BadRequest(AgentError):
    code = "BAD_REQUEST"
    status = 400


class InvalidReference(BadRequest):
    code = "INVALID_REFERENCE"


class CredentialsError(BadRequest):
    """Credentials are missing or cannot be parsed (the caller's fault, not the registry's)."""

    code = "INVALID_CREDENTIALS"


class ConfigurationError(AgentError):
    code = "CONFIGURATION"


class RegistryError(AgentError):
    """The registry answered, but not with what was asked for."""

    code = "REGISTRY_ERROR"
    status = 502


class Unauthorized(RegistryError):
    code = "UNAUTHORIZED"
    status = 401


class Denied(RegistryError):
    code = "DENIED"
    status = 403


class NotFound(RegistryError):
    code = "NOT_FOUND"
    status = 404


class RateLimited(RegistryError):
    code = "TOOMANYREQUESTS"
    status = 429


class Unsupported(RegistryError):
    code = "UNSUPPORTED"
    status = 501


class RegistryUnavailable(RegistryError):
    """Connection refused, reset, TLS failure, or 5xx after every retry."""

    code = "REGISTRY_UNAVAILABLE"
    status = 502


class RegistryTimeout(RegistryError):
    code = "REGISTRY_TIMEOUT"
    status = 504


class DigestMismatch(RegistryError):
    code = "DIGEST_INVALID"
    status = 502


class ProtocolError(RegistryError):
    """The registry's answer is malformed: bad JSON, a missing field, a truncated body."""

    code = "REGISTRY_PROTOCOL"
    status = 502


class RefusedHost(RegistryError):
    """A registry pointed us at a host we must not contact (metadata service, other registry)."""

    code = "REFUSED_HOST"
    status = 502


class ForeignRegistry(BadRequest):
    """An image reference names another registry than the one the credentials are for."""

    code = "REGISTRY_MISMATCH"


class ImageError(AgentError):
    """The image itself cannot be scanned: its archive, layout or layers are malformed or refused.

    Unprocessable rather than a registry failure: asking again gives the same answer.
    """

    code = "IMAGE_INVALID"
    status = 422


class ImageTooLarge(ImageError):
    """The image's layers add up to more than ``SNYK_MAX_IMAGE_SIZE_IN_BYTES``."""

    code = "IMAGE_TOO_LARGE"


class CorruptLayer(ImageError):
    """A layer's stream is truncated, is not a tar, or fails its compression checks."""

    code = "LAYER_CORRUPT"


class HostileLayer(ImageError):
    """A layer does what no image builder does: paths escaping the root, absurd tar metadata."""

    code = "LAYER_REFUSED"


class LayerTooLarge(HostileLayer):
    """A layer expands past the per-layer caps (uncompressed bytes, tar entries): a bomb, or close."""

    code = "LAYER_TOO_LARGE"
