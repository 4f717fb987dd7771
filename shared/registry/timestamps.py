"""Push times as vendor APIs write them, turned into aware ``datetime`` values (UTC).

RFC 3339 strings (Harbor, Docker Hub, GitHub, GitLab, ACR, DigitalOcean, Artifact Registry),
epoch milliseconds as strings (GCR's ``timeUploadedMs``), epoch seconds as numbers (ECR's JSON
protocol, Quay's ``start_ts``). Anything unreadable is None: a missing push time is not an error.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def from_iso(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def from_epoch(value: Any, *, milliseconds: bool = False) -> datetime | None:
    try:
        seconds = float(value) / (1000 if milliseconds else 1)
    except (TypeError, ValueError):
        return None
    if seconds <= 0:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None
