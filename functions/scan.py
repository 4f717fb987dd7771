"""Function ``scan``: accept a scan (POST /scan v2, POST /discover v1) and report its state.

Accepting checks everything that can be checked without the registry - body, credentials, image
reference (and that it names no other registry than the credentials'), platform, callback target -
so a bad request fails now with 400/422 instead of later in a callback; then the job is dispatched
(``SCAN_DISPATCH``) and 202 ``{"scanId"}`` returns at once, or 429 when the local queue is full.
"""

from __future__ import annotations

import uuid
from typing import Any

import flask
import functions_framework

from functions import _registry
from functions._callbacks import api_of, callback_result, callback_targets
from functions._http import (
    Routes,
    json_response,
    parse_model,
    parse_query,
    read_json_object,
    request_credentials,
)
from functions.scan_work import INVENTORY_KEY
from shared.api import ErrorDetail, ScanAccepted, ScanRequest, ScanStatus, ScanStatusQuery
from shared.errors import NotFound
from shared.jobs import JobKind, NewJob, dispatcher_for
from shared.logs import current_request_id
from shared.scan.pipeline import ScanOutcome
from shared.settings import get_settings

routes = Routes()


# Injection point: tests (or another deployment) may hand scans to a different backend.
dispatcher_factory = dispatcher_for


def _accept(request: flask.Request, kind: JobKind) -> flask.Response:
    body = read_json_object(request)
    scan = parse_model(ScanRequest, body)
    credentials = request_credentials(request, body)
    _registry.image_for(scan.image, credentials.credentials)
    _registry.parse_platform(scan.platform)
    settings = get_settings()
    callback_targets(api_of(kind), scan.callback_url, settings)
    job = NewJob(
        id=str(uuid.uuid4()),
        kind=kind,
        request=scan.model_dump(by_alias=True, mode="json"),
        # The agent's own CR_CREDENTIALS are not copied into the queue: the worker reads them itself.
        credentials=credentials.encoded if credentials.from_request else None,
        # The broker's request id follows the scan into its worker's log lines and its callbacks.
        request_id=current_request_id(),
    )
    dispatcher_factory(settings).dispatch(job)
    return json_response(ScanAccepted(scan_id=job.id), 202, {"Location": f"/scan/{job.id}"})


@routes.post("/scan")
def _scan_v2(request: flask.Request) -> flask.Response:
    return _accept(request, "scan")


@routes.post("/discover")
def _discover_v1(request: flask.Request) -> flask.Response:
    return _accept(request, "discover")


@routes.get("/scan/<scan_id>")
def _status(request: flask.Request, scan_id: str) -> ScanStatus:
    output_format = parse_query(ScanStatusQuery, request).format
    job = dispatcher_factory(get_settings()).status(scan_id)
    return ScanStatus(
        scan_id=job.id,
        status=job.status,  # the table's CHECK constraint allows the same four values
        result=result_in(job.result, output_format),
        error=ErrorDetail(**job.error) if job.error else None,
    )


def result_in(result: dict[str, Any] | None, output_format: str) -> dict[str, Any] | None:
    """``snyk`` is the result as the callbacks carry it; an SBOM format is rendered from the stored
    inventory now, so scans that nobody asks an SBOM of do not pay for one."""
    if result is None or output_format == "snyk":
        return callback_result(result)
    stored = result.get(INVENTORY_KEY)
    if stored is None:
        raise NotFound(f"scan of {result.get('image', {}).get('name', '')} kept no inventory")
    rendered = ScanOutcome.from_json(stored).render(output_format)
    return rendered if isinstance(rendered, dict) else {"text": rendered}


@functions_framework.http
def scan(request: flask.Request) -> flask.Response:
    return routes.handle(request)
