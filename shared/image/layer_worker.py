"""`read_layer` on two cores: a helper process reads the layer while this one downloads it.

A layer costs two kinds of work of about equal size: getting its stored bytes (TLS, the blob
digest) and reading them (inflation, the ``diff_id`` hash, the tar headers, the path table,
``wants`` and ``extract``). In one process they take turns. Here this process runs the source (the
network, the credentials, the blob digest check) and copies the stored bytes into a ring of
shared-memory slots; a child process (``python -m shared.image.layer_worker``) runs `read_layer`
itself on the slots, as chunks, and sends back the `LayerAnalysis`. The child never sees
credentials, the agent's environment (but ``TMPDIR``) or a network connection.

Why a ring and not a pipe: a pipe copies every byte through the kernel twice, which cost about as
much as the work moved to the child. Only slot numbers go through the pipes.

The pipes carry frames: a 4-byte big-endian length, then that many bytes.

* parent -> child, once: the parent's ``sys.path`` (JSON), then ``pickle((catalogers, limits))``;
  per layer: ``[digest, diff_id]`` (JSON), one ``(slot, length)`` frame per filled slot, an empty
  frame at the end;
* child -> parent: ``F`` + slot when a slot has been read and may be filled again; per layer
  ``R`` + ``pickle(("ok", analysis))`` once the end frame has come, or ``R`` +
  ``pickle(("error", exception))`` as soon as the layer is refused, after which the child exits.

Both ends are this module, so pickle is the format. The parent looks for an early result between
slots, so a refused layer is not pushed to its end; any failure on the parent's side (a digest
mismatch, a network error, an interrupt) kills the child by its pid, and the next layer starts a new
one. Memory: the ring (``SLOTS * SLOT_SIZE``) plus the child's `read_layer`, which holds what it
holds in-process (one layer's extracted values, a file being read).
"""

from __future__ import annotations

import contextlib
import json
import logging
import mmap
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Self

from shared import errors
from shared.image.layer import LayerAnalysis, LayerLimits, read_layer
from shared.scan.model import Cataloger

log = logging.getLogger(__name__)

# 8 MiB of ring: slots of 256 KiB left the two processes waiting on each other (the source's chunks
# come in bursts); 1 MiB slots ran as fast with 8 of them as with 32 (bench/RESULTS.md).
SLOT_SIZE = 1024 * 1024
SLOTS = 8
EXIT_WAIT = 5.0
_HEADER = struct.Struct(">I")
_NOTICE = struct.Struct(">II")  # slot, length
_FREE, _RESULT = b"F", b"R"
_HOME = str(Path(__file__).resolve().parents[2])


def _frame(payload: bytes) -> bytes:
    return _HEADER.pack(len(payload)) + payload


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exactly(fd: int, size: int) -> bytes:
    parts, left = [], size
    while left:
        part = os.read(fd, left)
        if not part:
            raise EOFError("the other end of the layer pipe closed")
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def _read_frame(fd: int) -> bytes:
    (size,) = _HEADER.unpack(_read_exactly(fd, _HEADER.size))
    return _read_exactly(fd, size)


def _unpickle(frame: bytes) -> Any:
    # Only ever a frame from the other end of a pipe this module created between its own two halves.
    return pickle.loads(frame)  # noqa: S301


def _ring_file() -> int:
    """A file descriptor for the ring: anonymous memory where Linux offers it, else an unlinked file."""
    if hasattr(os, "memfd_create"):
        with contextlib.suppress(OSError):  # a sandbox's seccomp filter may refuse it
            return os.memfd_create("registry-agent-layer-ring")
    with tempfile.TemporaryFile() as spare:
        return os.dup(spare.fileno())


def _child_environment() -> dict[str, str]:
    """Nothing of the agent's environment (credentials, tokens) but where temporary files go: the
    layer reader spools large programs there."""
    return {"TMPDIR": os.environ["TMPDIR"]} if "TMPDIR" in os.environ else {}


class LayerWorker:
    """A `read_layer` with this worker's catalogers and limits; call it per layer, close it once."""

    def __init__(self, catalogers: Sequence[Cataloger], limits: LayerLimits) -> None:
        self.catalogers = list(catalogers)
        self.limits = limits
        self._process: subprocess.Popen[bytes] | None = None
        self._ring: mmap.mmap | None = None
        self._to_child = self._from_child = -1

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        if self._process is not None:
            return
        ring_fd = _ring_file()
        try:
            os.ftruncate(ring_fd, SLOTS * SLOT_SIZE)
            self._ring = mmap.mmap(ring_fd, SLOTS * SLOT_SIZE)
            self._process = subprocess.Popen(
                [sys.executable, "-m", __name__, str(ring_fd)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                bufsize=0,
                pass_fds=(ring_fd,),
                cwd=_HOME,  # where ``-m`` finds this package, however the agent was started
                env=_child_environment(),
            )
        finally:
            os.close(ring_fd)  # the mapping and the child keep the memory
        log.debug("layer worker started (pid %d)", self._process.pid)
        assert self._process.stdin is not None and self._process.stdout is not None
        self._to_child, self._from_child = self._process.stdin.fileno(), self._process.stdout.fileno()
        init = json.dumps(sys.path).encode(), pickle.dumps((self.catalogers, self.limits))
        _write_all(self._to_child, b"".join(_frame(part) for part in init))

    def close(self) -> None:
        """Let the child end at the end of its input; kill it (by pid) if it does not."""
        process, self._process = self._process, None
        if process is not None:
            assert process.stdin is not None and process.stdout is not None
            with contextlib.suppress(OSError):
                process.stdin.close()
            try:
                process.wait(EXIT_WAIT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            process.stdout.close()
        if self._ring is not None:
            self._ring.close()
            self._ring = None

    def _kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
        self.close()

    def __call__(
        self,
        chunks: Iterator[bytes],
        *,
        digest: str,
        diff_id: str | None = None,
        on_read: Callable[[int], None] | None = None,
    ) -> LayerAnalysis:
        self.start()
        try:
            return self._hand_over(chunks, digest, diff_id, on_read)
        except BaseException:
            self._kill()  # it may be mid-layer: a fresh one for the next layer
            raise

    def _hand_over(
        self,
        chunks: Iterator[bytes],
        digest: str,
        diff_id: str | None,
        on_read: Callable[[int], None] | None,
    ) -> LayerAnalysis:
        assert self._ring is not None
        ring = memoryview(self._ring)
        free = deque(range(SLOTS))  # the child has given every slot back when a layer ends
        slot, filled = -1, 0
        try:
            _write_all(self._to_child, _frame(json.dumps([digest, diff_id]).encode()))
            for chunk in chunks:
                if on_read is not None:
                    on_read(len(chunk))
                data = memoryview(chunk)
                while data:
                    if slot < 0:
                        while not free:
                            if (early := self._take_message(free)) is not None:
                                return early
                        slot, filled = free.popleft(), 0
                    count = min(len(data), SLOT_SIZE - filled)
                    start = slot * SLOT_SIZE + filled
                    ring[start : start + count] = data[:count]
                    filled, data = filled + count, data[count:]
                    if filled == SLOT_SIZE:
                        _write_all(self._to_child, _frame(_NOTICE.pack(slot, filled)))
                        slot = -1
                        while select.select([self._from_child], [], [], 0)[0]:
                            if (early := self._take_message(free)) is not None:
                                return early  # only a refusal comes before the end frame
            # The chunks have ended, so the source has checked length and digest: now the rest.
            if slot >= 0 and filled:
                _write_all(self._to_child, _frame(_NOTICE.pack(slot, filled)))
            _write_all(self._to_child, _frame(b""))
        except BrokenPipeError:
            pass  # the child refused the layer and exited: its result says why
        finally:
            ring.release()
        while (result := self._take_message(free)) is None:
            pass
        return result

    def _take_message(self, free: deque[int]) -> LayerAnalysis | None:
        """Read one message from the child: a freed slot (None), or the layer's result."""
        try:
            message = _read_frame(self._from_child)
        except EOFError:
            code = self._process.wait() if self._process is not None else None
            raise errors.AgentError(f"the layer worker process ended (exit status {code})") from None
        if message[:1] == _FREE:
            free.append(_HEADER.unpack(message[1:])[0])
            return None
        status, value = _unpickle(message[1:])
        if status == "error":
            raise value
        analysis: LayerAnalysis = value
        return analysis


def _slots(ring: memoryview, commands: int, replies: int) -> Iterator[memoryview]:
    """One layer's stored bytes as chunks: a view of each slot the parent fills, handed back to the
    parent when the next one is asked for (`ChunkReader` has copied or consumed it by then)."""
    slot = -1
    while notice := _read_frame(commands):
        if slot >= 0:
            _write_all(replies, _frame(_FREE + _HEADER.pack(slot)))
        slot, length = _NOTICE.unpack(notice)
        yield ring[slot * SLOT_SIZE : slot * SLOT_SIZE + length]
    if slot >= 0:
        _write_all(replies, _frame(_FREE + _HEADER.pack(slot)))


def _serve(ring: memoryview, commands: int, replies: int) -> None:
    sys.path[:] = json.loads(_read_frame(commands))
    catalogers, limits = _unpickle(_read_frame(commands))
    while True:
        try:
            header = _read_frame(commands)
        except EOFError:
            return  # the parent closed the pipe: no more layers
        digest, diff_id = json.loads(header)
        reply: tuple[str, Any]
        try:
            chunks = _slots(ring, commands, replies)
            reply = ("ok", read_layer(chunks, catalogers, limits, digest=digest, diff_id=diff_id))
        except Exception as failure:  # noqa: BLE001 - every failure goes back to the parent
            reply = ("error", _portable(failure))
        _write_all(replies, _frame(_RESULT + pickle.dumps(reply)))
        if reply[0] == "error":
            return  # the parent stops filling slots and starts a new worker for the next layer


def _portable(failure: Exception) -> Exception:
    """The exception itself when it survives pickling, else an `AgentError` that says what it was."""
    try:
        _unpickle(pickle.dumps(failure))
        return failure
    except Exception:  # noqa: BLE001
        return errors.AgentError(f"layer worker: {type(failure).__name__}: {str(failure)[:200]}")


def main(argv: Sequence[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it kills us
    replies = os.dup(sys.stdout.fileno())
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a stray print must not land in the reply pipe
    ring = mmap.mmap(int(argv[0]), SLOTS * SLOT_SIZE)  # lives as long as the process
    _serve(memoryview(ring), sys.stdin.fileno(), replies)


if __name__ == "__main__":
    main(sys.argv[1:])
