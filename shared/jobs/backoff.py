"""Exponential backoff with jitter, shared by the callback outbox and in-call retries."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    base: float = 1.0
    factor: float = 2.0
    cap: float = 300.0
    jitter: float = 0.2  # +-20 %, so agents restarted together do not retry in lockstep

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the ``attempt``-th failure (1-based); a server's Retry-After wins, capped."""
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.cap)
        raw = min(self.cap, self.base * self.factor ** max(attempt - 1, 0))
        return raw * random.uniform(1 - self.jitter, 1 + self.jitter)  # noqa: S311 - not cryptographic
