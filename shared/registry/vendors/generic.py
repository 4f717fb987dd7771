"""``generic``: any registry that speaks the OCI distribution API as specified (registries.md §1,
§13). Everything it does is the shared ``OciVendor`` behaviour; it is tested against a real
CNCF distribution registry (tests/client/test_real_registry.py)."""

from __future__ import annotations

from shared.registry.vendors.base import OciVendor, register


@register("generic")
class Generic(OciVendor):
    """``/v2/_catalog`` for repositories, tags/list for tags, HEAD requests for digests."""
