"""The work of one scan: ``run_scan(job) -> result``, pluggable into the worker pool and ``scan_event``.

For now a scan resolves the image and reports its metadata; the scan engine will replace the body
and keep the contract (raise ``AgentError`` on failure, return a JSON-able dict on success). Every
error leaving here has the job's secrets scrubbed from its message.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from functions import _registry
from shared.image_metadata import image_metadata
from shared.api import ScanRequest
from shared.credentials import parse_credentials
from shared.errors import AgentError, CredentialsError, ImageTooLarge
from shared.jobs import ScanJob
from shared.redact import scrub
from shared.settings import get_settings

log = logging.getLogger(__name__)


def job_credentials(encoded: str | None) -> _registry.Credentials:
    """The job's own credentials, else the agent's CR_CREDENTIALS."""
    if encoded:
        return parse_credentials(encoded)
    fallback = get_settings().cr_credentials
    if fallback is None or not fallback.get_secret_value().strip():
        raise CredentialsError("the scan brought no registry credentials and CR_CREDENTIALS is not set")
    return parse_credentials(fallback.get_secret_value())


def _scan(job: ScanJob, credentials: _registry.Credentials) -> dict[str, Any]:
    request = ScanRequest.model_validate(job.request)
    ref = _registry.parse_image(request.image)
    platform = _registry.parse_platform(request.platform)
    with _registry.open_client(credentials) as client:
        image = client.resolve(ref.repository, ref.reference, platform)
    limit = get_settings().snyk_max_image_size_in_bytes
    if image.total_size > limit:
        raise ImageTooLarge(
            f"the image is {image.total_size} bytes, over SNYK_MAX_IMAGE_SIZE_IN_BYTES ({limit})"
        )
    return {"image": image_metadata(image).model_dump(by_alias=True, mode="json")}


def run_scan(job: ScanJob) -> dict[str, Any]:
    secrets: tuple[str, ...] = (job.credentials or "",)
    try:
        credentials = job_credentials(job.credentials)
        secrets += credentials.secrets
        return _scan(job, credentials)
    except AgentError as error:
        error.message = scrub(error.message, secrets)
        raise
    except Exception as error:  # noqa: BLE001 - reported as a failed scan, logged without secrets
        text = scrub("".join(traceback.format_exception(error)), secrets)
        log.error("scan %s: unexpected error\n%s", job.id, text)
        raise AgentError("the scan failed unexpectedly; the agent's log has the details") from None
