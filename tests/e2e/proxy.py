"""A TCP forwarder in front of a real registry that can stop answering on command.

The restart tests need scans that are provably *in flight* and *queued* at the moment the agent is
stopped. A scan against a healthy loopback registry finishes in milliseconds, so instead the registry
is put behind this proxy and the proxy is paused: connections are accepted but held unanswered, the
agent's scan worker blocks inside a real registry call (status ``running``) and later scans wait in the
queue (``queued``). ``resume()`` lets held and new connections through to the registry unchanged.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType

from tests.harness.procs import LOOPBACK


class PausableProxy:
    def __init__(self, upstream_host: str) -> None:
        host, port = upstream_host.rsplit(":", 1)
        self._upstream = (host, int(port))
        self._listener = socket.create_server((LOOPBACK, 0))
        self._open = threading.Event()
        self._open.set()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept_loop, name="pausable-proxy", daemon=True)

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``: use as the registryBase the agent is given."""
        return f"{LOOPBACK}:{self._listener.getsockname()[1]}"

    def start(self) -> PausableProxy:
        self._thread.start()
        return self

    def pause(self) -> None:
        self._open.clear()

    def resume(self) -> None:
        self._open.set()

    def stop(self) -> None:
        self._stopping.set()
        self._open.set()
        # shutdown() wakes the thread blocked in accept(); close() alone does not on Linux.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            for sock in list(self._sockets):
                with contextlib.suppress(OSError):
                    sock.close()
        self._thread.join(5)

    def __enter__(self) -> PausableProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _close(self, *socks: socket.socket) -> None:
        with self._lock:
            for sock in socks:
                self._sockets.discard(sock)
                with contextlib.suppress(OSError):
                    sock.close()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._track(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        self._open.wait()
        if self._stopping.is_set():
            self._close(client)
            return
        try:
            upstream = socket.create_connection(self._upstream, timeout=10)
        except OSError:
            self._close(client)
            return
        upstream.settimeout(None)
        self._track(upstream)
        threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()
        self._pump(client, upstream, True)

    def _pump(self, source: socket.socket, sink: socket.socket, gated: bool) -> None:
        try:
            while chunk := source.recv(65536):
                # Requests on an already open (kept-alive) connection wait too, not only new connections.
                if gated:
                    self._open.wait()
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            # Either side closing ends the whole connection; the registry client opens a new one.
            self._close(source, sink)
