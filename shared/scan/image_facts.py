"""From what a source knows about its image (`shared.image.SourceInfo`) to what the output formats
read (`shared.scan.output.ImageInfo`): the one place the two vocabularies meet."""

from __future__ import annotations

from shared.image.source import SourceInfo
from shared.scan.output.image_info import ImageInfo


def output_image_info(info: SourceInfo) -> ImageInfo:
    return ImageInfo(
        # A registry image is named by registry and repository; an archive or layout by its file name,
        # as snyk-docker-plugin names "docker-image|nginx.tar".
        name=info.name,
        tag=info.tag,
        manifest_digest=info.manifest_digest,
        index_digest=info.index_digest,
        registry_host=info.registry or "",
        repository=info.repository or "",
        config_digest=info.config_digest,
        config=info.config,
        layer_digests=tuple(layer.digest for layer in info.layers),
        platform=str(info.platform) if info.platform else None,
    )
