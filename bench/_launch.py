"""Fresh intermediate process for one measured run: ``python -S _launch.py RESULT_JSON ARGV...``.

Why: a child's ``ru_maxrss`` counts the memory of the process image it replaced at ``exec`` - for a
child started by a big Python process, that is the parent's size, not the tool's. This launcher is
small; it forks (a child of its own small size), execs the tool there, waits, and writes the tool's
own ``wait4`` usage (peak RSS = the largest process of the tool's tree; CPU = the tree's) and its
wall time (from the fork to ``wait4``'s return, to the microsecond) to RESULT_JSON. It imports
nothing beyond the standard library and runs with ``-S``.
"""

import json
import os
import sys
import time


def main() -> int:
    result, argv = sys.argv[1], sys.argv[2:]
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - replaced by exec
        try:
            os.execv(argv[0], argv)  # noqa: S606 - the tool's argv, no shell
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - started
    with open(result, "w") as handle:
        json.dump(
            {
                "pid": pid,
                "wall_seconds": wall,
                "maxrss_kib": usage.ru_maxrss,
                "user_seconds": usage.ru_utime,
                "system_seconds": usage.ru_stime,
                "returncode": os.waitstatus_to_exitcode(status),
            },
            handle,
        )
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
