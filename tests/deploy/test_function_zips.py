"""The per-function zips really run: unpacked alone into a fresh venv and served by functions-framework.

This is what Cloud Functions does with a zip (install requirements.txt, run
``functions-framework --target <entryPoint>`` over ./main.py), minus the cloud: each function
answers on 127.0.0.1, talks to the session's real registry and posts its callbacks to a stand-in
broker client. The venv installs from the cached wheelhouse with --no-index (one install: every zip
carries the same requirements.txt).
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from functions.manifest import FunctionSpec, load_manifest
from shared.api import ScanRequest
from shared.credentials import encode_credentials
from shared.jobs import NewJob
from shared.jobs.pubsub import encode_job
from tests.deploy.artifacts import package_functions
from tests.functions.conftest import Receiver
from tests.harness.procs import free_port, start_process, stop_process, wait_until
from tests.harness.registry import RunningRegistry
from tests.harness.seed import SeedInfo

MANIFEST = load_manifest()
SCAN_IMAGE = ("hello-world", "latest")  # the smallest seeded image: the scan itself is not under test
# The push endpoint Terraform gives the scan-event subscription: the function's URL plus the topic.
TOPIC = "projects/test-project/topics/ra-scan-jobs"


def test_each_zip_holds_only_its_entry_point_the_packages_and_pinned_requirements(
    function_zips: dict[str, Path], requirements_txt: str
) -> None:
    assert set(function_zips) == {spec.name for spec in MANIFEST.functions}
    for spec in MANIFEST.functions:
        with zipfile.ZipFile(function_zips[spec.name]) as archive:
            names = archive.namelist()
            main = archive.read("main.py").decode()
        assert re.findall(r"^from (\S+) import (\S+)$", main, re.M) == [(spec.module, spec.entry_point)]
        assert {"main.py", "requirements.txt", "functions/functions.json", "shared/settings.py"} <= set(names)
        # Only what the runtime needs: no emulator, tests or byte code.
        assert {name.split("/")[0] for name in names} == {
            "main.py",
            "requirements.txt",
            "functions",
            "shared",
        }
        assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
    pins = [line for line in requirements_txt.splitlines() if line and not line.startswith("#")]
    assert pins and all(re.fullmatch(r"[a-z0-9-]+==\S+", line) for line in pins)
    assert "functions-framework" in {line.split("==")[0] for line in pins}


def test_zips_are_reproducible(function_zips: dict[str, Path], tmp_path: Path) -> None:
    # Terraform names each uploaded object after the zip's checksum: an unchanged function must
    # produce the same bytes, or every apply would redeploy everything.
    again = {path.stem: path.read_bytes() for path in package_functions(tmp_path)}
    assert again == {name: path.read_bytes() for name, path in function_zips.items()}


@pytest.fixture(scope="module")
def function_venv(
    tmp_path_factory: pytest.TempPathFactory, wheelhouse_dir: Path, requirements_txt: str
) -> Path:
    """A fresh venv with the zips' requirements.txt installed offline from the wheelhouse."""
    venv = tmp_path_factory.mktemp("function-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    requirements = venv.parent / "requirements.txt"
    requirements.write_text(requirements_txt, encoding="utf-8")
    # Only this command's options: no pip.conf index, find-links or constraints of the machine.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} | {"PIP_CONFIG_FILE": os.devnull}
    result = subprocess.run(
        [
            *(str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"),
            *("--no-index", "--find-links", str(wheelhouse_dir), "-r", str(requirements)),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return venv


@dataclass
class Served:
    spec: FunctionSpec
    base: str
    http: requests.Session
    receiver: Receiver
    registry: RunningRegistry
    credentials: str


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    target = Receiver(free_port())
    target.start()
    yield target
    target.stop()


def _serve_zip(
    spec: FunctionSpec, zip_path: Path, venv: Path, workdir: Path, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], str]:
    source = workdir / "source"
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(source)
    port = free_port()
    argv = [str(venv / "bin" / "functions-framework"), "--target", spec.entry_point, "--source", "main.py"]
    # Deployed without an event trigger (Pub/Sub pushes instead), every function is started as
    # "http"; the decorator in the code decides, exactly as on Cloud Functions.
    argv += ["--signature-type", "http", "--host", "127.0.0.1", "--port", str(port)]
    # A minimal environment, as on the platform: nothing from this test process leaks in.
    full_env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(workdir), "LANG": "C.UTF-8"} | env
    log = workdir / "function.log"
    proc = _start_in(source, argv, log, full_env)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        with requests.Session() as probe:
            probe.trust_env = False
            probe.get(f"{base}/robots.txt", timeout=1)  # answered by the framework itself: 404
        return True

    try:
        wait_until(up, 60, f"functions-framework --target {spec.entry_point}", lambda: proc.poll() is None)
    except (RuntimeError, TimeoutError):
        stop_process(proc)
        raise AssertionError(
            f"{spec.name} did not start:\n{log.read_text(errors='replace')[-3000:]}"
        ) from None
    return proc, base


def _start_in(cwd: Path, argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    previous = Path.cwd()
    os.chdir(cwd)  # the framework resolves --source against the working directory, as the runtime does
    try:
        return start_process(argv, log, env)
    finally:
        os.chdir(previous)


def _check_list_images(served: Served, seeded: SeedInfo) -> None:
    listed = served.http.get(f"{served.base}/list", timeout=30)
    assert listed.status_code == 200, listed.text
    assert set(seeded.repositories) <= set(listed.json())
    tags = served.http.get(f"{served.base}/list/{SCAN_IMAGE[0]}", timeout=30)
    assert tags.status_code == 200, tags.text
    assert tags.json() == seeded.repositories[SCAN_IMAGE[0]]


def _check_describe(served: Served, seeded: SeedInfo) -> None:
    health = served.http.get(f"{served.base}/healthcheck", timeout=30)
    assert health.status_code == 200 and health.json()["ok"] is True
    check = served.http.get(
        f"{served.base}/systemcheck", headers={"Authorization": served.credentials}, timeout=30
    )
    assert check.status_code == 200, check.text
    image = ":".join(SCAN_IMAGE)
    metadata = served.http.get(
        f"{served.base}/image-metadata/{SCAN_IMAGE[0]}?reference={SCAN_IMAGE[1]}", timeout=30
    )
    assert metadata.status_code == 200, metadata.text
    assert metadata.json()["digest"] == seeded.digests[image]


def _check_scan(served: Served, seeded: SeedInfo) -> None:
    accepted = served.http.post(f"{served.base}/scan", json={"image": ":".join(SCAN_IMAGE)}, timeout=30)
    assert accepted.status_code == 202, accepted.text
    status = served.http.get(f"{served.base}/scan/{accepted.json()['scanId']}", timeout=30)
    assert status.status_code == 200 and status.json()["status"] == "queued"


def _check_callback(served: Served, seeded: SeedInfo) -> None:
    # What the scan-results push subscription posts (no_wrapper) at the push path: a bare CallbackRequest.
    body = {
        "scanId": "zip-test",
        "api": "v2",
        "image": ":".join(SCAN_IMAGE),
        "status": "done",
        "result": {"digest": seeded.digests[":".join(SCAN_IMAGE)]},
        "context": {"importId": "imp-zip"},
    }
    delivered = served.http.post(f"{served.base}/callback", json=body, timeout=60)
    assert delivered.status_code == 200, delivered.text
    assert len(delivered.json()["delivered"]) == 2
    assert [r["path"] for r in served.receiver.received] == ["/api/v2/import/result", "/api/v2/import/done"]
    assert all(r["body"]["importId"] == "imp-zip" for r in served.receiver.received)


def _check_scan_event(served: Served, seeded: SeedInfo) -> None:
    # A scan job as scan publishes it, in the envelope a Pub/Sub push subscription posts.
    job = NewJob(
        id="zip-scan-event",
        kind="scan",
        request=ScanRequest(image=":".join(SCAN_IMAGE), importId="imp-event").model_dump(
            by_alias=True, mode="json"
        ),
        credentials=served.credentials,
    )
    message = encode_job(job) | {"messageId": "4242", "publishTime": "2026-01-01T00:00:00Z"}
    envelope = {"message": message, "subscription": "projects/test-project/subscriptions/ra-scan-event"}
    answered = served.http.post(f"{served.base}/{TOPIC}", json=envelope, timeout=240)
    assert answered.status_code == 200, answered.text
    received = served.receiver.received
    assert [r["path"] for r in received] == ["/api/v2/import/result", "/api/v2/import/done"]
    assert {r["body"]["scanId"] for r in received} == {"zip-scan-event"}
    assert received[0]["body"]["importId"] == "imp-event"
    # The scan ran inside the zip's own environment: every module the engine needs was packaged.
    assert received[0]["body"]["status"] == "done", received[0]["body"]
    assert received[0]["body"]["result"]["image"]["digest"]
    raw = served.http.post(
        f"{served.base}/{TOPIC}",
        json={
            "message": {"data": base64.b64encode(b"not a job").decode(), "messageId": "1"},
            "subscription": "s",
        },
        timeout=30,
    )
    assert raw.status_code == 200  # acknowledged and dropped: redelivery could never succeed


CHECKS: dict[str, Callable[[Served, SeedInfo], None]] = {
    "list-images": _check_list_images,
    "describe": _check_describe,
    "scan": _check_scan,
    "callback": _check_callback,
    "scan-event": _check_scan_event,
}


def test_every_function_in_the_manifest_has_a_zip_check() -> None:
    assert set(CHECKS) == {spec.name for spec in MANIFEST.functions}


@pytest.mark.timeout(900)  # first run on a fresh machine fills the wheelhouse from PyPI
@pytest.mark.parametrize("spec", MANIFEST.functions, ids=lambda spec: spec.name)
def test_zip_serves_its_function(
    spec: FunctionSpec,
    function_zips: dict[str, Path],
    function_venv: Path,
    registry_noauth: RunningRegistry,
    seeded_images: SeedInfo,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    credentials = encode_credentials(
        {"type": "generic", "username": "", "password": "", "registryBase": registry_noauth.host}
    )
    env = {
        # What Terraform sets (infra/terraform/main.tf), with local stand-ins for the cloud parts:
        # the scan queue is local (Pub/Sub publishing needs Google), the broker client is a receiver.
        "STATE_DIR": str(tmp_path / "state"),
        "LAYER_CACHE_MAX_BYTES": "0",
        "LOG_LEVEL": "info",
        "SCAN_DISPATCH": "local",
        "CR_CREDENTIALS": credentials,
        "INSECURE_REGISTRIES": registry_noauth.host,
        "BROKER_CLIENT_URL": receiver.url,
    }
    proc, base = _serve_zip(spec, function_zips[spec.name], function_venv, tmp_path, env)
    http = requests.Session()
    http.trust_env = False
    started = time.monotonic()
    try:
        CHECKS[spec.name](Served(spec, base, http, receiver, registry_noauth, credentials), seeded_images)
    except AssertionError:
        print((tmp_path / "function.log").read_text(errors="replace")[-3000:])
        raise
    finally:
        http.close()
        stop_process(proc)
    print(f"{spec.name}: checks took {time.monotonic() - started:.1f}s")
    assert json.dumps(receiver.received).count(credentials) == 0  # no credential in any callback
