"""Names inside layers: normalising tar entry names and recognising whiteout markers.

Traversal policy (the same as Docker's ``pkg/archive`` and stereoscope): a *relative* entry name
that climbs out of the root (``../etc/passwd``, ``a/../../x``) refuses the whole layer with
`HostileLayer`; no image builder writes one, so it is an attack or a broken tool, and scanning
around it would describe an image no runtime would produce. An *absolute* name (``/etc/passwd``)
is taken relative to the root, as ``tar`` and containerd do; ``/../x`` is ``/x`` because ``..`` of
the root is the root. Hard-link targets follow the same rule. Symlink targets are data, never
followed on disk; the merge resolves them inside the image (`shared.image.merge`).
"""

from __future__ import annotations

import posixpath

from shared.errors import HostileLayer

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
# aufs kept its own bookkeeping under ".wh..wh.*" names (".wh..wh.plnk", ".wh..wh.aufs"): not content.
AUFS_META_PREFIX = ".wh..wh."
MAX_PATH_LENGTH = 4096  # PATH_MAX: longer names exist only to exhaust memory


def normalise(name: str, what: str = "entry") -> str:
    """``./usr/bin/`` -> ``/usr/bin``; refuses names that escape the root (see the module docstring)."""
    if "\x00" in name:
        raise HostileLayer(f"tar {what} name contains a NUL byte")
    if len(name) > MAX_PATH_LENGTH:
        raise HostileLayer(f"tar {what} name is {len(name)} characters long (limit {MAX_PATH_LENGTH})")
    cleaned = posixpath.normpath(name) if name else "."
    if not cleaned.startswith("/") and (cleaned == ".." or cleaned.startswith("../")):
        raise HostileLayer(f"tar {what} {name!r} points outside the image root (path traversal)")
    # normpath keeps a leading "//" (POSIX leaves it implementation-defined): strip, then root once.
    return posixpath.normpath("/" + cleaned.lstrip("/"))


def is_under(path: str, directory: str) -> bool:
    """Whether ``path`` is ``directory`` or inside it, by whole components (``/ab`` is not under ``/a``)."""
    return directory == "/" or path == directory or path.startswith(directory + "/")
