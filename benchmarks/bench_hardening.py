"""Hardening figures (not CI): schemathesis with >= 10,000 cases, a loopback load at 50 clients with keys and
rate limits on (errors other than deliberate 429s, p50/p99, server RSS after warm-up and at the end), and
hooks for kill -9 ingest trials and concurrent-writer trials against one index directory.

Run: .venv/bin/python benchmarks/bench_hardening.py [--fuzz-cases 10000] [--load-seconds 300] [--clients 50]
     [--workers 2] [--rate-limit 20/second] [--kill-trials 20] [--writer-trials 10] [--skip-fuzz] [--skip-load]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import REPO, pct  # noqa: E402

GOLD = REPO / "data" / "eval" / "gold.jsonl"
PY = sys.executable


def _questions() -> list[str]:
    return [json.loads(x)["question"] for x in GOLD.read_text(encoding="utf-8").splitlines() if x.strip()]


def _index_dir(args: argparse.Namespace) -> Path:
    from api.settings import Settings

    return Path(args.index) if args.index else Settings().resolved_index_dir


# ----------------------------------------------------------------------------------------------------
# schemathesis


def run_fuzz(args: argparse.Namespace) -> dict:
    """Every operation of the OpenAPI document, ``--fuzz-cases`` cases in all, in-process against the real
    service (keys on); counts 5xx and schema violations."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    from api.app import create_app
    from api.assemble import build_service
    from api.settings import Settings

    s = Settings(index_dir=_index_dir(args), api_keys="fuzz:fuzz-key")
    app = create_app(s, service=build_service(s))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    ops = [op.ok() for op in schema.get_all_operations()]
    per_op = math.ceil(args.fuzz_cases / len(ops))
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
    ]
    counts = {"cases": 0, "failures": 0, "5xx": 0, "rounds": 0}
    examples: list[str] = []
    started = time.perf_counter()
    # Operations without parameters run out of distinct cases at once; rounds (fresh random seeds) go on
    # until the total is reached.
    while counts["cases"] < args.fuzz_cases:
        counts["rounds"] += 1
        per_op = math.ceil((args.fuzz_cases - counts["cases"]) / len(ops))
        for operation in ops:

            @settings(
                max_examples=per_op, deadline=None, database=None, suppress_health_check=list(HealthCheck)
            )
            @given(case=operation.as_strategy())
            def run(case):  # type: ignore[no-untyped-def]
                counts["cases"] += 1
                try:
                    response = case.call_and_validate(headers={"X-API-Key": "fuzz-key"}, checks=checks)
                except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - counted and shown
                    counts["failures"] += 1
                    if len(examples) < 5:
                        examples.append(f"{case.method} {case.path}: {str(exc)[:300]}")
                    return
                counts["5xx"] += response.status_code >= 500

            run()
        print(f"  round {counts['rounds']}: {counts['cases']} cases so far", flush=True)
    counts["seconds"] = round(time.perf_counter() - started, 1)
    print(f"schemathesis: {counts}")
    for e in examples:
        print("  e.g.", e)
    return counts


# ----------------------------------------------------------------------------------------------------
# load


def _rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (the uvicorn parent and its workers)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return total / 1024


def _start_server(index_dir: Path, port: int, env: dict[str, str], workers: int) -> subprocess.Popen:
    cmd = [
        PY,
        "-m",
        "cli",
        "serve",
        "--port",
        str(port),
        "--index",
        str(index_dir),
        "--workers",
        str(workers),
    ]
    proc = subprocess.Popen(
        cmd, cwd=REPO, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                # Every worker must have loaded: a few more probes land on the others.
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(1)
    proc.kill()
    raise RuntimeError("server not ready in 600 s")


async def _client(
    n: int, base: str, key: str, questions: list[str], stop: float, out: dict, lat: list[float]
) -> None:
    rnd = random.Random(n)
    async with httpx.AsyncClient(base_url=base, timeout=30, headers={"X-API-Key": key}) as http:
        while time.monotonic() < stop:
            roll = rnd.random()
            started = time.perf_counter()
            try:
                if roll < 0.7:
                    r = await http.post("/v1/ask", json={"question": rnd.choice(questions)})
                elif roll < 0.9:
                    r = await http.post("/v1/search", json={"question": rnd.choice(questions)})
                else:
                    r = await http.get("/v1/speeches")
            except httpx.HTTPError as exc:
                out["transport_errors"] += 1
                out.setdefault("examples", []).append(repr(exc)[:200])
                continue
            status = r.status_code
            if status == 429 or (status == 503 and r.json().get("code") == "overloaded"):
                # Deliberate back-pressure (rate limit, or every answer slot busy): counted apart from errors.
                out["429" if status == 429 else "503_overloaded"] += 1
                await asyncio.sleep(min(float(r.headers.get("retry-after", "1")), 5))
                continue
            if status >= 400:
                out["errors"] += 1
                out[f"status_{status}"] = out.get(f"status_{status}", 0) + 1
                out.setdefault("examples", []).append(f"{status} {r.text[:200]}")
                continue
            out["ok"] += 1
            lat.append((time.perf_counter() - started) * 1000)


def run_load(args: argparse.Namespace) -> dict:
    from tests.conftest import free_port

    keys = [f"client{i}:key-{i}-{os.urandom(6).hex()}" for i in range(args.clients)]
    env = {"SPEECHQA_API_KEYS": ",".join(keys), "SPEECHQA_RATE_LIMIT": args.rate_limit}
    port = free_port()
    proc = _start_server(_index_dir(args), port, env, args.workers)
    base = f"http://127.0.0.1:{port}"
    questions = _questions()
    out = {"ok": 0, "429": 0, "503_overloaded": 0, "errors": 0, "transport_errors": 0}
    lat: list[float] = []

    async def main() -> dict:
        warm_stop = time.monotonic() + args.warmup_seconds
        warm = {"ok": 0, "429": 0, "503_overloaded": 0, "errors": 0, "transport_errors": 0}
        await asyncio.gather(
            *(_client(i, base, k.split(":")[1], questions, warm_stop, warm, []) for i, k in enumerate(keys))
        )
        rss_warm = _rss_mb(proc.pid)
        stop = time.monotonic() + args.load_seconds
        await asyncio.gather(
            *(_client(i, base, k.split(":")[1], questions, stop, out, lat) for i, k in enumerate(keys))
        )
        return {"rss_mb_after_warmup": round(rss_warm, 1), "rss_mb_end": round(_rss_mb(proc.pid), 1)}

    try:
        rss = asyncio.run(main())
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    result = {
        **{k: v for k, v in out.items() if k != "examples"},
        "seconds": args.load_seconds,
        "clients": args.clients,
        "workers": args.workers,
        "rate_limit": args.rate_limit,
        "p50_ms": round(pct(lat, 50), 1),
        "p99_ms": round(pct(lat, 99), 1),
        "throughput_rps": round(out["ok"] / args.load_seconds, 1),
        **rss,
    }
    print(f"load: {result}")
    for e in out.get("examples", [])[:5]:
        print("  e.g.", e)
    return result


# ----------------------------------------------------------------------------------------------------
# index-writer trials (the locking itself is qa/'s; these only run the trials and count)


def _speech_file(folder: Path, tag: str) -> Path:
    """A small speech file with a unique title, so each `ingest --add` adds one new speech."""
    path = folder / f"speech-{tag}.md"
    path.write_text(
        f"## 试验讲话 {tag}\n\n区长 张{tag}\n\n"
        + "\n\n".join(f"第{i}段：关于{tag}的工作安排，我们要持续推进重点项目建设。" for i in range(1, 6))
        + "\n",
        encoding="utf-8",
    )
    return path


def _ingest(index_dir: Path, path: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [PY, "-m", "cli", "ingest", "--add", str(path), "--index", str(index_dir)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _speech_titles(index_dir: Path) -> set[str] | None:
    """The index's speech titles, or None when it cannot be listed (a broken index)."""
    r = subprocess.run(
        [PY, "-m", "cli", "speeches", "--json", "--index", str(index_dir)],
        cwd=REPO,
        capture_output=True,
        timeout=600,
    )
    if r.returncode != 0:
        return None
    return {s["title"] for s in json.loads(r.stdout)}


def kill_ingest_trials(index_dir: Path, trials: int = 20, seed: int = 0) -> dict:
    """``trials`` times: start ``speechqa ingest --add``, kill -9 it after a random delay, then check that the
    index still lists (the previous or the new state, never a broken one)."""
    rnd = random.Random(seed)
    counts = {"trials": trials, "index_ok": 0, "index_broken": 0, "finished_before_kill": 0}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(trials):
            proc = _ingest(index_dir, _speech_file(Path(tmp), f"kill{i}"))
            time.sleep(rnd.uniform(0.5, 8.0))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            else:
                counts["finished_before_kill"] += 1
            proc.wait()
            ok = _speech_titles(index_dir) is not None
            counts["index_ok" if ok else "index_broken"] += 1
    print(f"kill -9 ingest trials: {counts}")
    return counts


def concurrent_writer_trials(index_dir: Path, trials: int = 10, writers: int = 3) -> dict:
    """``trials`` times: ``writers`` concurrent ``ingest --add`` of distinct speeches; counts trials whose
    index afterwards holds every added speech (no lost update), trials with a lost update, and broken indexes."""
    counts = {"trials": trials, "all_added": 0, "lost_updates": 0, "index_broken": 0, "writer_failures": 0}
    with tempfile.TemporaryDirectory() as tmp:
        for t in range(trials):
            files = [_speech_file(Path(tmp), f"w{t}x{w}") for w in range(writers)]
            procs = [_ingest(index_dir, f) for f in files]
            counts["writer_failures"] += sum(p.wait() != 0 for p in procs)
            titles = _speech_titles(index_dir)
            if titles is None:
                counts["index_broken"] += 1
            elif all(f"试验讲话 w{t}x{w}" in titles for w in range(writers)):
                counts["all_added"] += 1
            else:
                counts["lost_updates"] += 1
    print(f"concurrent-writer trials: {counts}")
    return counts


def _scratch_index(args: argparse.Namespace) -> Path:
    """A copy of the served index for the writer trials (they change it)."""
    dst = Path(tempfile.mkdtemp(prefix="speechqa-trials-")) / "index"
    shutil.copytree(_index_dir(args), dst)
    return dst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--index", help="index to serve (default: the configured one; built by `speechqa ingest`)"
    )
    ap.add_argument("--fuzz-cases", type=int, default=10_000)
    ap.add_argument("--load-seconds", type=int, default=300)
    ap.add_argument("--warmup-seconds", type=int, default=20)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--rate-limit", default="20/second", help="per key, as SPEECHQA_RATE_LIMIT")
    ap.add_argument("--kill-trials", type=int, default=0, help="kill -9 ingest trials (20 for the full run)")
    ap.add_argument(
        "--writer-trials", type=int, default=0, help="concurrent-writer trials (10 for the full run)"
    )
    ap.add_argument("--skip-fuzz", action="store_true")
    ap.add_argument("--skip-load", action="store_true")
    args = ap.parse_args()
    results: dict = {}
    if not args.skip_fuzz:
        results["fuzz"] = run_fuzz(args)
    if not args.skip_load:
        results["load"] = run_load(args)
    if args.kill_trials:
        results["kill"] = kill_ingest_trials(_scratch_index(args), args.kill_trials)
    if args.writer_trials:
        results["writers"] = concurrent_writer_trials(_scratch_index(args), args.writer_trials)
    print(json.dumps(results, ensure_ascii=False, indent=1))
    bad = results.get("fuzz", {}).get("failures", 0) + results.get("load", {}).get("errors", 0)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
