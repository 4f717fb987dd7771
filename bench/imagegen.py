"""Realistic benchmark images, built fast and deterministically (same size and seed, same digests).

An image of about ``size_mib`` MiB of compressed layers, five layers as a Debian-based Python + Node
application image would have them:

0. base OS: ``/etc/os-release``, ``/var/lib/dpkg/status`` and ``/var/lib/apt/extended_states`` of the
   nginx Debian 10 fixture (84 installed packages), a ``.list``/``.md5sums`` and a copyright file per
   package, shared libraries, symlinks and a hard link;
1. Python: interpreter sources, ``site-packages`` with ``PYTHON_DISTS`` dist-info directories
   (METADATA, RECORD, WHEEL, top_level.txt) and their modules, extension modules, an app with a
   ``requirements.txt`` (so snyk-docker-plugin has a pip manifest to resolve);
2. Node: ``/srv/app/node_modules`` with ``NODE_PACKAGES`` packages (some scoped, some nested),
   sources, native add-ons;
3. data: large assets;
4. update: an apt-style rewrite of the dpkg status, a pip upgrade (a whiteout of one dist-info and its
   replacement), an opaque directory, a new binary.

The byte budget goes mostly to incompressible data (random bytes: binaries and assets compress
poorly in real images too); text files (sources, metadata) scale with the size as well:
``4000 + 25 * size_mib`` of them. Expected package counts: ``expected_counts()``.

Speed: a layer is written as one gzip member in which text goes through zlib (level 6) and each
incompressible run is written as stored deflate blocks after a full flush, which is what zlib itself
emits for random input, minus the minutes of trying to compress it. The result is a standard gzip
stream (checked by every tool that reads it).
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import struct
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

MIB = 1024 * 1024
MTIME = 1704067200
PYTHON_DISTS = 40
NODE_PACKAGES = 150  # top-level; plus NESTED_NODE_PACKAGES under some of them
NESTED_NODE_PACKAGES = 20
DEB_PACKAGES = 84  # the nginx fixture's status: all "install ok installed"
NGINX_FILES = ("etc/os-release", "var/lib/dpkg/status", "var/lib/apt/extended_states")

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

# Share of the random-byte budget per layer (base, python, node, data, update).
RANDOM_SHARE = (0.20, 0.15, 0.10, 0.45, 0.10)


class GzipLayerWriter:
    """A tar stream written straight into a gzip file, hashing both forms as it goes."""

    def __init__(self, out: BinaryIO, level: int = 6) -> None:
        self.out = out
        self.blob_hash = hashlib.sha256()
        self.diff_hash = hashlib.sha256()
        self.crc = 0
        self.isize = 0
        self.size = 0
        self._deflate = zlib.compressobj(level, zlib.DEFLATED, -15)
        self._pending = False
        # magic, deflate, no flags, mtime 0, no extra flags, OS unknown
        self._write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")

    def _write(self, data: bytes | memoryview) -> None:
        self.out.write(data)
        self.blob_hash.update(data)
        self.size += len(data)

    def _account(self, data: bytes | memoryview) -> None:
        self.crc = zlib.crc32(data, self.crc)
        self.isize += len(data)
        self.diff_hash.update(data)

    def text(self, data: bytes) -> None:
        self._account(data)
        self._write(self._deflate.compress(data))
        self._pending = True

    def raw(self, data: bytes) -> None:
        """Incompressible bytes: stored blocks (after a full flush, so no later match reaches back)."""
        self._account(data)
        if self._pending:
            self._write(self._deflate.flush(zlib.Z_FULL_FLUSH))
            self._pending = False
        view = memoryview(data)
        for start in range(0, len(view), 0xFFFF):
            block = view[start : start + 0xFFFF]
            self._write(b"\x00" + struct.pack("<HH", len(block), len(block) ^ 0xFFFF))
            self._write(block)

    def finish(self) -> None:
        self._write(self._deflate.flush(zlib.Z_FINISH))
        self._write(struct.pack("<II", self.crc & 0xFFFFFFFF, self.isize & 0xFFFFFFFF))


class TarBuilder:
    """Tar members in the order added; parent directories first, once."""

    def __init__(self, writer: GzipLayerWriter) -> None:
        self.w = writer
        self.dirs: set[str] = set()

    def _header(self, info: tarfile.TarInfo) -> None:
        info.mtime = MTIME
        info.uname = info.gname = "root"
        self.w.text(info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape"))

    def _parents(self, path: str) -> None:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            directory = "/".join(parts[:i])
            if directory not in self.dirs:
                self.dirs.add(directory)
                info = tarfile.TarInfo(directory + "/")
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                self._header(info)

    def file(self, path: str, data: bytes, *, incompressible: bool = False, mode: int = 0o644) -> None:
        self._parents(path)
        info = tarfile.TarInfo(path)
        info.size, info.mode = len(data), mode
        self._header(info)
        (self.w.raw if incompressible else self.w.text)(data)
        padding = -len(data) % tarfile.BLOCKSIZE
        if padding:
            self.w.text(b"\0" * padding)

    def link(self, path: str, target: str, *, hard: bool = False) -> None:
        self._parents(path)
        info = tarfile.TarInfo(path)
        info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
        info.linkname, info.mode = target, 0o777
        self._header(info)

    def finish(self) -> None:
        self.w.text(b"\0" * (2 * tarfile.BLOCKSIZE))
        self.w.finish()


@dataclass(frozen=True)
class BenchImage:
    layout: Path  # OCI image layout directory (skopeo ``oci:DIR``)
    docker_archive: Path  # ``docker save``-style tar holding the same layer blobs
    compressed_bytes: int  # sum of the layer blobs
    uncompressed_bytes: int
    files: int
    digest: str


class _Text:
    """Deterministic, source-code-like text (compresses about 4-6x, like real sources)."""

    WORDS = (
        "def class return import from self value result items config path name data index count "
        "error raise yield async await lambda None True False request response handler module "
        "buffer stream layer package version install status parse render option default"
    ).split()

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def source(self, size: int) -> bytes:
        out: list[str] = []
        total = 0
        words = self.WORDS
        choice = self.rng.choice
        while total < size:
            target, call, first, second = choice(words), choice(words), choice(words), choice(words)
            line = f"    {target}_{self.rng.randrange(999)} = {call}({first}, {second})\n"
            out.append(line)
            total += len(line)
        return "".join(out).encode()[:size]


def _nginx_files(fixture: Path) -> dict[str, bytes]:
    with tarfile.open(fixture) as outer:
        manifest = json.loads(outer.extractfile("manifest.json").read())  # type: ignore[union-attr]
        layer = outer.extractfile(manifest[0]["Layers"][0]).read()  # type: ignore[union-attr]
    with tarfile.open(fileobj=io.BytesIO(layer)) as inner:
        return {name: inner.extractfile(name).read() for name in NGINX_FILES}  # type: ignore[union-attr]


def _deb_names(status: bytes) -> list[str]:
    return [line[9:] for line in status.decode().splitlines() if line.startswith("Package: ")]


def _dist(name: str, version: str) -> dict[str, bytes]:
    base = f"{name}-{version}.dist-info"
    metadata = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: {name} for the benchmark\n"
        f"License: MIT\nRequires-Python: >=3.8\nClassifier: License :: OSI Approved :: MIT License\n\n"
        f"# {name}\n\nLong description of {name}.\n"
    )
    return {
        f"{base}/METADATA": metadata.encode(),
        f"{base}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: bdist_wheel (0.42.0)\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
        f"{base}/top_level.txt": f"{name.replace('-', '_')}\n".encode(),
        f"{base}/RECORD": f"{name.replace('-', '_')}/__init__.py,sha256=,0\n{base}/METADATA,,\n".encode(),
    }


def _elf(payload: bytes) -> bytes:
    """``payload`` behind an ELF64 executable header naming no program or section headers: an ELF
    to every scanner's sniffing (so it is read like a real binary), holding no build metadata."""
    header = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header += struct.pack("<HHIQQQIHHHHHH", 2, 0x3E, 1, 0, 0, 0, 0, 64, 0, 0, 64, 0, 0)
    return header + payload[len(header) :]


def _random_sizes(rng: random.Random, budget: int, low: int, high: int) -> list[int]:
    sizes: list[int] = []
    while budget > 0:
        size = min(budget, rng.randrange(low, high))
        sizes.append(size)
        budget -= size
    return sizes


def expected_counts() -> dict[str, int]:
    """Installed packages in every bench image, by ecosystem (what a correct scanner reports)."""
    return {"deb": DEB_PACKAGES, "pypi": PYTHON_DISTS, "npm": NODE_PACKAGES + NESTED_NODE_PACKAGES}


def build(
    out_dir: Path, size_mib: int, fixture: Path, *, seed: int = 1, name: str = "bench/app:1"
) -> BenchImage:
    """Write the OCI layout and the docker archive under ``out_dir``; returns where and how big."""
    rng = random.Random(f"{seed}-{size_mib}")  # noqa: S311 - test data, not secrets
    text = _Text(rng)
    nginx = _nginx_files(fixture)
    debs = _deb_names(nginx["var/lib/dpkg/status"])
    random_budget = int(size_mib * MIB * 0.92)
    small_files = 4000 + 25 * size_mib
    blobs = out_dir / "layout" / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (out_dir / "layout" / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    layers: list[dict[str, Any]] = []
    diff_ids: list[str] = []
    counted = {"files": 0, "uncompressed": 0}

    def random_files(
        tar: TarBuilder, prefix: str, share: float, low: int, high: int, suffix: str, *, program: bool = True
    ) -> None:
        """Incompressible files: programs (an ELF header, mode 755) or data (mode 644)."""
        for i, size in enumerate(_random_sizes(rng, int(random_budget * share), low, high)):
            data = _elf(rng.randbytes(size)) if program else rng.randbytes(size)
            tar.file(f"{prefix}/{i:04d}{suffix}", data, incompressible=True, mode=0o755 if program else 0o644)
            counted["files"] += 1

    def text_files(tar: TarBuilder, prefix: str, count: int, suffix: str) -> None:
        for i in range(count):
            tar.file(f"{prefix}/d{i // 100:03d}/f{i:05d}{suffix}", text.source(rng.randrange(400, 6000)))
            counted["files"] += 1

    def layer(fill: Any) -> None:
        tmp = blobs / "partial"
        with tmp.open("wb") as out:
            writer = GzipLayerWriter(out)
            tar = TarBuilder(writer)
            fill(tar)
            tar.finish()
        digest = writer.blob_hash.hexdigest()
        tmp.rename(blobs / digest)
        layers.append({"mediaType": OCI_LAYER_GZIP, "digest": f"sha256:{digest}", "size": writer.size})
        diff_ids.append(f"sha256:{writer.diff_hash.hexdigest()}")
        counted["uncompressed"] += writer.isize

    def base(tar: TarBuilder) -> None:
        for path, data in nginx.items():
            tar.file(path, data)
        for deb in debs:
            files = [f"/usr/lib/x86_64-linux-gnu/{deb}/{i}.so" for i in range(rng.randrange(3, 30))]
            tar.file(f"var/lib/dpkg/info/{deb}.list", "\n".join(files).encode() + b"\n")
            tar.file(
                f"var/lib/dpkg/info/{deb}.md5sums",
                "".join(f"{rng.randbytes(16).hex()}  {f[1:]}\n" for f in files).encode(),
            )
            tar.file(f"usr/share/doc/{deb}/copyright", text.source(rng.randrange(800, 12000)))
        text_files(tar, "usr/share/misc", int(small_files * 0.3), ".txt")
        random_files(tar, "usr/lib/x86_64-linux-gnu/blobs", RANDOM_SHARE[0], 64 * 1024, 3 * MIB, ".so")
        tar.link("usr/bin/sh", "dash")
        tar.file("usr/bin/dash", _elf(rng.randbytes(120_000)), incompressible=True, mode=0o755)
        tar.link("usr/bin/sh.distrib", "usr/bin/dash", hard=True)

    site = "usr/local/lib/python3.11/site-packages"

    def python(tar: TarBuilder) -> None:
        text_files(tar, "usr/local/lib/python3.11", int(small_files * 0.3), ".py")
        requirements = []
        for i in range(PYTHON_DISTS):
            dist, version = f"benchpkg-{i:02d}", f"1.{i}.0"
            requirements.append(f"{dist}=={version}")
            for path, data in _dist(dist, version).items():
                tar.file(f"{site}/{path}", data)
            for j in range(rng.randrange(2, 12)):
                tar.file(f"{site}/{dist.replace('-', '_')}/m{j}.py", text.source(rng.randrange(500, 8000)))
        tar.file("srv/pyapp/requirements.txt", ("\n".join(requirements) + "\n").encode())
        random_files(
            tar, f"{site}/_native", RANDOM_SHARE[1], 100 * 1024, 4 * MIB, ".cpython-311-x86_64-linux-gnu.so"
        )

    def node(tar: TarBuilder) -> None:
        modules = "srv/app/node_modules"
        deps = {}
        for i in range(NODE_PACKAGES):
            pkg = f"@bench/pkg-{i:03d}" if i % 10 == 0 else f"bench-pkg-{i:03d}"
            deps[pkg] = f"^2.{i}.0"
            manifest = {"name": pkg, "version": f"2.{i}.0", "license": "MIT", "main": "index.js"}
            tar.file(f"{modules}/{pkg}/package.json", json.dumps(manifest, indent=2).encode())
            tar.file(f"{modules}/{pkg}/index.js", text.source(rng.randrange(300, 9000)))
            tar.file(f"{modules}/{pkg}/README.md", text.source(rng.randrange(300, 3000)))
            if i < NESTED_NODE_PACKAGES:
                nested = {"name": f"bench-nested-{i:02d}", "version": "0.1.0", "license": "ISC"}
                tar.file(
                    f"{modules}/{pkg}/node_modules/{nested['name']}/package.json", json.dumps(nested).encode()
                )
        app = {"name": "bench-app", "version": "1.0.0", "private": True, "dependencies": deps}
        tar.file("srv/app/package.json", json.dumps(app, indent=2).encode())
        text_files(tar, "srv/app/src", int(small_files * 0.3), ".js")
        random_files(
            tar, f"{modules}/bench-native/build/Release", RANDOM_SHARE[2], 200 * 1024, 6 * MIB, ".node"
        )

    def data(tar: TarBuilder) -> None:
        text_files(tar, "srv/data/docs", int(small_files * 0.1), ".md")
        random_files(tar, "srv/data/assets", RANDOM_SHARE[3], 1 * MIB, 16 * MIB, ".bin", program=False)

    def update(tar: TarBuilder) -> None:
        # apt-get upgrade rewrites the whole status file; pip upgrades one dist (whiteout + new).
        tar.file("var/lib/dpkg/status", nginx["var/lib/dpkg/status"])
        old, new = "benchpkg-00-1.0.0.dist-info", "benchpkg-00-1.0.1.dist-info"
        tar.file(f"{site}/.wh.{old}", b"")
        for path, content in _dist("benchpkg-00", "1.0.1").items():
            tar.file(f"{site}/{path.replace(old, new)}", content)
        tar.file("srv/data/docs/.wh..wh..opq", b"")
        tar.file("srv/data/docs/README.md", text.source(2000))
        random_files(tar, "usr/local/bin", RANDOM_SHARE[4], 1 * MIB, 8 * MIB, "")

    for fill in (base, python, node, data, update):
        layer(fill)

    config = {
        "created": "2024-01-01T00:00:00Z",
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "Cmd": ["node", "/srv/app/src"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [
            {"created": "2024-01-01T00:00:00Z", "created_by": f"bench layer {i}"} for i in range(len(layers))
        ],
    }
    config_bytes = json.dumps(config, separators=(",", ":")).encode()
    config_digest = _put(blobs, config_bytes)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": f"sha256:{config_digest}", "size": len(config_bytes)},
        "layers": layers,
    }
    manifest_bytes = json.dumps(manifest, separators=(",", ":")).encode()
    manifest_digest = _put(blobs, manifest_bytes)
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": f"sha256:{manifest_digest}", "size": len(manifest_bytes)}
        ],
    }
    (out_dir / "layout" / "index.json").write_text(json.dumps(index))
    archive = out_dir / "image.docker.tar"
    _docker_archive(
        archive, blobs, config_digest, config_bytes, [layer["digest"][7:] for layer in layers], name
    )
    return BenchImage(
        layout=out_dir / "layout",
        docker_archive=archive,
        compressed_bytes=sum(layer["size"] for layer in layers),
        uncompressed_bytes=counted["uncompressed"],
        files=counted["files"],
        digest=f"sha256:{manifest_digest}",
    )


def _put(blobs: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    (blobs / digest).write_bytes(data)
    return digest


def _docker_archive(
    out: Path, blobs: Path, config_digest: str, config: bytes, layers: list[str], name: str
) -> None:
    """``docker save`` layout (manifest.json, <config>.json, <id>/layer.tar). The layer.tar members
    hold the registry's gzip blobs unchanged (Docker loads, and all three tools read, compressed
    layer.tar members), so the archive and the registry serve the very same layer bytes."""
    manifest = [
        {"Config": f"{config_digest}.json", "RepoTags": [name], "Layers": [f"{d}/layer.tar" for d in layers]}
    ]
    with tarfile.open(out, "w") as tar:

        def add(member: str, data: bytes | None = None, source: Path | None = None) -> None:
            info = tarfile.TarInfo(member)
            info.mtime = MTIME
            if source is not None:
                info.size = source.stat().st_size
                with source.open("rb") as handle:
                    tar.addfile(info, handle)
            else:
                assert data is not None
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))

        add("manifest.json", json.dumps(manifest).encode())
        add(f"{config_digest}.json", config)
        for digest in layers:
            add(f"{digest}/layer.tar", source=blobs / digest)
