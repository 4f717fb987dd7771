"""Test helpers: layer tars entry by entry (in any order, hostile names included), OCI layouts around
them, and small catalogers that record what the engine hands them.

`tests.harness.images` builds well-formed images (sorted members, parents added); the cases here need
exact control of the tar: an opaque marker after its directory's content, ``../`` names, links.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.image.layer import LayerAnalysis, LayerLimits, read_layer
from shared.image.merge import MergedView
from shared.image.source import ImageSource
from shared.scan.model import Cataloger, FileRecord, OSRelease, Package
from tests.harness.images import OCI_CONFIG, OCI_MANIFEST, Layout

OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"

Entry = tuple[str, ...]  # ("file", name, content) | ("dir", name) | ("symlink", name, target) | ...


def tar_bytes(entries: Iterable[Entry]) -> bytes:
    """A tar with exactly these members, in this order; names are written as given."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for kind, name, *rest in entries:
            info = tarfile.TarInfo(name)
            info.mtime, info.mode = 1704067200, 0o644
            data = None
            if kind == "file":
                data = rest[0].encode() if rest else b""
                info.size = len(data)
            elif kind == "exe":
                data = rest[0].encode()
                info.size, info.mode = len(data), 0o755
            elif kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, rest[0]
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, rest[0]
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            else:
                raise ValueError(kind)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return raw.getvalue()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_layout(
    root: Path,
    layers: Sequence[bytes],
    *,
    media_types: Sequence[str] | None = None,
    diff_ids: Sequence[str] | None = None,
    sizes: Sequence[int] | None = None,
) -> Path:
    """An OCI layout of one linux/amd64 image whose layer blobs are exactly ``layers``.

    ``diff_ids`` default to the sha256 of each layer decompressed with gzip when it is gzip, else of
    the blob; ``sizes`` override the manifest's declared sizes (to describe a truncated blob).
    """
    layout = Layout(root)
    descriptors = []
    for index, blob in enumerate(layers):
        media_type = media_types[index] if media_types else OCI_LAYER_GZIP
        descriptor = layout.add_blob(blob, media_type)
        if sizes is not None:
            descriptor["size"] = sizes[index]
        descriptors.append(descriptor)
    if diff_ids is None:
        diff_ids = [sha256(gzip.decompress(b) if b[:2] == b"\x1f\x8b" else b) for b in layers]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "config": {},
    }
    config_descriptor = layout.add_json(config, OCI_CONFIG)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config_descriptor,
        "layers": descriptors,
    }
    layout.finish(layout.add_json(manifest, OCI_MANIFEST))
    return root


@dataclass
class Everything:
    """Wants every regular file; its value is the file's sha256, its packages one per surviving path."""

    name: str = "everything"
    ecosystem: str = "files"

    def wants(self, path: str, size: int, mode: int) -> bool:
        return True

    def extract(self, path: str, data: bytes) -> Any:
        return hashlib.sha256(data).hexdigest()

    def catalog(self, files: Mapping[str, FileRecord], os_release: OSRelease | None) -> list[Package]:
        return [Package(name=p, version=str(r.value), type="file", location="/") for p, r in files.items()]


@dataclass
class Wanting:
    """Wants the given paths only; keeps the text."""

    paths: frozenset[str]
    name: str = "wanting"
    ecosystem: str = "files"

    def wants(self, path: str, size: int, mode: int) -> bool:
        return path in self.paths

    def extract(self, path: str, data: bytes) -> Any:
        return data.decode()

    def catalog(self, files: Mapping[str, FileRecord], os_release: OSRelease | None) -> list[Package]:
        return []


def analyse(
    blobs: Sequence[bytes], catalogers: Sequence[Cataloger], limits: LayerLimits | None = None
) -> list[LayerAnalysis]:
    return [
        read_layer(iter([blob]), catalogers, limits or LayerLimits(), digest=sha256(blob)) for blob in blobs
    ]


def merged(blobs: Sequence[bytes], catalogers: Sequence[Cataloger] = ()) -> MergedView:
    return MergedView(analyse(blobs, catalogers or [Everything()]))


def source_files(source: ImageSource, catalogers: Sequence[Cataloger] | None = None) -> dict[str, str]:
    """path -> sha256 of every regular file of the merged image, read through ``source``."""
    catalogers = catalogers or [Everything()]
    analyses = []
    for layer, diff_id in zip(source.info.layers, source.info.diff_ids, strict=True):
        with source.open_layer(layer) as chunks:
            analyses.append(
                read_layer(chunks, catalogers, LayerLimits(), digest=layer.digest, diff_id=diff_id)
            )
    view = MergedView(analyses)
    return {path: str(record.value) for path, record in view.files_for(catalogers[0]).items()}


def config_json(root: Path) -> dict[str, Any]:
    index = json.loads((root / "index.json").read_text())
    manifest = json.loads((root / "blobs/sha256" / index["manifests"][0]["digest"].split(":")[1]).read_text())
    return json.loads((root / "blobs/sha256" / manifest["config"]["digest"].split(":")[1]).read_text())
