"""``registry-agent list`` and ``describe`` in all four registry modes, checked against skopeo."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.harness.registry import RunningRegistry
from tests.harness.seed import SeedInfo

CLI = str(Path(sys.executable).parent / "registry-agent")


def run_cli(
    registry: RunningRegistry, *args: str, password: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("CR_CREDENTIALS", "INSECURE_REGISTRIES")}
    if registry.scheme == "http":
        environment["INSECURE_REGISTRIES"] = registry.host
    if registry.ca_file:
        environment["REQUESTS_CA_BUNDLE"] = str(registry.ca_file)
    environment["REGISTRY_MAX_RETRIES"] = "0"
    environment.update(env or {})
    command = [CLI, *args]
    stdin = None
    if registry.username and "--registry" in args:
        command += ["--username", registry.username, "--password-stdin"]
        stdin = (password if password is not None else registry.password or "") + "\n"
    return subprocess.run(
        command, input=stdin, capture_output=True, text=True, env=environment, timeout=60, check=False
    )


def test_list_repositories_and_tags(
    registry: RunningRegistry, seeded_images: SeedInfo, skopeo_json: Callable[..., Any]
) -> None:
    repos = run_cli(registry, "list", "--registry", registry.host, "--json")
    assert repos.returncode == 0, repos.stderr
    listed = json.loads(repos.stdout)
    # The session's registry is shared: tests that ran earlier may have pushed repositories of their own.
    assert listed == sorted(listed) and set(seeded_images.repositories) <= set(listed)
    tags = run_cli(registry, "list", "many/tags", "--registry", registry.host)
    assert tags.returncode == 0, tags.stderr
    assert tags.stdout.split() == skopeo_json(registry, "list-tags", "many/tags")["Tags"]


def test_describe_agrees_with_skopeo(registry: RunningRegistry, skopeo_json: Callable[..., Any]) -> None:
    result = run_cli(
        registry,
        "describe",
        f"{registry.host}/built/multi-docker:latest",
        "--platform",
        "linux/arm/v7",
        "--json",
        "--registry",
        registry.host,
    )
    assert result.returncode == 0, result.stderr
    described = json.loads(result.stdout)
    inspected = skopeo_json(registry, "inspect", "built/multi-docker:latest", platform="linux/arm/v7")
    assert described["indexDigest"] == inspected["Digest"]
    assert [layer["digest"] for layer in described["layers"]] == inspected["Layers"]
    assert described["platform"] == "linux/arm/v7"
    assert described["config"]["created"].startswith(inspected["Created"][:19])
    assert sorted(described["platforms"]) == ["linux/amd64", "linux/arm/v7", "linux/arm64/v8"]


def test_describe_table_from_cr_credentials(
    registry: RunningRegistry, skopeo_json: Callable[..., Any]
) -> None:
    creds = base64.b64encode(
        json.dumps(
            {
                "type": "generic",
                "username": registry.username or "",
                "password": registry.password or "",
                "registryBase": registry.host,
            }
        ).encode()
    ).decode()
    result = run_cli(registry, "describe", "busybox:1.31.1", env={"CR_CREDENTIALS": creds})
    assert result.returncode == 0, result.stderr
    inspected = skopeo_json(registry, "inspect", "busybox:1.31.1")
    lines = dict(
        line.split(None, 1)
        for line in result.stdout.splitlines()
        if line and not line.startswith(("LAYER", "sha256:", "index", "media", "image"))
    )
    assert lines["digest"].strip() == inspected["Digest"]
    assert inspected["Layers"][0] in result.stdout


def test_wrong_password_is_a_clean_error(registry_basic: RunningRegistry) -> None:
    result = run_cli(registry_basic, "list", "--registry", registry_basic.host, password="Wr0ng-Pa55-CLI")
    assert result.returncode == 1
    assert result.stderr.startswith("registry-agent: UNAUTHORIZED:")
    assert "Traceback" not in result.stderr and "Wr0ng-Pa55-CLI" not in result.stderr + result.stdout


def test_bad_reference_is_a_clean_error(registry_noauth: RunningRegistry) -> None:
    result = run_cli(registry_noauth, "describe", "../etc/passwd", "--registry", registry_noauth.host)
    assert (
        result.returncode == 1 and "INVALID_REFERENCE" in result.stderr and "Traceback" not in result.stderr
    )


def test_missing_credentials_say_what_to_do(registry_noauth: RunningRegistry) -> None:
    result = run_cli(registry_noauth, "list")
    assert result.returncode == 1 and "--registry" in result.stderr and "CR_CREDENTIALS" in result.stderr
