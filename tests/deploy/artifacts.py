"""What the deploy tests build once and keep between runs: a wheelhouse and a Debian base image.

Both live under ``cache_dir()`` (``$REGISTRY_AGENT_TEST_CACHE``, else
``$XDG_CACHE_HOME/registry-agent-test``, else ``~/.cache/registry-agent-test``), named after a hash
of their inputs, and are written to a temporary name first and renamed, so an interrupted build
never leaves a half-made entry behind. Building them is an install step (PyPI, the Debian mirror);
the tests themselves then run with no network: ``scripts/setup-deploy`` warms the cache
(``python -m tests.deploy.artifacts``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_SCRIPT = ROOT / "scripts" / "package_functions.py"

SUITE = "bookworm"
# What the Dockerfile needs from a base image: python3 with the venv module (pip comes with it).
BASE_PACKAGES = ("python3", "python3-venv")
BASE_IMAGE_TAG = "test-base:bookworm"
# Bump to rebuild every cached base image (e.g. after changing the trimming below).
BASE_RECIPE_VERSION = "1"
# Trimmed from the base image: package caches and documentation nothing at run time reads.
BASE_TRIM = ("var/cache/apt", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/locale")


def cache_dir() -> Path:
    explicit = os.environ.get("REGISTRY_AGENT_TEST_CACHE")
    base = Path(explicit) if explicit else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = base if explicit else base / "registry-agent-test"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _key(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def package_functions(out: Path) -> list[Path]:
    """The documented packaging command, exactly as docs/deploy.md gives it."""
    result = subprocess.run(
        [sys.executable, str(PACKAGE_SCRIPT), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"package_functions.py failed:\n{result.stdout}\n{result.stderr}")
    return [Path(line) for line in result.stdout.split()]


def build_requirements() -> list[str]:
    """pyproject's build-system requirements: the image's build stage builds the agent's wheel."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return list(data["build-system"]["requires"])


def wheelhouse(requirements: str) -> Path:
    """Wheels for the pinned runtime requirements plus the build backend, built once per content."""
    extra = build_requirements()
    target = cache_dir() / f"wheelhouse-{_key(requirements, *extra)}"
    if target.is_dir():
        return target
    work = Path(tempfile.mkdtemp(prefix="wheelhouse-", dir=cache_dir()))
    try:
        (work / "requirements.txt").write_text(requirements, encoding="utf-8")
        wheels = work / "wheels"
        command = [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check"]
        command += ["-r", str(work / "requirements.txt"), *extra, "--wheel-dir", str(wheels)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"pip wheel failed (needs PyPI once):\n{result.stderr[-3000:]}")
        try:
            wheels.rename(target)
        except OSError:
            if not target.is_dir():  # not another session winning the race
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def debian_mirror() -> str:
    return os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()) + "/"
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        return [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]


def base_tarball() -> Path:
    """A minimal Debian root file system with python3 (debootstrap), as a tar for `docker import`.

    Stands in for python:3.11-slim-bookworm, which the tests cannot pull: Docker Hub is out of
    reach, the Debian mirror is not.
    """
    target = (
        cache_dir() / f"base-{SUITE}-{_key(SUITE, debian_mirror(), *BASE_PACKAGES, BASE_RECIPE_VERSION)}.tar"
    )
    if target.is_file():
        return target
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not os.access(debootstrap, os.X_OK):
        raise FileNotFoundError("debootstrap is not installed: bash scripts/setup-deploy")
    work = Path(tempfile.mkdtemp(prefix="base-", dir=cache_dir()))
    root = work / "root"
    try:
        command = [debootstrap, "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", SUITE]
        result = subprocess.run(
            [*command, str(root), debian_mirror()], capture_output=True, text=True, timeout=1200, check=False
        )
        if result.returncode != 0:
            log = root / "debootstrap" / "debootstrap.log"
            detail = log.read_text(errors="replace")[-3000:] if log.exists() else result.stderr[-3000:]
            raise RuntimeError(f"debootstrap failed:\n{detail}")
        for relative in BASE_TRIM:
            for child in (root / relative).glob("*"):
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        tar = work / "base.tar"
        subprocess.run(
            ["tar", "--numeric-owner", "-C", str(root), "-cf", str(tar), "."], check=True, timeout=600
        )
        tar.replace(target)
    finally:
        # debootstrap mounts /proc and /sys in the chroot; never delete through a live mount.
        if not _mounts_under(work):
            shutil.rmtree(work, ignore_errors=True)
    return target


def main() -> int:
    """Warm the cache (scripts/setup-deploy): the base image and the wheelhouse."""
    with tempfile.TemporaryDirectory() as out:
        zips = package_functions(Path(out))
        with zipfile.ZipFile(zips[0]) as archive:
            requirements = archive.read("requirements.txt").decode()
    print(f"wheelhouse: {wheelhouse(requirements)}")
    if os.geteuid() == 0:
        print(f"base image: {base_tarball()}")
    else:
        print("base image: skipped (debootstrap needs root)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
