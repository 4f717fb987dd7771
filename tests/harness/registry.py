"""Start the real CNCF distribution registry (`docker-registry serve`) on loopback in four modes.

* ``noauth``: plain HTTP, no auth.
* ``basic``:  plain HTTP, htpasswd (bcrypt) Basic auth.
* ``token``:  plain HTTP, distribution ``auth.token`` backed by `tokenserver.TokenServer`.
* ``tls``:    HTTPS with a certificate from the session's test CA (``ca_file``) plus Basic auth.

Users (same names/passwords in every authenticated mode): ``tester``/``tester-pass`` may do everything,
``reader``/``reader-pass`` may only pull in token mode (htpasswd has no per-action rights, so in
``basic``/``tls`` ``reader`` can do what ``tester`` can).
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Any

import requests

from . import skopeo
from .certs import TestCA
from .htpasswd import write_htpasswd
from .procs import LOOPBACK, free_port, start_process, stop_process, wait_until
from .tokenserver import TokenServer

REGISTRY_BINARY = "/usr/bin/docker-registry"
USERNAME, PASSWORD = "tester", "tester-pass"
READER, READER_PASSWORD = "reader", "reader-pass"

# Every manifest type the seeded registries hold; sent on every harness manifest GET.
MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


class Mode(StrEnum):
    NOAUTH = "noauth"
    BASIC = "basic"
    TOKEN = "token"
    TLS = "tls"


def registry_binary() -> str | None:
    path = os.environ.get("HARNESS_REGISTRY_BINARY", REGISTRY_BINARY)
    return path if os.access(path, os.X_OK) else shutil.which("docker-registry")


@dataclass
class RunningRegistry:
    mode: Mode
    host: str  # "127.0.0.1:PORT"
    scheme: str  # "http" | "https"
    username: str | None
    password: str | None
    ca_file: Path | None  # PEM of the test CA (tls mode), for `verify=`
    workdir: Path
    storage_dir: Path
    log_file: Path
    token_server: TokenServer | None
    _proc: subprocess.Popen[bytes] = field(repr=False)
    _http: requests.Session = field(default_factory=requests.Session, repr=False)

    def __post_init__(self) -> None:
        # Never route loopback through a developer's HTTP(S)_PROXY.
        self._http.trust_env = False

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def cert_dir(self) -> Path | None:
        """Directory holding `ca.crt`, the layout skopeo's `--cert-dir` expects."""
        return self.ca_file.parent if self.ca_file else None

    @property
    def verify(self) -> str | bool:
        """`verify=` value for `requests` talking to this registry."""
        return str(self.ca_file) if self.ca_file else True

    def stop(self) -> None:
        stop_process(self._proc)
        if self.token_server is not None:
            self.token_server.stop()
        self._http.close()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    # -- skopeo -------------------------------------------------------------------------------------

    def ref(self, name: str) -> str:
        """skopeo reference, e.g. ``ref("busybox:1.31.1")`` -> ``docker://127.0.0.1:PORT/busybox:1.31.1``."""
        return f"docker://{self.host}/{name}"

    def skopeo_flags(self, prefix: str = "", *, anonymous: bool = False) -> list[str]:
        """TLS and credential flags; ``prefix`` is ``""``, ``"src-"`` or ``"dest-"``."""
        flags = [f"--{prefix}cert-dir={self.cert_dir}"] if self.cert_dir else [f"--{prefix}tls-verify=false"]
        if self.username and not anonymous:
            flags.append(f"--{prefix}creds={self.username}:{self.password}")
        elif self.mode is not Mode.NOAUTH:
            flags.append(f"--{prefix}no-creds")
        return flags

    def push(self, source: str, name: str, *, all_images: bool = True, preserve_digests: bool = True) -> None:
        """``skopeo copy SOURCE docker://HOST/NAME``; SOURCE is any skopeo transport reference.

        ``--all`` keeps every instance of an index; ``--preserve-digests`` makes skopeo fail rather than
        silently convert a manifest (so Docker media types arrive as Docker media types).
        """
        args = ["copy", "-q", *self.skopeo_flags("dest-")]
        args += ["--all"] if all_images else []
        args += ["--preserve-digests"] if preserve_digests else []
        skopeo.run([*args, source, self.ref(name)])

    def skopeo_json(
        self,
        command: str,
        name: str,
        *extra: str,
        raw: bool = False,
        anonymous: bool = False,
        platform: str | None = None,
    ) -> Any:
        """Parsed JSON of ``skopeo list-tags|inspect [--raw] [extra] docker://HOST/NAME`` (oracle).

        ``platform`` ("linux/arm/v7") picks an index entry for non-raw ``inspect``; without it skopeo
        picks the *host's* platform, so pass it whenever the answer must not depend on the CI machine.
        """
        args: list[str] = []
        if platform:
            os_, arch, *variant = platform.split("/")
            args += ["--override-os", os_, "--override-arch", arch]
            args += ["--override-variant", variant[0]] if variant else []
        args += [command, *self.skopeo_flags(anonymous=anonymous), *(["--raw"] if raw else []), *extra]
        return skopeo.run_json([*args, self.ref(name)])

    # -- plain HTTP -------------------------------------------------------------------------------

    def auth_headers(self, path: str) -> dict[str, str]:
        """Authorization for a harness-side request (token mode: a freshly minted, unrecorded token)."""
        if self.mode is Mode.TOKEN:
            assert self.token_server is not None
            token = self.token_server.mint(_scopes_for(path))
            return {"Authorization": f"Bearer {token}"}
        if self.username:
            raw = f"{self.username}:{self.password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        return {}

    def request(self, method: str, path: str, *, auth: bool = True, **kwargs: Any) -> requests.Response:
        """Harness HTTP call (authenticated unless ``auth=False``); ``path`` starts with ``/v2/``."""
        headers = {**(self.auth_headers(path) if auth else {}), **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", 10)
        return self._http.request(method, self.url + path, headers=headers, verify=self.verify, **kwargs)

    def tag(self, name: str, source_ref: str, *tags: str) -> str:
        """Point more tags at an existing manifest by re-PUTting its bytes; returns its digest."""
        got = self.request("GET", f"/v2/{name}/manifests/{source_ref}", headers={"Accept": MANIFEST_ACCEPT})
        got.raise_for_status()
        content_type = got.headers["Content-Type"]
        for tag in tags:
            put = self.request(
                "PUT", f"/v2/{name}/manifests/{tag}", data=got.content, headers={"Content-Type": content_type}
            )
            put.raise_for_status()
        return got.headers["Docker-Content-Digest"]


_REPO_PATH = re.compile(r"^/v2/(?P<name>.+?)/(?:manifests|blobs|tags)/")


def _scopes_for(path: str) -> list[str]:
    if path.startswith("/v2/_catalog"):
        return ["registry:catalog:*"]
    match = _REPO_PATH.match(path)
    return [f"repository:{match['name']}:pull,push,delete"] if match else []


def start_registry(
    mode: Mode | str,
    workdir: Path,
    *,
    ca: TestCA,
    seed_storage: Path | None = None,
    start_timeout: float = 15.0,
) -> RunningRegistry:
    """Start one registry in ``workdir``; ``seed_storage`` is copied in first (it is never modified)."""
    mode = Mode(mode)
    binary = registry_binary()
    if binary is None:
        raise FileNotFoundError("docker-registry binary not found (apt-get install docker-registry)")
    workdir.mkdir(parents=True, exist_ok=True)
    storage = workdir / "storage"
    if seed_storage is not None:
        shutil.copytree(seed_storage, storage)
    storage.mkdir(exist_ok=True)

    auth, tls, ca_file, token_server = _auth_and_tls(mode, workdir, ca)
    log_file = workdir / "registry.log"
    try:
        # Retry: the port picked by free_port() can be taken before the registry binds it.
        for _attempt in range(3):
            port = free_port()
            config = _config(port, storage, auth, tls)
            config_file = workdir / "config.yml"  # JSON is valid YAML, and needs no YAML library
            config_file.write_text(json.dumps(config, indent=2))
            proc = start_process([binary, "serve", str(config_file)], log_file, env=_registry_env())
            reg = RunningRegistry(
                mode=mode,
                host=f"{LOOPBACK}:{port}",
                scheme="https" if tls else "http",
                username=USERNAME if mode is not Mode.NOAUTH else None,
                password=PASSWORD if mode is not Mode.NOAUTH else None,
                ca_file=ca_file,
                workdir=workdir,
                storage_dir=storage,
                log_file=log_file,
                token_server=token_server,
                _proc=proc,
            )
            try:
                wait_until(
                    partial(_answers, reg),
                    start_timeout,
                    f"docker-registry ({mode}) on port {port}",
                    alive=partial(_alive, proc),
                )
                return reg
            except (RuntimeError, TimeoutError) as exc:
                stop_process(proc)
                if "address already in use" not in reg.log_tail():
                    raise RuntimeError(f"{exc}; registry log:\n{reg.log_tail()}") from exc
        raise RuntimeError(f"could not bind a port for docker-registry; log:\n{log_file.read_text()}")
    except BaseException:
        if token_server is not None:
            token_server.stop()
        raise


def _answers(reg: RunningRegistry) -> bool:
    # 200 (noauth) or 401 (auth modes): the HTTP server is up and the config was accepted.
    return reg.request("GET", "/v2/", auth=False, timeout=1).status_code in (200, 401)


def _alive(proc: subprocess.Popen[bytes]) -> bool:
    return proc.poll() is None


def _auth_and_tls(
    mode: Mode, workdir: Path, ca: TestCA
) -> tuple[dict[str, Any], dict[str, str] | None, Path | None, TokenServer | None]:
    auth: dict[str, Any] = {}
    tls: dict[str, str] | None = None
    ca_file: Path | None = None
    token_server: TokenServer | None = None
    if mode in (Mode.BASIC, Mode.TLS):
        htpasswd = write_htpasswd(workdir / "htpasswd", {USERNAME: PASSWORD, READER: READER_PASSWORD})
        auth = {"htpasswd": {"realm": "harness-basic", "path": str(htpasswd)}}
    if mode is Mode.TLS:
        server = ca.issue("harness-registry", dns=("localhost",), ips=(LOOPBACK,), server=True)
        (workdir / "server.crt").write_bytes(server.cert_pem())
        (workdir / "server.key").write_bytes(server.key_pem())
        (workdir / "server.key").chmod(0o600)
        certs = workdir / "certs.d"
        certs.mkdir(exist_ok=True)
        ca_file = ca.write_root(certs / "ca.crt")  # skopeo --cert-dir reads *.crt as CAs
        tls = {"certificate": str(workdir / "server.crt"), "key": str(workdir / "server.key")}
    if mode is Mode.TOKEN:
        token_server = TokenServer(ca.issue("harness-token-signer")).start()
        bundle = ca.write_root(workdir / "token-ca.pem")
        auth = {
            "token": {
                "realm": token_server.realm,
                "service": token_server.service,
                "issuer": token_server.issuer,
                "rootcertbundle": str(bundle),
            }
        }
    return auth, tls, ca_file, token_server


def _config(port: int, storage: Path, auth: dict[str, Any], tls: dict[str, str] | None) -> dict[str, Any]:
    http: dict[str, Any] = {"addr": f"{LOOPBACK}:{port}", "secret": secrets.token_hex(16)}
    if tls:
        http["tls"] = tls
    config: dict[str, Any] = {
        "version": "0.1",
        # warn still logs every 4xx at "error" level (skopeo HEADs missing blobs): it goes to the log file.
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(storage)},
            "delete": {"enabled": True},
            # No background purge goroutine walking the storage a test may be inspecting.
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": http,
    }
    if auth:
        config["auth"] = auth
    return config


def _registry_env() -> dict[str, str]:
    # distribution overrides config keys from REGISTRY_* variables: keep the developer's out.
    return {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
