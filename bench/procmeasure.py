"""Wall time, CPU time and peak memory of one tool's process tree.

The tool runs under a fresh intermediate process (`bench/_launch.py`, Python with ``-S``): it forks,
execs the tool, reaps it with ``wait4`` and reports the tool's own usage. That detour matters: a
process's ``ru_maxrss`` keeps the size of the image it replaced at ``exec``, so a tool started
straight from this (large) Python process would be charged this process's size.

Two readings of peak memory, combined:

* exact: ``ru_maxrss`` of the tool from the launcher's ``wait4`` = the peak RSS of the largest single
  process of the tool's tree (the kernel's own accounting, nothing missed between polls);
* polled: every ``interval`` seconds (0.1: walking ``/proc`` for a Go program's dozens of threads
  every few milliseconds would itself slow the tool on a small machine) the tree under the launcher
  (``/proc/<pid>/task/*/children``) is walked and the ``VmHWM`` (high-water marks) of the processes
  alive at that moment summed; the largest such sum covers trees of several processes running side
  by side (an upper bound: their peaks need not coincide; processes that ran one after another are
  not added up).

Reported peak = max(exact, largest polled sum). For a one-process tree (all three tools here) it is the exact
value. Only the tool's tree is measured: the launcher, the registry and this process are not.
Wall time is the launcher's: from its fork of the tool to ``wait4``'s return. (Timing here, around
the polling loop, would round every run up to the next poll, +0.05 s on average: a bias that
favoured the slower tools in a ratio.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

LAUNCHER = Path(__file__).with_name("_launch.py")


@dataclass(frozen=True)
class Measurement:
    wall_seconds: float
    peak_rss_bytes: int  # max(exact largest process, polled sum over the tree)
    exact_max_process_rss_bytes: int  # ru_maxrss of the tool (its largest process)
    polled_tree_hwm_bytes: int  # largest sum of high-water marks of processes alive together
    processes: int  # distinct processes seen in the tool's tree
    user_seconds: float
    system_seconds: float
    returncode: int


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as handle:
                found.extend(int(child) for child in handle.read().split())
        except OSError:
            continue
    return found


def _descendants(root: int) -> list[int]:
    seen: list[int] = []
    stack = _children(root)
    while stack:
        pid = stack.pop()
        seen.append(pid)
        stack.extend(_children(pid))
    return seen


def _hwm_kib(pid: int) -> int | None:
    """VmHWM in KiB, or None when the process is gone (or a zombie, which has no memory left)."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def run_measured(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    stdout: Path,
    stderr: Path,
    stdin_data: bytes | None = None,
    interval: float = 0.1,
    timeout: float = 3600.0,
) -> Measurement:
    result_file = stderr.with_suffix(".usage.json")
    result_file.unlink(missing_ok=True)
    launcher = [sys.executable, "-S", "-E", str(LAUNCHER), str(result_file), *argv]
    seen: set[int] = set()
    polled_kib = 0
    with stdout.open("wb") as out, stderr.open("wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            launcher,
            stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=dict(env),
        )
        if stdin_data is not None:
            assert proc.stdin is not None
            proc.stdin.write(stdin_data)
            proc.stdin.close()
        while proc.poll() is None:
            if time.perf_counter() - start > timeout:
                for pid in _descendants(proc.pid):  # the tool's tree, each by its PID
                    try:
                        os.kill(pid, 9)
                    except ProcessLookupError:
                        pass
                proc.kill()
                proc.wait()
                raise TimeoutError(f"{argv[0]} ran longer than {timeout}s")
            alive = 0
            for pid in _descendants(proc.pid):
                value = _hwm_kib(pid)
                if value is not None:
                    seen.add(pid)
                    alive += value
            polled_kib = max(polled_kib, alive)
            time.sleep(interval)
    usage = json.loads(result_file.read_text())
    wall = float(usage["wall_seconds"])
    exact = usage["maxrss_kib"] * 1024  # KiB on Linux
    polled = polled_kib * 1024
    return Measurement(
        wall_seconds=wall,
        peak_rss_bytes=max(exact, polled),
        exact_max_process_rss_bytes=exact,
        polled_tree_hwm_bytes=polled,
        processes=max(len(seen), 1),
        user_seconds=usage["user_seconds"],
        system_seconds=usage["system_seconds"],
        returncode=int(usage["returncode"]),
    )
