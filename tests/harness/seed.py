"""What every harness registry holds, and how it gets there.

Seeding is done ONCE per session: a private ``noauth`` registry is filled with `skopeo copy` (fixture
archives and built layouts, in parallel), extra tags are added by re-PUTting manifests, the registry is
stopped, and its storage directory becomes a read-only template that each mode's registry starts from
(a copy). Content and digests are therefore identical in all four modes, and start-up stays well under
a few seconds. Pushing *through* auth/TLS is covered separately (test_harness.py pushes into every mode).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .certs import TestCA
from .images import BuiltImage, build_image, build_index, layout_from_docker_archive
from .registry import MANIFEST_ACCEPT, Mode, RunningRegistry, start_registry

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def fixtures_dir() -> Path:
    """``<project root>/../shared/fixtures`` (CI clones the project beside a copy of shared/)."""
    override = os.environ.get("HARNESS_FIXTURES_DIR")
    return Path(override) if override else PROJECT_ROOT.parent / "shared" / "fixtures"


def archive(name: str) -> Path:
    return fixtures_dir() / "images" / name


MANY_TAGS_REPO = "many/tags"
MANY_TAGS = tuple(f"t{i:02d}" for i in range(25))  # zero-padded: lexical order == numeric order


@dataclass(frozen=True)
class SeedImage:
    """One push: ``source(workdir)`` returns a skopeo source reference; first tag pushed, rest re-PUT."""

    repo: str
    tags: tuple[str, ...]
    source: Callable[[Path], str]


def _built(
    key: str, build: Callable[[Path], BuiltImage], sink: dict[str, BuiltImage]
) -> Callable[[Path], str]:
    def make(workdir: Path) -> str:
        image = build(workdir / key.replace("/", "_"))
        sink[key] = image
        return image.source

    return make


def _fixed(reference: str) -> Callable[[Path], str]:
    return lambda _workdir: reference


@dataclass
class SeedInfo:
    """Result of seeding: the storage template plus what was pushed, for tests' expectations."""

    storage: Path
    # repository -> tags, as pushed (tags sorted lexically, as /tags/list returns them).
    repositories: dict[str, list[str]] = field(default_factory=dict)
    # "repo:tag" -> top-level manifest digest and Content-Type the registry reported after the push.
    digests: dict[str, str] = field(default_factory=dict)
    media_types: dict[str, str] = field(default_factory=dict)
    # Built images by repository (`built/...`), with their per-platform manifest and config digests.
    built: dict[str, BuiltImage] = field(default_factory=dict)


def seed_plan(built: dict[str, BuiltImage]) -> list[SeedImage]:
    return [
        # skopeo's docker-archive: refuses both trimmed nginx archives ("Inconsistent layer count: 1 in
        # manifest, 3 in config"); they go through a Docker-typed OCI layout with the config unchanged.
        SeedImage(
            "library/nginx",
            ("latest", "1.0"),
            _built(
                "library/nginx",
                lambda d: layout_from_docker_archive(archive("nginx-debian10.docker.tar"), d),
                built,
            ),
        ),
        SeedImage(
            "nginx-link",
            ("latest",),
            _built(
                "nginx-link",
                lambda d: layout_from_docker_archive(archive("nginx-os-release-link.docker.tar"), d),
                built,
            ),
        ),
        SeedImage("busybox", ("1.31.1",), _fixed(f"oci-archive:{archive('busybox-1.31.1.oci.tar')}")),
        SeedImage("hello-world", ("latest",), _fixed(f"docker-archive:{archive('hello-world.docker.tar')}")),
        SeedImage("whiteout", ("latest",), _fixed(f"docker-archive:{archive('whiteout-dir.docker.tar')}")),
        # Two images in one archive: pick by RepoTag. test_image_3's first layer.tar is a symlink.
        SeedImage(
            "links",
            ("latest",),
            _fixed(f"docker-archive:{archive('links.docker.tar')}:bazel/v1/tarball:test_image_3"),
        ),
        SeedImage(
            "links",
            ("base",),
            _fixed(f"docker-archive:{archive('links.docker.tar')}:bazel/v1/tarball:test_image_1"),
        ),
        # oci-archive: with --all keeps containerd's Docker manifest list (one linux/amd64 entry).
        SeedImage("alpine", ("3.14",), _fixed(f"oci-archive:{archive('alpine.containerd.tar')}")),
        SeedImage("built/oci-single", ("latest",), _built("built/oci-single", build_image, built)),
        SeedImage(
            "built/docker-single",
            ("latest",),
            _built("built/docker-single", lambda d: build_image(d, flavour="docker"), built),
        ),
        SeedImage("built/multi-oci", ("latest",), _built("built/multi-oci", build_index, built)),
        SeedImage(
            "built/multi-docker",
            ("latest",),
            _built("built/multi-docker", lambda d: build_index(d, flavour="docker"), built),
        ),
        SeedImage(MANY_TAGS_REPO, MANY_TAGS, _fixed(f"docker-archive:{archive('hello-world.docker.tar')}")),
    ]


def build_seed_storage(workdir: Path, ca: TestCA) -> SeedInfo:
    """Fill a throwaway noauth registry, stop it, and return its storage as the template."""
    images = fixtures_dir() / "images"
    if not images.is_dir():
        raise FileNotFoundError(f"fixture images not found at {images} (set HARNESS_FIXTURES_DIR)")
    info = SeedInfo(storage=workdir / "registry" / "storage")
    plan = seed_plan(info.built)
    layouts = workdir / "layouts"
    reg = start_registry(Mode.NOAUTH, workdir / "registry", ca=ca)
    try:

        def push(item: SeedImage) -> None:
            reg.push(item.source(layouts), f"{item.repo}:{item.tags[0]}")
            if len(item.tags) > 1:
                reg.tag(item.repo, item.tags[0], *item.tags[1:])

        # skopeo runs are I/O-bound subprocesses: parallel pushes cut seeding to about a second.
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(push, plan))
        for item in plan:
            info.repositories.setdefault(item.repo, []).extend(item.tags)
            for tag in item.tags:
                _record_digest(reg, info, item.repo, tag)
        for tags in info.repositories.values():
            tags.sort()
    finally:
        reg.stop()
    return info


def _record_digest(reg: RunningRegistry, info: SeedInfo, repo: str, tag: str) -> None:
    head = reg.request("HEAD", f"/v2/{repo}/manifests/{tag}", headers={"Accept": MANIFEST_ACCEPT})
    head.raise_for_status()
    info.digests[f"{repo}:{tag}"] = head.headers["Docker-Content-Digest"]
    info.media_types[f"{repo}:{tag}"] = head.headers["Content-Type"]
