"""Platforms (os/architecture/variant) and choosing one from an index."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.errors import BadRequest

# Variants implied when none is given (OCI image-index spec, Docker's normalisation).
_DEFAULT_VARIANT = {"arm64": "v8", "arm": "v7"}
_ARCH_ALIASES = {"aarch64": "arm64", "x86_64": "amd64", "x86-64": "amd64"}


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.strip().lower().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise BadRequest("platform must be os/architecture[/variant], e.g. linux/arm64/v8")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    @classmethod
    def from_descriptor(cls, platform: dict[str, Any]) -> Platform:
        return cls(
            str(platform.get("os", "")).lower(),
            str(platform.get("architecture", "")).lower(),
            str(platform["variant"]).lower() if platform.get("variant") else None,
        )

    def normalized(self) -> Platform:
        arch = _ARCH_ALIASES.get(self.architecture, self.architecture)
        return Platform(self.os, arch, self.variant or _DEFAULT_VARIANT.get(arch))

    def matches(self, other: Platform) -> bool:
        return self.normalized() == other.normalized()

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


DEFAULT_PLATFORM = Platform("linux", "amd64")


def is_attestation(entry: dict[str, Any]) -> bool:
    """BuildKit stores provenance as index entries with platform unknown/unknown."""
    annotations = entry.get("annotations") or {}
    platform = entry.get("platform") or {}
    return annotations.get("vnd.docker.reference.type") == "attestation-manifest" or (
        platform.get("os") == "unknown" and platform.get("architecture") == "unknown"
    )


def index_platforms(index: dict[str, Any]) -> list[tuple[Platform, dict[str, Any]]]:
    return [
        (Platform.from_descriptor(entry.get("platform") or {}), entry)
        for entry in index.get("manifests") or []
        if isinstance(entry, dict) and not is_attestation(entry)
    ]
