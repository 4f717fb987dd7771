"""One source of truth, checked: api.py, docs/openapi.json, functions.json, the code, the broker rules."""

from __future__ import annotations

import importlib
import re

import functions_framework._function_registry as registry
import pytest

import main
from functions.manifest import load_manifest
from shared.api import OPENAPI_PATH, OPERATIONS, build_openapi, render_openapi

# The broker's "private" accept rules for the container registry agent (broker-protocol.md §3.1,
# container-registry-agent.accept.json): every one of them must reach a function.
BROKER_PRIVATE_RULES = [
    ("GET", "/healthcheck"),
    ("GET", "/validate-credentials"),
    ("GET", "/get-state-identifier"),
    ("GET", "/list"),
    ("GET", "/list/*"),
    ("GET", "/list-paginated/*"),
    ("GET", "/list-with-metadata/*"),
    ("POST", "/discover"),
    ("POST", "/scan"),
    ("GET", "/image-metadata/*"),
]


def _glob(path: str) -> str:
    """OpenAPI "{param}" and werkzeug "<conv:param>" both become the broker's "*"."""
    return re.sub(r"\{[^}]+\}|<[^>]+>", "*", path)


def test_openapi_document_is_current() -> None:
    assert OPENAPI_PATH.read_text(encoding="utf-8") == render_openapi(), (
        "docs/openapi.json is stale: run `python -m shared.api`"
    )


def test_openapi_document_is_well_formed() -> None:
    document = build_openapi()
    assert document["openapi"].startswith("3.1")
    schemas = document["components"]["schemas"]
    refs = re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', render_openapi())
    assert refs and all(ref in schemas for ref in refs)
    for path, item in document["paths"].items():
        for operation in item.values():
            names = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert names == set(re.findall(r"\{(\w+)\}", path))


def test_manifest_matches_the_api_operations() -> None:
    manifest = {
        (route.method, route.pattern, spec.entry_point) for route, spec in load_manifest().route_table()
    }
    documented = {(op.method, _glob(op.path), op.function) for op in OPERATIONS}
    assert manifest == documented


@pytest.mark.parametrize("spec", load_manifest().http_functions, ids=lambda spec: spec.entry_point)
def test_each_function_serves_exactly_its_manifest_routes(spec: object) -> None:
    module = importlib.import_module(spec.module)  # type: ignore[attr-defined]
    served = {(method, _glob(rule)) for method, rule in module.routes.rules}
    assert served == {(route.method, route.pattern) for route in spec.routes}  # type: ignore[attr-defined]


def test_main_re_exports_every_entry_point_with_its_signature_type() -> None:
    manifest = load_manifest()
    assert sorted(main.__all__) == sorted(spec.entry_point for spec in manifest.functions)
    for spec in manifest.functions:
        entry = getattr(main, spec.entry_point)
        assert entry is getattr(importlib.import_module(spec.module), spec.entry_point)
        assert registry.REGISTRY_MAP[spec.entry_point] == spec.signature_type


@pytest.mark.parametrize(("method", "rule"), BROKER_PRIVATE_RULES)
def test_every_broker_route_reaches_a_function(method: str, rule: str) -> None:
    path = rule.replace("*", "some/repo")
    matches = [
        spec.entry_point
        for route, spec in load_manifest().route_table()
        if route.method == method and route.matches(path)
    ]
    assert matches, f"{method} {rule} reaches no function"
