"""An image in a registry, through the agent's `RegistryClient`.

The client resolves the reference (index -> the requested platform, linux/amd64 by default) and
fetches the config; layers are streamed with ``open_blob``, which checks length and digest as the
bytes flow. The client belongs to the caller: closing the source leaves it open.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import AbstractContextManager

from shared.image.source import SourceInfo, lined_up_diff_ids
from shared.registry.client import RegistryClient
from shared.registry.models import Descriptor
from shared.registry.platform import Platform
from shared.registry.reference import ImageRef


class RegistrySource:
    def __init__(
        self,
        client: RegistryClient,
        image: ImageRef,
        platform: Platform | None = None,
        *,
        reference: str | None = None,
        registry: str | None = None,
    ) -> None:
        """``registry``: the host the client talks to, when the reference itself names none."""
        self._client = client
        self._repository = image.repository
        resolved = client.resolve(image.repository, image.reference, platform)
        diff_ids, warnings = lined_up_diff_ids(resolved.config, len(resolved.layers))
        host = image.registry or registry
        name = f"{host}/{image.repository}" if host else image.repository
        config_digest = (
            resolved.config_descriptor.digest
            if resolved.config_descriptor is not None
            # Schema 1 has no config blob: hash what stands in for it so the id is still stable.
            else "sha256:" + hashlib.sha256(json.dumps(resolved.config, sort_keys=True).encode()).hexdigest()
        )
        self.info = SourceInfo(
            kind="registry",
            reference=reference or str(image),
            name=name,
            config=resolved.config,
            config_digest=config_digest,
            layers=tuple(resolved.layers),
            diff_ids=diff_ids,
            manifest_digest=resolved.digest,
            manifest_media_type=resolved.media_type,
            index_digest=resolved.index_digest,
            platform=resolved.platform or platform,
            registry=host,
            repository=image.repository,
            tag=image.tag,
            names=(str(image),),
            warnings=tuple(warnings),
        )

    def open_layer(self, layer: Descriptor) -> AbstractContextManager[Iterator[bytes]]:
        # Schema 1 descriptors carry no size (0): then only the digest is checked.
        return self._client.open_blob(self._repository, layer.digest, layer.size or None)

    def close(self) -> None:
        """Nothing of its own to release: the client is the caller's."""

    def __enter__(self) -> RegistrySource:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
