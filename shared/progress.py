"""A one-line byte counter on a terminal, for long downloads (``registry-agent scan``).

Written only when the stream is a TTY: piped or logged output gets no carriage-return noise.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

REDRAW_SECONDS = 0.1


def _mib(count: int) -> str:
    return f"{count / 1024 / 1024:.1f} MiB"


class ByteProgress:
    def __init__(self, total: int, label: str = "layers", stream: TextIO = sys.stderr) -> None:
        self.total = total
        self.label = label
        self.stream = stream
        self.done = 0
        self._drawn = 0.0

    @classmethod
    def on_tty(cls, total: int, stream: TextIO = sys.stderr) -> ByteProgress | None:
        return cls(total, stream=stream) if stream.isatty() else None

    def __call__(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if now - self._drawn >= REDRAW_SECONDS:
            self._drawn = now
            self._draw()

    def _draw(self) -> None:
        share = f" {min(100, self.done * 100 // self.total)}%" if self.total else ""
        self.stream.write(f"\r{self.label}: {_mib(self.done)} / {_mib(self.total)}{share}   ")
        self.stream.flush()

    def finish(self) -> None:
        if self.done:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()
