"""When and how long to wait before trying a registry call again."""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # str.isdigit() also accepts '²', which float() rejects
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass
class RetryPolicy:
    max_retries: int = 4
    budget_seconds: float = 60.0
    base_delay: float = 0.5
    max_delay: float = 30.0

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter, so many agents do not retry in step."""
        ceiling = min(self.max_delay, self.base_delay * (2**attempt))
        return ceiling * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not cryptography
