"""A private Docker daemon (Debian's docker.io) for one test session, stopped by its PID.

Everything it owns is under one short temporary directory: data root, exec root, pid file, its
socket and an empty daemon.json (so the machine's /etc/docker/daemon.json does not apply). No
bridge and no iptables rules: containers and builds use ``--network host`` or ``none``, and the
host's firewall is never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.deploy.artifacts import _mounts_under
from tests.harness.procs import start_process, stop_process

DOCKERD_CANDIDATES = ("/usr/sbin/dockerd", "/usr/bin/dockerd")
# Debian's client matches Debian's daemon; another docker on PATH may be a newer, unrelated build.
DOCKER_CANDIDATES = ("/usr/bin/docker",)


class DaemonUnavailable(RuntimeError):
    """The daemon cannot run here (no privileges, no cgroups, no overlay...): tests skip."""


def _first_executable(candidates: tuple[str, ...], name: str) -> str | None:
    for path in candidates:
        if os.access(path, os.X_OK):
            return path
    return shutil.which(name)


@dataclass
class DockerDaemon:
    root: Path
    docker: str
    proc: subprocess.Popen[bytes] = field(repr=False)

    @property
    def host(self) -> str:
        return f"unix://{self.root}/docker.sock"

    @property
    def log_file(self) -> Path:
        return self.root / "dockerd.log"

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def cli(
        self, *args: str, timeout: float = 120, check: bool = True, input: bytes | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env["DOCKER_HOST"] = self.host
        env["DOCKER_CONFIG"] = str(self.root / "client")  # no credential helpers or contexts of the user
        result = subprocess.run(
            [self.docker, *args],
            capture_output=True,
            timeout=timeout,
            env=env,
            check=False,
            input=input,
        )
        completed = subprocess.CompletedProcess(
            result.args,
            result.returncode,
            result.stdout.decode(errors="replace"),
            result.stderr.decode(errors="replace"),
        )
        if check and completed.returncode != 0:
            raise AssertionError(
                f"docker {' '.join(args[:3])} failed ({completed.returncode}):\n"
                f"{completed.stdout[-4000:]}\n{completed.stderr[-4000:]}"
            )
        return completed

    def inspect(self, name: str) -> dict[str, Any]:
        data: list[dict[str, Any]] = json.loads(self.cli("inspect", name).stdout)
        return data[0]

    def stop(self) -> None:
        # dockerd stops its containers and its own containerd on SIGTERM; give it time to.
        stop_process(self.proc, timeout=30)
        # Left behind even by a clean shutdown: the default network namespace's nsfs bind mount.
        # Only mounts under our own root are touched, deepest first.
        for mount in sorted(_mounts_under(self.root), key=len, reverse=True):
            subprocess.run(["umount", mount], capture_output=True, check=False, timeout=30)
        if not _mounts_under(self.root):
            shutil.rmtree(self.root, ignore_errors=True)


def start_daemon(timeout: float = 60) -> DockerDaemon:
    if os.geteuid() != 0:
        raise DaemonUnavailable("dockerd needs root here (rootless Docker is not set up)")
    dockerd = _first_executable(DOCKERD_CANDIDATES, "dockerd")
    docker = _first_executable(DOCKER_CANDIDATES, "docker")
    if dockerd is None or docker is None:
        raise DaemonUnavailable("Debian's docker.io is not installed: bash scripts/setup-deploy")
    # Short path: containerd's sockets live under the exec root, and a unix socket path is <108 bytes.
    root = Path(tempfile.mkdtemp(prefix="ra-dockerd-", dir="/tmp"))
    (root / "daemon.json").write_text("{}", encoding="utf-8")
    (root / "client").mkdir()
    argv = [
        dockerd,
        f"--config-file={root / 'daemon.json'}",
        f"--data-root={root / 'data'}",
        f"--exec-root={root / 'exec'}",
        f"--pidfile={root / 'docker.pid'}",
        f"--host=unix://{root / 'docker.sock'}",
        "--bridge=none",
        "--iptables=false",
        "--ip6tables=false",
    ]
    proc = start_process(argv, root / "dockerd.log")
    daemon = DockerDaemon(root, docker, proc)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = daemon.log_tail()
            daemon.stop()
            raise DaemonUnavailable(f"dockerd exited with {proc.returncode}:\n{tail}")
        if (root / "docker.sock").exists() and daemon.cli("version", check=False, timeout=10).returncode == 0:
            return daemon
        time.sleep(0.2)
    tail = daemon.log_tail()
    daemon.stop()
    raise DaemonUnavailable(f"dockerd did not answer within {timeout}s:\n{tail}")
