"""Function ``describe``: health, credential checks and facts about one image.

``/healthcheck`` makes no registry call and ignores any ``Authorization`` header (Helm points the
broker's validation URL at it). ``/systemcheck`` and ``/validate-credentials`` make a real registry
call, so their status tells the broker whether the credentials work (broker-protocol.md §5).
"""

from __future__ import annotations

import functools
from importlib import metadata

import flask
import functions_framework

from functions import _registry
from functions._http import Routes, parse_query, request_credentials
from shared.api import (
    CredentialsCheck,
    Healthcheck,
    ImageMetadata,
    ImageMetadataQuery,
    StateIdentifier,
    StateIdentifierQuery,
)
from shared.credentials import UserPassCredentials
from shared.errors import BadRequest
from shared.image_metadata import image_metadata

routes = Routes()


@functools.cache
def _version() -> str:
    try:
        return metadata.version("registry-agent")
    except metadata.PackageNotFoundError:
        return "unknown"


@routes.get("/healthcheck", public=True)
def _healthcheck(request: flask.Request) -> Healthcheck:
    return Healthcheck(version=_version())


@routes.get("/systemcheck")
@routes.get("/validate-credentials")
def _check_credentials(request: flask.Request) -> CredentialsCheck:
    credentials = request_credentials(request).credentials
    with _registry.open_client(credentials) as client:
        client.ping()
    registry = credentials.host if isinstance(credentials, UserPassCredentials) else credentials.registry_base
    return CredentialsCheck(type=credentials.type, registry=registry)


def _path_image(path_image: str, reference: str | None) -> _registry.ImageRef:
    """``repo``, ``repo:tag`` or ``repo@digest`` from the path, or ``repo`` plus ``?reference=``."""
    text = path_image.strip("/")
    names_reference = "@" in text or ":" in text.rsplit("/", 1)[-1]
    if reference:
        if names_reference:
            raise BadRequest("give the tag or digest in the path or as ?reference=, not both")
        text = f"{text}@{reference}" if ":" in reference else f"{text}:{reference}"
    elif not names_reference:
        text = f"{text}:latest"
    return _registry.parse_image(text)


@routes.get("/image-metadata/<path:image>")
def _image_metadata(request: flask.Request, image: str) -> ImageMetadata:
    query = parse_query(ImageMetadataQuery, request)
    ref = _path_image(image, query.reference)
    platform = _registry.parse_platform(query.platform)
    credentials = request_credentials(request).credentials
    _registry.check_registry(ref, credentials)
    with _registry.open_client(credentials) as client:
        resolved = client.resolve(ref.repository, ref.reference, platform)
    return image_metadata(resolved)


@routes.get("/get-state-identifier")
def _state_identifier(request: flask.Request) -> StateIdentifier:
    ref = _registry.parse_image(parse_query(StateIdentifierQuery, request).image)
    credentials = request_credentials(request).credentials
    _registry.check_registry(ref, credentials)
    with _registry.open_client(credentials) as client:
        return StateIdentifier(state_identifier=client.head_digest(ref.repository, ref.reference))


@functions_framework.http
def describe(request: flask.Request) -> flask.Response:
    return routes.handle(request)
