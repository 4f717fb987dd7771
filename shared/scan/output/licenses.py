"""License strings as catalogers find them, turned into SPDX license expressions where they are ones.

Package metadata mixes SPDX ids (``MIT``), expressions (``MIT OR Apache-2.0``), old forms
(``GPL-2.0+``) and free text (Debian's ``GPL-2+``, ``public-domain``). Only strings that parse against
the SPDX license list become expressions, in canonical spelling; the rest stay plain names.
"""

from __future__ import annotations

from functools import lru_cache

from license_expression import get_spdx_licensing


@lru_cache(maxsize=4096)
def spdx_expression(value: str) -> str | None:
    """``"mit"`` -> ``"MIT"``, ``"GPL-2.0+"`` -> ``"GPL-2.0-or-later"``, ``"GPL-2+"`` -> None."""
    if not value.strip():
        return None
    try:
        result = get_spdx_licensing().validate(value)
    except Exception:  # noqa: BLE001 - the parser raises on stray characters; such text is not SPDX
        return None
    if result.errors or not result.normalized_expression:
        return None
    return str(result.normalized_expression)


def is_compound(expression: str) -> bool:
    return " " in expression.strip()
