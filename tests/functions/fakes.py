"""A fake registry client for the function tests: no HTTP, the client package's own result types.

Inject with ``monkeypatch.setattr(functions._registry, "client_factory", fake.factory)``.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared import errors
from shared.registry import Descriptor, Platform, ResolvedImage, TagInfo, TagPage

PASSWORD = "S3cr3t-Pa55w0rd"
ENV_SECRET = "tok-0123456789"
CREDENTIALS = {
    "type": "harbor-cr",
    "username": "robot",
    "password": PASSWORD,
    "registryBase": "reg.example.com",
}
ENCODED = base64.b64encode(json.dumps(CREDENTIALS).encode()).decode()

INDEX_DIGEST = "sha256:" + "1" * 64
AMD64_DIGEST = "sha256:" + "2" * 64
ARM64_DIGEST = "sha256:" + "3" * 64
CONFIG_DIGEST = "sha256:" + "4" * 64


def _layer(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


# Two real layers, so a scan through the fake runs the whole engine: an Alpine base with one package.
LAYERS = [
    _layer(
        {
            "etc/os-release": b'ID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME="Alpine Linux v3.19"\n',
            "lib/apk/db/installed": b"P:musl\nV:1.2.4_git20230717-r4\nA:x86_64\no:musl\nL:MIT\n\n",
        }
    ),
    _layer({"srv/app/readme.txt": b"hello"}),
]
BLOBS = {"sha256:" + hashlib.sha256(blob).hexdigest(): blob for blob in LAYERS}
LAYER_DIGESTS = list(BLOBS)
PUSHED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def image(repository: str, reference: str, platform: Platform | None = None) -> ResolvedImage:
    chosen = platform or Platform("linux", "amd64")
    config = {
        "architecture": chosen.architecture,
        "os": chosen.os,
        "created": "2024-05-01T12:00:00Z",
        "config": {
            "Env": ["PATH=/usr/local/bin:/usr/bin", f"API_TOKEN={ENV_SECRET}"],
            "Entrypoint": ["/docker-entrypoint.sh"],
            "Cmd": ["nginx", "-g", "daemon off;"],
            "Labels": {"maintainer": "team@example.com"},
        },
        "history": [
            {"created": "2024-05-01T11:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:abc in / "},
            {
                "created": "2024-05-01T11:01:00Z",
                "created_by": f"ENV API_TOKEN={ENV_SECRET}",
                "empty_layer": True,
            },
            {
                "created": "2024-05-01T11:02:00Z",
                "created_by": f"RUN |1 BUILD_TOKEN={ENV_SECRET} /bin/sh -c make",
            },
        ],
    }
    layers = [
        Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", d, len(BLOBS[d])) for d in LAYER_DIGESTS
    ]
    return ResolvedImage(
        repository=repository,
        reference=reference,
        digest=ARM64_DIGEST if chosen.architecture == "arm64" else AMD64_DIGEST,
        media_type="application/vnd.oci.image.manifest.v1+json",
        manifest={"schemaVersion": 2},
        config=config,
        layers=layers,
        index_digest=INDEX_DIGEST,
        platform=chosen,
        platforms=[Platform("linux", "amd64"), Platform("linux", "arm64", "v8")],
    )


@dataclass
class FakeRegistry:
    repositories: list[str] = field(default_factory=lambda: ["library/nginx", "team/app"])
    tags: dict[str, list[str]] = field(
        default_factory=lambda: {
            "library/nginx": ["1.25", "1.26", "latest"],
            "team/app": ["v1"],
        }
    )
    error: BaseException | None = None  # raised by every registry call when set
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    credentials_seen: list[Any] = field(default_factory=list)
    closed: int = 0

    def factory(self, credentials: Any, settings: Any) -> FakeClient:
        self.credentials_seen.append(credentials)
        return FakeClient(self)


class FakeClient:
    def __init__(self, registry: FakeRegistry) -> None:
        self.registry = registry

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.registry.closed += 1

    def _call(self, name: str, *args: Any) -> None:
        self.registry.calls.append((name, args))
        if self.registry.error is not None:
            raise self.registry.error

    def _tags(self, repository: str) -> list[str]:
        if repository not in self.registry.tags:
            raise errors.NotFound(f"repository {repository} not found")
        return self.registry.tags[repository]

    def ping(self) -> None:
        self._call("ping")

    def list_repositories(self) -> list[str]:
        self._call("list_repositories")
        return list(self.registry.repositories)

    def list_tags(self, repository: str) -> list[str]:
        self._call("list_tags", repository)
        return list(self._tags(repository))

    def list_tags_page(self, repository: str, n: int = 100, cursor: str | None = None) -> TagPage:
        self._call("list_tags_page", repository, n, cursor)
        tags = self._tags(repository)
        start = int(cursor) if cursor else 0
        end = start + n
        return TagPage(tags=tags[start:end], next_cursor=str(end) if end < len(tags) else None)

    def list_tags_with_metadata(self, repository: str) -> list[TagInfo]:
        self._call("list_tags_with_metadata", repository)
        return [TagInfo(tag, AMD64_DIGEST, PUSHED) for tag in self._tags(repository)]

    def resolve(self, repository: str, reference: str, platform: Platform | None = None) -> ResolvedImage:
        self._call("resolve", repository, reference, platform)
        if reference.startswith("sha256:") or reference in self._tags(repository):
            return image(repository, reference, platform)
        raise errors.NotFound(f"manifest {reference} not found")

    @contextmanager
    def open_blob(self, repository: str, digest: str, size: int | None = None) -> Iterator[Iterator[bytes]]:
        self._call("open_blob", repository, digest)
        yield iter([BLOBS[digest]])

    def head_digest(self, repository: str, reference: str) -> str:
        self._call("head_digest", repository, reference)
        if reference.startswith("sha256:"):
            return reference
        if reference not in self._tags(repository):
            raise errors.NotFound(f"manifest {reference} not found")
        return INDEX_DIGEST
