"""Workers even out their keep-alive connections (api.balance): the decision, the shared slots, the header."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

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


class Workers:
    """This process's balancer on a fresh shared file, with its clock under the test's control, and the slot of
    another worker that the test writes (``other_serves``) as that worker would."""

    def __init__(self, path: Path, other_pid: int) -> None:
        create_balance_file(path)
        self.path = path
        self.clock = Clock()
        self.me = ConnectionBalancer(path, clock=self.clock)
        self.other_slot = 1 if self.me.slot == 0 else 0
        self.other_pid = other_pid

    def other_serves(self, clients: int, *, at: float | None = None, pid: int | None = None) -> None:
        with open(self.path, "r+b") as f:
            f.seek(self.other_slot * SLOT.size)
            f.write(SLOT.pack(pid or self.other_pid, self.clock.now if at is None else at, clients))


@pytest.fixture
def workers(tmp_path, other_process):
    w = Workers(tmp_path / "workers.balance", other_process)
    yield w
    w.me.close()


def serve_clients(balancer: ConnectionBalancer, n: int) -> list[tuple[str, int]]:
    clients = [("127.0.0.1", 40000 + i) for i in range(n)]
    for c in clients:
        balancer.seen(c)
    return clients


def test_a_worker_with_two_more_clients_than_another_moves_one_per_check(workers):
    me, clock = workers.me, workers.clock
    workers.other_serves(14)
    clients = serve_clients(me, 18)

    assert me.should_close(clients[0]) is True
    # Not again before the next check: the moved client must have time to reconnect and be counted.
    assert me.should_close(clients[1]) is False
    clock.now += CHECK_S
    workers.other_serves(15)  # it landed on the other worker
    assert me.should_close(clients[1]) is True  # 17 against 15
    clock.now += CHECK_S
    workers.other_serves(16)
    assert me.should_close(clients[2]) is False  # 16 against 16: nothing moves
    clock.now += CHECK_S
    workers.other_serves(15)
    assert me.should_close(clients[2]) is False  # 16 against 15: a move would only swap the extra one


def test_an_idle_worker_counts_as_serving_nobody_and_a_dead_one_not_at_all(workers):
    me, clock = workers.me, workers.clock
    clients = serve_clients(me, 3)
    # Its last count (5) is older than the window: it has had no request since, so it serves nobody now.
    workers.other_serves(5, at=clock.now - WINDOW_S - 1)
    assert me.should_close(clients[0]) is True

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    workers.other_serves(0, pid=dead.pid)
    clock.now += CHECK_S
    assert me.should_close(clients[1]) is False  # alone: nowhere to move a connection to


def test_clients_that_stopped_asking_leave_the_count(workers):
    me, clock = workers.me, workers.clock
    serve_clients(me, 6)
    clock.now += WINDOW_S + 0.5
    (active,) = serve_clients(me, 1)  # one of them asks again; the other five went quiet
    workers.other_serves(1)
    assert me.should_close(active) is False  # 1 against 1
    _, _, mine = SLOT.unpack_from(workers.path.read_bytes(), me.slot * SLOT.size)
    assert mine == 1


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


def test_the_middleware_closes_the_connection_it_moves_and_no_other(workers):
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict:
        return {"ok": True}

    app.state.balancer = None
    app.add_middleware(BalanceMiddleware, state=app.state)
    client = TestClient(app)
    # A single-process server (no balancer): nothing changes.
    assert "connection" not in client.get("/ping").headers

    app.state.balancer = workers.me
    serve_clients(workers.me, 4)  # four other connections are being served here; the other worker serves none
    workers.other_serves(0)
    first = client.get("/ping")
    assert first.status_code == 200 and first.headers["connection"] == "close"
    second = client.get("/ping")  # within the same check period: at most one move per check
    assert "connection" not in second.headers
