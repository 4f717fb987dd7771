"""Turning a scan's inventory into what leaves the agent: Snyk's scan result, SBOMs, or a table.

``render(inventory, image, format)`` is the only entry point the rest of the agent needs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args, overload

from shared.scan.model import Inventory
from shared.scan.output.image_info import ImageInfo

Format = Literal["snyk", "cyclonedx", "spdx", "table"]
FORMATS: tuple[str, ...] = get_args(Format)

__all__ = ["FORMATS", "Format", "ImageInfo", "render"]


@overload
def render(
    inventory: Inventory,
    image: ImageInfo,
    format: Literal["table"],
    *,
    now: datetime | None = ...,
    include_env_values: bool = ...,
) -> str: ...


@overload
def render(
    inventory: Inventory,
    image: ImageInfo,
    format: Literal["snyk", "cyclonedx", "spdx"],
    *,
    now: datetime | None = ...,
    include_env_values: bool = ...,
) -> dict[str, Any]: ...


@overload
def render(
    inventory: Inventory,
    image: ImageInfo,
    format: str,
    *,
    now: datetime | None = ...,
    include_env_values: bool = ...,
) -> dict[str, Any] | str: ...


def render(
    inventory: Inventory,
    image: ImageInfo,
    format: str,
    *,
    now: datetime | None = None,
    include_env_values: bool = False,
) -> dict[str, Any] | str:
    """The inventory in ``format``: a JSON-ready dict, or text for ``"table"``.

    ``now`` stamps the SBOMs' creation time (default: the current time). ``include_env_values`` sends
    image environment values to Snyk, which by default gets the variable names only.
    """
    # Imported on use: the CycloneDX library alone adds a tenth of a second to a cold start, and a
    # scan worker answering Snyk never needs it.
    if format == "snyk":
        from shared.scan.output.snyk import render_snyk

        return render_snyk(inventory, image, include_env_values=include_env_values)
    if format == "cyclonedx":
        from shared.scan.output.cyclonedx import render_cyclonedx

        return render_cyclonedx(inventory, image, now=now)
    if format == "spdx":
        from shared.scan.output.spdx import render_spdx

        return render_spdx(inventory, image, now=now)
    if format == "table":
        from shared.scan.output.table import render_table

        return render_table(inventory, image)
    raise ValueError(f"unknown output format {format!r}; expected one of {', '.join(FORMATS)}")
