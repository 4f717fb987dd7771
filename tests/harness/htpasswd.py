"""htpasswd files for distribution's `auth.htpasswd` (it accepts bcrypt entries only)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

# Lowest bcrypt cost: the registry verifies the hash on every request, and cost 4 keeps that instant.
_COST = 4


def bcrypt_hash(password: str) -> str:
    """bcrypt hash via the `bcrypt` PyPI package, else apache2-utils' `htpasswd`; skip-worthy if neither."""
    try:
        import bcrypt
    except ImportError:
        binary = shutil.which("htpasswd")
        if binary is None:
            raise RuntimeError("need the `bcrypt` Python package or apache2-utils' htpasswd") from None
        out = subprocess.run(
            [binary, "-nbB", "-C", str(_COST), "x", password], check=True, capture_output=True, text=True
        ).stdout
        return out.strip().partition(":")[2]
    # Go's x/crypto/bcrypt (used by distribution) reads the $2b$ prefix bcrypt emits.
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=_COST)).decode()


def write_htpasswd(path: Path, users: dict[str, str]) -> Path:
    path.write_text("".join(f"{user}:{bcrypt_hash(pw)}\n" for user, pw in users.items()))
    return path
