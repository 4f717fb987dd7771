"""Reading images: sources (registry, OCI layout, archives), layer streams, the layer merge, the cache.

The scan engine (`shared.scan.engine`) sees an image only through `ImageSource`; everything about
where the bytes come from stays in this package.
"""

from __future__ import annotations

from shared.image.factory import is_local, open_source
from shared.image.source import ImageSource, SourceInfo

__all__ = ["ImageSource", "SourceInfo", "is_local", "open_source"]
