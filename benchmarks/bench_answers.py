"""Answer benchmark: gold set quality (in-process and over HTTP), CMRC2018 answer-span hits vs a baseline,
and /v1/ask latency over loopback beside the floor (query encoding + search alone).

Run: .venv/bin/python benchmarks/bench_answers.py [--cmrc-limit N] [--skip-cmrc] [--calibrate]
Or one table of refusals and answers per data set and composer:
     .venv/bin/python benchmarks/bench_answers.py --sets gold-test,provincial,cmrc2018-unanswerable \
         --composers extractive-v1,learned [--limit N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.assemble import service_options  # noqa: E402
from benchmarks.common import REPO, SHARED, pct, setup  # noqa: E402
from data.load import builtin_corpus_dir, load_paths  # noqa: E402
from evaluation.backends import (  # noqa: E402
    HttpBackend,
    ServiceBackend,
    indexed_speeches,
    with_composer,
)
from evaluation.datasets import BENCHMARKS, load_benchmark  # noqa: E402
from evaluation.gold import load_gold  # noqa: E402
from evaluation.metrics import key_points_found  # noqa: E402
from evaluation.report import answer_table  # noqa: E402
from evaluation.runner import evaluate, summarize  # noqa: E402
from qa.index import build_index  # noqa: E402
from qa.service import AnswerService  # noqa: E402

GOLD = REPO / "data" / "eval" / "gold.jsonl"


def print_summary(title: str, s: dict) -> None:
    print(f"\n## {title}")
    print(
        f"key-point recall {s['answer']['key_point_recall']:.3f} (answerable, n={s['abstention']['n_answerable']}); "
        f"unanswerable refused {1 - s['abstention']['false_answers']:.3f} (n={s['abstention']['n_unanswerable']}); "
        f"answerable refused {s['abstention']['false_refusals']:.3f}; abstention accuracy {s['abstention']['accuracy']:.3f}"
    )
    print(
        f"citations valid {s['citations']['valid']:.3f}, precision {s['citations']['precision']:.3f}, "
        f"coverage {s['citations']['coverage']:.3f} ({s['citations']['n_citations']} citations); "
        f"retrieval hit@5 {s['retrieval']['hit@5']:.3f}, MRR {s['retrieval']['mrr']:.3f}"
    )


def calibrate(service: AnswerService) -> None:
    """Print the evidence score of every gold question so the refusal threshold can be chosen."""
    gold = load_gold(GOLD).items
    rows = []
    for g in gold:
        r = service.retrieval_for(g.question, service.top_k)
        comp = service.composer.compose(g.question, r)  # type: ignore[attr-defined]
        rows.append((comp.evidence, g.answerable, g.id, g.question, comp.features))
    rows.sort(key=lambda x: x[0])
    for ev, ans, gid, q, f in rows:
        print(
            f"{ev:.3f} {'A' if ans else 'U'} {gid} {q} cov={f.get('coverage', 0):.2f} "
            f"sim={f.get('best_sim', 0):.3f} unk={f.get('unknown_terms')}"
        )
    for t in np.arange(0.30, 0.70, 0.02):
        fr = sum(1 for ev, a, *_ in rows if a and ev < t) / max(1, sum(1 for r in rows if r[1]))
        ref = sum(1 for ev, a, *_ in rows if not a and ev < t) / max(1, sum(1 for r in rows if not r[1]))
        print(f"threshold {t:.2f}: unanswerable refused {ref:.3f}, answerable refused {fr:.3f}")


def cmrc_answers(encoder, cache, limit: int | None) -> dict:
    bench = load_benchmark("cmrc2018", SHARED / "benchmarks", limit=limit)
    questions = bench.items
    with tempfile.TemporaryDirectory() as tmp:
        build_index(bench.speeches, encoder, Path(tmp) / "cmrc", cache=cache)
        service = AnswerService.open(Path(tmp) / "cmrc", encoder)
        ours = base = refused = 0
        for q in questions:
            # The reference answers are the variants of one key point.
            a = service.ask(q.question)
            refused += not a.answerable
            ours += key_points_found(a.answer, q.key_points)[0]
            top = service.search(q.question, 1, mode="bm25")
            first = (
                service.index.paragraph(service.index.row_of(top[0].passage_id)).sentences[0].text
                if top
                else ""
            )
            base += key_points_found(first, q.key_points)[0]
    n = len(questions)
    return {"n": n, "ours": ours / n, "baseline": base / n, "refused": refused / n}


def http_latency(base: str, service: AnswerService, rounds: int) -> dict:
    questions = [g.question for g in load_gold(GOLD).items]
    ask, search, floor = [], [], []
    # Each kind in a pass of its own. Interleaved (ask, search, then the in-process floor, question by question)
    # each measurement ran just after another process's inference and paid for it: /v1/ask p50 9.4-9.5 ms
    # against 7.6-7.7 ms in its own pass, the floor 5.6 against 4.8-5.0 ms (two alternating runs of each,
    # 2026-12-06; /tmp experiment). A server's client does not run the encoder between its questions.
    with httpx.Client(base_url=base, timeout=30) as http:
        for q in questions[:10]:
            http.post("/v1/ask", json={"question": q})
            http.post("/v1/search", json={"question": q})
            service.retriever.retrieve(q, 5)
        for _ in range(rounds):
            for q in questions:
                t0 = time.perf_counter()
                r = http.post("/v1/ask", json={"question": q})
                ask.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200, r.text
            for q in questions:
                t0 = time.perf_counter()
                http.post("/v1/search", json={"question": q})
                search.append((time.perf_counter() - t0) * 1000)
            for q in questions:
                t0 = time.perf_counter()
                service.retriever.retrieve(q, 5)
                floor.append((time.perf_counter() - t0) * 1000)
    return {
        "n": len(ask),
        "ask_p50": pct(ask, 50),
        "ask_p95": pct(ask, 95),
        "search_http_p50": pct(search, 50),
        "search_http_p95": pct(search, 95),
        "floor_p50": pct(floor, 50),
        "floor_p95": pct(floor, 95),
    }


def composer_table(settings, encoder, cache, sets: list[str], composers: list[str], limit: int | None) -> str:
    """Each set indexed once in a temporary directory, then asked once per composer; one Markdown table."""
    runs = []
    for name in sets:
        bench = load_benchmark(name, SHARED / "benchmarks", limit=limit)
        with indexed_speeches(bench.speeches, encoder, cache=cache) as index_dir:
            for composer in composers:
                options = service_options(with_composer(settings, composer or None))
                service = AnswerService.open(index_dir, encoder, **options)
                results = evaluate(bench.items, ServiceBackend(service, source=f"benchmark:{name}"), k=5)
                summary = summarize(results, k=5, source=f"benchmark:{name}")
                runs.append((name, composer or "(configured)", summary))
                print(
                    f"done: {name} x {composer or '(configured)'} ({len(results)} questions)", file=sys.stderr
                )
    return answer_table(runs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cmrc-limit", type=int, default=None)
    ap.add_argument("--skip-cmrc", action="store_true")
    ap.add_argument("--calibrate", action="store_true", help="print evidence scores and threshold trade-offs")
    ap.add_argument("--rounds", type=int, default=3, help="latency rounds over the gold questions")
    ap.add_argument(
        "--sets",
        help=f"print one table for these comma-separated benchmarks ({', '.join(BENCHMARKS)}) and stop",
    )
    ap.add_argument(
        "--composers",
        default="",
        help="comma-separated composer names for --sets (default: the configured one)",
    )
    ap.add_argument("--limit", type=int, default=None, help="questions per set for --sets")
    args = ap.parse_args()
    if args.sets:
        unknown = [s for s in args.sets.split(",") if s not in BENCHMARKS]
        if unknown:
            ap.error(f"unknown set(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    settings, encoder, cache = setup()
    if args.sets:
        composers = [c.strip() for c in args.composers.split(",")] if args.composers else [""]
        print()
        print(composer_table(settings, encoder, cache, args.sets.split(","), composers, args.limit))
        return

    with tempfile.TemporaryDirectory() as tmp:
        index_dir = Path(tmp) / "idx"
        build_index(load_paths([builtin_corpus_dir()]).speeches, encoder, index_dir, cache=cache)
        service = AnswerService.open(index_dir, encoder)
        if args.calibrate:
            calibrate(service)
            return
        items = load_gold(GOLD).items
        s = summarize(evaluate(items, ServiceBackend(service)), k=5, source="in-process")
        print_summary(f"Gold set in-process ({len(items)} questions)", s)

        port = 8765
        env = dict(os.environ, SPEECHQA_HOME=str(settings.home))
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--port", str(port), "--index", str(index_dir)],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(600):
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            backend = HttpBackend.connect(base)
            s_http = summarize(evaluate(items, backend), k=5, source=base)
            print_summary("Gold set over HTTP (citations resolved through GET /v1/passages/{id})", s_http)
            lat = http_latency(base, service, args.rounds)
            print(f"\n## POST /v1/ask over loopback, built-in corpus, warm ({lat['n']} requests)")
            print(
                f"/v1/ask p50 {lat['ask_p50']:.1f} ms, p95 {lat['ask_p95']:.1f} ms; "
                f"/v1/search p50 {lat['search_http_p50']:.1f} ms; "
                f"floor (query encoding + hybrid search, in-process) p50 {lat['floor_p50']:.1f} ms, "
                f"p95 {lat['floor_p95']:.1f} ms"
            )
        finally:
            proc.terminate()
            proc.wait(timeout=10)

    if not args.skip_cmrc:
        c = cmrc_answers(encoder, cache, args.cmrc_limit)
        print(f"\n## CMRC2018 dev ({c['n']} questions): answer contains a gold answer span")
        print(
            f"speechqa {c['ours']:.3f} (refused {c['refused']:.3f}) vs baseline "
            f"'first sentence of the top BM25 paragraph' {c['baseline']:.3f}"
        )


if __name__ == "__main__":
    main()
