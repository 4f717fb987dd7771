"""The registry client: the OCI distribution API over one ``Transport``.

Everything here is the standard v2 API that every registry type shares; vendor modules override
listing and authentication only where a vendor differs.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from shared import errors
from shared.registry import digest as digests
from shared.registry import mediatypes as mt
from shared.registry.models import Descriptor, Manifest, ResolvedImage, TagInfo, TagPage
from shared.registry.paging import follow_pages, next_link
from shared.registry.platform import DEFAULT_PLATFORM, Platform, index_platforms
from shared.registry.reference import is_digest, validate_digest, validate_reference, validate_repository
from shared.registry.transport import Transport, discard

MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # distribution's own limit for a manifest
MAX_CONFIG_BYTES = 16 * 1024 * 1024
MAX_LIST_BYTES = 32 * 1024 * 1024
PAGE_SIZE = 1000  # the most ECR and CNCF distribution (catalog.maxentries) accept
CHUNK_SIZE = 1024 * 1024
METADATA_CONCURRENCY = 4


def _pull(repository: str) -> str:
    return f"repository:{repository}:pull"


CATALOG_SCOPE = "registry:catalog:*"


def read_limited(response: requests.Response, limit: int, what: str) -> bytes:
    """The whole body, refusing one larger than ``limit`` and reporting a cut-off one."""
    with response:
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise errors.ProtocolError(f"{what}: body of {declared} bytes exceeds the {limit}-byte limit")
        try:
            body = response.raw.read(limit + 1, decode_content=True)
        except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as failure:
            raise _stream_error(failure, what) from None
    if len(body) > limit:
        raise errors.ProtocolError(f"{what}: body exceeds the {limit}-byte limit")
    if (
        declared
        and declared.isdigit()
        and "Content-Encoding" not in response.headers
        and len(body) != int(declared)
    ):
        raise errors.ProtocolError(f"{what}: truncated after {len(body)} of {declared} bytes")
    return body


def parse_json(body: bytes, what: str, sender: str = "registry") -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise errors.ProtocolError(f"{what}: {sender} sent malformed JSON") from None
    if not isinstance(document, dict):
        raise errors.ProtocolError(f"{what}: {sender} sent JSON that is not an object")
    return document


def _stream_error(failure: Exception, what: str) -> errors.RegistryError:
    if isinstance(failure, urllib3.exceptions.ReadTimeoutError | requests.Timeout):
        return errors.RegistryTimeout(f"{what}: registry stopped sending")
    return errors.ProtocolError(f"{what}: connection broke before the body was complete")


def encode_cursor(url: str) -> str:
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    return base64.urlsafe_b64encode(target.encode()).decode().rstrip("=")


class RegistryClient:
    def __init__(self, transport: Transport, path_prefix: str = "") -> None:
        self.transport = transport
        self.prefix = path_prefix.rstrip("/")

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.transport.close()

    def canonical_repository(self, repository: str) -> str:
        """The name the registry knows a repository by; a vendor with an implicit namespace
        (Docker Hub's ``library/``) overrides this."""
        return repository

    def _v2(self, path: str) -> str:
        return self.transport.url(f"{self.prefix}/v2{path}")

    def _get_json(
        self, url: str, scope: str | None, what: str, limit: int = MAX_LIST_BYTES
    ) -> tuple[dict[str, Any], requests.Response]:
        response = self.transport.request(
            "GET", url, scope=scope, what=what, headers={"Accept": "application/json"}
        )
        return parse_json(read_limited(response, limit, what), what), response

    # -- connectivity ----------------------------------------------------------------------

    def ping(self) -> None:
        """``GET /v2/`` with credentials: proves the registry is reachable and accepts them."""
        response = self.transport.request("GET", self._v2("/"), scope=None, what="registry check")
        discard(response)

    # -- listing ---------------------------------------------------------------------------

    def _pages(
        self, first_url: str, scope: str | None, what: str, key: str
    ) -> Iterator[tuple[list[str], str | None]]:
        def fetch(url: str) -> tuple[tuple[list[str], str | None], str | None]:
            try:
                document, response = self._get_json(url, scope, what)
            except errors.RegistryError as failure:
                # Some registries cap the page size lower than we ask: let them choose.
                if failure.code != "PAGINATION_NUMBER_INVALID" or url != first_url or "n=" not in url:
                    raise
                document, response = self._get_json(url.split("?", 1)[0], scope, what)
            items = document.get(key) or []
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise errors.ProtocolError(f"{what}: '{key}' is not a list of names")
            next_url = next_link(response.headers.get("Link"), response.url)
            return (items, next_url), next_url

        return follow_pages(first_url, fetch, what)

    def list_repositories(self) -> list[str]:
        names: list[str] = []
        for page, _ in self._pages(
            self._v2(f"/_catalog?n={PAGE_SIZE}"), CATALOG_SCOPE, "list repositories", "repositories"
        ):
            names.extend(page)
        return names

    def _tags_url(self, repository: str) -> str:
        return self._v2(f"/{validate_repository(repository)}/tags/list")

    def list_tags(self, repository: str) -> list[str]:
        repository = self.canonical_repository(repository)
        tags: list[str] = []
        for page, _ in self._pages(
            f"{self._tags_url(repository)}?n={PAGE_SIZE}",
            _pull(repository),
            f"list tags of {repository}",
            "tags",
        ):
            tags.extend(page)
        return tags

    def list_tags_page(self, repository: str, n: int = 100, cursor: str | None = None) -> TagPage:
        """One page of tags; ``next_cursor`` is the registry's own next link, made opaque."""
        repository = self.canonical_repository(repository)
        base = self._tags_url(repository)
        if cursor:
            url = self._decode_cursor(cursor, base)
        else:
            url = f"{base}?n={max(1, min(n, PAGE_SIZE))}"
        for tags, next_url in self._pages(url, _pull(repository), f"list tags of {repository}", "tags"):
            return TagPage(tags, encode_cursor(next_url) if next_url else None)
        return TagPage([], None)

    def _decode_cursor(self, cursor: str, base: str) -> str:
        try:
            target = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise errors.BadRequest("cursor is not one this agent issued") from None
        # A cursor can only continue this repository's tag listing on this registry.
        if not target.startswith(urlsplit(base).path + "?") or any(c in target for c in "\r\n#"):
            raise errors.BadRequest("cursor is not one this agent issued for this repository")
        return self.transport.url(target)

    def list_tags_with_metadata(self, repository: str) -> list[TagInfo]:
        """Tags with their digests (HEAD requests, which do not count as pulls on Docker Hub).

        The plain v2 API has no push dates; vendor modules that know them override this.
        """
        repository = self.canonical_repository(repository)
        tags = self.list_tags(repository)

        def describe(tag: str) -> TagInfo:
            try:
                return TagInfo(tag, self.head_digest(repository, tag))
            except errors.NotFound:  # deleted between listing and asking
                return TagInfo(tag, None)

        with ThreadPoolExecutor(max_workers=METADATA_CONCURRENCY) as pool:
            return list(pool.map(describe, tags))

    # -- manifests -------------------------------------------------------------------------

    def _manifest_url(self, repository: str, reference: str) -> str:
        return self._v2(f"/{validate_repository(repository)}/manifests/{validate_reference(reference)}")

    def head_digest(self, repository: str, reference: str) -> str:
        repository = self.canonical_repository(repository)
        what = f"manifest {repository}:{reference}"
        response = self.transport.request(
            "HEAD",
            self._manifest_url(repository, reference),
            scope=_pull(repository),
            what=what,
            headers={"Accept": mt.MANIFEST_ACCEPT},
        )
        discard(response)  # a HEAD has no body, but only a read lets urllib3 reuse the connection
        found = response.headers.get("Docker-Content-Digest")
        if found:
            return validate_digest(found.strip())
        if is_digest(reference):
            return reference
        # Some registries omit the header on HEAD: the body is the only source of truth then.
        return self.get_manifest(repository, reference).digest

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        repository = self.canonical_repository(repository)
        what = (
            f"manifest {repository}:{reference}"
            if not is_digest(reference)
            else f"manifest {repository}@{reference}"
        )
        response = self.transport.request(
            "GET",
            self._manifest_url(repository, reference),
            scope=_pull(repository),
            what=what,
            headers={"Accept": mt.MANIFEST_ACCEPT},
        )
        header_digest = (response.headers.get("Docker-Content-Digest") or "").strip()
        content_type = mt.base_type(response.headers.get("Content-Type"))
        body = read_limited(response, MAX_MANIFEST_BYTES, what)
        document = parse_json(body, what)
        media_type = str(document.get("mediaType") or content_type)
        if not media_type and document.get("schemaVersion") == 1:
            media_type = mt.DOCKER_SCHEMA1_SIGNED
        computed = digests.compute(body)
        if is_digest(reference):
            digests.verify(body, reference, what)
        # A signed schema 1 manifest's digest covers the payload without its signatures.
        if (
            header_digest
            and media_type not in mt.SCHEMA1
            and header_digest.startswith("sha256:")
            and header_digest != computed
        ):
            raise errors.DigestMismatch(
                f"{what}: body digest {computed} differs from Docker-Content-Digest {header_digest}"
            )
        digest = (
            reference
            if is_digest(reference)
            else (header_digest if media_type in mt.SCHEMA1 and header_digest else computed)
        )
        return Manifest(media_type=media_type, digest=digest, body=body, document=document)

    def resolve(self, repository: str, reference: str, platform: Platform | None = None) -> ResolvedImage:
        """The image a reference names, for one platform: manifest, config and layers."""
        repository = self.canonical_repository(repository)
        manifest = self.get_manifest(repository, reference)
        index: Manifest | None = None
        platforms: list[Platform] = []
        selected: Platform | None = None
        if manifest.media_type in mt.INDEXES or (
            "manifests" in manifest.document and "layers" not in manifest.document
        ):
            index = manifest
            candidates = index_platforms(index.document)
            platforms = [p for p, _ in candidates]
            wanted = platform or DEFAULT_PLATFORM
            matches = [(p, entry) for p, entry in candidates if p.matches(wanted)]
            if not matches and platform is None and len(candidates) == 1:
                matches = candidates
            if not matches:
                available = ", ".join(str(p) for p in platforms) or "none"
                raise errors.NotFound(
                    f"{repository}:{reference} has no {wanted} image (platforms: {available})",
                    code="PLATFORM_UNKNOWN",
                )
            selected, entry = matches[0]
            manifest = self.get_manifest(repository, validate_digest(str(entry.get("digest", ""))))
        elif platform is not None:
            selected = platform
        if manifest.media_type in mt.SCHEMA1:
            return self._resolve_schema1(repository, reference, manifest, index, platforms)
        config_json = manifest.document.get("config")
        layers_json = manifest.document.get("layers")
        if not isinstance(config_json, dict) or not isinstance(layers_json, list):
            raise errors.ProtocolError(f"{repository}:{reference}: manifest lacks config or layers")
        config_descriptor = Descriptor.from_json(config_json)
        config = parse_json(
            self.read_blob(
                repository, config_descriptor.digest, MAX_CONFIG_BYTES, config_descriptor.size or None
            ),
            f"config of {repository}",
        )
        if selected is None and config.get("os"):
            selected = Platform(
                str(config.get("os")), str(config.get("architecture", "")), config.get("variant") or None
            )
        return ResolvedImage(
            repository=repository,
            reference=reference,
            digest=manifest.digest,
            media_type=manifest.media_type,
            manifest=manifest.document,
            config=config,
            layers=[Descriptor.from_json(layer) for layer in layers_json if isinstance(layer, dict)],
            config_descriptor=config_descriptor,
            index_digest=index.digest if index else None,
            index_media_type=index.media_type if index else None,
            platform=selected,
            platforms=platforms,
        )

    def _resolve_schema1(
        self,
        repository: str,
        reference: str,
        manifest: Manifest,
        index: Manifest | None,
        platforms: list[Platform],
    ) -> ResolvedImage:
        document = manifest.document
        history = document.get("history") or [{}]
        try:
            config = json.loads(history[0].get("v1Compatibility") or "{}")
        except (ValueError, AttributeError):
            config = {}
        # Schema 1 lists layers newest first, without sizes.
        layers = [
            Descriptor("application/vnd.docker.image.rootfs.diff.tar.gzip", str(layer.get("blobSum")), 0)
            for layer in reversed(document.get("fsLayers") or [])
            if isinstance(layer, dict)
        ]
        return ResolvedImage(
            repository=repository,
            reference=reference,
            digest=manifest.digest,
            media_type=manifest.media_type,
            manifest=document,
            config=config if isinstance(config, dict) else {},
            layers=layers,
            index_digest=index.digest if index else None,
            platforms=platforms,
            platform=Platform(str(config.get("os", "linux")), str(document.get("architecture", ""))),
        )

    # -- blobs -----------------------------------------------------------------------------

    def _blob_response(self, repository: str, digest: str) -> requests.Response:
        url = self._v2(f"/{validate_repository(repository)}/blobs/{validate_digest(digest)}")
        return self.transport.request("GET", url, scope=_pull(repository), what=f"blob {digest}")

    def read_blob(self, repository: str, digest: str, limit: int, size: int | None = None) -> bytes:
        """A small blob (a config) whole, verified against its digest."""
        repository = self.canonical_repository(repository)
        body = read_limited(self._blob_response(repository, digest), limit, f"blob {digest}")
        if size is not None and len(body) != size:
            raise errors.ProtocolError(f"blob {digest}: {len(body)} bytes, descriptor says {size}")
        digests.verify(body, digest, f"blob {digest}")
        return body

    @contextmanager
    def open_blob(
        self, repository: str, digest: str, size: int | None = None, chunk_size: int = CHUNK_SIZE
    ) -> Iterator[Iterator[bytes]]:
        """Stream a blob in chunks; the iterator raises at its end if length or digest is wrong."""
        repository = self.canonical_repository(repository)
        response = self._blob_response(repository, digest)
        what = f"blob {digest}"

        def chunks() -> Iterator[bytes]:
            try:
                yield from response.raw.stream(chunk_size, decode_content=True)
            except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as failure:
                raise _stream_error(failure, what) from None

        try:
            yield digests.verified_chunks(chunks(), digest, size, what)
        finally:
            response.close()
