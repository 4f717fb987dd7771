"""Where an image comes from, as the scan engine sees it: one interface for every kind of source.

A source has already chosen one image (one platform of an index) when it is opened. It gives the
facts that identify the image (``info``) and, per layer, a stream of the layer's stored bytes that is
checked against the layer's digest as it flows: the iterator raises at its end when the bytes are
not the ones the manifest names, so a consumer must read it to the end before trusting what it saw.

Implementations: `shared.image.registry` (a registry), `shared.image.layout` (an OCI image-layout
directory), `shared.image.archive` (``oci-archive`` and ``docker save`` tar files).
``shared.image.open_source`` picks one from a source string.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, Self

from shared.registry.models import Descriptor
from shared.registry.platform import Platform

SourceKind = Literal["registry", "oci-dir", "oci-archive", "docker-archive"]


@dataclass(frozen=True)
class SourceInfo:
    """What identifies the chosen image, for the scan and for the output's facts."""

    kind: SourceKind
    reference: str  # what the user gave: "nginx:1.25", "docker-archive:/tmp/nginx.tar"
    name: str  # "registry.example/library/nginx"; an archive's file name ("nginx.tar")
    config: dict[str, Any]
    config_digest: str  # sha256 of the config bytes: Snyk's imageId
    layers: tuple[Descriptor, ...]  # in application order, bottom first
    # rootfs.diff_ids lined up with ``layers``; all None when the config's list does not match the
    # layers one to one (the trimmed Snyk fixtures keep 3 diff_ids beside 1 layer).
    diff_ids: tuple[str | None, ...]
    manifest_digest: str | None = None  # None for a docker-archive: it holds no manifest
    manifest_media_type: str | None = None
    index_digest: str | None = None  # the index the image was chosen from, when there was one
    platform: Platform | None = None
    registry: str | None = None  # registry host, for a registry source
    repository: str | None = None
    tag: str | None = None
    names: tuple[str, ...] = ()  # names the image is known by (docker-archive RepoTags, OCI ref names)
    warnings: tuple[str, ...] = field(default=())  # oddities met while opening (kept for the inventory)


class ImageSource(Protocol):
    """One chosen image and a way to stream its layers."""

    @property
    def info(self) -> SourceInfo: ...

    def open_layer(self, layer: Descriptor) -> AbstractContextManager[Iterator[bytes]]:
        """The layer's stored (usually compressed) bytes, verified against ``layer.digest``."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


def lined_up_diff_ids(config: dict[str, Any], layer_count: int) -> tuple[tuple[str | None, ...], list[str]]:
    """The config's diff_ids when they match the layers one to one, else Nones and a warning."""
    rootfs = config.get("rootfs") if isinstance(config.get("rootfs"), dict) else {}
    raw = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    diff_ids = [d for d in raw if isinstance(d, str)] if isinstance(raw, list) else []
    if len(diff_ids) == layer_count:
        return tuple(diff_ids), []
    warning = (
        f"the image config lists {len(diff_ids)} diff_ids for {layer_count} layers: "
        "uncompressed layer contents are not verified"
    )
    return (None,) * layer_count, [warning]
