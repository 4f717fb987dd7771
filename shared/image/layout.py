"""An image in an OCI image layout: a directory, or the same tree inside an ``oci-archive`` tar.

``index.json`` lists the layout's images. The one scanned is chosen like a registry chooses from an
index: by reference name when one is given (``org.opencontainers.image.ref.name``, or containerd's
``io.containerd.image.name``), then by platform (`shared.registry.platform`; linux/amd64 unless the
caller asks otherwise), descending through nested indexes (containerd exports put a manifest list
behind ``index.json``). Every blob read is checked against its digest.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol

from shared import errors
from shared.image.source import SourceInfo, SourceKind, lined_up_diff_ids
from shared.registry import digest as digests
from shared.registry import mediatypes as mt
from shared.registry.client import MAX_CONFIG_BYTES, MAX_MANIFEST_BYTES, parse_json
from shared.registry.models import Descriptor
from shared.registry.platform import DEFAULT_PLATFORM, Platform, is_attestation
from shared.registry.reference import validate_digest

CHUNK_SIZE = 1024 * 1024
MAX_INDEX_DEPTH = 4  # index.json -> manifest list -> manifest is 2; more is a loop or abuse
# containerd's full name ("docker.io/library/alpine:3.14") first: it says more than a bare ref name.
REF_NAME_KEYS = ("io.containerd.image.name", "org.opencontainers.image.ref.name")


class BlobStore(Protocol):
    """Files of a layout by their relative name ("index.json", "blobs/sha256/<hex>")."""

    label: str  # for messages: the directory's or archive's name

    def exists(self, name: str) -> bool: ...

    def read(self, name: str, limit: int) -> bytes: ...

    def open(self, name: str) -> AbstractContextManager[Iterator[bytes]]: ...


class DirectoryStore:
    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise errors.ImageError(f"OCI layout directory {root} does not exist", code="ARCHIVE_NOT_FOUND")
        self.root = root
        self.label = root.name

    def exists(self, name: str) -> bool:
        return (self.root / name).is_file()

    def read(self, name: str, limit: int) -> bytes:
        path = self.root / name
        try:
            with path.open("rb") as handle:
                data = handle.read(limit + 1)
        except FileNotFoundError:
            raise errors.ImageError(f"{self.label}: {name} is missing") from None
        if len(data) > limit:
            raise errors.ImageError(f"{self.label}: {name} is larger than the {limit} bytes allowed")
        return data

    @contextmanager
    def open(self, name: str) -> Iterator[Iterator[bytes]]:
        try:
            handle = (self.root / name).open("rb")
        except FileNotFoundError:
            raise errors.ImageError(f"{self.label}: {name} is missing") from None
        with handle:
            yield iter(lambda: handle.read(CHUNK_SIZE), b"")


def blob_name(digest: str) -> str:
    algorithm, _, hexpart = validate_digest(digest).partition(":")
    return f"blobs/{algorithm}/{hexpart}"


def ref_names(entry: dict[str, Any]) -> list[str]:
    annotations = entry.get("annotations") or {}
    return [
        str(annotations[k]) for k in REF_NAME_KEYS if isinstance(annotations, dict) and annotations.get(k)
    ]


class LayoutSource:
    def __init__(
        self,
        store: BlobStore,
        *,
        kind: SourceKind,
        reference: str,
        ref_name: str | None = None,
        platform: Platform | None = None,
    ) -> None:
        self._store = store
        index = parse_json(store.read("index.json", MAX_MANIFEST_BYTES), f"{store.label}: index.json")
        entries = _entries(index)
        if ref_name is not None:
            named = [e for e in entries if ref_name in ref_names(e)]
            if not named:
                known = ", ".join(sorted({n for e in entries for n in ref_names(e)})) or "none"
                raise errors.ImageError(f"{store.label} has no image named {ref_name!r} (names: {known})")
            entries = named
        names = tuple(dict.fromkeys(n for e in entries for n in ref_names(e)))
        manifest, descriptor, index_digest, selected = self._choose(entries, platform)
        config_json = manifest.get("config")
        layers_json = manifest.get("layers")
        if not isinstance(config_json, dict) or not isinstance(layers_json, list):
            raise errors.ImageError(f"{store.label}: manifest {descriptor['digest']} lacks config or layers")
        config_descriptor = Descriptor.from_json(config_json)
        config = parse_json(self._blob(config_descriptor.digest, MAX_CONFIG_BYTES), f"{store.label}: config")
        if selected is None and config.get("os"):
            selected = Platform(
                str(config.get("os")), str(config.get("architecture", "")), config.get("variant") or None
            )
        layers = tuple(Descriptor.from_json(layer) for layer in layers_json if isinstance(layer, dict))
        diff_ids, warnings = lined_up_diff_ids(config, len(layers))
        self.info = SourceInfo(
            kind=kind,
            reference=reference,
            name=store.label,
            config=config,
            config_digest=config_descriptor.digest,
            layers=layers,
            diff_ids=diff_ids,
            manifest_digest=str(descriptor["digest"]),
            manifest_media_type=str(manifest.get("mediaType") or descriptor.get("mediaType") or ""),
            index_digest=index_digest,
            platform=selected,
            names=names,
            warnings=tuple(warnings),
        )

    def _blob(self, digest: str, limit: int) -> bytes:
        name = blob_name(digest)
        if not self._store.exists(name):
            raise errors.ImageError(f"{self._store.label}: blob {digest} is missing")
        data = self._store.read(name, limit)
        digests.verify(data, digest, f"{self._store.label}: blob {digest}")
        return data

    def _choose(
        self, entries: list[dict[str, Any]], platform: Platform | None
    ) -> tuple[dict[str, Any], dict[str, Any], str | None, Platform | None]:
        """(manifest, its descriptor, digest of the index it came from, platform chosen)."""
        index_digest: str | None = None
        selected: Platform | None = None
        for _ in range(MAX_INDEX_DEPTH):
            entry, selected = _pick(entries, platform, self._store.label)
            digest = validate_digest(str(entry.get("digest", "")))
            document = parse_json(self._blob(digest, MAX_MANIFEST_BYTES), f"{self._store.label}: {digest}")
            media_type = str(document.get("mediaType") or entry.get("mediaType") or "")
            if media_type in mt.INDEXES or ("manifests" in document and "layers" not in document):
                index_digest = digest
                entries = _entries(document)
                continue
            return document, entry, index_digest, selected or platform
        raise errors.ImageError(f"{self._store.label}: indexes nest more than {MAX_INDEX_DEPTH} deep")

    def open_layer(self, layer: Descriptor) -> AbstractContextManager[Iterator[bytes]]:
        return self._verified(layer)

    @contextmanager
    def _verified(self, layer: Descriptor) -> Iterator[Iterator[bytes]]:
        name = blob_name(layer.digest)
        if not self._store.exists(name):
            raise errors.ImageError(f"{self._store.label}: layer {layer.digest} is missing")
        with self._store.open(name) as chunks:
            yield digests.verified_chunks(
                chunks, layer.digest, layer.size or None, f"{self._store.label}: layer {layer.digest}"
            )

    def close(self) -> None:
        """Files are opened per read: nothing stays open between them."""

    def __enter__(self) -> LayoutSource:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _entries(index: dict[str, Any]) -> list[dict[str, Any]]:
    manifests = index.get("manifests")
    return [e for e in manifests if isinstance(e, dict)] if isinstance(manifests, list) else []


def _pick(
    entries: list[dict[str, Any]], platform: Platform | None, label: str
) -> tuple[dict[str, Any], Platform | None]:
    candidates = [e for e in entries if not is_attestation(e)]
    if not candidates:
        raise errors.ImageError(f"{label} holds no image")
    with_platform = [(Platform.from_descriptor(e["platform"]), e) for e in candidates if e.get("platform")]
    if len(candidates) == 1:
        found = with_platform[0][0] if with_platform else None
        # As the registry client does: a lone image is taken unless a platform was asked for and differs.
        if platform is not None and found is not None and not found.matches(platform):
            raise errors.NotFound(
                f"{label} has no {platform} image (platforms: {found})", code="PLATFORM_UNKNOWN"
            )
        return candidates[0], found
    if len(with_platform) != len(candidates):
        names = ", ".join(n for e in candidates for n in ref_names(e)) or "unnamed"
        raise errors.ImageError(
            f"{label} holds {len(candidates)} images ({names}): name one as PATH:NAME", code="AMBIGUOUS_IMAGE"
        )
    wanted = platform or DEFAULT_PLATFORM
    for found, entry in with_platform:
        if found.matches(wanted):
            return entry, found
    available = ", ".join(str(p) for p, _ in with_platform)
    raise errors.NotFound(f"{label} has no {wanted} image (platforms: {available})", code="PLATFORM_UNKNOWN")
