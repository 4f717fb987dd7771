"""``shared.scan.output.table``: the text table the CLI prints (name, version, type, source, layer)."""

from __future__ import annotations

from shared.scan.model import Inventory, OSRelease, Package
from shared.scan.output.image_info import ImageInfo
from shared.scan.output.table import render_table

LAYER = "sha256:" + "9f86d081884c7d65" + "0" * 48


def inventory() -> Inventory:
    return Inventory(
        os_release=OSRelease(id="debian", version_id="10", pretty_name="Debian GNU/Linux 10 (buster)"),
        os_packages=[
            Package(
                name="libaudit1",
                version="1:2.8.4-3",
                type="deb",
                source_name="audit",
                source_version="1:2.8.4-3",
                layer_digest=LAYER,
            ),
            Package(
                name="mawk", version="1.3.3-17+b3", type="deb", source_name="mawk", source_version="1.3.3-17"
            ),
        ],
        os_package_manager="deb",
        applications=[
            (
                "npm",
                "/app/package.json",
                [Package(name="core", namespace="@angular", version="17.0.0", type="npm")],
            )
        ],
        warnings=["layer sha256:abc skipped: foreign layer"],
    )


def test_table_lists_every_package_in_aligned_columns() -> None:
    text = render_table(
        inventory(),
        ImageInfo(name="127.0.0.1:5000/library/nginx", tag="1.17", manifest_digest="sha256:" + "e" * 64),
    )
    lines = text.splitlines()
    assert lines[:3] == [
        "image: 127.0.0.1:5000/library/nginx:1.17",
        "digest: sha256:" + "e" * 64,
        "os: Debian GNU/Linux 10 (buster)",
    ]
    header = lines.index("OS packages (deb): 2") + 1
    rows = lines[header : header + 3]
    assert rows[0].split() == ["NAME", "VERSION", "TYPE", "SOURCE", "LAYER"]
    assert rows[1].split() == ["libaudit1", "1:2.8.4-3", "deb", "audit", "sha256:9f86d081884c"]
    assert rows[2].split() == ["mawk", "1.3.3-17+b3", "deb", "mawk@1.3.3-17"]  # binNMU: source version shown
    # Columns line up: each header word starts where its values start.
    for word in ("VERSION", "TYPE", "SOURCE"):
        column = rows[0].index(word)
        assert all(row[column - 2 : column] == "  " and row[column] != " " for row in rows)
    assert "npm: /app/package.json: 1" in lines
    assert any(line.split()[:3] == ["@angular/core", "17.0.0", "npm"] for line in lines)
    assert lines[-2:] == ["warnings:", "  - layer sha256:abc skipped: foreign layer"]
    assert all(line == line.rstrip() for line in lines)


def test_empty_sections_have_no_header_row() -> None:
    empty = Inventory(
        os_release=OSRelease(id="scratch", version_id=""),
        os_packages=[],
        os_package_manager=None,
        applications=[],
    )
    text = render_table(empty, ImageInfo(name="r.example/x", tag="1"))
    assert text == "image: r.example/x:1\nos: scratch\n\nOS packages (none): 0\n"
