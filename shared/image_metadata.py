"""A resolved image as the API describes it (``shared.api.ImageMetadata``).

Environment values and build arguments routinely hold tokens, so they never leave: ``Env`` is
reduced to names, and ``ENV``/``ARG`` values and ``RUN |n K=V`` build arguments in the history are
masked. Everything else is passed through as the registry gave it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from shared.api import HistoryEntry, ImageConfig, ImageMetadata, Layer
from shared.registry import ResolvedImage

MASK = "***"

# "ENV A=1 B=2" / "ARG A=1" (BuildKit), "/bin/sh -c #(nop)  ENV A=1" (classic builder).
_ENV_STEP = re.compile(r"(?P<head>^|\s)(?P<kw>ENV|ARG)\s+(?P<rest>.*)$", re.DOTALL)
# "RUN |2 A=1 B=2 /bin/sh -c ...": the build arguments in effect for that step.
_BUILD_ARGS = re.compile(r"(?P<head>^(?:RUN\s+)?)\|(?P<count>\d+)\s+(?P<rest>.*)$", re.DOTALL)
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*=")
_KEY = re.compile(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_.-]*)=")


def _mask_env_step(match: re.Match[str]) -> str:
    rest = match["rest"].strip()
    keys = _KEY.findall(rest)
    if keys:
        masked = " ".join(f"{key}={MASK}" for key in keys)
    else:  # legacy "ENV KEY value" form, or a bare "ARG NAME" (no value to hide)
        name, _, value = rest.partition(" ")
        masked = f"{name} {MASK}" if value.strip() else name
    return f"{match['head']}{match['kw']} {masked}"


def _mask_build_args(match: re.Match[str]) -> str:
    remaining = int(match["count"])
    tokens = match["rest"].split(" ")
    kept: list[str] = []
    index = 0
    # Each of the first <count> assignments may have a value containing spaces: skip up to the next one.
    while index < len(tokens) and remaining:
        if _ASSIGNMENT.match(tokens[index]):
            kept.append(tokens[index].split("=", 1)[0] + "=" + MASK)
            remaining -= 1
        index += 1
        while index < len(tokens) and remaining and not _ASSIGNMENT.match(tokens[index]):
            index += 1
    return f"{match['head']}|{match['count']} {' '.join([*kept, *tokens[index:]])}"


def mask_build_step(created_by: str) -> str:
    """A history ``created_by`` with environment values and build arguments masked."""
    text = _BUILD_ARGS.sub(_mask_build_args, created_by.strip(), count=1)
    return _ENV_STEP.sub(_mask_env_step, text, count=1)


def _strings(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    return [str(item) for item in value]


def image_config(blob: Mapping[str, Any]) -> ImageConfig:
    runtime = blob.get("config") or {}
    history = [
        HistoryEntry(
            created=entry.get("created"),
            created_by=mask_build_step(entry["created_by"]) if entry.get("created_by") else None,
            empty_layer=bool(entry.get("empty_layer", False)),
            comment=entry.get("comment"),
        )
        for entry in blob.get("history") or []
        if isinstance(entry, Mapping)
    ]
    return ImageConfig(
        created=blob.get("created"),
        labels={str(k): str(v) for k, v in (runtime.get("Labels") or {}).items()},
        env_names=[str(item).split("=", 1)[0] for item in runtime.get("Env") or []],
        entrypoint=_strings(runtime.get("Entrypoint")),
        cmd=_strings(runtime.get("Cmd")),
        history=history,
    )


def _platform_of(image: ResolvedImage) -> str | None:
    if image.platform is not None:
        return str(image.platform)
    os_name, arch = image.config.get("os"), image.config.get("architecture")
    if not (os_name and arch):
        return None
    variant = image.config.get("variant")
    return f"{os_name}/{arch}/{variant}" if variant else f"{os_name}/{arch}"


def image_metadata(image: ResolvedImage) -> ImageMetadata:
    return ImageMetadata(
        repository=image.repository,
        reference=image.reference,
        digest=image.digest,
        index_digest=image.index_digest,
        media_type=image.media_type,
        platform=_platform_of(image),
        platforms=[str(p) for p in image.platforms],
        config=image_config(image.config),
        layers=[Layer(media_type=d.media_type, digest=d.digest, size=d.size) for d in image.layers],
        total_size=image.total_size,
    )
