"""How the SBOM formats name the program that wrote them."""

from __future__ import annotations

from importlib import metadata

TOOL_NAME = "registry-agent"


def tool_version() -> str:
    try:
        return metadata.version(TOOL_NAME)
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0"
