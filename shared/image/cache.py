"""Per-layer analysis cache: a layer already analysed is neither downloaded nor read again.

Layers are content-addressed, so a layer's analysis depends only on its digest and on what read it:
the catalogers (names, ``version`` attributes, and the source of every module in their package, so
an edited cataloger or helper never meets a stale entry), the layer reader (its format version and,
the same way, its package's source) and the per-file cap. That
*reader key* names a directory; each analysis is one file in it::

    STATE_DIR/layer-cache/<reader key, 16 hex>/<algorithm>-<hex digest>.json.gz

Files are gzip-compressed JSON. Extracted values must be JSON-able: str, int, float, bool, None,
list, dict with str keys, plus bytes and tuples (tagged, so they come back as they went in). A layer
whose values cannot be stored is simply not cached.

Concurrency: a file is written under a temporary name in the same directory and renamed into place
(atomic on POSIX), so a reader sees a whole entry or none; two scans analysing the same layer at
once both write, and the last rename wins with identical content. An unreadable entry is a miss.

Size bound: after each write, when the files add up to more than ``max_bytes``, the least recently
used (oldest modification time; a hit touches its file) are deleted until the total is under 90% of
the bound. Entries of older reader keys age out the same way.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import gzip
import hashlib
import inspect
import json
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shared.image.layer import FORMAT_VERSION, LayerAnalysis, LayerLimits
from shared.registry.reference import validate_digest
from shared.scan.model import Cataloger

log = logging.getLogger(__name__)

CACHE_DIR = "layer-cache"
STALE_TEMP_SECONDS = 3600  # a temporary file this old belongs to a writer that died


class NotCacheable(TypeError):
    """A value the cache's JSON cannot represent faithfully."""


def encode(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes):
        return {"__bytes__": base64.b64encode(value).decode()}
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise NotCacheable("dict keys must be strings")
        if len(value) == 1 and next(iter(value)) in ("__bytes__", "__tuple__", "__dict__"):
            return {"__dict__": {k: encode(v) for k, v in value.items()}}  # a real dict that looks tagged
        return {k: encode(v) for k, v in value.items()}
    raise NotCacheable(f"{type(value).__name__} is not JSON-able")


def decode(value: Any) -> Any:
    if isinstance(value, list):
        return [decode(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1:
            ((key, inner),) = value.items()
            if key == "__bytes__":
                return base64.b64decode(inner)
            if key == "__tuple__":
                return tuple(decode(v) for v in inner)
            if key == "__dict__":
                return {k: decode(v) for k, v in inner.items()}
        return {k: decode(v) for k, v in value.items()}
    return value


@functools.cache
def _directory_hash(directory: Path) -> str:
    """Hash of every Python file under ``directory``: a cataloger's helpers change its output too."""
    hasher = hashlib.sha256()
    for path in sorted(directory.rglob("*.py")):
        hasher.update(str(path.relative_to(directory)).encode() + b"\0")
        with contextlib.suppress(OSError):
            hasher.update(path.read_bytes())
    return hasher.hexdigest()


def _code_hash(cls: type) -> str:
    try:
        source = inspect.getsourcefile(cls)
    except TypeError:  # built-in, or defined where no file holds it
        return ""
    return _directory_hash(Path(source).parent) if source else ""


def reader_key(catalogers: Sequence[Cataloger], limits: LayerLimits) -> str:
    """What, besides the layer, decides an analysis (see the module docstring)."""
    parts = {
        "format": FORMAT_VERSION,
        "reader": _code_hash(LayerAnalysis),  # shared/image: the reader, its paths, its decompression
        "max_file_bytes": limits.max_file_bytes,
        "catalogers": [
            [c.name, str(getattr(c, "version", "")), type(c).__qualname__, _code_hash(type(c))]
            for c in catalogers
        ],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


class LayerCache:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0

    @classmethod
    def under(cls, state_dir: Path, max_bytes: int) -> LayerCache | None:
        """The cache in ``STATE_DIR``, or None when it is turned off (``LAYER_CACHE_MAX_BYTES=0``)."""
        return cls(state_dir / CACHE_DIR, max_bytes) if max_bytes > 0 else None

    def _path(self, key: str, digest: str) -> Path:
        algorithm, _, hexpart = validate_digest(digest).partition(":")
        return self.root / key / f"{algorithm}-{hexpart}.json.gz"

    def contains(self, key: str, digest: str) -> bool:
        return self._path(key, digest).is_file()

    def get(self, key: str, digest: str) -> LayerAnalysis | None:
        path = self._path(key, digest)
        try:
            with gzip.open(path, "rb") as handle:
                data = json.loads(handle.read())
            if data.get("key") != key or data["analysis"]["digest"] != digest:
                raise ValueError("entry is for another layer")
            analysis = LayerAnalysis.from_dict(data["analysis"])
            analysis.values = decode(analysis.values)
        except FileNotFoundError:
            self.misses += 1
            return None
        except (OSError, EOFError, ValueError, KeyError, TypeError) as failure:
            log.warning("layer cache: dropping unreadable entry %s (%s)", path.name, type(failure).__name__)
            with contextlib.suppress(OSError):
                path.unlink()
            self.misses += 1
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # most recently used
        self.hits += 1
        return analysis

    def put(self, key: str, analysis: LayerAnalysis) -> bool:
        """Store ``analysis``; False when its values cannot be stored (the scan goes on regardless)."""
        data = analysis.to_dict()
        try:
            data["values"] = encode(analysis.values)
            body = json.dumps({"key": key, "analysis": data}, separators=(",", ":")).encode()
        except (NotCacheable, ValueError) as failure:
            log.info("layer cache: not caching %s: %s", analysis.digest, failure)
            return False
        path = self._path(key, analysis.digest)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json.gz")
            try:
                with (
                    os.fdopen(handle, "wb") as raw,
                    gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1) as out,
                ):
                    out.write(body)
                os.replace(temporary, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
        except OSError as failure:
            log.warning("layer cache: cannot write %s (%s)", path, failure.strerror or failure)
            return False
        self.evict()
        return True

    def evict(self) -> None:
        entries: list[tuple[float, int, Path]] = []
        total = 0
        now = time.time()
        for directory in self._directories():
            for entry in _scan(directory):
                try:
                    info = entry.stat()
                except OSError:
                    continue  # removed by another scan meanwhile
                if entry.name.startswith(".tmp-"):
                    if now - info.st_mtime > STALE_TEMP_SECONDS:
                        with contextlib.suppress(OSError):
                            os.unlink(entry.path)
                    continue
                entries.append((info.st_mtime, info.st_size, Path(entry.path)))
                total += info.st_size
        if total <= self.max_bytes:
            return
        target = int(self.max_bytes * 0.9)
        for _, size, path in sorted(entries):
            if total <= target:
                break
            with contextlib.suppress(OSError):
                path.unlink()
            total -= size

    def _directories(self) -> list[str]:
        return [e.path for e in _scan(str(self.root)) if e.is_dir(follow_symlinks=False)]

    def total_bytes(self) -> int:
        return sum(
            e.stat().st_size for d in self._directories() for e in _scan(d) if not e.name.startswith(".tmp-")
        )


def _scan(directory: str | Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as found:
            return [e for e in found if e.is_file(follow_symlinks=False) or e.is_dir(follow_symlinks=False)]
    except OSError:
        return []
