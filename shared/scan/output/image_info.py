"""What the output formats need to know about the image itself, apart from its software inventory.

The scan engine fills this from the registry (manifest, index and config blob); the formats only read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ImageInfo:
    name: str  # repository with its registry and without tag or digest: "127.0.0.1:5000/library/nginx"
    tag: str | None = None  # "1.25"; None when the image was named by digest only
    manifest_digest: str | None = None  # "sha256:…" of the platform manifest that was scanned
    index_digest: str | None = None  # "sha256:…" of the image index the manifest was picked from
    registry_host: str = ""  # "127.0.0.1:5000", "docker.io"
    repository: str = ""  # path within the registry: "library/nginx"
    config_digest: str | None = None  # "sha256:…" of the config blob: the image ID
    # The parsed config blob; left out of hashing (a dict cannot be hashed, and the digest identifies it).
    config: Mapping[str, Any] = field(default_factory=dict, hash=False)
    layer_digests: tuple[str, ...] = ()  # compressed blob digests, in manifest order
    platform: str | None = None  # "linux/arm64/v8"; None to derive it from the config

    @property
    def reference(self) -> str:
        """The name a person would pull: tag when there is one, else the manifest digest."""
        if self.tag:
            return f"{self.name}:{self.tag}"
        if self.manifest_digest:
            return f"{self.name}@{self.manifest_digest}"
        return self.name

    @property
    def names(self) -> list[str]:
        """Every name the image is known by, tag first then digests (the order Snyk lists them)."""
        names = [f"{self.name}:{self.tag}"] if self.tag else []
        names += [f"{self.name}@{d}" for d in (self.manifest_digest, self.index_digest) if d]
        return names

    @property
    def platform_string(self) -> str | None:
        if self.platform:
            return self.platform
        os_name, arch = self.config.get("os"), self.config.get("architecture")
        if not (isinstance(os_name, str) and isinstance(arch, str) and os_name and arch):
            return None
        variant = self.config.get("variant")
        return f"{os_name}/{arch}/{variant}" if isinstance(variant, str) and variant else f"{os_name}/{arch}"

    @property
    def created(self) -> str | None:
        created = self.config.get("created")
        return created if isinstance(created, str) and created else None

    @property
    def container_config(self) -> Mapping[str, Any]:
        """The runtime defaults (Env, Cmd, Labels…): the config's ``config`` object."""
        value = self.config.get("config")
        return value if isinstance(value, Mapping) else {}

    @property
    def labels(self) -> dict[str, str]:
        labels = self.container_config.get("Labels")
        if not isinstance(labels, Mapping):
            return {}
        return {str(k): str(v) for k, v in labels.items()}

    @property
    def history(self) -> list[Mapping[str, Any]]:
        history = self.config.get("history")
        if not isinstance(history, list):
            return []
        return [entry for entry in history if isinstance(entry, Mapping)]

    @property
    def diff_ids(self) -> list[str]:
        rootfs = self.config.get("rootfs")
        diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, Mapping) else None
        return [str(d) for d in diff_ids] if isinstance(diff_ids, list) else []

    def diff_id_for_layer(self, layer_digest: str | None) -> str | None:
        """The uncompressed digest of a layer blob.

        The image spec pairs ``manifest.layers[i]`` with ``config.rootfs.diff_ids[i]``, so the pairing
        holds only when both lists are complete; otherwise there is no answer rather than a wrong one.
        """
        if not layer_digest or len(self.layer_digests) != len(self.diff_ids):
            return None
        try:
            return self.diff_ids[self.layer_digests.index(layer_digest)]
        except ValueError:
            return None
