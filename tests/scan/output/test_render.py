"""``shared.scan.output.render``: the one entry point, dispatching on the format name."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from shared.scan.model import Inventory, OSRelease, Package
from shared.scan.output import FORMATS, ImageInfo, render

INVENTORY = Inventory(
    os_release=OSRelease(id="alpine", version_id="3.19.1"),
    os_packages=[Package(name="musl", version="1.2.4-r2", type="apk", source_name="musl")],
    os_package_manager="apk",
    applications=[],
)
IMAGE = ImageInfo(name="r.example/app", tag="1", manifest_digest="sha256:" + "a" * 64)
NOW = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_formats() -> None:
    assert FORMATS == ("snyk", "cyclonedx", "spdx", "table")


def test_each_format_has_its_own_shape() -> None:
    snyk = render(INVENTORY, IMAGE, "snyk")
    assert snyk["scanResults"][0]["identity"]["type"] == "apk"
    cyclonedx = render(INVENTORY, IMAGE, "cyclonedx", now=NOW)
    assert (cyclonedx["bomFormat"], cyclonedx["metadata"]["timestamp"]) == (
        "CycloneDX",
        "2024-01-02T03:04:05+00:00",
    )
    spdx = render(INVENTORY, IMAGE, "spdx", now=NOW)
    assert (spdx["spdxVersion"], spdx["creationInfo"]["created"]) == ("SPDX-2.3", "2024-01-02T03:04:05Z")
    table = render(INVENTORY, IMAGE, "table")
    assert isinstance(table, str) and "musl" in table
    for document in (snyk, cyclonedx, spdx):
        assert json.loads(json.dumps(document)) == document  # plain JSON values only


def test_env_option_reaches_the_snyk_result() -> None:
    image = ImageInfo(name="r.example/app", tag="1", config={"config": {"Env": ["A=b"]}})
    facts = {
        f["type"]: f["data"]
        for f in render(INVENTORY, image, "snyk", include_env_values=True)["scanResults"][0]["facts"]
    }
    assert facts["containerConfig"]["env"] == ["A=b"]


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown output format 'xml'"):
        render(INVENTORY, IMAGE, "xml")
