"""Throughput and latency of POST /v1/ask over loopback, 1 worker vs N, closed loop or paced (open loop).

Prints the in-process floor (query encoding + search, p50), then for each worker count one row per client
count (closed loop) or per connection count and rate (paced): answered questions/s, errors, p50/p95/p99, the
load generator's own CPU per question and the load average when the row started. The questions are the gold
set's, cycled.

Closed loop (default): every client sends its next question as soon as the previous answer arrives, so the
server is always saturated and the row shows its maximum throughput; latency is then set by Little's law
(mean latency = clients / throughput), not by how fast one answer is.

Paced (``--rate``): questions arrive at a fixed offered rate (Poisson by default) whatever the server does,
carried by ``--clients`` keep-alive connections; latency runs from each question's scheduled arrival, so
queueing counts. This is the load a service sees from many independent users.

Run: .venv/bin/python benchmarks/bench_load.py [--seconds 60] [--clients 1,8,32,64] [--workers 1,2]
     .venv/bin/python benchmarks/bench_load.py --rate 100,150,200 --clients 32 [--arrivals even]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import REPO, machine, pct  # noqa: E402


def questions() -> list[str]:
    lines = (REPO / "data" / "eval" / "gold.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(index: Path, workers: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    log = open(f"/tmp/bench_load_server_{port}.log", "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli",
            "serve",
            "--port",
            str(port),
            "--index",
            str(index),
            "--workers",
            str(workers),
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError("server did not become ready")


class Connection:
    """One keep-alive HTTP/1.1 connection that POSTs JSON and reads the status and the body, nothing more.

    The load generator shares the 2 cores with the server, so it must cost little: httpx's AsyncClient spent
    about as much CPU per request as the server's HTTP layer. The server always answers with Content-Length.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        try:
            self.writer.write(head + body)
            headers = await self.reader.readuntil(b"\r\n\r\n")
            status = int(headers[9:12])
            length = None
            for line in headers.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length is None:
                raise ConnectionError("response without Content-Length")
            await self.reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            self.close()
            raise
        if b"connection: close" in headers.lower():
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def _payloads(qs: list[str]) -> list[bytes]:
    return [json.dumps({"question": q}, ensure_ascii=False).encode() for q in qs]


def _summary(latencies: list[float], errors: dict[str, int], elapsed: float, cpu: float, sent: int) -> dict:
    return {
        "answered_per_s": round(len(latencies) / elapsed, 1),
        "errors": errors,
        "p50": round(pct(latencies, 50), 1) if latencies else None,
        "p95": round(pct(latencies, 95), 1) if latencies else None,
        "p99": round(pct(latencies, 99), 1) if latencies else None,
        # The load generator's own CPU per request, taken from the 2 cores the server runs on.
        "client_cpu_ms": round(cpu * 1000 / max(sent, 1), 2),
    }


def _count(errors: dict[str, int], key: str) -> None:
    errors[key] = errors.get(key, 0) + 1


async def _ask(
    conn: Connection, body: bytes, since: float, latencies: list[float], errors: dict[str, int]
) -> None:
    """One question: its latency from ``since`` (perf_counter) when answered with 200, else an error counted
    by exception type or status."""
    try:
        status = await conn.post("/v1/ask", body)
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        _count(errors, type(exc).__name__)
        return
    if status == 200:
        latencies.append((time.perf_counter() - since) * 1000)
    else:
        _count(errors, str(status))


async def run_clients(base: str, qs: list[str], clients: int, seconds: float) -> dict:
    """Closed loop: ``clients`` connections, each sending its next question as soon as its answer arrives."""
    host, port = _host_port(base)
    bodies = _payloads(qs)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    sent = 0
    stop = time.monotonic() + seconds

    per_connection: list[float] = []  # each connection's mean latency

    async def one(i: int) -> None:
        nonlocal sent
        conn = Connection(host, port)
        mine: list[float] = []
        n = i
        while time.monotonic() < stop:
            body = bodies[n % len(bodies)]
            n += clients
            sent += 1
            await _ask(conn, body, time.perf_counter(), mine, errors)
        conn.close()
        latencies.extend(mine)
        if mine:
            per_connection.append(statistics.mean(mine))

    cpu0, started = time.process_time(), time.monotonic()
    await asyncio.gather(*(one(i) for i in range(clients)))
    elapsed, cpu = time.monotonic() - started, time.process_time() - cpu0
    # With `--workers N` the kernel hashes each keep-alive connection to one worker's socket, so a row's
    # connections are split unevenly and a worker with more of them answers each more slowly: the spread of
    # the per-connection means shows it (e.g. 71 vs 92 ms for a 14 / 18 split of 32, docs/benchmarks.md).
    spread = (round(min(per_connection)), round(max(per_connection))) if per_connection else None
    return {
        "clients": clients,
        **_summary(latencies, errors, elapsed, cpu, sent),
        "connection_means": spread,
    }


async def run_paced(
    base: str, qs: list[str], connections: int, rate: float, seconds: float, arrivals: str, seed: int = 0
) -> dict:
    """Open loop: questions arrive at ``rate`` per second (Poisson or evenly spaced) whatever the server does,
    and ``connections`` connections carry them. Latency runs from each question's scheduled arrival, so time
    spent waiting for a free connection (the server being behind) counts, as it would for real users."""
    host, port = _host_port(base)
    bodies = _payloads(qs)
    rng = random.Random(seed)
    schedule: list[float] = []
    t = 0.0
    while t < seconds:
        schedule.append(t)
        t += rng.expovariate(rate) if arrivals == "poisson" else 1.0 / rate
    latencies: list[float] = []
    errors: dict[str, int] = {}
    next_slot = 0
    t0 = time.perf_counter() + 0.05

    async def one() -> None:
        nonlocal next_slot
        conn = Connection(host, port)
        while next_slot < len(schedule):
            k = next_slot
            next_slot += 1
            due = t0 + schedule[k]
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            await _ask(conn, bodies[k % len(bodies)], due, latencies, errors)
        conn.close()

    cpu0 = time.process_time()
    await asyncio.gather(*(one() for _ in range(connections)))
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {
        "connections": connections,
        "offered_per_s": round(len(schedule) / seconds, 1),
        **_summary(latencies, errors, elapsed, cpu, len(schedule)),
    }


def _host_port(base: str) -> tuple[str, int]:
    host, _, port = base.removeprefix("http://").partition(":")
    return host, int(port)


# Passes over the questions for the floor: one pass (~110 questions) moved its p50 by ±0.5 ms between runs
# on the 2-core machine, as much as the gap it is compared with.
FLOOR_PASSES = 5


def floor(index: Path, qs: list[str]) -> dict:
    """Query encoding + search in-process, one thread: what a request costs before HTTP and composition."""
    from api.assemble import build_encoder
    from api.settings import Settings
    from qa.service import AnswerService

    settings = Settings()
    service = AnswerService.open(index, build_encoder(settings))
    for q in qs[:10]:
        service.search(q)
    enc, total = [], []
    for q in qs * FLOOR_PASSES:
        t0 = time.perf_counter()
        qv = service.retriever.encode_query(q)
        t1 = time.perf_counter()
        service.retriever.retrieve(q, 5, query_vector=qv)
        t2 = time.perf_counter()
        enc.append((t1 - t0) * 1000)
        total.append((t2 - t0) * 1000)
    return {
        "encode_p50": round(statistics.median(enc), 2),
        "encode_plus_search_p50": round(statistics.median(total), 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", type=Path, default=None, help="index to serve (default: the configured one)")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--clients", default="1,8,32,64", help="closed loop: clients; paced: connections")
    ap.add_argument("--workers", default=f"1,{os.cpu_count() or 1}")
    ap.add_argument(
        "--rate", default=None, help="paced (open loop) instead: offered questions/s, e.g. 100,150,200"
    )
    ap.add_argument("--arrivals", choices=("poisson", "even"), default="poisson", help="paced arrival times")
    ap.add_argument("--no-floor", action="store_true", help="skip the in-process floor")
    args = ap.parse_args()
    from api.settings import Settings

    settings = Settings()
    index = args.index or settings.resolved_index_dir
    qs = questions()
    print(f"machine: {machine()}")
    print(f"server: runtime {settings.runtime}, encoder threads per worker {settings.threads or 1}")
    fl: dict = {}
    ratios: list[tuple[int, float]] = []
    if not args.no_floor:
        fl = floor(index, qs)
        print(
            f"floor, in-process: query encoding p50 {fl['encode_p50']} ms, "
            f"encoding + search p50 {fl['encode_plus_search_p50']} ms"
        )
    print()
    clients = [int(c) for c in args.clients.split(",")]
    rates = [float(r) for r in args.rate.split(",")] if args.rate else []
    if rates:
        print(
            f"paced, {args.arrivals} arrivals, latency from the scheduled arrival, {args.seconds:g} s per row"
        )
        print(
            "| workers | connections | offered q/s | answered/s | errors | p50 ms | p95 ms | p99 ms "
            "| load-gen CPU ms/q | load avg at start |"
        )
        print("|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    else:
        print(f"closed loop, no think time, {args.seconds:g} s per row")
        print(
            "| workers | clients | answered/s | errors | p50 ms | p95 ms | p99 ms | load-gen CPU ms/q "
            "| load avg at start | per-connection mean ms, min-max |"
        )
        print("|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for workers in [int(w) for w in args.workers.split(",")]:
        proc, base = start(index, workers)
        try:
            asyncio.run(run_clients(base, qs, 4, 5))  # warm every worker
            for c in clients:
                for rate in rates or [None]:
                    load = f"{os.getloadavg()[0]:.2f}"
                    if rate is None:
                        r = asyncio.run(run_clients(base, qs, c, args.seconds))
                        lead = f"| {workers} | {c} |"
                    else:
                        r = asyncio.run(run_paced(base, qs, c, rate, args.seconds, args.arrivals))
                        lead = f"| {workers} | {c} | {r['offered_per_s']} |"
                    means = r.get("connection_means")
                    tail = (
                        f" {means[0]}-{means[1]} |"
                        if rate is None and means
                        else (" |" if rate is None else "")
                    )
                    print(
                        f"{lead} {r['answered_per_s']} | {r['errors'] or 0} | {r['p50']} | {r['p95']} "
                        f"| {r['p99']} | {r['client_cpu_ms']} | {load} |{tail}",
                        flush=True,
                    )
                    if c == 1 and rate is None and fl:
                        ratios.append((workers, r["p50"] / fl["encode_plus_search_p50"]))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    for workers, ratio in ratios:
        print(f"one client, {workers} worker(s): /v1/ask p50 = {ratio:.2f}x the floor (encoding + search)")


if __name__ == "__main__":
    main()
