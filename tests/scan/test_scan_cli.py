"""``registry-agent scan``: archives and registry images through the installed command.

Oracles: ``dpkg-query --admindir`` over the nginx fixture's dpkg status (extracted with GNU tar) for
the Debian package names; the ``P:`` lines of the Alpine fixture's ``/lib/apk/db/installed`` (GNU
tar again) for the Alpine ones.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

from shared.progress import ByteProgress
from tests.harness.registry import RunningRegistry
from tests.harness.seed import archive

CLI = str(Path(sys.executable).parent / "registry-agent")


def _run(*args: str, state: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("CR_CREDENTIALS", "INSECURE_REGISTRIES")}
    environment |= {"XDG_STATE_HOME": str(state), "REGISTRY_MAX_RETRIES": "0", **(env or {})}
    return subprocess.run(
        [CLI, "scan", *args], capture_output=True, text=True, env=environment, timeout=120, check=False
    )


def _layer_file(fixture: Path, member: str, tmp_path: Path) -> str:
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir(exist_ok=True)
    subprocess.run(["tar", "-xf", str(fixture), "-C", str(unpacked)], check=True)
    entry = json.loads((unpacked / "manifest.json").read_text())[0]
    layer = unpacked / entry["Layers"][0]
    return subprocess.run(
        ["tar", "-xOf", str(layer), member], capture_output=True, check=True
    ).stdout.decode()


def test_scan_docker_archive_lists_what_dpkg_query_lists(tmp_path: Path) -> None:
    fixture = archive("nginx-debian10.docker.tar")
    admin = tmp_path / "dpkg"
    admin.mkdir()
    (admin / "status").write_text(_layer_file(fixture, "var/lib/dpkg/status", tmp_path))
    oracle = subprocess.run(
        ["dpkg-query", "--admindir", str(admin), "-W", "-f", "${db:Status-Status} ${Package}\\n"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    installed = {line.split()[1] for line in oracle.splitlines() if line.startswith("installed ")}

    result = _run(f"docker-archive:{fixture}", "--format", "cyclonedx", state=tmp_path / "state")
    assert result.returncode == 0, result.stderr
    components = json.loads(result.stdout)["components"]
    names = {c["name"] for c in components if c.get("purl", "").startswith("pkg:deb/")}
    assert names == installed and len(installed) == 84
    assert {"name": "debian", "version": "10"}.items() <= next(
        c for c in components if c["type"] == "operating-system"
    ).items()
    assert "3 diff_ids for 1 layers" in result.stderr  # warnings go to stderr, output stays clean
    assert list((tmp_path / "state" / "registry-agent" / "layer-cache").glob("*/sha256-*.json.gz"))

    table = _run(f"docker-archive:{fixture}", state=tmp_path / "state")
    assert table.returncode == 0 and "Debian GNU/Linux 10 (buster)" in table.stdout
    assert "\r" not in table.stderr  # not a terminal: no progress bar


def test_scan_registry_image(tmp_path: Path, registry_noauth: RunningRegistry) -> None:
    fixture = archive("alpine.containerd.tar")
    unpacked = tmp_path / "alpine"
    unpacked.mkdir()
    subprocess.run(["tar", "-xf", str(fixture), "-C", str(unpacked)], check=True)
    layer = unpacked / json.loads((unpacked / "manifest.json").read_text())[0]["Layers"][0]
    database = subprocess.run(
        ["tar", "-xOzf", str(layer), "lib/apk/db/installed"], capture_output=True, text=True, check=True
    ).stdout
    expected = {line[2:] for line in database.splitlines() if line.startswith("P:")}

    env = {"INSECURE_REGISTRIES": registry_noauth.host}
    result = _run(f"{registry_noauth.host}/alpine:3.14", "--json", state=tmp_path / "state", env=env)
    assert result.returncode == 0, result.stderr
    os_result = json.loads(result.stdout)["scanResults"][0]
    graph = next(f["data"] for f in os_result["facts"] if f["type"] == "depGraph")
    names = {p["info"]["name"].split("/")[-1] for p in graph["pkgs"][1:]}
    assert names == expected and len(expected) == 14
    assert os_result["identity"]["type"] == "apk"

    refused = _run(
        f"{registry_noauth.host}/alpine:3.14",
        state=tmp_path / "state",
        env={**env, "SNYK_MAX_IMAGE_SIZE_IN_BYTES": "1000"},
    )
    assert refused.returncode == 1 and "IMAGE_TOO_LARGE" in refused.stderr


def test_progress_bar_draws_only_on_a_terminal(tmp_path: Path) -> None:
    with (tmp_path / "log").open("w") as plain:
        assert ByteProgress.on_tty(100, plain) is None
    leader, follower = pty.openpty()
    try:
        with os.fdopen(follower, "w", closefd=False) as terminal:
            progress = ByteProgress.on_tty(2 * 1024 * 1024, terminal)
            assert progress is not None
            progress(1024 * 1024)
            progress.finish()
        drawn = ""
        # A pty may hand the output over in more than one piece: read up to the final newline.
        while not drawn.endswith("\n") and select.select([leader], [], [], 5)[0]:
            drawn += os.read(leader, 4096).decode()
    finally:
        os.close(leader)
        os.close(follower)
    assert "\rlayers: 1.0 MiB / 2.0 MiB 50%" in drawn and drawn.endswith("\n")
