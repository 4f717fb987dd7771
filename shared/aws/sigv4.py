"""AWS Signature Version 4 for requests the agent sends itself (ECR, STS).

Follows the documented algorithm (AWS General Reference / IAM User Guide, "Create a signed AWS API
request"): a canonical request of method, URI-encoded path, sorted encoded query, lower-cased
trimmed headers and the payload's SHA-256; a string to sign with the credential scope
``date/region/service/aws4_request``; an HMAC-SHA256 key derived from the secret through date,
region, service and ``aws4_request``. Tested against AWS's published test vectors and botocore.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
# Headers that proxies or the HTTP stack may change in flight: never part of the signature.
_UNSIGNED = frozenset({"authorization", "user-agent", "expect", "x-amzn-trace-id", "content-length"})


@dataclass(frozen=True)
class AwsCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None
    expiration: float | None = None  # time.time() seconds; None for long-term keys

    def __repr__(self) -> str:
        return f"AwsCredentials(access_key_id={self.access_key_id!r}, secret_access_key='**********')"

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.secret_access_key, self.session_token) if s)


def _encode(value: str) -> str:
    return quote(value, safe="-_.~")


def _canonical_query(query: str) -> str:
    pairs = sorted((_encode(k), _encode(v)) for k, v in parse_qsl(query, keep_blank_values=True))
    return "&".join(f"{k}={v}" for k, v in pairs)


def _canonical_path(path: str) -> str:
    # Non-S3 services sign the path URI-encoded once more, segment by segment.
    return quote(path or "/", safe="/-_.~")


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = _hmac(f"AWS4{secret}".encode(), date)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return key


def sign(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    credentials: AwsCredentials,
    region: str,
    service: str,
    now: datetime | None = None,
) -> dict[str, str]:
    """``headers`` plus ``Host``, ``X-Amz-Date``, ``X-Amz-Security-Token`` and ``Authorization``."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    parts = urlsplit(url)
    signed = {k: v for k, v in headers.items() if k.lower() not in _UNSIGNED and k.lower() != "host"}
    signed["Host"] = parts.netloc
    signed["X-Amz-Date"] = amz_date
    if credentials.session_token:
        signed["X-Amz-Security-Token"] = credentials.session_token
    canonical_headers = sorted(
        (name.lower(), re.sub(r"\s+", " ", value.strip())) for name, value in signed.items()
    )
    signed_names = ";".join(name for name, _ in canonical_headers)
    canonical_request = "\n".join(
        [
            method.upper(),
            _canonical_path(parts.path),
            _canonical_query(parts.query),
            "".join(f"{name}:{value}\n" for name, value in canonical_headers),
            signed_names,
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{date}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        [ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()]
    )
    signature = hmac.new(
        signing_key(credentials.secret_access_key, date, region, service),
        string_to_sign.encode("utf-8"),
        hashlib.sha256,
    ).hexdigest()
    result = {**headers, **signed}
    result["Authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={signed_names}, Signature={signature}"
    )
    return result
