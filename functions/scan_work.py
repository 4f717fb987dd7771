"""The work of one scan: ``run_scan(job) -> result``, pluggable into the worker pool and ``scan_event``.

The result is what the callbacks carry: the image's identity and the Snyk-shaped ``scanResults``;
the inventory rides along under ``inventory`` for ``GET /scan/<id>?format=`` and is not sent back
through the broker. Failure is an ``AgentError`` whose message has the job's secrets scrubbed out.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from functions import _registry
from shared.api import ScanRequest
from shared.credentials import UserPassCredentials, parse_credentials
from shared.errors import AgentError, CredentialsError, InvalidReference
from shared.image.factory import is_local
from shared.jobs import ScanJob
from shared.logs import add_secrets, current_request_id, log_context
from shared.redact import scrub
from shared.scan.pipeline import ScanOutcome, scan_image
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


INVENTORY_KEY = "inventory"


def scan_result(outcome: ScanOutcome) -> dict[str, Any]:
    image = outcome.image
    return {
        "image": {
            "name": image.name,
            "tag": image.tag,
            "digest": image.manifest_digest,
            "indexDigest": image.index_digest,
            "platform": image.platform,
        },
        **outcome.render("snyk"),  # type: ignore[dict-item]
        # The inventory itself, for GET /scan/<id>?format=: SBOMs are rendered when asked for (rendering
        # CycloneDX for every scan cost more than the scan of a cached image).
        INVENTORY_KEY: outcome.to_json(),
    }


def _scan(job: ScanJob, credentials: _registry.Credentials) -> dict[str, Any]:
    request = ScanRequest.model_validate(job.request)
    # Checked again here, not only when the scan was accepted: a job may come from Pub/Sub or from a
    # queue filled by an older agent. A scan reads only the registry, never a local path.
    if is_local(request.image):
        raise InvalidReference("a scan request names a registry image, not a local path")
    _registry.image_for(request.image, credentials)
    platform = _registry.parse_platform(request.platform)
    host = credentials.host if isinstance(credentials, UserPassCredentials) else None
    with _registry.open_client(credentials) as client:
        outcome = scan_image(
            request.image, get_settings(), client=client, registry_host=host, platform=platform
        )
    return scan_result(outcome)


def run_scan(job: ScanJob) -> dict[str, Any]:
    with log_context(current_request_id() or job.request_id, (job.credentials or "",)):
        return _run_scan(job)


def _run_scan(job: ScanJob) -> dict[str, Any]:
    secrets: tuple[str, ...] = (job.credentials or "",)
    try:
        credentials = job_credentials(job.credentials)
        secrets += credentials.secrets
        add_secrets(credentials.secrets)  # every line logged during the scan is masked too
        return _scan(job, credentials)
    except AgentError as error:
        error.message = scrub(error.message, secrets)
        raise
    except Exception as error:  # noqa: BLE001 - reported as a failed scan, logged without secrets
        text = scrub("".join(traceback.format_exception(error)), secrets)
        log.error("scan %s: unexpected error\n%s", job.id, text)
        raise AgentError("the scan failed unexpectedly; the agent's log has the details") from None
