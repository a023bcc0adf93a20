"""Retrieval benchmark: gold set (hybrid vs dense vs BM25), CMRC2018 dev, ingest throughput, search latency.

Run: .venv/bin/python benchmarks/bench_retrieval.py [--cmrc-limit N] [--skip-cmrc]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import REPO, SHARED, ingest_threads, pct, setup  # noqa: E402
from data.load import builtin_corpus_dir, load_paths  # noqa: E402
from embeddings.cache import EmbeddingCache  # noqa: E402
from evaluation.datasets import load_benchmark  # noqa: E402
from evaluation.gold import GoldItem, load_gold  # noqa: E402
from evaluation.metrics import PassageJudge, hit_at, mean, reciprocal_rank  # noqa: E402
from qa.index import build_index, load_index  # noqa: E402
from qa.retrieve import HybridRetriever  # noqa: E402


def score(rankings: list[list[bool]]) -> dict:
    """R@k (a relevant passage in the top k) and MRR over questions, from evaluation.metrics."""
    return {
        "R@1": mean(hit_at(r, 1) for r in rankings),
        "R@3": mean(hit_at(r, 3) for r in rankings),
        "R@5": mean(hit_at(r, 5) for r in rankings),
        "MRR": mean(reciprocal_rank(r) for r in rankings),
    }


def relevance(item: GoldItem, hits) -> list[bool]:
    judge = PassageJudge(item.evidence, item.gold_passage_ids)
    return [judge.is_relevant(h.passage_id, h.text) for h in hits]


def gold_set(retriever: HybridRetriever) -> dict:
    gold = [g for g in load_gold(REPO / "data/eval/gold.jsonl").items if g.answerable and g.evidence]
    out = {}
    for mode in ("hybrid", "dense", "bm25"):
        out[mode] = score([relevance(g, retriever.retrieve(g.question, 10, mode=mode).hits) for g in gold])
    out["n"] = len(gold)
    return out


def cmrc(encoder, cache, limit: int | None) -> dict:
    bench = load_benchmark("cmrc2018", SHARED / "benchmarks", limit=limit)
    # Gold is the question's paragraph only (the evidence slice would also accept copies of it elsewhere).
    questions = [replace(q, evidence=()) for q in bench.items]
    with tempfile.TemporaryDirectory() as tmp, ingest_threads():
        t0 = time.perf_counter()
        build_index(bench.speeches, encoder, Path(tmp) / "cmrc", cache=cache)
        build_s = time.perf_counter() - t0
        retriever = HybridRetriever(load_index(Path(tmp) / "cmrc", encoder), encoder)
        res = {}
        qvecs = encoder.encode_queries([q.question for q in questions])
        for mode in ("hybrid", "bm25", "dense"):
            rankings = [
                relevance(q, retriever.retrieve(q.question, 5, mode=mode, query_vector=qv).hits)
                for q, qv in zip(questions, qvecs, strict=True)
            ]
            res[mode] = score(rankings)
    res["n_questions"] = len(questions)
    res["n_paragraphs"] = sum(len(s.paragraphs) for s in bench.speeches)
    res["build_seconds"] = round(build_s, 1)
    return res


def throughput(encoder, n: int) -> dict:
    """Ingest (parse -> encode -> index -> write, empty cache) vs the bare encoder on the same paragraphs."""
    speeches = list(load_benchmark("cmrc2018", SHARED / "benchmarks", limit=1).speeches[:n])
    texts = [p.text for s in speeches for p in s.paragraphs]
    with ingest_threads():
        return _throughput(encoder, speeches, texts)


def _throughput(encoder, speeches, texts) -> dict:
    encoder.encode_passages(texts[:4])  # warm
    t0 = time.perf_counter()
    encoder.encode_passages(texts)
    raw = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        m = build_index(speeches, encoder, Path(tmp) / "idx", cache=EmbeddingCache(Path(tmp) / "c.sqlite"))
        total = time.perf_counter() - t0
    return {
        "paragraphs": len(texts),
        "raw_encoder_pps": round(len(texts) / raw, 2),
        "ingest_pps": round(len(texts) / total, 2),
        "ratio": round(raw / total, 3),
        "ingest_encode_seconds": m.encode_seconds,
        "ingest_total_seconds": round(total, 2),
        "raw_seconds": round(raw, 2),
    }


def latency(retriever: HybridRetriever, rounds: int = 3) -> dict:
    questions = [g.question for g in load_gold(REPO / "data/eval/gold.jsonl").items]
    for q in questions[:5]:
        retriever.retrieve(q, 5)
    times, encode = [], []
    for _ in range(rounds):
        for q in questions:
            t0 = time.perf_counter()
            qv = retriever.encode_query(q)
            t1 = time.perf_counter()
            retriever.retrieve(q, 5, query_vector=qv)
            t2 = time.perf_counter()
            times.append((t2 - t0) * 1000)
            encode.append((t1 - t0) * 1000)
    return {
        "n": len(times),
        "search_p50_ms": round(pct(times, 50), 2),
        "search_p95_ms": round(pct(times, 95), 2),
        "query_encode_p50_ms": round(pct(encode, 50), 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cmrc-limit", type=int, default=None, help="only the first N CMRC questions")
    ap.add_argument("--skip-cmrc", action="store_true")
    ap.add_argument("--throughput-paragraphs", type=int, default=160)
    args = ap.parse_args()
    settings, encoder, cache = setup()

    with tempfile.TemporaryDirectory() as tmp:
        build_index(load_paths([builtin_corpus_dir()]).speeches, encoder, Path(tmp) / "idx", cache=cache)
        retriever = HybridRetriever(load_index(Path(tmp) / "idx", encoder), encoder)
        g = gold_set(retriever)
        print(f"\n## Gold set ({g['n']} answerable questions), built-in corpus")
        print("| mode | R@1 | R@3 | R@5 | MRR |\n|---|---|---|---|---|")
        for mode in ("hybrid", "dense", "bm25"):
            s = g[mode]
            print(f"| {mode} | {s['R@1']:.3f} | {s['R@3']:.3f} | {s['R@5']:.3f} | {s['MRR']:.3f} |")
        lat = latency(retriever)
        print(f"\n## Warm search latency, built-in corpus ({lat['n']} queries, k=5)")
        print(
            f"p50 {lat['search_p50_ms']} ms, p95 {lat['search_p95_ms']} ms "
            f"(of which query encoding p50 {lat['query_encode_p50_ms']} ms)"
        )

    if not args.skip_cmrc:
        c = cmrc(encoder, cache, args.cmrc_limit)
        print(
            f"\n## CMRC2018 dev as retrieval ({c['n_paragraphs']} paragraphs, {c['n_questions']} questions)"
        )
        print("| mode | R@1 | R@5 | MRR |\n|---|---|---|---|")
        for mode in ("hybrid", "bm25", "dense"):
            s = c[mode]
            print(f"| {mode} | {s['R@1']:.3f} | {s['R@5']:.3f} | {s['MRR']:.3f} |")

    t = throughput(encoder, args.throughput_paragraphs)
    print(f"\n## Ingest throughput ({t['paragraphs']} CMRC2018 paragraphs, empty cache)")
    print(
        f"raw encoder {t['raw_encoder_pps']} paragraphs/s ({t['raw_seconds']} s); "
        f"ingest {t['ingest_pps']} paragraphs/s ({t['ingest_total_seconds']} s, of which encoding "
        f"{t['ingest_encode_seconds']} s); ratio {t['ratio']}"
    )


if __name__ == "__main__":
    main()
