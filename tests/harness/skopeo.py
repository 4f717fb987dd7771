"""Run `skopeo` hermetically: no user auth file, no user registries.conf, no signature policy file."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

SKOPEO = "skopeo"


def skopeo_path() -> str | None:
    return shutil.which(SKOPEO)


@cache
def _env() -> dict[str, str]:
    """Environment that keeps the developer's containers config and credentials out of the tests."""
    scratch = Path(tempfile.mkdtemp(prefix="harness-skopeo-"))
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    (scratch / "registries.conf").write_text("")  # empty = no mirrors, no insecure lists, no aliases
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "CONTAINERS_", "DOCKER_"))}
    env["CONTAINERS_REGISTRIES_CONF"] = str(scratch / "registries.conf")
    env["REGISTRY_AUTH_FILE"] = str(scratch / "auth.json")  # never created: no stored credentials
    env["DOCKER_CONFIG"] = str(scratch)
    return env


def run(args: Sequence[str], timeout: float = 120) -> str:
    """Run skopeo with global `--insecure-policy` (no /etc/containers/policy.json needed in CI)."""
    argv = [SKOPEO, "--insecure-policy", *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=_env(), check=False)
    if proc.returncode != 0:
        raise SkopeoError(argv, proc.returncode, proc.stderr)
    return proc.stdout


def run_json(args: Sequence[str]) -> Any:
    return json.loads(run(args))


class SkopeoError(RuntimeError):
    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        super().__init__(f"{' '.join(argv)} exited {returncode}: {stderr.strip()}")
        self.returncode = returncode
        self.stderr = stderr
