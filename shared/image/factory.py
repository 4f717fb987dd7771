"""``open_source``: from the text a user or a request gives to an `ImageSource`.

* ``oci-dir:PATH[:NAME]``: an OCI image-layout directory (NAME: a reference name in ``index.json``);
* ``oci-archive:PATH[:NAME]``: the same, as a tar file;
* ``docker-archive:PATH[:REPO:TAG|:@N]``: a ``docker save`` tar (NAME picks one of several images);
* anything else is an image reference, pulled through the caller's `RegistryClient`.

The optional suffixes follow skopeo's transports. PATH may itself contain ``:``: the longest prefix
that exists is the path.
"""

from __future__ import annotations

from pathlib import Path

from shared import errors
from shared.image.archive import DockerArchiveSource, open_oci_archive
from shared.image.layout import DirectoryStore, LayoutSource
from shared.image.registry import RegistrySource
from shared.image.source import ImageSource
from shared.registry.client import RegistryClient
from shared.registry.platform import Platform
from shared.registry.reference import parse_image

LOCAL_PREFIXES = ("oci-dir:", "oci-archive:", "docker-archive:")


def split_path(rest: str) -> tuple[Path, str | None]:
    """``/a/b.tar:repo:tag`` -> (``/a/b.tar``, ``repo:tag``), choosing the split where the path exists."""
    candidates = [len(rest)] + [i for i in range(len(rest) - 1, 0, -1) if rest[i] == ":"]
    for end in candidates:
        path = Path(rest[:end]).expanduser()
        if path.exists():
            return path, (rest[end + 1 :] or None) if end < len(rest) else None
    return Path(rest).expanduser(), None


def is_local(spec: str) -> bool:
    return spec.startswith(LOCAL_PREFIXES)


def open_source(
    spec: str,
    *,
    client: RegistryClient | None = None,
    platform: Platform | None = None,
    registry: str | None = None,
) -> ImageSource:
    """The source ``spec`` names; ``client`` (and the host it talks to, ``registry``) for registry images."""
    if spec.startswith("oci-dir:"):
        path, name = split_path(spec.removeprefix("oci-dir:"))
        return LayoutSource(
            DirectoryStore(path), kind="oci-dir", reference=spec, ref_name=name, platform=platform
        )
    if spec.startswith("oci-archive:"):
        path, name = split_path(spec.removeprefix("oci-archive:"))
        return open_oci_archive(path, reference=spec, ref_name=name, platform=platform)
    if spec.startswith("docker-archive:"):
        path, name = split_path(spec.removeprefix("docker-archive:"))
        return DockerArchiveSource(path, reference=spec, image_name=name, platform=platform)
    image = parse_image(spec)
    if client is None:
        raise errors.ConfigurationError(f"{spec} is a registry image: scanning it needs registry credentials")
    return RegistrySource(client, image, platform, reference=spec, registry=registry)
