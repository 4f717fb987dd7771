"""``WWW-Authenticate`` parsing (RFC 9110 §11.6.1), as registries send it.

Registries put commas inside quoted values (``scope="repository:a:pull,push"``) and may send several
challenges in one header, so a naive split on ``,`` is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"  # noqa: S105 - an RFC 9110 token, not a secret
# Unquoted values should be tokens (RFC 9110); a non-token such as an unquoted URL (realm=https://...)
# is taken up to the next comma or space instead of being cut at its first ':'.
_PARAM = re.compile(rf'\s*({_TOKEN})\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))\s*')
# A scheme is followed by its parameters, the end, or (scheme without parameters) a comma.
_SCHEME = re.compile(rf"\s*({_TOKEN})(?:\s+|$|(?=,))")


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower-case: "basic" or "bearer"
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        return self.params.get("service")

    @property
    def scopes(self) -> tuple[str, ...]:
        # Several scopes arrive space-separated in one parameter (RFC 6749 §3.3).
        return tuple(self.params.get("scope", "").split())

    @property
    def error(self) -> str | None:
        return self.params.get("error")


def parse_challenges(header: str) -> list[Challenge]:
    """Every challenge in the header, in order; unparseable tails are ignored."""
    challenges: list[Challenge] = []
    pos = 0
    while pos < len(header):
        scheme_match = _SCHEME.match(header, pos)
        if not scheme_match:
            break
        scheme = scheme_match.group(1).lower()
        pos = scheme_match.end()
        params: dict[str, str] = {}
        while pos < len(header):
            param = _PARAM.match(header, pos)
            if not param:
                break
            value = param.group(2) if param.group(2) is not None else param.group(3)
            params[param.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
            pos = param.end()
            if pos < len(header) and header[pos] == ",":
                pos += 1
        challenges.append(Challenge(scheme, params))
        while pos < len(header) and header[pos] in ", ":
            pos += 1
    return challenges


def preferred_challenge(header: str) -> Challenge | None:
    """Bearer when offered (it scopes access), else Basic, else None."""
    challenges = parse_challenges(header)
    for scheme in ("bearer", "basic"):
        for challenge in challenges:
            if challenge.scheme == scheme:
                return challenge
    return None
