"""The agent's HTTP contract: every request and response body, and the OpenAPI document made from them.

This module is the only place a body shape is defined; the functions build their responses from
these models and ``docs/openapi.json`` is generated from them (``python -m shared.api``), so the
document cannot drift from the code (a test compares the two). Field names on the wire are
camelCase, as the broker's other JSON is; Python attributes are snake_case.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, SecretStr
from pydantic.alias_generators import to_camel
from pydantic.json_schema import models_json_schema

# Version of this contract (not of the package): bump when a body changes shape.
API_VERSION = "0.1.0"

OPENAPI_PATH = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, hide_input_in_errors=True)


# --- errors -------------------------------------------------------------------------------------


class ErrorDetail(ApiModel):
    code: str = Field(description="Stable machine-readable code, e.g. `UNAUTHORIZED`, `NOT_FOUND`.")
    message: str = Field(description="Human-readable explanation; never contains a credential.")


class ErrorBody(ApiModel):
    """Every non-2xx answer of every route."""

    error: ErrorDetail


# --- health and credentials ---------------------------------------------------------------------


class Healthcheck(ApiModel):
    ok: Literal[True] = True
    service: str = "registry-agent"
    version: str


class CredentialsCheck(ApiModel):
    """Answer of /systemcheck and /validate-credentials: the registry accepted the credentials."""

    ok: Literal[True] = True
    type: str = Field(description="Registry type from the credentials, e.g. `harbor-cr`.")
    registry: str | None = Field(None, description="Registry host the credentials were checked against.")


# --- listing ------------------------------------------------------------------------------------


class RepositoryList(RootModel[list[str]]):
    """Repository names (`/v2/_catalog`); empty when `SNYK_DISABLE_LIST_REPOS` is set."""


class TagList(RootModel[list[str]]):
    """Every tag of one repository."""


class TagPageQuery(ApiModel):
    model_config = ConfigDict(extra="ignore")

    n: int = Field(1000, ge=1, le=10000, description="Page size.")
    cursor: str | None = Field(None, min_length=1, description="Opaque `next` value of the previous page.")


class TagPage(ApiModel):
    tags: list[str]
    next: str | None = Field(description="Cursor of the following page; null on the last page.")


class TagWithMetadata(ApiModel):
    tag: str
    digest: str | None = Field(description="Manifest digest the tag points to.")
    last_pushed: datetime | None = Field(description="When the tag was last pushed, if the registry says.")


class TagsWithMetadata(RootModel[list[TagWithMetadata]]):
    """Every tag of one repository with its digest and push time."""


# --- describing an image ------------------------------------------------------------------------


class ImageMetadataQuery(ApiModel):
    model_config = ConfigDict(extra="ignore")

    reference: str | None = Field(
        None,
        min_length=1,
        description="Tag or digest; alternatively `:tag` / `@digest` in the path. Default `latest`.",
    )
    platform: str | None = Field(None, min_length=3, description="`os/arch[/variant]` to pick from an index.")


class StateIdentifierQuery(ApiModel):
    model_config = ConfigDict(extra="ignore")

    image: str = Field(min_length=1, description="`repository[:tag]` or `repository@digest`.")


class Layer(ApiModel):
    media_type: str
    digest: str
    size: int


class HistoryEntry(ApiModel):
    created: str | None = None
    created_by: str | None = Field(None, description="Build step; `ENV` values and build arguments masked.")
    empty_layer: bool = False
    comment: str | None = None


class ImageConfig(ApiModel):
    """The parts of the image config a caller needs; environment *values* are never exposed."""

    created: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    env_names: list[str] = Field(default_factory=list, description="Names of the `Env` entries, no values.")
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    history: list[HistoryEntry] = Field(default_factory=list)


class ImageMetadata(ApiModel):
    repository: str
    reference: str = Field(description="The tag or digest that was asked for.")
    digest: str = Field(description="Digest of the platform manifest.")
    index_digest: str | None = Field(description="Digest of the index the platform was picked from.")
    media_type: str = Field(description="Media type of the platform manifest.")
    platform: str | None = Field(description="`os/arch[/variant]` of this manifest, when known.")
    platforms: list[str] = Field(description="Every platform of the index; empty for a single manifest.")
    config: ImageConfig
    layers: list[Layer]
    total_size: int = Field(description="Sum of the compressed layer sizes, in bytes.")


class StateIdentifier(ApiModel):
    state_identifier: str = Field(description="Digest the reference points to; changes when the image does.")


# --- scans --------------------------------------------------------------------------------------

ScanState = Literal["queued", "running", "done", "failed"]

# Keys the broker itself adds to a body (variable substitution, §4.4); not part of Snyk's context.
_BROKER_KEYS = frozenset({"BROKER_VAR_SUB"})


class ScanRequest(ApiModel):
    """Body of POST /scan (v2) and POST /discover (v1).

    Fields beyond the declared ones are Snyk's own identifiers: kept as opaque context and echoed in
    every callback (broker-protocol.md §6).
    """

    model_config = ConfigDict(extra="allow")

    image: str = Field(min_length=1, description="`repository[:tag]` or `repository@digest`.")
    platform: str | None = Field(None, min_length=3, description="`os/arch[/variant]` to scan from an index.")
    # Excluded from dumps and repr: a secret must not travel with the opaque context or into a log.
    credentials: SecretStr | dict[str, Any] | None = Field(
        None, exclude=True, repr=False, description="Base64 `CR_CREDENTIALS` (or the decoded object)."
    )
    callback_url: str | None = Field(
        None, description="Where results go; must lie under the agent's `BROKER_CLIENT_URL`."
    )

    @property
    def context(self) -> dict[str, Any]:
        return {k: v for k, v in (self.model_extra or {}).items() if k not in _BROKER_KEYS}


class ScanAccepted(ApiModel):
    scan_id: str


class ScanStatusQuery(ApiModel):
    format: Literal["snyk", "cyclonedx", "spdx"] = Field(
        "snyk",
        description="`snyk`: the result as the callbacks carry it (`image`, `scanResults`); "
        "`cyclonedx` (1.6 JSON) or `spdx` (2.3 JSON): the SBOM of the same inventory.",
    )


class ScanStatus(ApiModel):
    scan_id: str
    status: ScanState
    result: dict[str, Any] | None = None
    error: ErrorDetail | None = None


# --- callbacks (agent -> broker client) ---------------------------------------------------------


class CallbackPayload(ApiModel):
    """Common part of every callback; Snyk's opaque context from the scan request is merged in."""

    model_config = ConfigDict(extra="allow")

    callback_id: str = Field(description="Stable per scan and callback kind: a receiver can drop repeats.")
    scan_id: str
    status: Literal["done", "failed"]


class ScanResultCallback(CallbackPayload):
    """POST /api/v2/import/result (or /v2/import/result, /rest/scan/result)."""

    image: str
    result: dict[str, Any] | None = None
    error: ErrorDetail | None = None


class ScanDoneCallback(CallbackPayload):
    """POST /api/v2/import/done (or /v2/import/done), after every result."""


class DiscoverCallback(CallbackPayload):
    """POST /api/v1/recurring-tests/dependencies (or /v1/..., /v1/import/app)."""

    image: str
    result: dict[str, Any] | None = None
    error: ErrorDetail | None = None


class CallbackRequest(ApiModel):
    """Body of POST /callback: deliver one finished scan to the broker client."""

    scan_id: str = Field(min_length=1)
    api: Literal["v1", "v2"] = Field(description="`v2` for /scan, `v1` for /discover.")
    image: str
    status: Literal["done", "failed"]
    result: dict[str, Any] | None = None
    error: ErrorDetail | None = None
    callback_url: str | None = None
    context: dict[str, Any] = Field(default_factory=dict, description="Opaque fields echoed in the payloads.")


class CallbackDelivered(ApiModel):
    delivered: list[str] = Field(description="`callbackId` of each acknowledged payload, in order.")


# --- the route table ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """One route: what it takes, what it answers, which function serves it."""

    method: str
    path: str  # OpenAPI template; a {param} of the repository may span several segments
    function: str
    summary: str
    response: type[BaseModel]
    status: int = 200
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    credentials: bool = True
    errors: tuple[int, ...] = (400, 401, 403, 404, 502, 504)


_REGISTRY_ERRORS = (400, 401, 403, 404, 429, 502, 504)

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "GET",
        "/healthcheck",
        "describe",
        "Liveness; no registry call, ignores credentials.",
        Healthcheck,
        credentials=False,
        errors=(),
    ),
    Operation(
        "GET",
        "/systemcheck",
        "describe",
        "Check the credentials against the registry (broker).",
        CredentialsCheck,
        errors=(400, 401, 403, 502, 504),
    ),
    Operation(
        "GET",
        "/validate-credentials",
        "describe",
        "Check the credentials against the registry.",
        CredentialsCheck,
        errors=(400, 401, 403, 502, 504),
    ),
    Operation("GET", "/list", "list_images", "List repositories.", RepositoryList, errors=_REGISTRY_ERRORS),
    Operation(
        "GET",
        "/list/{repository}",
        "list_images",
        "List the tags of a repository.",
        TagList,
        errors=_REGISTRY_ERRORS,
    ),
    Operation(
        "GET",
        "/list-paginated/{repository}",
        "list_images",
        "List tags one page at a time.",
        TagPage,
        query=TagPageQuery,
        errors=(*_REGISTRY_ERRORS, 422),
    ),
    Operation(
        "GET",
        "/list-with-metadata/{repository}",
        "list_images",
        "List tags with digest, push time.",
        TagsWithMetadata,
        errors=_REGISTRY_ERRORS,
    ),
    Operation(
        "GET",
        "/image-metadata/{image}",
        "describe",
        "Describe one image (manifest, config, layers).",
        ImageMetadata,
        query=ImageMetadataQuery,
        errors=(*_REGISTRY_ERRORS, 422),
    ),
    Operation(
        "GET",
        "/get-state-identifier",
        "describe",
        "Digest the image reference currently points to.",
        StateIdentifier,
        query=StateIdentifierQuery,
        errors=(*_REGISTRY_ERRORS, 422),
    ),
    Operation(
        "POST",
        "/scan",
        "scan",
        "Accept a scan (v2); results are posted to the callback URL.",
        ScanAccepted,
        status=202,
        body=ScanRequest,
        errors=(400, 401, 413, 422, 429, 503),
    ),
    Operation(
        "POST",
        "/discover",
        "scan",
        "Accept a scan (v1); the result is posted to the callback URL.",
        ScanAccepted,
        status=202,
        body=ScanRequest,
        errors=(400, 401, 413, 422, 429, 503),
    ),
    Operation(
        "GET",
        "/scan/{scanId}",
        "scan",
        "State of an accepted scan (local dispatch only); the result in the chosen format.",
        ScanStatus,
        query=ScanStatusQuery,
        credentials=False,
        errors=(401, 404, 422, 501),
    ),
    Operation(
        "POST",
        "/callback",
        "callback",
        "Deliver a finished scan to the broker client (internal).",
        CallbackDelivered,
        body=CallbackRequest,
        credentials=False,
        errors=(400, 401, 413, 422, 502),
    ),
)

# Outgoing requests, documented as OpenAPI 3.1 webhooks: (name, path under BROKER_CLIENT_URL, payload).
CALLBACKS: tuple[tuple[str, str, type[BaseModel]], ...] = (
    ("importResult", "/api/v2/import/result", ScanResultCallback),
    ("importDone", "/api/v2/import/done", ScanDoneCallback),
    ("recurringTestsDependencies", "/api/v1/recurring-tests/dependencies", DiscoverCallback),
)

_PATH_PARAMETERS = {
    "repository": "Repository name as raw path segments, e.g. `library/nginx` (may contain `/`).",
    "image": "`repository`, `repository:tag` or `repository@digest` as raw path segments.",
    "scanId": "The `scanId` returned by POST /scan or /discover.",
}

_STATUS_TEXT = {
    200: "OK",
    202: "Accepted",
    400: "Bad request or missing/malformed credentials",
    401: "The registry refused the credentials, or the agent's API key (`AGENT_API_KEY`) is missing "
    "or wrong (`API_KEY_INVALID`)",
    403: "The registry denied access",
    404: "Not found",
    413: "The request body is larger than the agent accepts",
    422: "A field failed validation (names only, never the input)",
    429: "The registry is rate-limiting, or the scan queue is full (`QUEUE_FULL`, with `Retry-After`)",
    501: "Not supported in this deployment",
    502: "The registry or callback target failed or is unreachable",
    503: "The scan could not be queued",
    504: "The registry timed out",
}


# --- OpenAPI generation -------------------------------------------------------------------------


_SchemaMode = Literal["validation", "serialization"]
# Keyed by (model, mode); pydantic types the model as "BaseModel or dataclass".
_SchemaRefs = dict[Any, dict[str, Any]]


def _schemas() -> tuple[_SchemaRefs, dict[str, Any]]:
    models: list[tuple[type[BaseModel], _SchemaMode]] = [(ErrorBody, "serialization")]
    for op in OPERATIONS:
        models.append((op.response, "serialization"))
        if op.body is not None:
            models.append((op.body, "validation"))
    models += [(payload, "serialization") for _, _, payload in CALLBACKS]
    unique = list(dict.fromkeys(models))
    refs, top = models_json_schema(unique, ref_template="#/components/schemas/{model}")
    return dict(refs), top.get("$defs", {})


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(by_alias=True)
    required = set(schema.get("required", []))
    return [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "description": prop.pop("description", ""),
            "schema": prop,
        }
        for name, prop in schema["properties"].items()
    ]


def _operation(op: Operation, refs: _SchemaRefs) -> dict[str, Any]:
    def content(model: type[BaseModel], mode: str) -> dict[str, Any]:
        return {"application/json": {"schema": refs[(model, mode)]}}

    error = {"$ref": "#/components/responses/Error"}
    doc: dict[str, Any] = {
        "operationId": f"{op.method.lower()}{re.sub(r'[^A-Za-z0-9]+', '_', op.path).rstrip('_')}",
        "summary": op.summary,
        "x-function": op.function,
        "parameters": [
            {
                "name": name,
                "in": "path",
                "required": True,
                "description": _PATH_PARAMETERS[name],
                "schema": {"type": "string"},
            }
            for name in re.findall(r"\{(\w+)\}", op.path)
        ]
        + (_query_parameters(op.query) if op.query else []),
        "responses": {
            str(op.status): {
                "description": _STATUS_TEXT[op.status],
                "content": content(op.response, "serialization"),
            },
            **{str(status): error for status in op.errors},
            "500": error,
        },
    }
    if op.body is not None:
        doc["requestBody"] = {"required": True, "content": content(op.body, "validation")}
    # Credentials are optional on the wire: the agent falls back to its own CR_CREDENTIALS.
    doc["security"] = [{"crAuthorization": []}, {"crCredentialsHeader": []}, {}] if op.credentials else []
    return doc


def build_openapi() -> dict[str, Any]:
    refs, schemas = _schemas()
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs)
    webhooks = {
        name: {
            "post": {
                "summary": f"POST ${{BROKER_CLIENT_URL}}{path}",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": refs[(payload, "serialization")]}},
                },
                "responses": {"200": {"description": "Acknowledged; the callback is not sent again."}},
            }
        }
        for name, path, payload in CALLBACKS
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "registry-agent",
            "version": API_VERSION,
            "description": "Container registry agent for the Snyk broker. Generated from shared/api.py; "
            "do not edit by hand (python -m shared.api).",
        },
        "paths": paths,
        "webhooks": webhooks,
        "components": {
            "schemas": schemas,
            "responses": {
                "Error": {
                    "description": "Error; the status tells the kind",
                    "content": {"application/json": {"schema": refs[(ErrorBody, "serialization")]}},
                }
            },
            "securitySchemes": {
                "crAuthorization": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "Base64 CR_CREDENTIALS, raw or after one scheme word.",
                },
                "crCredentialsHeader": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-CR-Credentials",
                    "description": "Base64 CR_CREDENTIALS.",
                },
            },
        },
    }


def render_openapi() -> str:
    return json.dumps(build_openapi(), indent=2, ensure_ascii=False) + "\n"


def write_openapi(path: Path = OPENAPI_PATH) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_openapi(), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    print(write_openapi(Path(args[0]) if args else OPENAPI_PATH))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
