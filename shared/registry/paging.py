"""Following ``Link: <...>; rel="next"`` exactly as the registry gives it (RFC 8288).

The cursor is opaque: ECR and Quay put tokens in it, and a hand-built ``last=`` breaks them. A next
link is resolved against the request URL (CNCF distribution sends relative ones) and must stay on
the registry's host, or a hostile registry could point us anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import TypeVar
from urllib.parse import urljoin, urlsplit

from shared import errors
from shared.registry.destinations import refuse_metadata_url

T = TypeVar("T")

# A listing longer than this is a registry that never stops answering "next".
MAX_PAGES = 100_000

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
            refuse_metadata_url(target, "registry's next-page link")
            return target
    return None


def follow_pages(first: str, fetch: Callable[[str], tuple[T, str | None]], what: str) -> Iterator[T]:
    """Each page of a listing: ``fetch(cursor)`` returns the page and the next cursor (a URL or a
    token), None at the end. A cursor seen before, or too many pages, is a registry that loops."""
    cursor: str | None = first
    seen: set[str] = set()
    while cursor is not None:
        if cursor in seen or len(seen) >= MAX_PAGES:
            raise errors.ProtocolError(f"{what}: the registry's next-page links loop")
        seen.add(cursor)
        page, cursor = fetch(cursor)
        yield page
