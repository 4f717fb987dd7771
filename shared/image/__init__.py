"""Reading images: sources (registry, OCI layout, archives), layer streams, the layer merge, the cache.

The scan engine (`shared.scan.engine`) sees an image only through `ImageSource`; everything about
where the bytes come from stays in this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.image.factory import is_local, open_source
    from shared.image.source import ImageSource, SourceInfo

__all__ = ["ImageSource", "SourceInfo", "is_local", "open_source"]

# Imported on first use (PEP 562): the layer worker process imports `shared.image.layer` and has no
# use for the registry client and requests, which the sources bring in (~0.2 s at its start).
_HOMES = {
    "ImageSource": "shared.image.source",
    "SourceInfo": "shared.image.source",
    "is_local": "shared.image.factory",
    "open_source": "shared.image.factory",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
