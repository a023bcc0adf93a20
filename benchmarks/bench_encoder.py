"""Encoder runtimes side by side: torch fp32 vs onnxruntime fp32 vs onnxruntime int8 on the default model.

Prints query latency (one question at a time, 1 thread), ingest throughput (paragraphs with sentence spans,
straight into the encoder, all cores), cosine parity with torch fp32, and retrieval metrics (gold set,
CMRC2018 dev) for torch fp32 and int8.

Run: .venv/bin/python benchmarks/bench_encoder.py [--limit N]   (N: CMRC2018 dev paragraphs to index)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.assemble import open_cache  # noqa: E402
from api.settings import Settings  # noqa: E402
from benchmarks.bench_retrieval import rank_of, score  # noqa: E402
from benchmarks.common import REPO, SHARED, load_cmrc, machine, pct  # noqa: E402
from data.parse import builtin_corpus_dir, load_paths  # noqa: E402
from embeddings.encoder import Encoder  # noqa: E402
from embeddings.factory import create_encoder  # noqa: E402
from qa.encode import BATCH, _spans, dense_prefix  # noqa: E402
from qa.index import build_index, load_index  # noqa: E402
from qa.retrieve import HybridRetriever  # noqa: E402

RUNTIMES = ("torch", "onnx-fp32", "onnx-int8")


def gold_questions() -> list[str]:
    lines = (REPO / "data/eval/gold.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


def parity_texts() -> list[str]:
    """Gold questions, built-in corpus sentences and a few CMRC2018 trial paragraphs (as the parity test)."""
    corpus = "\n".join(p.read_text(encoding="utf-8") for p in sorted(builtin_corpus_dir().glob("*.txt")))
    sentences = [
        s.strip()
        for line in corpus.splitlines()
        for s in re.split(r"(?<=[。！？])", line)
        if len(s.strip()) >= 8
    ]
    trial = SHARED / "benchmarks" / "cmrc2018" / "cmrc2018_trial.json"
    cmrc = []
    if trial.is_file():
        data = json.loads(trial.read_text(encoding="utf-8"))
        cmrc = [p["context"] for a in data["data"] for p in a["paragraphs"]][:12]
    return gold_questions() + sentences[:120] + cmrc


def query_latency(encoder: Encoder, questions: list[str]) -> dict:
    for q in questions[:5]:
        encoder.encode_queries([q])
    times = []
    for q in questions:
        t0 = time.perf_counter()
        encoder.encode_queries([q])
        times.append((time.perf_counter() - t0) * 1000)
    return {"n": len(times), "p50": pct(times, 50), "p95": pct(times, 95)}


def ingest_speed(encoder: Encoder, items: list) -> dict:
    """Paragraphs/s through ``encode_passages_with_spans`` in ingest's batches, no cache."""
    texts = [prefix + p.text for prefix, p in items]
    spans = [_spans(prefix, p) for prefix, p in items]
    encoder.encode_passages_with_spans(texts[:2], spans[:2])  # type: ignore[attr-defined]  # warm
    t0 = time.perf_counter()
    for start in range(0, len(texts), BATCH):
        encoder.encode_passages_with_spans(texts[start : start + BATCH], spans[start : start + BATCH])  # type: ignore[attr-defined]
    seconds = time.perf_counter() - t0
    return {"paragraphs": len(texts), "seconds": seconds, "pps": len(texts) / seconds}


def parity(encoder: Encoder, reference: Encoder, texts: list[str]) -> dict:
    ours = np.vstack([encoder.encode_queries(texts), encoder.encode_passages(texts)])
    ref = np.vstack([reference.encode_queries(texts), reference.encode_passages(texts)])
    cos = (ours * ref).sum(axis=1)
    return {"n": len(cos), "mean": float(cos.mean()), "min": float(cos.min())}


def cmrc_retrieval(encoder: Encoder, cache, limit: int | None) -> dict:
    speeches, questions = load_cmrc("dev")
    if limit:
        speeches = speeches[:limit]
        kept = {s.speech_id for s in speeches}
        questions = [q for q in questions if q["gold_speech"] in kept]
    with tempfile.TemporaryDirectory() as tmp:
        build_index(speeches, encoder, Path(tmp) / "cmrc", cache=cache)
        retriever = HybridRetriever(load_index(Path(tmp) / "cmrc", encoder), encoder)
        qvecs = encoder.encode_queries([q["question"] for q in questions])
        out: dict = {"paragraphs": len(speeches), "questions": len(questions)}
        for mode in ("hybrid", "dense"):
            ranks = []
            for q, qv in zip(questions, qvecs, strict=True):
                hits = retriever.retrieve(q["question"], 5, mode=mode, query_vector=qv).hits
                ranks.append(rank_of(hits, lambda h, q=q: h.speech_id == q["gold_speech"]))
            out[mode] = score(ranks)
    return out


def gold_retrieval(encoder: Encoder, cache) -> dict:
    """The gold set's answerable questions on the built-in corpus, scored as bench_retrieval.gold_set does."""
    lines = (REPO / "data/eval/gold.jsonl").read_text(encoding="utf-8").splitlines()
    gold = [g for g in (json.loads(x) for x in lines if x.strip()) if g["answerable"] and g["evidence"]]
    with tempfile.TemporaryDirectory() as tmp:
        build_index(load_paths([builtin_corpus_dir()]).speeches, encoder, Path(tmp) / "idx", cache=cache)
        retriever = HybridRetriever(load_index(Path(tmp) / "idx", encoder), encoder)
        qvecs = encoder.encode_queries([g["question"] for g in gold])
        out: dict = {"n": len(gold)}
        for mode in ("hybrid", "dense"):
            ranks = []
            for g, qv in zip(gold, qvecs, strict=True):
                hits = retriever.retrieve(g["question"], 10, mode=mode, query_vector=qv).hits
                ranks.append(rank_of(hits, lambda h, g=g: any(e in h.text for e in g["evidence"])))
            out[mode] = score(ranks)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="index only the first N CMRC2018 dev paragraphs")
    ap.add_argument("--paragraphs", type=int, default=300, help="CMRC2018 dev paragraphs for ingest speed")
    ap.add_argument("--queries", type=int, default=80, help="gold questions for query latency")
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # sections show up as they finish under tee

    settings = Settings()
    cache = open_cache(settings)
    cores = os.cpu_count() or 1
    started = time.perf_counter()

    def make(runtime: str, threads: int) -> Encoder:
        return create_encoder(settings.model, runtime=runtime, cache_dir=settings.home, threads=threads)  # type: ignore[arg-type]

    # One thread per query, as the server runs them (api/assemble.build_encoder).
    query_encoders = {rt: make(rt, 1) for rt in RUNTIMES}
    print(f"machine: {machine()}")
    for rt, enc in query_encoders.items():
        print(f"{rt}: {enc.model_id}")

    questions = gold_questions()[: args.queries]
    latency = {rt: query_latency(enc, questions) for rt, enc in query_encoders.items()}
    print(f"\n## Query encoding, {len(questions)} gold questions one at a time, 1 thread")
    print("| runtime | p50 ms | p95 ms | p50 speed-up vs torch |\n|---|---|---|---|")
    for rt, lat in latency.items():
        print(f"| {rt} | {lat['p50']:.2f} | {lat['p95']:.2f} | {latency['torch']['p50'] / lat['p50']:.2f}x |")

    texts = parity_texts()
    print(f"\n## Cosine with torch fp32, {len(texts)} texts as query and as passage (batched)")
    print("| runtime | vectors | mean | min |\n|---|---|---|---|")
    for rt in ("onnx-fp32", "onnx-int8"):
        par = parity(query_encoders[rt], query_encoders["torch"], texts)
        print(f"| {rt} | {par['n']} | {par['mean']:.5f} | {par['min']:.5f} |")
    del query_encoders

    # Ingest runs on all cores (api/assemble.build_encoder(for_ingest=True)).
    ingest_encoders = {rt: make(rt, cores) for rt in ("torch", "onnx-int8")}
    speeches, _ = load_cmrc("dev")
    items = [(dense_prefix(s, p), p) for s in speeches[: args.paragraphs] for p in s.paragraphs]
    speed = {rt: ingest_speed(enc, items) for rt, enc in ingest_encoders.items()}
    print(
        f"\n## Ingest encoding, {len(items)} CMRC2018 dev paragraphs with sentence spans, no cache, {cores} threads"
    )
    print("| runtime | paragraphs/s | seconds | speed-up vs torch |\n|---|---|---|---|")
    for rt, sp in speed.items():
        print(f"| {rt} | {sp['pps']:.2f} | {sp['seconds']:.1f} | {sp['pps'] / speed['torch']['pps']:.2f}x |")

    print("\n## Retrieval (indexes built through the embedding cache, which keys on model_id)")
    rows = []
    for rt, enc in ingest_encoders.items():
        t0 = time.perf_counter()
        g = gold_retrieval(enc, cache)
        c = cmrc_retrieval(enc, cache, args.limit)
        rows.append((rt, g, c))
        print(f"({rt}: {time.perf_counter() - t0:.0f} s)", flush=True)
    n_gold, n_par, n_q = rows[0][1]["n"], rows[0][2]["paragraphs"], rows[0][2]["questions"]
    print(
        f"gold set: {n_gold} answerable questions, built-in corpus; "
        f"CMRC2018 dev: {n_par} paragraphs, {n_q} questions"
    )
    print(
        "| runtime | gold R@5 hybrid | gold MRR hybrid | gold R@5 dense | gold MRR dense "
        "| CMRC R@1 hybrid | CMRC R@5 hybrid | CMRC R@1 dense | CMRC R@5 dense |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for rt, g, c in rows:
        print(
            f"| {rt} | {g['hybrid']['R@5']:.3f} | {g['hybrid']['MRR']:.3f} | {g['dense']['R@5']:.3f} "
            f"| {g['dense']['MRR']:.3f} | {c['hybrid']['R@1']:.3f} | {c['hybrid']['R@5']:.3f} "
            f"| {c['dense']['R@1']:.3f} | {c['dense']['R@5']:.3f} |"
        )
    print(f"\n(whole run: {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
