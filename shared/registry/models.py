"""What the registry client returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.registry.platform import Platform


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    urls: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Descriptor:
        return cls(
            media_type=str(data.get("mediaType", "")),
            digest=str(data.get("digest", "")),
            size=int(data.get("size") or 0),
            urls=tuple(data.get("urls") or ()),
        )


@dataclass(frozen=True)
class Manifest:
    """A manifest's raw bytes as served, with what identifies them."""

    media_type: str
    digest: str
    body: bytes
    document: dict[str, Any]


@dataclass(frozen=True)
class TagPage:
    tags: list[str]
    next_cursor: str | None


@dataclass(frozen=True)
class TagInfo:
    tag: str
    digest: str | None
    last_pushed: datetime | None = None


@dataclass
class ResolvedImage:
    repository: str
    reference: str
    digest: str
    media_type: str
    manifest: dict[str, Any]
    config: dict[str, Any]
    layers: list[Descriptor]
    config_descriptor: Descriptor | None = None
    index_digest: str | None = None
    index_media_type: str | None = None
    platform: Platform | None = None
    platforms: list[Platform] = field(default_factory=list)

    @property
    def total_size(self) -> int:
        return sum(layer.size for layer in self.layers)

    @property
    def state_identifier(self) -> str:
        """Changes exactly when what the reference names changes: the index when there is one."""
        return self.index_digest or self.digest
