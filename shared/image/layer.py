"""One pass over one layer: what the catalogers asked for, plus what the merge needs to know.

The layer is streamed once (`shared.image.tar` over `shared.image.decompress`, forward only); it is
never held in memory whole nor written to disk. For each entry:

* names are normalised and traversal refused (`shared.image.paths`);
* ``.wh.<name>`` records a whiteout of ``<name>``, ``.wh..wh..opq`` an opaque directory; neither
  becomes a path of the layer, and aufs ``.wh..wh.*`` bookkeeping is skipped;
* a regular file is offered to every cataloger (``wants(path, size, mode)``, ``mode`` as in
  ``st_mode``: ``S_IFREG`` plus the permission bits); if one wants it and it is within the per-file
  cap, it is read and each wanting cataloger's ``extract(path, data)`` is kept. A file over the cap
  is skipped with a warning; an ``extract`` that raises costs that file a warning, not the scan; a
  cataloger with a ``magic`` prefix (the Go and Rust binary readers: ELF) is given None for a file
  that does not start with it, without the rest being read (executable scripts and data files),
  and, for a file over ``SPOOL_ABOVE`` that starts with it, a read-only ``mmap`` of an unlinked
  temporary copy instead of ``bytes`` (slicing, indexing, ``len`` and ``struct.unpack_from`` work
  alike), so a large program costs page cache, not the agent's memory;
* a hard link (whose target's data has streamed past) gets, for each cataloger that wants its
  path, the value that cataloger extracted from the target earlier in this layer; the link is then a
  regular file of this layer, so deleting the target later does not delete it (as on disk);
* symlinks keep their raw target: they are resolved in the merged image, not here;
* every path's kind (directory, file, symlink, other) is recorded, because the merge needs it to
  apply the OCI rule that a non-directory replaces a whole directory of a lower layer.

Caps (`LayerLimits`, from Settings): uncompressed bytes (decompression bombs), tar entries (memory),
bytes per file, and the size of tar metadata headers (pax / GNU long names). Exceeding a layer cap,
a truncated or corrupted stream, or a digest mismatch fails the layer with an `AgentError`; the
analysis is only returned once the stream was read to its end and every digest checked.
"""

from __future__ import annotations

import io
import mmap
import stat
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from gzip import BadGzipFile
from typing import TYPE_CHECKING, Any, Self, cast

import zstandard

from shared import errors
from shared.image.decompress import ChunkReader, LayerStream
from shared.image.paths import AUFS_META_PREFIX, OPAQUE_MARKER, WHITEOUT_PREFIX, normalise
from shared.image.tar import Member, TarReader
from shared.scan.model import Cataloger

if TYPE_CHECKING:  # the layer worker process imports this module: it has no use for pydantic
    from shared.settings import Settings

# Bump when the analysis format or the meaning of its fields changes: it is part of the cache key.
FORMAT_VERSION = 1

DIR, FILE, SYMLINK, OTHER = "d", "f", "l", "o"
# pax and GNU long-name headers are read into memory whole; real ones are a few hundred bytes.
MAX_TAR_METADATA = 1024 * 1024
MAX_WARNINGS = 50
TAR_BUFFER = 1024 * 1024
# A cataloger may declare ``magic = b"..."`` (at most this long): its extract() returns None for any
# file not starting with it, so such files are not read for it at all.
MAGIC_BYTES = 16
# Files those catalogers take that are larger than this are mapped from a temporary file rather than
# read into memory (a Go program is often 50-150 MB).
SPOOL_ABOVE = 4 * 1024 * 1024
SPOOL_BLOCK = 1024 * 1024


@dataclass(frozen=True)
class LayerLimits:
    max_layer_bytes: int = 8 * 1024**3
    max_entries: int = 500_000
    max_file_bytes: int = 256 * 1024**2

    @classmethod
    def from_settings(cls, settings: Settings) -> LayerLimits:
        return cls(
            max_layer_bytes=settings.scan_max_layer_bytes,
            max_entries=settings.scan_max_layer_entries,
            max_file_bytes=settings.scan_max_file_bytes,
        )


@dataclass
class LayerAnalysis:
    """Everything the merge and the catalogers need from one layer; JSON-able apart from ``values``."""

    digest: str
    diff_id: str | None  # as verified, or computed when the config gave none to check against
    kinds: dict[str, str] = field(default_factory=dict)  # every path the layer writes -> d/f/l/o
    symlinks: dict[str, str] = field(default_factory=dict)  # path -> target as written
    files: dict[str, tuple[int, int]] = field(default_factory=dict)  # extracted file -> (size, mode)
    values: dict[str, dict[str, Any]] = field(default_factory=dict)  # cataloger -> path -> extract()
    whiteouts: list[str] = field(default_factory=list)  # paths hidden in lower layers
    opaque_dirs: list[str] = field(default_factory=list)  # directories emptied of lower content
    warnings: list[str] = field(default_factory=list)
    uncompressed_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        grouped: dict[str, list[str]] = {DIR: [], FILE: [], SYMLINK: [], OTHER: []}
        for path, kind in self.kinds.items():
            grouped[kind].append(path)
        return {
            "digest": self.digest,
            "diff_id": self.diff_id,
            "paths": grouped,
            "symlinks": self.symlinks,
            "files": {p: list(meta) for p, meta in self.files.items()},
            "values": self.values,
            "whiteouts": self.whiteouts,
            "opaque_dirs": self.opaque_dirs,
            "warnings": self.warnings,
            "uncompressed_bytes": self.uncompressed_bytes,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        kinds = {path: kind for kind, paths in data["paths"].items() for path in paths}
        return cls(
            digest=data["digest"],
            diff_id=data["diff_id"],
            kinds=kinds,
            symlinks=dict(data["symlinks"]),
            files={p: (int(m[0]), int(m[1])) for p, m in data["files"].items()},
            values={name: dict(v) for name, v in data["values"].items()},
            whiteouts=list(data["whiteouts"]),
            opaque_dirs=list(data["opaque_dirs"]),
            warnings=list(data["warnings"]),
            uncompressed_bytes=int(data["uncompressed_bytes"]),
        )


def read_layer(
    chunks: Iterator[bytes] | Iterator[memoryview],
    catalogers: Sequence[Cataloger],
    limits: LayerLimits,
    *,
    digest: str,
    diff_id: str | None = None,
    on_read: Callable[[int], None] | None = None,
) -> LayerAnalysis:
    """Analyse one layer from its stored bytes (``chunks``, verified by the source at their end)."""
    what = f"layer {digest}"
    raw = ChunkReader(chunks, on_read)
    walker = _Walker(LayerAnalysis(digest=digest, diff_id=diff_id), catalogers, limits, what)
    try:
        stream = LayerStream(raw, limit=limits.max_layer_bytes, what=what)
        # Headers and wanted files are read from this buffer; unwanted file data is skipped with one
        # seek, which the layer stream serves by inflating and hashing it in large blocks.
        tar = TarReader(io.BufferedReader(stream, TAR_BUFFER), what=what, max_metadata=MAX_TAR_METADATA)
        walker.walk(tar)
        stream.drain()
    except (EOFError, BadGzipFile, zstandard.ZstdError) as failure:
        raise errors.CorruptLayer(f"{what}: corrupt or truncated ({_describe(failure)})") from None
    analysis = walker.finish()
    analysis.uncompressed_bytes = stream.count
    if diff_id is not None and stream.diff_id != diff_id:
        raise errors.DigestMismatch(
            f"{what}: uncompressed content digest is {stream.diff_id}, the config's diff_id is {diff_id}"
        )
    analysis.diff_id = stream.diff_id
    return analysis


def _describe(failure: BaseException) -> str:
    text = str(failure) or type(failure).__name__
    return text[:200]


class _Walker:
    def __init__(
        self, analysis: LayerAnalysis, catalogers: Sequence[Cataloger], limits: LayerLimits, what: str
    ) -> None:
        self.analysis = analysis
        self.catalogers = catalogers
        self.limits = limits
        self.what = what
        self.entries = 0
        self.sizes: dict[str, int] = {}  # every regular file of this layer, for hard links to it
        self.dangling_links: list[str] = []
        self.unread_links: list[str] = []
        self.warnings: list[str] = []
        for cataloger in catalogers:
            analysis.values.setdefault(cataloger.name, {})

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def walk(self, tar: TarReader) -> None:
        while (info := tar.next()) is not None:
            self.entries += 1
            if self.entries > self.limits.max_entries:
                raise errors.LayerTooLarge(
                    f"{self.what}: more than {self.limits.max_entries} tar entries (SCAN_MAX_LAYER_ENTRIES)"
                )
            self.entry(tar, info)

    def entry(self, tar: TarReader, info: Member) -> None:
        path = normalise(info.name)
        if path == "/":
            return
        parent, _, base = path.rpartition("/")
        parent = parent or "/"
        if AUFS_META_PREFIX in path and any(p.startswith(AUFS_META_PREFIX) for p in path.split("/")):
            if base == OPAQUE_MARKER:
                self.analysis.opaque_dirs.append(parent)
            return
        if base.startswith(WHITEOUT_PREFIX):
            hidden = base[len(WHITEOUT_PREFIX) :]
            if hidden in ("", ".", ".."):
                # ".wh." is invalid per the spec; ".wh.." would white out the directory's parent.
                self.warn(f"{path}: a whiteout naming no entry (ignored)")
            else:
                self.analysis.whiteouts.append(f"{parent.rstrip('/')}/{hidden}")
            return
        if info.isdir():
            self.record(path, DIR)
        elif info.issym():
            self.record(path, SYMLINK)
            self.analysis.symlinks[path] = info.linkname
        elif info.islnk():
            self.hardlink(path, info)
        elif info.isreg():
            self.regular(tar, path, info)
        else:
            self.record(path, OTHER)  # devices, fifos: content-less, but they still replace paths

    def record(self, path: str, kind: str) -> None:
        """Note ``path`` as ``kind``; a later entry for the same path replaces an earlier one."""
        if path in self.analysis.kinds:
            self.analysis.symlinks.pop(path, None)
            self.analysis.files.pop(path, None)
            self.sizes.pop(path, None)
            for values in self.analysis.values.values():
                values.pop(path, None)
        self.analysis.kinds[path] = kind

    def regular(self, tar: TarReader, path: str, info: Member) -> None:
        self.record(path, FILE)
        self.sizes[path] = info.size
        mode = stat.S_IFREG | stat.S_IMODE(info.mode)
        wanting = [c for c in self.catalogers if c.wants(path, info.size, mode)]
        if not wanting:
            return
        if info.size > self.limits.max_file_bytes:
            self.warn(
                f"{path}: {info.size} bytes, more than SCAN_MAX_FILE_BYTES ({self.limits.max_file_bytes}); "
                f"not read for {', '.join(c.name for c in wanting)}"
            )
            return
        if info.sparse:
            self.warn(f"{path}: a sparse file in the tar; not read for {', '.join(c.name for c in wanting)}")
            return
        # Catalogers with a ``magic`` (the executables' ELF sniffers) get None, as their extract()
        # would return, for a file that does not start with it, without the file being read.
        data = tar.read(MAGIC_BYTES)
        self.analysis.files[path] = (info.size, mode)
        sniffed = [c for c in wanting if not data.startswith(getattr(c, "magic", None) or b"")]
        if sniffed:
            for cataloger in sniffed:
                self.analysis.values[cataloger.name][path] = None
            wanting = [c for c in wanting if c not in sniffed]
            if not wanting:
                return  # the reader skips the rest of the file
        if info.size > SPOOL_ABOVE and all(getattr(c, "magic", None) for c in wanting):
            # Programs only sniffed for build metadata: the readers touch headers and a few
            # sections, so the file goes to an unlinked temporary file and is mapped, not held.
            with _spooled(tar, data, info.size) as mapped:
                for cataloger in wanting:
                    self.extract(cataloger, path, cast(bytes, mapped))
            return
        data += tar.read()
        for cataloger in wanting:
            self.extract(cataloger, path, data)

    def extract(self, cataloger: Cataloger, path: str, data: bytes) -> None:
        try:
            value = cataloger.extract(path, data)
        except Exception as failure:  # noqa: BLE001 - one malformed file must not fail the whole image
            self.warn(
                f"{path}: {cataloger.name} could not read it ({type(failure).__name__}: {_describe(failure)})"
            )
            return
        self.analysis.values[cataloger.name][path] = value

    def hardlink(self, path: str, info: Member) -> None:
        target = normalise(info.linkname, "hard link target")
        if self.analysis.kinds.get(target) != FILE:
            # The spec allows links only within the layer; anything else cannot be read here.
            self.record(path, OTHER)
            self.dangling_links.append(path)
            return
        self.record(path, FILE)
        size = self.sizes[target]
        self.sizes[path] = size
        mode = stat.S_IFREG | stat.S_IMODE(info.mode)
        for cataloger in self.catalogers:
            if not cataloger.wants(path, size, mode):
                continue
            values = self.analysis.values[cataloger.name]
            if target in values:
                values[path] = values[target]
                self.analysis.files[path] = (size, mode)
            else:
                self.unread_links.append(f"{path} -> {target} ({cataloger.name})")

    def finish(self) -> LayerAnalysis:
        if self.dangling_links:
            self.warn(_listing("hard links to files outside the layer, not read", self.dangling_links))
        if self.unread_links:
            self.warn(_listing("hard links whose target was not read for that cataloger", self.unread_links))
        if len(self.warnings) > MAX_WARNINGS:
            extra = len(self.warnings) - MAX_WARNINGS
            self.warnings = [*self.warnings[:MAX_WARNINGS], f"... and {extra} more warnings"]
        self.analysis.warnings = [f"{self.what}: {w}" for w in self.warnings]
        # Drop duplicates but keep tar order, which the merge does not depend on anyway.
        self.analysis.whiteouts = list(dict.fromkeys(self.analysis.whiteouts))
        self.analysis.opaque_dirs = list(dict.fromkeys(self.analysis.opaque_dirs))
        return self.analysis


@contextmanager
def _spooled(tar: TarReader, head: bytes, size: int) -> Iterator[mmap.mmap]:
    """The rest of the current member after ``head``, written to an unlinked temporary file and
    mapped read-only: the pages a reader touches are file-backed, not the agent's heap."""
    with tempfile.TemporaryFile(prefix="registry-agent-") as spool:
        spool.write(head)
        left = size - len(head)
        while left:
            block = tar.read(min(left, SPOOL_BLOCK))
            spool.write(block)
            left -= len(block)
        spool.flush()
        with mmap.mmap(spool.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            yield mapped


def _listing(label: str, items: list[str], shown: int = 5) -> str:
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return f"{len(items)} {label}: {', '.join(items[:shown])}{more}"
