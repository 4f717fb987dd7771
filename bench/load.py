"""Load benchmark of the agent: concurrent listing and describing against a big registry, then queued scans.

Run (from the project root)::

    .venv/bin/python bench/load.py           # reduced size: 1,000 repositories / 1,000 tags, 50 scans
    .venv/bin/python bench/load.py --full    # 10,000 repositories / 10,000 tags, 500 scans

Both use 200 concurrent connections; ``--tiny`` is the smoke test's size. Sizes can be overridden
(``--repos --tags --concurrency --requests --scans --images``); ``--mix catalog=10,tags=20,metadata=70``
sets the listing load's shares, ``--skip-listing``/``--skip-scans`` run one part, ``--no-layer-cache``
scans with the layer cache off, ``--agent-threads N`` is a what-if with another request-thread count,
``--profile DIR`` records py-spy stacks of the agent worker, ``--json``/``--markdown`` write the results.
Results and findings of past runs: bench/LOAD.md.

Everything runs on 127.0.0.1 and is started and stopped (by PID) here: the real CNCF registry
(``docker-registry``, token auth through the harness token server), the real agent
(``registry-agent serve``, gunicorn) and a recording stand-in for the broker client.

Part 1, listing: the registry's filesystem storage is written directly (one shared blob set; per
repository the ``_layers`` links, a manifest revision link and the tag links the registry itself
writes on a push), which fills 10,000 repositories in seconds where pushing them would take hours;
the registry serving it is the unmodified one. A load client in a separate process (Python threads,
one keep-alive connection each, a fixed number of requests, a deadline) sends ``/list``,
``/list/<repo with many tags>`` and ``/image-metadata`` at the given concurrency and checks every
answer. Then single requests go through a counting TCP proxy in front of the registry, which proves
what one listing costs the registry: TCP connections, HTTP requests and token requests per scope.

Part 2, scans: a few small images sharing their base layers are built and pushed with skopeo;
N scans spread over them are queued at once with ``MAX_ACTIVE_OPERATIONS`` 1 and 2 (a fresh agent
each); throughput runs from the first submission to the last ``done`` callback, and every scan must
deliver its ``result`` and ``done`` callbacks exactly once.

Peak memory is the agent's process tree (gunicorn master and worker, and a scan's layer worker while
it runs): the largest sum, over the polls of ``/proc``, of the ``VmHWM`` (the kernel's resident-set
high-water mark) of the processes alive at that poll; the registry, the token server, the load
client and this process are not counted. The process exits 1 when any
request failed, any callback is missing or doubled, or the scan memory exceeds the 2 GB budget.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `tests.harness` and `tests.e2e` importable
    sys.path.insert(0, str(ROOT))

from bench.machine import machine  # noqa: E402
from tests.e2e.agent import AGENT_CLI, AgentProcess  # noqa: E402
from tests.harness.broker import make_cr_credentials  # noqa: E402
from tests.harness.certs import TestCA  # noqa: E402
from tests.harness.images import AMD64, Symlink, build_image  # noqa: E402
from tests.harness.procs import LOOPBACK  # noqa: E402
from tests.harness.recorder import SnykApiRecorder  # noqa: E402
from tests.harness.registry import Mode, RunningRegistry, start_registry  # noqa: E402

MIB = 1024 * 1024
# The product spec's memory budget for the agent.
MEMORY_BUDGET_BYTES = 2 * 1000**3
BIG_REPO = "big/many-tags"
RESULT_PATH, DONE_PATH = "/api/v2/import/result", "/api/v2/import/done"
# Share of each request kind in the listing load: /list, /list/<BIG_REPO>, /image-metadata/<repo>.
MIX = {"catalog": 0.1, "tags": 0.2, "metadata": 0.7}


@dataclass(frozen=True)
class Size:
    repos: int
    tags: int
    concurrency: int
    requests: int
    scans: int
    images: int
    deadline: float  # seconds a load phase may take before its remaining requests are given up


SIZES = {
    "full": Size(
        repos=10_000, tags=10_000, concurrency=200, requests=1000, scans=500, images=8, deadline=600
    ),
    "reduced": Size(repos=1000, tags=1000, concurrency=200, requests=600, scans=50, images=4, deadline=300),
    # The smoke test's size: every part runs, nothing is measured.
    "tiny": Size(repos=30, tags=30, concurrency=10, requests=30, scans=6, images=2, deadline=120),
}


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


# -- peak memory of the agent's process tree -----------------------------------------------------------


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/children") as handle:
                found.extend(int(child) for child in handle.read().split())
    return found


def _memory_kib(pid: int) -> tuple[int, int] | None:
    """(VmHWM, VmRSS) in KiB; None when the process is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            text = handle.read()
    except OSError:
        return None
    values = dict(line.split(":", 1) for line in text.splitlines() if line.startswith(("VmHWM", "VmRSS")))
    if "VmHWM" not in values or "VmRSS" not in values:
        return None
    return int(values["VmHWM"].split()[0]), int(values["VmRSS"].split()[0])


class TreeMemory:
    """Polls a process tree: each process's high-water mark, and the highest sampled sum of current RSS.

    VmHWM is kept by the kernel, so a spike between two polls is not lost. Processes come and go
    (a layer worker lives for one scan), so the peak is the largest sum over the processes alive at
    one poll, not a sum over every process ever seen (500 scans' workers would add up to gigabytes
    that were never resident together). A worker that lives less than a poll may be missed.
    """

    def __init__(self, root_pid: int, interval: float = 0.1) -> None:
        self.root_pid = root_pid
        self.interval = interval
        self.hwm_kib: dict[int, int] = {}
        self.sampled_peak_kib = 0
        self.peak_kib = 0  # the largest sum of high-water marks of processes alive together
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-memory", daemon=True)

    def sample(self) -> None:
        stack, total, high_water = [self.root_pid], 0, 0
        while stack:
            pid = stack.pop()
            stack.extend(_children(pid))
            memory = _memory_kib(pid)
            if memory is not None:
                self.hwm_kib[pid] = max(self.hwm_kib.get(pid, 0), memory[0])
                high_water += memory[0]
                total += memory[1]
        self.sampled_peak_kib = max(self.sampled_peak_kib, total)
        self.peak_kib = max(self.peak_kib, high_water)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> TreeMemory:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    @property
    def peak_bytes(self) -> int:
        return self.peak_kib * 1024

    @property
    def processes(self) -> int:
        return len(self.hwm_kib)


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU time of one process (all its threads) so far; 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            text = handle.read()
    except OSError:
        return 0.0
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) ": state is field 0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores, everything but idle and iowait)."""
    with open("/proc/stat") as handle:
        fields = [int(v) for v in handle.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds spent during a phase by the agent's tree, the registry and this process (which
    hosts the token server, the counting proxy and the callback recorder)."""

    def __init__(self, agent_pids: Sequence[int], registry_pid: int) -> None:
        self.pids = {"agent": list(agent_pids), "registry": [registry_pid]}
        self.start = {name: sum(cpu_seconds(p) for p in pids) for name, pids in self.pids.items()}
        self.start["bench process"] = cpu_seconds()
        self.start["machine"] = machine_busy_seconds()
        self.wall = time.monotonic()

    def stop(self, extra: dict[str, float] | None = None) -> dict[str, float]:
        used = {
            name: sum(cpu_seconds(p) for p in pids) - self.start[name] for name, pids in self.pids.items()
        }
        used["bench process"] = cpu_seconds() - self.start["bench process"]
        used |= extra or {}
        # Whatever else ran on the machine meanwhile (other benchmarks, test suites) competed for the
        # same cores: reported, so that a disturbed run can be told from a quiet one.
        used["other processes"] = max(
            0.0, machine_busy_seconds() - self.start["machine"] - sum(used.values())
        )
        used["wall"] = time.monotonic() - self.wall
        return used


def _agent_pids(agent: AgentProcess) -> list[int]:
    assert agent.pid is not None
    return [agent.pid, *agent.worker_pids()]


# -- optional sampling profile of the agent's worker process (py-spy) --------------------------------------


@contextlib.contextmanager
def profiled(agent: AgentProcess, out: Path | None) -> Iterator[None]:
    """Record the agent worker's stacks with ``py-spy record --nonblocking`` (the worker is not paused
    while sampled) into ``out`` as collapsed stacks; nothing when ``out`` is None."""
    if out is None:
        yield
        return
    spy = shutil.which("py-spy") or os.environ.get("PY_SPY")
    workers = agent.worker_pids()
    if not spy or not workers:
        raise RuntimeError("--profile needs py-spy (on PATH or in $PY_SPY) and a running agent worker")
    argv = [spy, "record", "--nonblocking", "--threads", "--format", "raw", "--rate", "200"]
    proc = subprocess.Popen(
        [*argv, "-o", str(out), "-p", str(workers[0])],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT; stopped by its own PID
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


# -- a registry with many repositories, written straight into its storage ------------------------------


@dataclass(frozen=True)
class Seeded:
    repositories: list[str]  # every repository, BIG_REPO included, in the registry's (lexical) order
    tags: int  # tags of BIG_REPO
    digest: str  # the one manifest every tag points at
    seconds: float


def seed_storage(storage: Path, workdir: Path, repos: int, tags: int) -> Seeded:
    """Write ``repos`` repositories (one of them ``BIG_REPO`` with ``tags`` tags) in distribution's
    filesystem layout (``docker/registry/v2``), all pointing at one image's blobs.

    The layout is what a push writes: ``blobs/sha256/<2>/<hex>/data`` once per blob; per repository
    ``_layers/sha256/<hex>/link`` for the config and each layer (the registry serves a blob only
    through a repository that links it), ``_manifests/revisions/sha256/<hex>/link`` and, per tag,
    ``_manifests/tags/<tag>/current/link`` and ``.../index/sha256/<hex>/link``. Every link file holds
    the same few bytes, so they are hard links to one file per digest: the registry only reads them,
    and nothing pushes into this registry (a push would rewrite a link file in place, changing all).
    """
    started = time.perf_counter()
    image = build_image(workdir / "seed-image")
    layout_blobs = image.layout / "blobs" / "sha256"
    manifest_digest = image.digest
    manifest = json.loads((layout_blobs / manifest_digest.split(":", 1)[1]).read_bytes())
    v2 = storage / "docker" / "registry" / "v2"
    for blob in layout_blobs.iterdir():
        target = v2 / "blobs" / "sha256" / blob.name[:2] / blob.name
        target.mkdir(parents=True)
        shutil.copyfile(blob, target / "data")
    link_sources: dict[str, str] = {}
    sources = v2 / "link-sources"  # outside repositories/: the registry never looks here
    sources.mkdir()
    for digest in [
        manifest_digest,
        manifest["config"]["digest"],
        *(lay["digest"] for lay in manifest["layers"]),
    ]:
        path = sources / digest.replace(":", "-")
        path.write_text(digest)
        link_sources[digest] = str(path)
    blob_digests = [manifest["config"]["digest"], *(lay["digest"] for lay in manifest["layers"])]
    manifest_hex = manifest_digest.split(":", 1)[1]

    def link(directory: str, digest: str) -> None:
        os.makedirs(directory, exist_ok=True)
        os.link(link_sources[digest], os.path.join(directory, "link"))

    def repository(name: str, tag_names: Sequence[str]) -> None:
        base = os.path.join(v2, "repositories", name)
        for digest in blob_digests:
            link(os.path.join(base, "_layers", "sha256", digest.split(":", 1)[1]), digest)
        link(os.path.join(base, "_manifests", "revisions", "sha256", manifest_hex), manifest_digest)
        for tag in tag_names:
            tag_dir = os.path.join(base, "_manifests", "tags", tag)
            link(os.path.join(tag_dir, "current"), manifest_digest)
            link(os.path.join(tag_dir, "index", "sha256", manifest_hex), manifest_digest)

    # Two levels like real registries (team/app); at most 100 repositories per namespace directory.
    names = [f"ns{i % 100:02d}/app{i:05d}" for i in range(repos - 1)]
    for name in names:
        repository(name, ["v1"])
    repository(BIG_REPO, [f"t{i:05d}" for i in range(tags)])
    return Seeded(sorted([*names, BIG_REPO]), tags, manifest_digest, time.perf_counter() - started)


# -- a TCP proxy that counts connections and HTTP requests ------------------------------------------------


class CountingProxy:
    """Forwards loopback TCP connections to one upstream; counts accepted connections and, on each,
    the HTTP requests the client sent (request heads parsed from the client's byte stream)."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server((LOOPBACK, 0))
        self._lock = threading.Lock()
        self.requests: list[tuple[int, str]] = []  # (connection number, "METHOD /path?query")
        self.connections = 0
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._accepting = threading.Thread(target=self._accept, name="proxy-accept", daemon=True)

    @property
    def host(self) -> str:
        return f"{LOOPBACK}:{self._listener.getsockname()[1]}"

    def start(self) -> CountingProxy:
        self._accepting.start()
        return self

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.connections = 0

    def snapshot(self) -> tuple[int, list[str]]:
        """(connections accepted, "#connection METHOD target" of every request seen)."""
        with self._lock:
            return self.connections, [f"#{number} {request}" for number, request in self.requests]

    def stop(self) -> None:
        # shutdown() wakes the thread blocked in accept() (close() alone would leave it blocked).
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self._accepting.join(5)
        for thread in self._threads:
            thread.join(5)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            with self._lock:
                self.connections += 1
                number = self.connections
                self._sockets += [client, upstream]
            for source, sink, count in ((client, upstream, True), (upstream, client, False)):
                thread = threading.Thread(target=self._pump, args=(source, sink, number if count else 0))
                thread.daemon = True
                thread.start()
                self._threads.append(thread)

    def _pump(self, source: socket.socket, sink: socket.socket, number: int) -> None:
        pending = b""  # client bytes not yet split into request heads
        skip = 0  # bytes of a request body still to pass over
        try:
            while data := source.recv(65536):
                sink.sendall(data)
                if not number:
                    continue
                pending += data
                while True:
                    if skip:
                        taken = min(skip, len(pending))
                        pending, skip = pending[taken:], skip - taken
                    head, sep, rest = pending.partition(b"\r\n\r\n")
                    if not sep:
                        break
                    pending = rest
                    lines = head.decode("latin-1").split("\r\n")
                    method, target = [*lines[0].split(" "), "", ""][:2]
                    for line in lines[1:]:
                        if line.lower().startswith("content-length:"):
                            skip = int(line.split(":", 1)[1])
                    with self._lock:
                        self.requests.append((number, f"{method} {target}"))
        except OSError:
            pass
        finally:
            # Half-close towards the other side, as the peer did: the other pump then ends too.
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)


# -- the load client (runs in its own process: its threads must not share a GIL with the servers here) --


def _check(kind: str, status: int, body: bytes, expect: Any) -> str | None:
    """None when the answer is the right one; else why not (a wrong answer is an error too)."""
    if status != 200:
        return f"HTTP {status}"
    try:
        document = json.loads(body)
    except ValueError:
        return "not JSON"
    if kind in ("catalog", "tags"):
        return None if isinstance(document, list) and len(document) == expect else "wrong list length"
    return None if isinstance(document, dict) and document.get("digest") == expect else "wrong digest"


def run_client(spec: dict[str, Any]) -> dict[str, Any]:
    """Send ``spec["requests"]`` (kind, path, expected) over ``spec["concurrency"]`` keep-alive
    connections; requests not started by the deadline are reported as not sent."""
    plan: list[list[Any]] = spec["requests"]
    headers = {"Authorization": spec["authorization"], "Connection": "keep-alive"}
    results: list[dict[str, Any] | None] = [None] * len(plan)
    next_index = iter(range(len(plan)))
    lock = threading.Lock()
    barrier = threading.Barrier(spec["concurrency"])
    reconnects = Counter[str]()
    started = time.monotonic()
    deadline = started + spec["deadline"]

    def connect() -> http.client.HTTPConnection:
        return http.client.HTTPConnection(LOOPBACK, spec["port"], timeout=spec["timeout"])

    def worker() -> None:
        conn = connect()
        barrier.wait()  # every connection starts sending at the same moment
        while True:
            with lock:
                index = next(next_index, None)
            if index is None or time.monotonic() > deadline:
                conn.close()
                return
            kind, path, expect = plan[index]
            begun = time.perf_counter()
            status, error = 0, None
            for attempt in range(2):
                try:
                    conn.request("GET", path, headers=headers)
                    response = conn.getresponse()
                    body = response.read()
                    status = response.status
                    error = _check(kind, status, body, expect)
                    break
                except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                    # The server closed an idle keep-alive connection: reconnect once, as HTTP clients do.
                    conn.close()
                    conn = connect()
                    if attempt == 1:
                        error = type(exc).__name__
                    else:
                        with lock:
                            reconnects[type(exc).__name__] += 1
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    conn = connect()
                    error = type(exc).__name__
                    break
            results[index] = {
                "kind": kind,
                "status": status,
                "seconds": time.perf_counter() - begun,
                "error": error,
                "at": time.monotonic() - started,
            }

    threads = [threading.Thread(target=worker, name=f"client-{i}") for i in range(spec["concurrency"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {
        "results": [r for r in results if r is not None],
        "not_sent": sum(r is None for r in results),
        "reconnects": dict(reconnects),
        "wall_seconds": time.monotonic() - started,
        "cpu_seconds": cpu_seconds(),
    }


def _client_main(spec_path: str, out_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    Path(out_path).write_text(json.dumps(run_client(spec)))
    return 0


# -- part 1: listing and describing under load --------------------------------------------------------


@dataclass
class KindStats:
    kind: str
    count: int
    errors: int
    p50_ms: float
    p99_ms: float
    max_ms: float


@dataclass
class CostRow:
    request: str
    registry_requests: int
    connections: int
    tokens: dict[str, int]
    requests_seen: list[str]


@dataclass
class ListingResult:
    repos: int
    tags: int
    concurrency: int
    mix: dict[str, float]
    agent: str  # the agent command line
    seed_seconds: float
    registry_start_seconds: float
    registry_alone: dict[str, float]  # one direct harness request per kind, seconds
    requests: int
    not_sent: int
    errors: int
    error_kinds: dict[str, int]
    reconnects: dict[str, int]
    wall_seconds: float
    throughput: float
    by_kind: list[KindStats]
    overall: KindStats
    token_requests: int
    peak_rss_bytes: int
    sampled_peak_rss_bytes: int
    processes: int
    cpu: dict[str, float] = field(default_factory=dict)
    cost: list[CostRow] = field(default_factory=list)


def _credentials(host: str) -> str:
    return make_cr_credentials("generic", "tester", "tester-pass", host)


def _plan(seeded: Seeded, count: int, rng: random.Random, mix: dict[str, float]) -> list[list[Any]]:
    """``count`` requests in the ``mix`` proportions, shuffled; each with the answer it must get."""
    small = [r for r in seeded.repositories if r != BIG_REPO]
    kinds = ["catalog"] * round(count * mix["catalog"]) + ["tags"] * round(count * mix["tags"])
    kinds = (kinds + ["metadata"] * count)[:count]
    rng.shuffle(kinds)
    plan: list[list[Any]] = []
    for kind in kinds:
        if kind == "catalog":
            plan.append([kind, "/list", len(seeded.repositories)])
        elif kind == "tags":
            plan.append([kind, f"/list/{BIG_REPO}", seeded.tags])
        else:
            plan.append([kind, f"/image-metadata/{rng.choice(small)}?reference=v1", seeded.digest])
    return plan


def _stats(kind: str, rows: Sequence[dict[str, Any]]) -> KindStats:
    latencies = [r["seconds"] * 1000 for r in rows]
    return KindStats(
        kind=kind,
        count=len(rows),
        errors=sum(r["error"] is not None for r in rows),
        p50_ms=statistics.median(latencies) if latencies else 0.0,
        p99_ms=percentile(latencies, 99),
        max_ms=max(latencies, default=0.0),
    )


def _registry_alone(registry: RunningRegistry, seeded: Seeded) -> dict[str, float]:
    """What the registry itself takes, one harness request at a time (the floor under the agent)."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    url: str | None = "/v2/_catalog?n=1000"
    pages = 0
    while url:
        answer = registry.request("GET", url)
        answer.raise_for_status()
        pages += 1
        link = answer.headers.get("Link")
        url = link.split(";", 1)[0].strip("<> ") if link else None
    timings[f"catalog ({pages} pages)"] = time.perf_counter() - started
    started = time.perf_counter()
    registry.request("GET", f"/v2/{BIG_REPO}/tags/list?n=1000").raise_for_status()
    timings["tags/list (1 page)"] = time.perf_counter() - started
    started = time.perf_counter()
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
    small = next(r for r in seeded.repositories if r != BIG_REPO)
    registry.request("GET", f"/v2/{small}/manifests/v1", headers=accept).raise_for_status()
    timings["manifest GET"] = time.perf_counter() - started
    return timings


def _cost(
    agent: AgentProcess,
    proxy: CountingProxy,
    registry: RunningRegistry,
    label: str,
    path: str,
    scan: dict[str, Any] | None = None,
) -> CostRow:
    """One agent request (or, with ``scan``, one whole scan) whose registry traffic goes through the
    proxy: what it cost the registry."""
    assert registry.token_server is not None
    registry.token_server.reset()
    proxy.reset()
    headers = {"Authorization": _credentials(proxy.host)}
    if scan is None:
        answer = agent.get(path, headers=headers, timeout=120)
    else:
        answer = agent.post(path, json=scan, headers=headers, timeout=120)
    if answer.status_code not in (200, 202):
        raise RuntimeError(f"{path} through the proxy: HTTP {answer.status_code} {answer.text[:300]}")
    if scan is not None:
        status = agent.wait_scan(answer.json()["scanId"], timeout=120)
        if status["status"] != "done":
            raise RuntimeError(f"scan through the proxy: {status}")
    # The agent has answered, so its registry connections are idle or closed: the counts are final.
    connections, seen = proxy.snapshot()
    return CostRow(label, len(seen), connections, dict(registry.token_server.scope_counts), seen)


def agent_command(threads: int | None) -> tuple[str, ...]:
    """The production command (``registry-agent serve``, 8 request threads), or the same server with
    another thread count (``python -m emulator --threads N``) for a what-if run."""
    return AGENT_CLI if threads is None else (sys.executable, "-m", "emulator", "--threads", str(threads))


def listing_phase(
    size: Size,
    workdir: Path,
    ca: TestCA,
    log: Any,
    *,
    mix: dict[str, float],
    threads: int | None = None,
    profile: Path | None = None,
) -> ListingResult:
    storage = workdir / "registry-list" / "storage"
    seeded = seed_storage(storage, workdir, size.repos, size.tags)
    log(f"seeded {len(seeded.repositories):,} repositories, {seeded.tags:,} tags in {seeded.seconds:.1f} s")
    with contextlib.ExitStack() as stack:
        started = time.perf_counter()
        # Started on the storage written above (no seed_storage: that would copy every file first).
        registry = start_registry(Mode.TOKEN, workdir / "registry-list", ca=ca, start_timeout=120)
        stack.callback(registry.stop)
        registry_start = time.perf_counter() - started
        alone = _registry_alone(registry, seeded)
        log("registry alone: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in alone.items()))
        upstream_host, upstream_port = registry.host.rsplit(":", 1)
        proxy = CountingProxy(upstream_host, int(upstream_port)).start()
        stack.callback(proxy.stop)
        agent = AgentProcess(
            workdir / "agent-list",
            {
                "INSECURE_REGISTRIES": f"{registry.host},{proxy.host}",
                "LOG_LEVEL": "info",  # the production default, not the e2e tests' debug
                "REGISTRY_MAX_RETRIES": "4",
            },
            agent_command(threads),
        )
        stack.callback(agent.close)
        agent.start()
        assert agent.pid is not None
        authorization = _credentials(registry.host)
        with TreeMemory(agent.pid) as memory:
            # Warm-up (not measured): the first request of each kind imports and builds what it needs.
            for kind, path, expect in _plan(seeded, 10, random.Random(1), mix):  # noqa: S311 - not crypto
                answer = agent.get(path, headers={"Authorization": authorization}, timeout=120)
                if _check(kind, answer.status_code, answer.content, expect):
                    raise RuntimeError(f"warm-up {path}: HTTP {answer.status_code} {answer.text[:300]}")
            assert registry.token_server is not None
            registry.token_server.reset()
            spec = {
                "port": agent.port,
                "authorization": authorization,
                "concurrency": size.concurrency,
                "deadline": size.deadline,
                "timeout": size.deadline,
                "requests": _plan(seeded, size.requests, random.Random(7), mix),  # noqa: S311 - not crypto
            }
            log(f"load: {size.requests:,} requests over {size.concurrency} connections ...")
            cpu = CpuMeter(_agent_pids(agent), registry.pid)
            with profiled(agent, profile / "listing.txt" if profile else None):
                outcome = _run_client_process(spec, workdir, size.deadline + 60)
            cpu_used = cpu.stop({"load client": outcome["cpu_seconds"]})
            token_requests = registry.token_server.count()
        rows = outcome["results"]
        by_kind = [_stats(k, [r for r in rows if r["kind"] == k]) for k in ("catalog", "tags", "metadata")]
        errors = Counter(r["error"] for r in rows if r["error"] is not None)
        result = ListingResult(
            repos=len(seeded.repositories),
            tags=seeded.tags,
            concurrency=size.concurrency,
            mix=mix,
            agent=" ".join(Path(a).name if a.startswith("/") else a for a in agent_command(threads)),
            seed_seconds=seeded.seconds,
            registry_start_seconds=registry_start,
            registry_alone=alone,
            requests=len(rows),
            not_sent=outcome["not_sent"],
            errors=sum(errors.values()),
            error_kinds=dict(errors),
            reconnects=outcome["reconnects"],
            wall_seconds=outcome["wall_seconds"],
            throughput=len(rows) / outcome["wall_seconds"] if outcome["wall_seconds"] else 0.0,
            by_kind=by_kind,
            overall=_stats("all", rows),
            token_requests=token_requests,
            peak_rss_bytes=memory.peak_bytes,
            sampled_peak_rss_bytes=memory.sampled_peak_kib * 1024,
            processes=memory.processes,
            cpu=cpu_used,
        )
        small = next(r for r in seeded.repositories if r != BIG_REPO)
        result.cost = [
            _cost(
                agent, proxy, registry, f"GET /list/{BIG_REPO} ({seeded.tags:,} tags)", f"/list/{BIG_REPO}"
            ),
            _cost(agent, proxy, registry, f"GET /list ({len(seeded.repositories):,} repos)", "/list"),
            _cost(agent, proxy, registry, "GET /image-metadata", f"/image-metadata/{small}?reference=v1"),
        ]
    return result


def _run_client_process(spec: dict[str, Any], workdir: Path, timeout: float) -> dict[str, Any]:
    spec_path, out_path = workdir / "client-spec.json", workdir / "client-out.json"
    spec_path.write_text(json.dumps(spec))
    # subprocess.run kills its own child (by PID) on timeout; the client also stops at its deadline.
    done = subprocess.run(
        [sys.executable, __file__, "--client", str(spec_path), str(out_path)],
        timeout=timeout,
        check=False,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"load client failed ({done.returncode}):\n{done.stderr[-3000:]}")
    outcome: dict[str, Any] = json.loads(out_path.read_text())
    return outcome


# -- part 2: queued scans -------------------------------------------------------------------------------


def _rng_bytes(rng: random.Random, size: int) -> bytes:
    # Incompressible, like the binaries and libraries that make up most of a real image.
    return rng.randbytes(size)


def _scan_layers(index: int) -> list[dict[str, Any]]:
    """Two base layers every image shares (an Alpine-like OS with ~40 apk packages, a Python runtime
    with 20 distributions and ~3 MiB of libraries) and one application layer of its own (npm packages
    and ~0.5 MiB of data)."""
    base_rng = random.Random(11)  # noqa: S311 - deterministic content, not crypto
    apk = "".join(f"P:pkg{n:02d}\nV:1.{n}.0-r0\nA:x86_64\nL:MIT\no:pkg{n:02d}\n\n" for n in range(40))
    os_layer: dict[str, Any] = {
        "etc/os-release": 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME="Alpine v3.19"\n',
        "lib/apk/db/installed": apk,
        "bin/sh": Symlink("/bin/busybox"),
        "bin/busybox": _rng_bytes(base_rng, 512 * 1024),
    }
    runtime: dict[str, Any] = {f"usr/lib/libbench{n}.so": _rng_bytes(base_rng, 768 * 1024) for n in range(4)}
    for n in range(20):
        dist = f"usr/lib/python3.11/site-packages/dist{n:02d}-2.{n}.0.dist-info"
        runtime[f"{dist}/METADATA"] = f"Metadata-Version: 2.1\nName: dist{n:02d}\nVersion: 2.{n}.0\n"
        runtime[f"{dist}/RECORD"] = ""
    app_rng = random.Random(100 + index)  # noqa: S311 - deterministic content, not crypto
    app: dict[str, Any] = {"srv/app/data.bin": _rng_bytes(app_rng, 512 * 1024)}
    app["srv/app/package.json"] = json.dumps({"name": f"app{index}", "version": "1.0.0"})
    for n in range(10):
        name = f"lib{index}-{n}"
        app[f"srv/app/node_modules/{name}/package.json"] = json.dumps({"name": name, "version": f"{n}.0.0"})
    return [os_layer, runtime, app]


@dataclass
class ScanResult:
    max_active: int
    layer_cache: bool
    scans: int
    images: int
    submit_seconds: float
    makespan_seconds: float
    throughput: float
    done: int
    failed: int
    failure_codes: dict[str, int]
    delivered_results: int
    delivered_dones: int
    missing: int
    duplicated: int
    token_requests: int
    peak_rss_bytes: int
    sampled_peak_rss_bytes: int
    processes: int
    packages_in_one_result: int
    timed_out: bool
    cpu: dict[str, float] = field(default_factory=dict)


def _packages(result: dict[str, Any] | None) -> int:
    total = 0
    for scan in (result or {}).get("scanResults", []):
        for fact in scan.get("facts", []):
            if fact.get("type") == "depGraph":
                total += max(0, len(fact["data"].get("pkgs", [])) - 1)
    return total


def scan_cost(registry: RunningRegistry, image: str, workdir: Path) -> list[CostRow]:
    """One scan through the counting proxy, with an empty layer cache and again with a warm one."""
    upstream_host, upstream_port = registry.host.rsplit(":", 1)
    with contextlib.ExitStack() as stack:
        proxy = CountingProxy(upstream_host, int(upstream_port)).start()
        stack.callback(proxy.stop)
        env = {"INSECURE_REGISTRIES": proxy.host, "LOG_LEVEL": "info", "REGISTRY_MAX_RETRIES": "4"}
        agent = AgentProcess(workdir / "agent-scan-cost", env, AGENT_CLI)
        stack.callback(agent.close)
        agent.start()
        body = {"image": image, "importId": "load-cost", "orgId": "org-load"}
        return [
            _cost(agent, proxy, registry, f"scan {image}, empty layer cache", "/scan", body),
            _cost(agent, proxy, registry, f"scan {image}, layers cached", "/scan", body),
        ]


def push_scan_images(registry: RunningRegistry, workdir: Path, count: int) -> list[str]:
    """Build ``count`` images sharing their base layers and push them; returns ``repo:tag`` names."""

    def one(index: int) -> str:
        image = build_image(workdir / f"scan-image-{index}", platform=AMD64, layers=_scan_layers(index))
        name = f"load/app{index}:1"
        registry.push(image.source, name)
        return name

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(one, range(count)))


def scan_phase(
    max_active: int,
    scans: int,
    images: list[str],
    registry: RunningRegistry,
    workdir: Path,
    deadline: float,
    profile: Path | None = None,
    layer_cache: bool = True,
    layer_worker: bool = True,
) -> ScanResult:
    assert registry.token_server is not None
    with contextlib.ExitStack() as stack:
        recorder = stack.enter_context(SnykApiRecorder())
        agent = AgentProcess(
            workdir / f"agent-scan-{max_active}",
            {
                "INSECURE_REGISTRIES": registry.host,
                "BROKER_CLIENT_URL": recorder.url,
                "MAX_ACTIVE_OPERATIONS": str(max_active),
                "LOG_LEVEL": "info",
                "REGISTRY_MAX_RETRIES": "4",
                # 0 turns the layer cache off: every scan downloads and reads every layer.
                **({"LAYER_CACHE_MAX_BYTES": "0"} if not layer_cache else {}),
                **({"SCAN_LAYER_WORKER": "false"} if not layer_worker else {}),
            },
            AGENT_CLI,
        )
        stack.callback(agent.close)
        agent.start()
        assert agent.pid is not None
        registry.token_server.reset()
        authorization = _credentials(registry.host)
        with (
            TreeMemory(agent.pid) as memory,
            profiled(agent, profile / f"scans-{max_active}.txt" if profile else None),
        ):
            cpu = CpuMeter(_agent_pids(agent), registry.pid)
            started = time.monotonic()
            bodies = [
                {"image": images[i % len(images)], "importId": f"load-{i}", "orgId": "org-load"}
                for i in range(scans)
            ]
            session_lock = threading.Lock()

            def submit(body: dict[str, Any]) -> str:
                with session_lock:  # AgentProcess keeps one requests.Session; serialise its use
                    answer = agent.post("/scan", json=body, headers={"Authorization": authorization})
                if answer.status_code != 202:
                    raise RuntimeError(f"POST /scan: HTTP {answer.status_code} {answer.text[:300]}")
                return str(answer.json()["scanId"])

            scan_ids = [submit(body) for body in bodies]
            submitted = time.monotonic() - started
            timed_out = False
            end = started + deadline
            while True:
                acked = [r for r in recorder.requests if 200 <= r.status < 300]
                if sum(r.path == DONE_PATH for r in acked) >= scans:
                    break
                if time.monotonic() > end:
                    timed_out = True
                    break
                time.sleep(0.1)
            last = max((r.received_at for r in acked if r.path == DONE_PATH), default=time.monotonic())
            makespan = last - started
            token_requests = registry.token_server.count()
            cpu_used = cpu.stop()
        # Every scan: exactly one acknowledged result and one done, and nothing it was not asked for.
        per_scan: dict[str, Counter[str]] = {sid: Counter() for sid in scan_ids}
        statuses: Counter[str] = Counter()
        failures: Counter[str] = Counter()
        stray = 0
        for request in acked:
            payload = request.json or {}
            counts = per_scan.get(str(payload.get("scanId")))
            if counts is None:
                stray += 1
                continue
            counts[request.path] += 1
            if request.path == RESULT_PATH:
                statuses[str(payload.get("status"))] += 1
                if payload.get("error"):
                    failures[str(payload["error"].get("code"))] += 1
        missing = sum(c[RESULT_PATH] == 0 or c[DONE_PATH] == 0 for c in per_scan.values())
        duplicated = stray + sum(c[RESULT_PATH] > 1 or c[DONE_PATH] > 1 for c in per_scan.values())
        status = agent.get(f"/scan/{scan_ids[0]}", timeout=30).json()
    return ScanResult(
        max_active=max_active,
        layer_cache=layer_cache,
        scans=scans,
        images=len(images),
        submit_seconds=submitted,
        makespan_seconds=makespan,
        throughput=scans / makespan if makespan > 0 else 0.0,
        done=statuses["done"],
        failed=statuses["failed"],
        failure_codes=dict(failures),
        delivered_results=sum(c[RESULT_PATH] for c in per_scan.values()),
        delivered_dones=sum(c[DONE_PATH] for c in per_scan.values()),
        missing=missing,
        duplicated=duplicated,
        token_requests=token_requests,
        peak_rss_bytes=memory.peak_bytes,
        sampled_peak_rss_bytes=memory.sampled_peak_kib * 1024,
        processes=memory.processes,
        packages_in_one_result=_packages(status.get("result")),
        timed_out=timed_out,
        cpu=cpu_used,
    )


# -- report --------------------------------------------------------------------------------------------


def _mib(value: int) -> str:
    return f"{value / MIB:,.0f} MiB"


def _cpu_line(cpu: dict[str, float]) -> str:
    """CPU seconds per process over the phase's wall time (100% = one core busy all along)."""
    wall = cpu.get("wall") or 1.0
    parts = [
        f"{name} {value:.1f} s ({100 * value / wall:.0f}%)" for name, value in cpu.items() if name != "wall"
    ]
    return f"CPU over {wall:.1f} s wall (100% = one core): " + ", ".join(parts) + "."


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return lines


def _cost_table(costs: Sequence[CostRow], what: str) -> list[str]:
    return _table(
        [what, "registry HTTP requests", "TCP connections", "token requests (scope: count)"],
        [
            [
                c.request,
                c.registry_requests,
                c.connections,
                ", ".join(f"`{s}`: {n}" for s, n in c.tokens.items()) or "none",
            ]
            for c in costs
        ],
    )


def report(
    size_name: str,
    info: dict[str, str],
    listing: ListingResult | None,
    scans: Sequence[ScanResult],
    scan_costs: Sequence[CostRow] = (),
) -> list[str]:
    out = [
        f"## Load: {size_name} size, {info['date']}",
        "",
        f"Machine: {info['nproc']} CPUs ({info['cpu']}), {info['memory']} RAM, kernel {info['kernel']}, "
        f"Python {info['python']}. Code: {info['code']}. "
        "Load client: Python threads (http.client keep-alive), own process.",
        "",
    ]
    if listing is not None:
        lst = listing
        out += [
            f"### Listing: {lst.repos:,} repositories, {lst.tags:,} tags in `{BIG_REPO}`, "
            f"{lst.concurrency} concurrent connections",
            "",
            f"Agent: `{lst.agent}`. Request mix: "
            + ", ".join(f"{k} {v:.0%}" for k, v in lst.mix.items())
            + " (catalog = `/list`, tags = `/list/<repo>`, metadata = `/image-metadata/<repo>?reference=`).",
            "",
            f"Real registry (distribution, token auth), storage written in {lst.seed_seconds:.1f} s, "
            f"started in {lst.registry_start_seconds:.1f} s. Registry alone (one request at a time): "
            + ", ".join(f"{k} {v * 1000:,.0f} ms" for k, v in lst.registry_alone.items())
            + ".",
            "",
        ]
        rows = [
            [
                s.kind if s.kind != "all" else "**all**",
                f"{s.count:,}",
                s.errors,
                f"{s.p50_ms:,.0f}",
                f"{s.p99_ms:,.0f}",
                f"{s.max_ms:,.0f}",
            ]
            for s in [*lst.by_kind, lst.overall]
            if s.count
        ]
        out += _table(["request", "count", "errors", "p50 ms", "p99 ms", "max ms"], rows)
        tokens_per = lst.token_requests / lst.requests if lst.requests else 0.0
        out += [
            "",
            f"{lst.requests:,} requests in {lst.wall_seconds:.1f} s = {lst.throughput:.1f} req/s; "
            f"errors {lst.errors} {lst.error_kinds or ''}; not sent (deadline) {lst.not_sent}; "
            f"client reconnects {sum(lst.reconnects.values())}; token requests {lst.token_requests:,} "
            f"({tokens_per:.2f} per request); agent peak RSS {_mib(lst.peak_rss_bytes)} "
            f"(largest sum of the high-water marks of the processes alive together, {lst.processes} "
            f"processes seen; highest sampled sum of current RSS {_mib(lst.sampled_peak_rss_bytes)}).",
            "",
            _cpu_line(lst.cpu) + " The bench process hosts the token server.",
            "",
            "What one request costs the registry (counted at a TCP proxy in front of it, and at the "
            "token server):",
            "",
        ]
        out += [*_cost_table(lst.cost, "agent request"), ""]
    if scans:
        first = scans[0]
        out += [
            f"### Scans: {first.scans:,} queued scans over {first.images} images sharing 2 base layers, "
            + ("layer cache on (the default)" if first.layer_cache else "layer cache off"),
            "",
        ]
        rows = [
            [
                s.max_active,
                f"{s.scans:,}",
                f"{s.submit_seconds:.1f}",
                f"{s.makespan_seconds:.1f}",
                f"{s.throughput:.2f}",
                f"{s.done}/{s.failed}",
                f"{s.delivered_results}/{s.delivered_dones}",
                f"{s.missing}/{s.duplicated}",
                f"{s.token_requests / s.scans:.2f}" if s.scans else "-",
                _mib(s.peak_rss_bytes),
                "yes" if s.peak_rss_bytes < MEMORY_BUDGET_BYTES else "**NO**",
            ]
            for s in scans
        ]
        out += _table(
            [
                "MAX_ACTIVE_OPERATIONS",
                "scans",
                "submit s",
                "makespan s",
                "scans/s",
                "done/failed",
                "results/dones delivered",
                "missing/duplicated",
                "tokens per scan",
                "agent peak RSS",
                "< 2 GB",
            ],
            rows,
        )
        out += [
            "",
            f"Makespan: first submission to last `done` callback. Each result carried "
            f"{first.packages_in_one_result} packages. Peak RSS: largest sum of the high-water "
            "marks of the agent's processes alive together (a scan's layer worker included).",
            "",
        ]
        for s in scans:
            out += [f"MAX_ACTIVE_OPERATIONS={s.max_active}: " + _cpu_line(s.cpu), ""]
    if scan_costs:
        out += ["What one scan costs the registry (counted as above):", ""]
        out += [*_cost_table(scan_costs, "scan"), ""]
    return out


def failures_of(listing: ListingResult | None, scans: Sequence[ScanResult]) -> list[str]:
    problems: list[str] = []
    if listing is not None:
        if listing.errors or listing.not_sent:
            problems.append(f"listing: {listing.errors} errors, {listing.not_sent} not sent")
    for s in scans:
        if s.failed or s.missing or s.duplicated or s.timed_out:
            problems.append(
                f"scans (MAX_ACTIVE_OPERATIONS={s.max_active}): {s.failed} failed {s.failure_codes}, "
                f"{s.missing} missing, {s.duplicated} duplicated callbacks, timed out: {s.timed_out}"
            )
        if s.peak_rss_bytes >= MEMORY_BUDGET_BYTES:
            problems.append(
                f"scans (MAX_ACTIVE_OPERATIONS={s.max_active}): peak RSS {_mib(s.peak_rss_bytes)}"
            )
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--full", action="store_true", help="10,000 repositories/tags and 500 scans")
    parser.add_argument("--tiny", action="store_true", help="the smoke test's size: checks, measures nothing")
    parser.add_argument("--repos", type=int)
    parser.add_argument("--tags", type=int)
    parser.add_argument("--concurrency", type=int)
    parser.add_argument("--requests", type=int, help="requests of the listing load (a fixed count)")
    parser.add_argument("--scans", type=int)
    parser.add_argument("--images", type=int)
    parser.add_argument(
        "--mix", default="catalog=10,tags=20,metadata=70", help="listing load shares (default %(default)s)"
    )
    parser.add_argument(
        "--agent-threads",
        type=int,
        help="what-if: serve with this many request threads (python -m emulator --threads N) instead of "
        "the production `registry-agent serve` (8)",
    )
    parser.add_argument(
        "--no-layer-cache", action="store_true", help="scans with LAYER_CACHE_MAX_BYTES=0 (every layer read)"
    )
    parser.add_argument(
        "--no-layer-worker", action="store_true", help="scans with SCAN_LAYER_WORKER=false (one process)"
    )
    parser.add_argument("--skip-listing", action="store_true")
    parser.add_argument("--skip-scans", action="store_true")
    parser.add_argument("--max-active", default="1,2", help="MAX_ACTIVE_OPERATIONS values (default 1,2)")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--markdown", type=Path, help="write the report (markdown) here")
    parser.add_argument(
        "--profile", type=Path, help="directory for py-spy profiles of the agent worker (collapsed stacks)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (registries, logs)")
    parser.add_argument("--client", nargs=2, help=argparse.SUPPRESS)  # internal: the load client process
    args = parser.parse_args(argv)
    if args.client:
        return _client_main(*args.client)
    size_name = "full" if args.full else "tiny" if args.tiny else "reduced"
    size = SIZES[size_name]
    overrides = {k: getattr(args, k) for k in ("repos", "tags", "concurrency", "requests", "scans", "images")}
    size = Size(**{**asdict(size), **{k: v for k, v in overrides.items() if v is not None}})
    if size.repos < 2 or size.images < 1 or size.concurrency < 1:
        parser.error("need at least 2 repositories, 1 image and 1 connection")
    try:
        shares = {k: float(v) for k, v in (part.split("=") for part in args.mix.split(","))}
    except ValueError:
        parser.error("--mix: name=share,... with catalog, tags and metadata")
    if set(shares) != set(MIX) or sum(shares.values()) <= 0:
        parser.error("--mix: give catalog, tags and metadata")
    mix = {k: shares[k] / sum(shares.values()) for k in MIX}
    info = machine()

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="registry-agent-load-"))
    log(f"{size_name} size {asdict(size)}; work directory {workdir}")
    listing: ListingResult | None = None
    scans: list[ScanResult] = []
    scan_costs: list[CostRow] = []
    try:
        ca = TestCA()
        if not args.skip_listing:
            listing = listing_phase(
                size, workdir, ca, log, mix=mix, threads=args.agent_threads, profile=args.profile
            )
            log(f"listing done: {listing.requests} requests, {listing.errors} errors")
        if not args.skip_scans:
            with contextlib.ExitStack() as stack:
                registry = start_registry(Mode.TOKEN, workdir / "registry-scan", ca=ca)
                stack.callback(registry.stop)
                started = time.perf_counter()
                images = push_scan_images(registry, workdir, size.images)
                log(f"pushed {len(images)} scan images in {time.perf_counter() - started:.1f} s")
                scan_costs = scan_cost(registry, images[0], workdir)
                for value in (int(v) for v in args.max_active.split(",")):
                    log(f"scans: {size.scans} with MAX_ACTIVE_OPERATIONS={value} ...")
                    scans.append(
                        scan_phase(
                            value,
                            size.scans,
                            images,
                            registry,
                            workdir,
                            size.deadline,
                            args.profile,
                            layer_cache=not args.no_layer_cache,
                            layer_worker=not args.no_layer_worker,
                        )
                    )
                    log(f"  {scans[-1].throughput:.2f} scans/s, peak RSS {_mib(scans[-1].peak_rss_bytes)}")
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            # rm is several times faster than shutil.rmtree on the ~100,000 files of the full size.
            if subprocess.run(["rm", "-rf", "--", str(workdir)], check=False).returncode != 0:
                shutil.rmtree(workdir, ignore_errors=True)
    lines = report(size_name, info, listing, scans, scan_costs)
    problems = failures_of(listing, scans)
    print()
    print("\n".join(lines))
    if args.markdown:
        args.markdown.write_text("\n".join(lines) + "\n")
    if args.json:
        document = {
            "size": size_name,
            "machine": info,
            "listing": asdict(listing) if listing else None,
            "scans": [asdict(s) for s in scans],
            "scan_cost": [asdict(c) for c in scan_costs],
            "problems": problems,
        }
        args.json.write_text(json.dumps(document, indent=2))
    for problem in problems:
        print(f"FAILED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
