"""Workers even out their keep-alive connections (api.balance): the decision, the shared slots, the header."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.balance import (
    CHECK_S,
    SLOT,
    WINDOW_S,
    BalanceMiddleware,
    ConnectionBalancer,
    create_balance_file,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def other_process():
    """A live process that is not this one, to stand for another worker in the shared file."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def set_slot(path, slot: int, pid: int, at: float, clients: int) -> None:
    with open(path, "r+b") as f:
        f.seek(slot * SLOT.size)
        f.write(SLOT.pack(pid, at, clients))


def serve_clients(balancer: ConnectionBalancer, n: int) -> list[tuple[str, int]]:
    clients = [("127.0.0.1", 40000 + i) for i in range(n)]
    for c in clients:
        balancer.seen(c)
    return clients


def test_a_worker_with_two_more_clients_than_another_moves_one_per_check(tmp_path, other_process):
    path = tmp_path / "workers.balance"
    create_balance_file(path)
    clock = Clock()
    me = ConnectionBalancer(path, clock=clock)
    other = 1 if me.slot == 0 else 0
    set_slot(path, other, other_process, clock.now, 14)
    clients = serve_clients(me, 18)

    assert me.should_close(clients[0]) is True
    # Not again before the next check: the moved client must have time to reconnect and be counted.
    assert me.should_close(clients[1]) is False
    clock.now += CHECK_S
    set_slot(path, other, other_process, clock.now, 15)  # it landed on the other worker
    assert me.should_close(clients[1]) is True  # 17 against 15
    clock.now += CHECK_S
    set_slot(path, other, other_process, clock.now, 16)
    assert me.should_close(clients[2]) is False  # 16 against 16: nothing moves
    clock.now += CHECK_S
    set_slot(path, other, other_process, clock.now, 15)
    assert me.should_close(clients[2]) is False  # 16 against 15: a move would only swap the extra one
    me.close()


def test_an_idle_worker_counts_as_serving_nobody_and_a_dead_one_not_at_all(tmp_path, other_process):
    path = tmp_path / "workers.balance"
    create_balance_file(path)
    clock = Clock()
    me = ConnectionBalancer(path, clock=clock)
    other = 1 if me.slot == 0 else 0
    clients = serve_clients(me, 3)
    # Its last count (5) is older than the window: it has had no request since, so it serves nobody now.
    set_slot(path, other, other_process, clock.now - WINDOW_S - 1, 5)
    assert me.should_close(clients[0]) is True

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    set_slot(path, other, dead.pid, clock.now, 0)
    clock.now += CHECK_S
    assert me.should_close(clients[1]) is False  # alone: nowhere to move a connection to
    me.close()


def test_clients_that_stopped_asking_leave_the_count(tmp_path, other_process):
    path = tmp_path / "workers.balance"
    create_balance_file(path)
    clock = Clock()
    me = ConnectionBalancer(path, clock=clock)
    other = 1 if me.slot == 0 else 0
    serve_clients(me, 6)
    clock.now += WINDOW_S + 0.5
    (active,) = serve_clients(me, 1)  # one of them asks again; the other five went quiet
    set_slot(path, other, other_process, clock.now, 1)
    assert me.should_close(active) is False  # 1 against 1
    _, _, mine = SLOT.unpack_from(path.read_bytes(), me.slot * SLOT.size)
    assert mine == 1
    me.close()


def test_each_worker_process_claims_its_own_slot_and_a_restarted_one_takes_a_freed_slot(tmp_path):
    path = tmp_path / "workers.balance"
    create_balance_file(path)
    claim = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from api.balance import ConnectionBalancer
        b = ConnectionBalancer(Path({str(path)!r}))
        print(b.slot, flush=True)
        sys.stdin.readline()
        """
    )

    def start() -> tuple[subprocess.Popen, int]:
        proc = subprocess.Popen(
            [sys.executable, "-c", claim], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        return proc, int(proc.stdout.readline())  # type: ignore[union-attr]

    first, a = start()
    second, b = start()
    assert {a, b} == {0, 1}
    first.kill()  # a crashed worker: its lock goes with it
    first.wait()
    third, c = start()
    assert c == a
    for proc in (second, third):
        proc.communicate("\n", timeout=30)


def test_the_middleware_closes_the_connection_it_moves_and_no_other(tmp_path, other_process):
    path = tmp_path / "workers.balance"
    create_balance_file(path)
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict:
        return {"ok": True}

    app.state.balancer = None
    app.add_middleware(BalanceMiddleware, state=app.state)
    client = TestClient(app)
    # A single-process server (no balancer): nothing changes.
    assert "connection" not in client.get("/ping").headers

    me = ConnectionBalancer(path)
    app.state.balancer = me
    other = 1 if me.slot == 0 else 0
    serve_clients(me, 4)  # four other connections are being served here; the other worker serves none
    set_slot(path, other, other_process, time.monotonic(), 0)
    first = client.get("/ping")
    assert first.status_code == 200 and first.headers["connection"] == "close"
    second = client.get("/ping")  # within the same check period: at most one move per check
    assert "connection" not in second.headers
    me.close()
