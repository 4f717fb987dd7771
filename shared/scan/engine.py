"""The scan engine: from an `ImageSource` and a list of catalogers to an `Inventory`.

1. The size check comes first, before any layer is fetched: the layers that would be read add up to
   more than ``SNYK_MAX_IMAGE_SIZE_IN_BYTES`` -> `ImageTooLarge`. Bytes are counted again while
   streaming, for sources whose descriptors carry no size (schema 1 manifests).
2. Each layer is analysed once (`shared.image.layer`), or taken from the layer cache
   (`shared.image.cache`) when an earlier scan analysed the same digest with the same catalogers.
   Foreign / non-distributable layers (Windows base layers) are skipped with a warning: registries
   often cannot serve them, and their ``urls`` point at hosts the agent must not be sent to.
3. The layers are merged (`shared.image.merge`) and each cataloger gets its surviving files.
4. The OS comes from the ``os-release`` cataloger's files (``detect_os`` beside it); then every
   cataloger catalogs, with that OS. OS packages come from the first package manager with packages,
   in the order apk, deb, rpm (snyk-docker-plugin's order); application packages are grouped by
   (ecosystem, file they were found in).

A cataloger whose ``catalog`` raises costs the inventory that cataloger's packages and adds a
warning; everything else that goes wrong is an `AgentError` for the whole scan.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from itertools import groupby

from shared import errors
from shared.image.cache import LayerCache, reader_key
from shared.image.layer import LayerAnalysis, LayerLimits, read_layer
from shared.image.layer_worker import LayerWorker
from shared.image.merge import MergedView
from shared.image.source import ImageSource
from shared.registry.mediatypes import FOREIGN_LAYERS
from shared.registry.models import Descriptor
from shared.scan.catalogers.osrelease import NAME as OS_RELEASE_CATALOGER
from shared.scan.catalogers.osrelease import detect_os
from shared.scan.model import Cataloger, FileRecord, Inventory, OSRelease, Package

log = logging.getLogger(__name__)

OS_PACKAGE_ORDER = ("apk", "deb", "rpm")

Progress = Callable[[int], None]


def readable_layers(layers: Sequence[Descriptor]) -> tuple[list[int], list[str]]:
    """Indexes of the layers to read, and a warning per skipped foreign layer."""
    keep, warnings = [], []
    for index, layer in enumerate(layers):
        if layer.media_type in FOREIGN_LAYERS:
            warnings.append(
                f"layer {layer.digest}: foreign / non-distributable layer ({layer.media_type}) skipped"
            )
        else:
            keep.append(index)
    return keep, warnings


def bytes_to_read(source: ImageSource, cache: LayerCache | None = None, key: str | None = None) -> int:
    """Compressed bytes the scan will download (for a progress bar): cached layers excluded."""
    keep, _ = readable_layers(source.info.layers)
    layers = [source.info.layers[i] for i in keep]
    if cache is None or key is None:
        return sum(layer.size for layer in layers)
    return sum(layer.size for layer in layers if not cache.contains(key, layer.digest))


def _size_guard(chunks: Iterator[bytes], seen: list[int], limit: int) -> Iterator[bytes]:
    for chunk in chunks:
        seen[0] += len(chunk)
        if seen[0] > limit:
            raise errors.ImageTooLarge(
                f"the image's layers exceed SNYK_MAX_IMAGE_SIZE_IN_BYTES ({limit} bytes) while downloading"
            )
        yield chunk


def _blame_the_download(chunks: Iterator[bytes]) -> None:
    """A layer that does not decompress may simply not be the blob that was asked for (flipped or
    missing bytes on the way): read the rest, so the source's length and digest checks run, and
    report *their* error (``DIGEST_INVALID``, ``REGISTRY_PROTOCOL``) as the cause. Bounded: the
    source refuses more bytes than the descriptor declares, the guard more than the image cap."""
    try:
        for _ in chunks:
            pass
    except errors.RegistryError as cause:
        raise cause from None


def scan(
    source: ImageSource,
    catalogers: Sequence[Cataloger],
    *,
    max_image_size: int,
    cache: LayerCache | None = None,
    limits: LayerLimits | None = None,
    progress: Progress | None = None,
    worker: bool = False,
    worker_min_bytes: int = 0,
) -> Inventory:
    """``worker``: read each layer in a helper process while this one downloads it
    (`shared.image.layer_worker`), so a scan uses two cores, when the layers to read add up to
    ``worker_min_bytes`` or more; the catalogers must then be picklable."""
    limits = limits or LayerLimits()
    names = [c.name for c in catalogers]
    if len(set(names)) != len(names):
        raise ValueError(f"cataloger names must be unique: {names}")
    info = source.info
    warnings = list(info.warnings)
    keep, skipped = readable_layers(info.layers)
    warnings.extend(skipped)
    total = sum(info.layers[i].size for i in keep)
    if total > max_image_size:
        raise errors.ImageTooLarge(
            f"the image's layers add up to {total} bytes, "
            f"more than SNYK_MAX_IMAGE_SIZE_IN_BYTES ({max_image_size})"
        )
    key = reader_key(catalogers, limits) if cache is not None else ""
    # A worker costs a process start (~0.1 s): worth it for hundreds of megabytes, not for a few.
    worker = worker and bytes_to_read(source, cache, key) >= worker_min_bytes
    with LayerWorker(catalogers, limits) as helper:
        read = helper if worker else partial(read_layer, catalogers=catalogers, limits=limits)
        downloaded = [0]
        analyses: list[LayerAnalysis] = []
        for index in keep:
            layer, diff_id = info.layers[index], info.diff_ids[index]
            analysis = cache.get(key, layer.digest) if cache is not None else None
            if analysis is None:
                with source.open_layer(layer) as chunks:
                    guarded = _size_guard(chunks, downloaded, max_image_size)
                    try:
                        analysis = read(guarded, digest=layer.digest, diff_id=diff_id, on_read=progress)
                    except errors.CorruptLayer:
                        _blame_the_download(guarded)
                        raise
                if cache is not None:
                    cache.put(key, analysis)
            analyses.append(analysis)
            warnings.extend(analysis.warnings)
    view = MergedView(analyses)
    files = {c.name: view.files_for(c) for c in catalogers}
    os_release = _detect_os(files.get(OS_RELEASE_CATALOGER))
    found: dict[str, list[Package]] = {}
    for cataloger in catalogers:
        try:
            found[cataloger.name] = cataloger.catalog(files[cataloger.name], os_release)
        # Any exception: one broken database must not hide the packages of the others.
        except Exception as failure:
            log.exception("cataloger %s failed", cataloger.name)
            warnings.append(
                f"cataloger {cataloger.name} failed: {type(failure).__name__}: {str(failure)[:200]}"
            )
            found[cataloger.name] = []
    os_manager, os_packages = _os_packages(catalogers, found, warnings)
    return Inventory(
        os_release=os_release,
        os_packages=os_packages,
        os_package_manager=os_manager,
        applications=_applications(catalogers, found),
        warnings=warnings,
    )


def _detect_os(files: Mapping[str, FileRecord] | None) -> OSRelease:
    if files is None:  # no release-file cataloger in this scan: nothing to tell the OS by
        return OSRelease(id="unknown", version_id="")
    return detect_os(files)


def _os_packages(
    catalogers: Sequence[Cataloger], found: Mapping[str, list[Package]], warnings: list[str]
) -> tuple[str | None, list[Package]]:
    by_type: dict[str, list[Package]] = {}
    for cataloger in catalogers:
        if cataloger.ecosystem == "os":
            for package in found[cataloger.name]:
                by_type.setdefault(package.type, []).append(package)
    primary = next((t for t in OS_PACKAGE_ORDER if by_type.get(t)), None)
    for other, packages in by_type.items():
        if other != primary and packages:
            warnings.append(f"{len(packages)} {other} packages also found; reported: {primary} only")
    return primary, by_type.get(primary, []) if primary else []


def _target(package: Package) -> str:
    return package.project or package.location


def _applications(
    catalogers: Sequence[Cataloger], found: Mapping[str, list[Package]]
) -> list[tuple[str, str, list[Package]]]:
    results: list[tuple[str, str, list[Package]]] = []
    for cataloger in catalogers:
        if cataloger.ecosystem == "os":
            continue
        packages = sorted(found[cataloger.name], key=_target)
        for target, group in groupby(packages, key=_target):
            results.append((cataloger.ecosystem, target, list(group)))
    return results
