"""Following ``Link: <...>; rel="next"`` exactly as the registry gives it (RFC 8288).

The cursor is opaque: ECR and Quay put tokens in it, and a hand-built ``last=`` breaks them. A next
link is resolved against the request URL (CNCF distribution sends relative ones) and must stay on
the registry's host, or a hostile registry could point us anywhere.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

from shared import errors

_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^,;]+)*)")
_REL = re.compile(r';\s*rel\s*=\s*"?([^";]+)"?', re.IGNORECASE)


def next_link(header: str | None, request_url: str) -> str | None:
    """The absolute URL of the ``rel="next"`` link, or None."""
    if not header:
        return None
    for match in _LINK.finditer(header):
        rel = _REL.search(match.group(2) or "")
        if rel and "next" in rel.group(1).lower().split():
            target = urljoin(request_url, match.group(1).strip())
            if urlsplit(target)[:2] != urlsplit(request_url)[:2]:
                raise errors.RefusedHost("registry's next-page link points at another host")
            return target
    return None
