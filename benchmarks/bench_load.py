"""Throughput and latency of POST /v1/ask over loopback: 1, 8, 32 and 64 concurrent clients, 1 worker vs N.

Prints, in one run: the in-process floor (query encoding + search, p50), /v1/ask p50/p95/p99 for one client,
and for each worker count and client count: answered questions/s, errors, p50/p95/p99. The questions are the
gold set's, cycled; every client sends its next question as soon as the previous answer arrives.

Run: .venv/bin/python benchmarks/bench_load.py [--seconds 60] [--clients 1,8,32,64] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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


async def run_clients(base: str, qs: list[str], clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:

        async def one(i: int) -> None:
            n = i
            while time.monotonic() < stop:
                q = qs[n % len(qs)]
                n += clients
                t = time.perf_counter()
                try:
                    r = await client.post("/v1/ask", json={"question": q})
                    if r.status_code == 200:
                        latencies.append((time.perf_counter() - t) * 1000)
                    else:
                        errors[str(r.status_code)] = errors.get(str(r.status_code), 0) + 1
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1

        started = time.monotonic()
        await asyncio.gather(*(one(i) for i in range(clients)))
        elapsed = time.monotonic() - started
    return {
        "clients": clients,
        "answered_per_s": round(len(latencies) / elapsed, 1),
        "errors": errors,
        "p50": round(pct(latencies, 50), 1) if latencies else None,
        "p95": round(pct(latencies, 95), 1) if latencies else None,
        "p99": round(pct(latencies, 99), 1) if latencies else None,
    }


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
    for q in qs:
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
    ap.add_argument("--clients", default="1,8,32,64")
    ap.add_argument("--workers", default=f"1,{os.cpu_count() or 1}")
    args = ap.parse_args()
    from api.settings import Settings

    index = args.index or Settings().resolved_index_dir
    qs = questions()
    print(f"machine: {machine()}")
    fl = floor(index, qs)
    print(
        f"floor, in-process: query encoding p50 {fl['encode_p50']} ms, encoding + search p50 {fl['encode_plus_search_p50']} ms"
    )
    print()
    print("| workers | clients | answered/s | errors | p50 ms | p95 ms | p99 ms |")
    print("|---:|---:|---:|---|---:|---:|---:|")
    for workers in [int(w) for w in args.workers.split(",")]:
        proc, base = start(index, workers)
        try:
            asyncio.run(run_clients(base, qs, 4, 5))  # warm every worker
            for clients in [int(c) for c in args.clients.split(",")]:
                r = asyncio.run(run_clients(base, qs, clients, args.seconds))
                print(
                    f"| {workers} | {clients} | {r['answered_per_s']} | {r['errors'] or 0} | {r['p50']} | {r['p95']} | {r['p99']} |",
                    flush=True,
                )
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
