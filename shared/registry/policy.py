"""Per-vendor hooks around every HTTP exchange with a registry: before sending, after answering,
and how long to wait before retrying.

The default is plain HTTP semantics (``Retry-After``). A vendor with its own rate-limit headers
(Docker Hub's ``ratelimit-*``) subclasses this in its own module, so the transport stays
vendor-neutral.
"""

from __future__ import annotations

import requests

from shared.registry.retry import parse_retry_after


class ResponsePolicy:
    def before(self, method: str, url: str, what: str) -> None:
        """Called before each logical request; may raise to refuse sending it at all."""

    def after(self, response: requests.Response) -> None:
        """Called with every response, including the ones that will be retried."""

    def retry_delay(self, response: requests.Response) -> float | None:
        """Seconds to wait before retrying a retryable answer; None to use exponential backoff."""
        return parse_retry_after(response.headers.get("Retry-After"))
