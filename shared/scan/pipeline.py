"""One scan from image to inventory, as both the CLI and the scan function run it.

It wires the pieces each caller would otherwise assemble: the default catalogers, the layer caps and
the layer cache from the settings, the image source, and the engine.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from shared.image import open_source
from shared.image.cache import LayerCache, reader_key
from shared.image.layer import LayerLimits
from shared.registry import Platform, RegistryClient
from shared.scan.catalogers import default_catalogers
from shared.scan.engine import bytes_to_read, scan
from shared.scan.image_facts import output_image_info
from shared.scan.model import Inventory, OSRelease, Package
from shared.scan.output import ImageInfo, render
from shared.settings import Settings


class Progress(Protocol):
    """What a progress display offers the pipeline: count bytes as they come, then finish."""

    def __call__(self, count: int) -> None: ...

    def finish(self) -> None: ...


@dataclass
class ScanOutcome:
    inventory: Inventory
    image: ImageInfo

    def render(self, output_format: str) -> dict[str, Any] | str:
        return render(self.inventory, self.image, output_format)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able copy, so a stored scan can be rendered in any format later, on demand."""
        return {"inventory": asdict(self.inventory), "image": asdict(self.image)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScanOutcome:
        inventory, image = data["inventory"], data["image"]
        return cls(
            Inventory(
                os_release=OSRelease(
                    **{**inventory["os_release"], "id_like": tuple(inventory["os_release"]["id_like"])}
                ),
                os_packages=[_package(p) for p in inventory["os_packages"]],
                os_package_manager=inventory["os_package_manager"],
                applications=[
                    (ecosystem, target, [_package(p) for p in packages])
                    for ecosystem, target, packages in inventory["applications"]
                ],
                warnings=list(inventory["warnings"]),
            ),
            ImageInfo(**{**image, "layer_digests": tuple(image["layer_digests"])}),
        )


def _package(data: dict[str, Any]) -> Package:
    return Package(**{**data, "licenses": tuple(data["licenses"]), "depends": tuple(data["depends"])})


CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def usable_cpus(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """CPUs this process may use: its affinity mask (taskset, cpusets), and no more than its cgroup
    v2 CPU quota allows (``docker --cpus 1``, a Kubernetes CPU limit: ``cpu.max`` = quota period)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass  # no cgroup v2 here, or a file this reader does not understand: the mask decides
    return cpus


def scan_image(
    spec: str,
    settings: Settings,
    *,
    client: RegistryClient | None = None,
    registry_host: str | None = None,
    platform: Platform | None = None,
    progress_for: Callable[[int], Progress | None] | None = None,
) -> ScanOutcome:
    """Scan ``spec``: an image in the registry ``client`` talks to, or ``oci-dir:``/``oci-archive:``/
    ``docker-archive:`` paths. ``progress_for(total_bytes)`` may return a display to feed."""
    catalogers = default_catalogers()
    limits = LayerLimits.from_settings(settings)
    cache = LayerCache.under(settings.state_dir, settings.layer_cache_max_bytes)
    with open_source(spec, client=client, platform=platform, registry=registry_host) as source:
        progress = None
        if progress_for is not None:
            progress = progress_for(bytes_to_read(source, cache, reader_key(catalogers, limits)))
        try:
            inventory = scan(
                source,
                catalogers,
                max_image_size=settings.snyk_max_image_size_in_bytes,
                cache=cache,
                limits=limits,
                progress=progress,
                worker=settings.scan_layer_worker and usable_cpus() > 1,
                worker_min_bytes=settings.scan_layer_worker_min_bytes,
            )
        finally:
            if progress is not None:
                progress.finish()
        return ScanOutcome(inventory, output_image_info(source.info))
