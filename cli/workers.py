"""``serve --workers N``: uvicorn's worker supervisor, with one listening socket per worker (SO_REUSEPORT).

uvicorn's own ``--workers`` shares one listening socket among the workers, and a worker's asyncio loop accepts
every pending connection at once when it wakes. A burst of new connections (a load test's clients, a page
of widgets opening) can then land on one worker while the other idles: measured on 2 cores, 64 clients on
2 workers answered 104.6/s instead of 214/s, and at 32 clients p95 was 235-258 ms against a p50 of 80-127 ms.
With one socket per worker, bound with SO_REUSEPORT, the kernel spreads new connections over the workers by
a hash of their addresses: 220-227/s at 32 and 64 clients, p99 180 ms at 32 (docs/benchmarks.md).

Everything else is uvicorn's ``Multiprocess``: health checks, restarting a dead worker, signals. A worker's
socket is bound (not listening) when the supervisor starts that worker and closed in the parent once the
worker has it. The worker's asyncio server calls ``listen()`` only after the app and its model are loaded, and
the kernel hands connections only to listening sockets: a starting or restarting worker gets none until it
can answer, and a dead worker's socket closes with it.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from uvicorn import Config
from uvicorn.supervisors import Multiprocess

log = logging.getLogger(__name__)


def reuse_port_supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT")


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) with SO_REUSEPORT, not yet listening (its server listens)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


def check_port_free(host: str, port: int) -> None:
    """Raise OSError when something listens on (host, port) already, SO_REUSEPORT or not.

    Sockets with SO_REUSEPORT may share a port with any other such socket of the same user, so a second
    ``serve --workers`` on a busy port would silently split its connections with the first; a plain bind
    (SO_REUSEADDR only, as uvicorn binds) fails there instead.
    """
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


class ReusePortWorkers(Multiprocess):
    """``Multiprocess`` whose every worker gets a socket of its own (see the module docstring)."""

    def __init__(self, config: Config) -> None:
        self._host, self._port = config.host, config.port
        self._handed: list[socket.socket] = []
        # A port in use fails here, once, before any worker starts.
        check_port_free(self._host, self._port)
        self._first: socket.socket | None = self._bind()
        super().__init__(config, sockets=[])

    def _bind(self) -> socket.socket:
        sock = reuse_port_socket(self._host, self._port)
        if self._port == 0:  # an ephemeral port: the other workers join the one the first socket got
            self._port = sock.getsockname()[1]
        return sock

    @property  # type: ignore[override]
    def sockets(self) -> list[socket.socket]:
        """Read by ``Multiprocess`` once per worker it starts: a new socket each time."""
        sock = self._first if self._first is not None else self._bind()
        self._first = None
        self._handed.append(sock)
        return [sock]

    @sockets.setter
    def sockets(self, value: Any) -> None:  # Multiprocess.__init__ assigns the (empty) shared list
        pass

    def _close_handed(self) -> None:
        # A started worker has its own copy (multiprocessing duplicated the descriptor at start()).
        for sock in self._handed:
            sock.close()
        self._handed.clear()

    def keep_subprocess_alive(self) -> None:
        """uvicorn's check, every 0.5 s after the workers start; it also closes the parent's copies of the
        sockets handed out since (by the first start, a replacement, a restart or a SIGTTIN worker)."""
        super().keep_subprocess_alive()
        self._close_handed()

    def run(self) -> None:
        try:
            super().run()
        finally:
            self._close_handed()
            if self._first is not None:
                self._first.close()
