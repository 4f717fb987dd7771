"""Where the credentials a registry accepts come from: fixed, or minted and renewed.

Most registry types take the username and password from the broker as they are. Others take
credentials the agent has to mint first and that expire: an ECR password from
GetAuthorizationToken (12 h), a Google access token (1 h), an ACR refresh token from the AAD
exchange (about 3 h). A ``Login`` hides the difference from the authenticator, which only asks
for the current credential and, when the registry refuses it, for a new one.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# Mint again this long before a credential expires, so none lapses between sending and checking.
RENEW_MARGIN = 300.0


def _now() -> float:
    # Looked up at call time, so a test that moves time.time moves expiry too.
    return time.time()


@dataclass(frozen=True)
class RegistryCredential:
    """One way of proving who we are to a registry; every field is optional.

    ``identity_token`` is an OAuth2 refresh token (docker's ``identitytoken``): the token service
    is asked with ``grant_type=refresh_token`` instead of Basic (distribution ``oauth.md``).
    ``bearer`` is sent as it is, without any challenge round trip (Artifactory access tokens).
    """

    username: str = ""
    # Secrets stay out of repr(), so a credential in a log line or traceback shows none of them.
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)
    bearer: str = field(default="", repr=False)

    @property
    def has_basic(self) -> bool:
        return bool(self.username or self.password)

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.password, self.identity_token, self.bearer) if s)


@dataclass(frozen=True)
class Minted:
    """A freshly minted credential and when it stops working: ``expires_at`` in ``time.time()``
    seconds, or ``lifetime`` seconds from now when the issuer documents only a duration."""

    credential: RegistryCredential
    expires_at: float | None = None
    lifetime: float | None = None


class Login:
    """A fixed credential; ``renew`` cannot change it, so a refusal is final."""

    def __init__(self, credential: RegistryCredential | None = None) -> None:
        self._credential = credential or RegistryCredential()

    def current(self) -> RegistryCredential:
        return self._credential

    def renew(self) -> bool:
        """Drop the current credential after a refusal; True when asking again may succeed."""
        return False

    @property
    def secrets(self) -> tuple[str, ...]:
        return self._credential.secrets


def static_login(username: str = "", password: str = "") -> Login:
    return Login(RegistryCredential(username=username, password=password))


class MintedLogin(Login):
    """A credential minted on first use and again shortly before it expires or once refused."""

    def __init__(self, mint: Callable[[], Minted], *, clock: Callable[[], float] = _now) -> None:
        super().__init__()
        self._mint = mint
        self._minted: Minted | None = None
        self._renew_at: float | None = None
        self._lock = threading.Lock()
        self._seen: tuple[str, ...] = ()
        self.clock = clock
        self.mints = 0

    def current(self) -> RegistryCredential:
        with self._lock:
            if self._minted is None or (self._renew_at is not None and self._renew_at <= self.clock()):
                now = self.clock()
                minted = self._mint()
                self.mints += 1
                self._minted = minted
                expires_at = now + minted.lifetime if minted.lifetime is not None else minted.expires_at
                # Renew ahead of expiry, but never sooner than half-way through a short lifetime.
                self._renew_at = (
                    None
                    if expires_at is None
                    else expires_at - min(RENEW_MARGIN, max(0.0, expires_at - now) / 2)
                )
                # Every secret ever minted stays scrubbable: an old one may still sit in an error.
                self._seen += tuple(s for s in minted.credential.secrets if s not in self._seen)
            return self._minted.credential

    def renew(self) -> bool:
        with self._lock:
            self._minted = None
        return True

    @property
    def secrets(self) -> tuple[str, ...]:
        # No lock: a tuple is replaced whole, and scrubbing must never wait on a login being minted
        # (another thread may hold that lock while it waits for something this thread holds).
        return self._seen


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT, read without verifying it: only to know when to renew it.

    The registry verifies the token; a wrong ``exp`` here costs at most an early renewal or a 401.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        exp = claims.get("exp") if isinstance(claims, dict) else None
        return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
