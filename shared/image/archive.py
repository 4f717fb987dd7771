"""Images in tar files: ``oci-archive`` (an OCI layout, tarred) and ``docker save`` archives.

Both are read in place (`shared.image.outer_tar`): nothing is extracted to disk.

A ``docker save`` archive has ``manifest.json`` (``[{Config, RepoTags, Layers}]``), the config as a
member, and one member per layer: ``<id>/layer.tar`` (uncompressed, classic format), ``<hex>.tar.gz``
(go-containerregistry) or ``blobs/sha256/<hex>`` (Docker 25 and later). It names no layer digests,
so each layer's digest is taken from a content-addressed member name (``blobs/sha256/<hex>``,
``<hex>.tar.gz``) and checked when the layer is streamed, or otherwise computed by hashing the member
once when the archive is opened (``<id>/layer.tar``: the directory is a legacy id, not a digest); a
digest computed from the member itself is not computed a second time while streaming it (only its
length is checked), which saves a hash pass over every layer of a classic ``docker save``.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from shared import errors
from shared.image.layout import LayoutSource
from shared.image.outer_tar import TarArchive
from shared.image.source import SourceInfo, lined_up_diff_ids
from shared.registry import digest as digests
from shared.registry.client import MAX_CONFIG_BYTES, MAX_MANIFEST_BYTES
from shared.registry.models import Descriptor
from shared.registry.platform import Platform

_CONTENT_ADDRESSED = re.compile(r"^(?:sha256:)?(?P<hex>[a-f0-9]{64})(?:\.tar(?:\.gz|\.zst)?)?$")


class TarStore:
    """An OCI layout inside a tar, for `LayoutSource`."""

    def __init__(self, archive: TarArchive) -> None:
        self._archive = archive
        self.label = archive.path.name

    def exists(self, name: str) -> bool:
        return self._archive.find(name) is not None

    def read(self, name: str, limit: int) -> bytes:
        return self._archive.read(name, limit)

    def open(self, name: str) -> AbstractContextManager[Iterator[bytes]]:
        return self._archive.open(name)


def open_oci_archive(
    path: Path, *, reference: str, ref_name: str | None = None, platform: Platform | None = None
) -> LayoutSource:
    return LayoutSource(
        TarStore(TarArchive(path)),
        kind="oci-archive",
        reference=reference,
        ref_name=ref_name,
        platform=platform,
    )


class DockerArchiveSource:
    def __init__(
        self, path: Path, *, reference: str, image_name: str | None = None, platform: Platform | None = None
    ) -> None:
        self._archive = TarArchive(path)
        label = path.name
        try:
            manifest = json.loads(self._archive.read("manifest.json", MAX_MANIFEST_BYTES))
        except (ValueError, UnicodeDecodeError):
            raise errors.ImageError(f"{label}: manifest.json is not JSON") from None
        if not isinstance(manifest, list) or not all(isinstance(e, dict) for e in manifest):
            raise errors.ImageError(f"{label}: manifest.json is not a list of images")
        entry = _choose(manifest, image_name, label)
        config_bytes = self._archive.read(str(entry.get("Config", "")), MAX_CONFIG_BYTES)
        try:
            config = json.loads(config_bytes)
        except (ValueError, UnicodeDecodeError):
            raise errors.ImageError(f"{label}: the image config is not JSON") from None
        if not isinstance(config, dict):
            raise errors.ImageError(f"{label}: the image config is not a JSON object")
        found = Platform(
            str(config.get("os", "")), str(config.get("architecture", "")), config.get("variant")
        )
        if platform is not None and config.get("os") and not found.matches(platform):
            raise errors.NotFound(f"{label} holds a {found} image, not {platform}", code="PLATFORM_UNKNOWN")
        layer_names = [str(n) for n in entry.get("Layers") or []]
        self._members: dict[str, str] = {}  # layer digest -> member name
        self._computed: set[str] = set()  # digests hashed from the member itself at open
        layers = []
        for name in layer_names:
            digest = self._digest_of(name)
            self._members.setdefault(digest, name)
            layers.append(Descriptor(media_type="", digest=digest, size=self._archive.member(name).size))
        diff_ids, warnings = lined_up_diff_ids(config, len(layers))
        self.info = SourceInfo(
            kind="docker-archive",
            reference=reference,
            name=label,
            config=config,
            config_digest="sha256:" + hashlib.sha256(config_bytes).hexdigest(),
            layers=tuple(layers),
            diff_ids=diff_ids,
            platform=found if config.get("os") else platform,
            names=tuple(str(t) for t in entry.get("RepoTags") or ()),
            warnings=tuple(warnings),
        )

    def _digest_of(self, name: str) -> str:
        match = _CONTENT_ADDRESSED.match(posixpath.basename(name))
        if match:
            return "sha256:" + match["hex"]
        hasher = hashlib.sha256()
        with self._archive.open(name) as chunks:
            for chunk in chunks:
                hasher.update(chunk)
        digest = "sha256:" + hasher.hexdigest()
        self._computed.add(digest)
        return digest

    def open_layer(self, layer: Descriptor) -> AbstractContextManager[Iterator[bytes]]:
        return self._verified(layer)

    @contextmanager
    def _verified(self, layer: Descriptor) -> Iterator[Iterator[bytes]]:
        name = self._members.get(layer.digest)
        if name is None:
            raise errors.ImageError(f"{self._archive.path.name} has no layer {layer.digest}")
        what = f"{self._archive.path.name}: {name}"
        with self._archive.open(name) as chunks:
            if layer.digest in self._computed:
                yield _sized(chunks, layer.size, what)
            else:
                yield digests.verified_chunks(chunks, layer.digest, layer.size, what)

    def close(self) -> None:
        """Members are opened per read: nothing stays open between them."""

    def __enter__(self) -> DockerArchiveSource:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _sized(chunks: Iterator[bytes], size: int, what: str) -> Iterator[bytes]:
    """The member's bytes with a length check (its digest was computed from these very bytes)."""
    seen = 0
    for chunk in chunks:
        seen += len(chunk)
        yield chunk
    if seen != size:
        raise errors.ImageError(f"{what}: {seen} bytes where the archive's index says {size}")


def _choose(manifest: list[dict[str, Any]], image_name: str | None, label: str) -> dict[str, Any]:
    if not manifest:
        raise errors.ImageError(f"{label}: manifest.json lists no image")
    if image_name is None:
        if len(manifest) > 1:
            tags = ", ".join(t for e in manifest for t in e.get("RepoTags") or ()) or "untagged"
            # skopeo refuses too: scanning an arbitrary one of several images would mislead.
            raise errors.ImageError(
                f"{label} holds {len(manifest)} images ({tags}): name one as PATH:REPO:TAG or PATH:@INDEX",
                code="AMBIGUOUS_IMAGE",
            )
        return manifest[0]
    if image_name.startswith("@") and image_name[1:].isdigit():
        position = int(image_name[1:])
        if position >= len(manifest):
            raise errors.ImageError(f"{label} holds {len(manifest)} images, no @{position}")
        return manifest[position]
    wanted = {image_name, f"{image_name}:latest"}
    for entry in manifest:
        if wanted.intersection(entry.get("RepoTags") or ()):
            return entry
    tags = ", ".join(t for e in manifest for t in e.get("RepoTags") or ()) or "none"
    raise errors.ImageError(f"{label} has no image tagged {image_name!r} (tags: {tags})")
