"""Keep-alive connections spread evenly over ``serve --workers N``: an overloaded worker closes one to move it.

Each worker listens on its own SO_REUSEPORT socket (``cli.workers``) and the kernel hands each *new*
connection to one of them by a hash of its addresses. Clients that keep their connection open (a load test, a
proxy's pool, a page's widget) then stay where the hash put them, and a hash puts 32 connections 16/16 only by
luck: measured on 2 cores, 32 closed-loop clients split 14/18 in one run, and the busier worker set the tail
(per-connection mean latency 52-114 ms and p99 153 ms in one 20 s run against 67-85 ms and 119 ms in one that
split more evenly; benchmarks/bench_load.py prints the spread). Nothing a worker does
with a connection already accepted changes that, short of giving the connection back.

So each worker publishes how many clients it is serving (distinct client addresses with a request in the last
``WINDOW_S``) in a small shared file, one slot per worker, and reads the others' counts at most every
``CHECK_S``. A worker serving at least ``MIN_EXCESS`` more clients than the least busy live worker answers one
request with ``Connection: close``; the client opens a new connection, which the kernel hashes afresh and
lands on another worker with probability (N-1)/N. One connection moves per check at most, so a split of 14/18
evens out within a second or two, and workers within one client of each other never close anything. Users who
open short connections, each asking now and then, rarely put two more clients on one worker than another.

The file is made by the ``serve`` process (``Settings.balance_file``). A worker claims a free slot with a
POSIX record lock on its bytes, held until it exits, so a restarted worker takes the slot its predecessor
left; a slot says which process holds it, and a slot whose process is gone counts for nothing. The slot is
claimed only once the worker can answer (its socket starts listening then), so a starting worker does not
draw connections from busy ones. A torn read of a slot another process is writing can only cost one extra
reconnect: counts are advice, never a correctness matter.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from api.middleware import ASGIApp, Message, Receive, Scope, Send

SLOT = struct.Struct("<qdq")  # pid, time.monotonic() of the count (system-wide on Linux), clients
SLOTS = 64  # more than any core count `serve --workers` defaults to; SIGTTIN may add workers
FILE_BYTES = SLOT.size * SLOTS
# A client counts as served by a worker while it has sent a request in the last WINDOW_S. A closed-loop
# client at 32 connections on 2 cores asks every ~80 ms, a person at the widget every few seconds: one second
# counts the first kind (the load that queues), not the second (which costs nothing to leave where it is).
WINDOW_S = 1.0
# How often a worker publishes its count and compares: at most one connection moved per worker per CHECK_S,
# enough time for the moved client to reconnect and be counted before the next move.
CHECK_S = 0.1
# Moving one connection from a worker with k more clients than another leaves them k-2 apart: with k = 1 a
# move only swaps which worker has the extra one, so nothing moves below 2.
MIN_EXCESS = 2


def create_balance_file(path: Path) -> None:
    """The shared file ``serve --workers`` makes before starting its workers: every slot free."""
    path.write_bytes(bytes(FILE_BYTES))


class ConnectionBalancer:
    """One worker's view: the clients it serves, its slot in the shared file, the decision to move one."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._fd = os.open(path, os.O_RDWR)
        try:
            if os.fstat(self._fd).st_size < FILE_BYTES:
                raise ValueError(f"{path} is not a worker balance file ({FILE_BYTES} bytes)")
            self._map = mmap.mmap(self._fd, FILE_BYTES)
            self._slot = self._claim()
        except BaseException:
            os.close(self._fd)
            raise
        self._pid = os.getpid()
        self._clients: dict[Any, float] = {}  # client address -> time of its last request
        self._next_check = 0.0
        self._publish(0, clock())

    @property
    def slot(self) -> int:
        return self._slot

    def _claim(self) -> int:
        for slot in range(SLOTS):
            try:
                fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB, SLOT.size, slot * SLOT.size)
            except OSError:
                continue  # another live worker holds it
            return slot
        raise ValueError(f"all {SLOTS} worker slots are taken")

    def close(self) -> None:
        """Give the slot up (the lock goes with the descriptor; a dead process's goes with the process)."""
        SLOT.pack_into(self._map, self._slot * SLOT.size, 0, 0.0, 0)
        self._map.close()
        os.close(self._fd)

    def _publish(self, clients: int, now: float) -> None:
        SLOT.pack_into(self._map, self._slot * SLOT.size, self._pid, now, clients)

    def others(self, now: float) -> list[int]:
        """The client counts of the other live workers (a stale count is 0: that worker has had no request)."""
        counts = []
        for slot in range(SLOTS):
            if slot == self._slot:
                continue
            pid, at, clients = SLOT.unpack_from(self._map, slot * SLOT.size)
            if pid <= 0 or not _alive(pid):
                continue
            counts.append(clients if now - at <= WINDOW_S + CHECK_S else 0)
        return counts

    def seen(self, client: Any) -> None:
        """A request from ``client`` (its address and port: one keep-alive connection) has arrived."""
        if client is not None:
            self._clients[client] = self._clock()

    def should_close(self, client: Any) -> bool:
        """Whether the response to ``client``'s request should close its connection to move it elsewhere."""
        now = self._clock()
        if now < self._next_check or client is None:
            return False
        self._next_check = now + CHECK_S
        cutoff = now - WINDOW_S
        for key in [k for k, at in self._clients.items() if at < cutoff]:
            del self._clients[key]
        mine = len(self._clients)
        others = self.others(now)
        move = bool(others) and mine - min(others) >= MIN_EXCESS and client in self._clients
        if move:
            del self._clients[client]
            mine -= 1
        self._publish(mine, now)
        return move


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class BalanceMiddleware:
    """Adds ``Connection: close`` to a response when ``ConnectionBalancer`` says to move that connection.

    The balancer is read from ``app.state.balancer`` on each request (set once the worker can answer), so
    until then, and in a single-process server, this does nothing."""

    def __init__(self, app: ASGIApp, state: Any) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        balancer: ConnectionBalancer | None = getattr(self.state, "balancer", None)
        if balancer is None or scope["type"] != "http" or scope.get("http_version") == "1.0":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        client = tuple(client) if client else None
        balancer.seen(client)

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start" and balancer.should_close(client):
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, send_wrapper)
