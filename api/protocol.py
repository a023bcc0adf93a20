"""uvicorn's h11 protocol with a deadline for the request line and headers (slowloris), and TCP_NODELAY always.

uvicorn closes idle keep-alive connections, and BodyLimitMiddleware times out a slow body, but nothing times out a
connection that sends nothing, or half a request line and then idles: each would hold a socket for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

# Module-level (not a setting) because uvicorn pickles the protocol class by name into its worker processes.
HEADER_TIMEOUT_S = 10.0


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    """Turn Nagle's algorithm off on a TCP connection.

    asyncio does this itself only for sockets whose ``proto`` is IPPROTO_TCP, and the listening socket uvicorn
    binds for ``--workers N`` is made with ``socket.socket(AF_INET)`` (proto 0), so its connections kept Nagle
    on: the body of a response, written after its headers, waited for the client's delayed ACK (~40 ms).
    One client's /v1/ask p50 was 56 ms with 2 workers against 12 ms with 1 (benchmarks/bench_load.py).
    """
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):  # already closed by the peer: nothing to tune
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class HeaderTimeoutH11Protocol(H11Protocol):
    """Closes a connection whose next request's headers have not fully arrived ``HEADER_TIMEOUT_S`` after it
    opened or after the first bytes of that request."""

    header_timeout = HEADER_TIMEOUT_S
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        set_nodelay(transport)
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:
            self._arm()  # still waiting for a complete request line and headers
        else:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._expire)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expire(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()
