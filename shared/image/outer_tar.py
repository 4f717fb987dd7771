"""Random access to the members of an uncompressed tar file, without extracting it.

Image archives (``docker save``, ``oci-archive``) are plain tars whose members are blobs. One pass
over the headers records where each member's data starts; a member is then read by seeking there,
so nothing is ever written to disk and a layer is read only when the scan asks for it.

Symbolic and hard links between members are followed (``docker save`` links a layer shared by two
images to the first copy), within the archive only and with a depth limit.
"""

from __future__ import annotations

import posixpath
import tarfile
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from shared.errors import ImageError

CHUNK_SIZE = 1024 * 1024
# Far above any real archive (one entry per blob and a few metadata files); a bound on the index's memory.
MAX_MEMBERS = 100_000
MAX_LINK_DEPTH = 16

_COMPRESSED = {b"\x1f\x8b": "gzip", b"\x28\xb5\x2f\xfd": "zstd", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz"}


@dataclass(frozen=True)
class Member:
    name: str
    offset: int  # where the data starts in the file
    size: int


def _clean(name: str) -> str:
    return posixpath.normpath(name).lstrip("/") if name else ""


class TarArchive:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._members: dict[str, Member] = {}
        self._links: dict[str, str] = {}  # member name -> the member name it points at
        try:
            with path.open("rb") as handle:
                head = handle.read(8)
                for magic, kind in _COMPRESSED.items():
                    if head.startswith(magic):
                        raise ImageError(f"{path.name} is {kind}-compressed: decompress it first")
                handle.seek(0)
                self._index(handle)
        except FileNotFoundError:
            raise ImageError(f"archive {path} does not exist", code="ARCHIVE_NOT_FOUND") from None
        except IsADirectoryError:
            raise ImageError(f"archive {path} is a directory, not a tar file") from None
        except (tarfile.TarError, EOFError) as failure:
            raise ImageError(f"{path.name} is not a readable tar archive ({failure})") from None

    def _index(self, handle: BinaryIO) -> None:
        with tarfile.open(fileobj=handle, mode="r:") as tar:
            while (info := tar.next()) is not None:
                # The TarFile keeps every header it read; only our small index is needed.
                tar.members.clear()  # type: ignore[attr-defined]  # not in typeshed, stable since 2.x
                if len(self._members) + len(self._links) >= MAX_MEMBERS:
                    raise ImageError(f"{self.path.name} has more than {MAX_MEMBERS} members")
                name = _clean(info.name)
                self._members.pop(name, None)
                self._links.pop(name, None)
                if info.issym():
                    self._links[name] = _clean(posixpath.join(posixpath.dirname(name), info.linkname))
                elif info.islnk():
                    self._links[name] = _clean(info.linkname)
                elif info.isreg() and not info.issparse():
                    self._members[name] = Member(name, info.offset_data, info.size)

    def names(self) -> list[str]:
        return sorted({*self._members, *self._links})

    def find(self, name: str) -> Member | None:
        """The member stored as ``name``, links followed; None when absent or not a plain file."""
        name = _clean(name)
        for _ in range(MAX_LINK_DEPTH):
            if name in self._members:
                return self._members[name]
            target = self._links.get(name)
            if target is None or target.startswith(".."):
                return None
            name = target
        return None

    def member(self, name: str) -> Member:
        found = self.find(name)
        if found is None:
            raise ImageError(f"{self.path.name} has no member {name!r}")
        return found

    def read(self, name: str, limit: int) -> bytes:
        """A small member (JSON) whole."""
        found = self.member(name)
        if found.size > limit:
            raise ImageError(f"{self.path.name}: {name} is {found.size} bytes, more than the {limit} allowed")
        return b"".join(self._chunks(found))

    @contextmanager
    def open(self, name: str) -> Iterator[Iterator[bytes]]:
        chunks = self._chunks(self.member(name))
        try:
            yield chunks
        finally:
            chunks.close()  # closes the file even when the reader stopped early

    def _chunks(self, found: Member) -> Generator[bytes, None, None]:
        with self.path.open("rb") as handle:
            handle.seek(found.offset)
            left = found.size
            while left:
                chunk = handle.read(min(CHUNK_SIZE, left))
                if not chunk:
                    raise ImageError(f"{self.path.name}: {found.name} is cut short (archive truncated)")
                left -= len(chunk)
                yield chunk
