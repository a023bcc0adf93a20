"""Encoder runtimes side by side: torch fp32 vs onnxruntime fp32 / int8 vs openvino-int8 on the default model.

Prints query latency (one question at a time, 1 thread), ingest throughput on the same CMRC2018 dev paragraphs
for torch fp32, onnx-int8 and openvino-int8 (all cores, empty cache: the bare encoder with sentence spans, and
the whole ``build_index`` into a fresh embedding cache), cosine parity with torch fp32, and retrieval metrics
(gold set, CMRC2018 dev) for the same three. openvino-int8 runs queries and passages on the export's OpenVINO
static-int8 build. "Query batches" prints the cost of a question when several are encoded at once (what
``qa.batching`` does under load) and how far a question's vector in a batch is from its vector alone.

Run: .venv/bin/python benchmarks/bench_encoder.py [--limit N]   (N: CMRC2018 dev paragraphs to index)
     .venv/bin/python benchmarks/bench_encoder.py --only ingest [--paragraphs 300]
     .venv/bin/python benchmarks/bench_encoder.py --only queries
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.assemble import open_cache  # noqa: E402
from api.settings import Settings  # noqa: E402
from benchmarks.bench_retrieval import score  # noqa: E402
from benchmarks.common import REPO, SHARED, machine, pct  # noqa: E402
from data.load import builtin_corpus_dir, load_paths  # noqa: E402
from data.records import Speech  # noqa: E402
from embeddings.cache import EmbeddingCache  # noqa: E402
from embeddings.encoder import Encoder  # noqa: E402
from embeddings.factory import create_encoder  # noqa: E402
from evaluation.datasets import load_benchmark  # noqa: E402
from qa.encode import BATCH, _spans, dense_prefix  # noqa: E402
from qa.index import build_index, load_index  # noqa: E402
from qa.retrieve import HybridRetriever  # noqa: E402

RUNTIMES = ("torch", "onnx-fp32", "onnx-int8", "openvino-int8")
INGEST_RUNTIMES = ("torch", "onnx-int8", "openvino-int8")
BATCH_RUNTIMES = ("onnx-int8", "openvino-int8")
BATCH_SIZES = (1, 2, 4, 8, 16)


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


def query_batches(encoder: Encoder, questions: list[str]) -> dict:
    """ms per question when ``encode_queries`` gets B random questions at once, and the lowest cosine between
    a question's vector in a batch of 8 and its vector alone (1.0: the batch-mates do not move it)."""
    rng = random.Random(7)
    per_question = {}
    for b in BATCH_SIZES:
        groups = [rng.sample(questions, b) for _ in range(max(12, 320 // b))]
        for g in groups:  # warm: OpenVINO compiles kernels for each new input shape once
            encoder.encode_queries(g)
        t0 = time.perf_counter()
        for g in groups:
            encoder.encode_queries(g)
        per_question[b] = (time.perf_counter() - t0) * 1000 / (len(groups) * b)
    order = list(range(len(questions)))
    rng.shuffle(order)
    batched = np.zeros((len(questions), encoder.dim), dtype=np.float32)
    for start in range(0, len(order), 8):
        rows = order[start : start + 8]
        batched[rows] = encoder.encode_queries([questions[i] for i in rows])
    alone = np.vstack([encoder.encode_queries([q]) for q in questions])
    return {"ms": per_question, "min_cosine": float((alone * batched).sum(axis=1).min())}


def batch_section(make, questions: list[str]) -> None:
    print(f"\n## Query batches, {len(questions)} gold questions, 1 thread: ms per question at batch size B")
    print(
        "| runtime | "
        + " | ".join(f"B={b}" for b in BATCH_SIZES)
        + " | min cosine, in a batch of 8 vs alone |"
    )
    print("|---|" + "---|" * (len(BATCH_SIZES) + 1))
    for rt in BATCH_RUNTIMES:
        r = query_batches(make(rt, 1), questions)
        cells = " | ".join(f"{r['ms'][b]:.2f}" for b in BATCH_SIZES)
        print(f"| {rt} | {cells} | {r['min_cosine']:.5f} |")


def load_cmrc(split: str = "dev") -> tuple[list[Speech], list[dict]]:
    """CMRC2018 as speeches (one per article) and questions ``{question, gold}`` (the id of their paragraph)."""
    bench = load_benchmark("cmrc2018" if split == "dev" else f"cmrc2018-{split}", SHARED / "benchmarks")
    questions = [
        {"question": g.question, "gold": g.gold_passage_ids[0]} for g in bench.items if g.gold_passage_ids
    ]
    return list(bench.speeches), questions


def first_paragraphs(speeches: list[Speech], n: int) -> list[Speech]:
    """The speeches cut down to their first ``n`` paragraphs in all (articles have several each)."""
    out, left = [], n
    for s in speeches:
        if left <= 0:
            break
        kept = s.paragraphs[:left]
        left -= len(kept)
        out.append(replace(s, paragraphs=kept))
    return out


def ingest_speed(encoder: Encoder, speeches: list[Speech]) -> dict:
    """Paragraphs/s, no cached vectors: through ``encode_passages_with_spans`` in ingest's batches (sorted by
    length, as ``qa.encode`` does), and through the whole ``build_index`` into a fresh embedding cache."""
    items = sorted(
        ((dense_prefix(s, p), p) for s in speeches for p in s.paragraphs), key=lambda x: len(x[0] + x[1].text)
    )
    texts = [prefix + p.text for prefix, p in items]
    spans = [_spans(prefix, p) for prefix, p in items]
    encoder.encode_passages_with_spans(texts[:2], spans[:2])  # type: ignore[attr-defined]  # warm
    t0 = time.perf_counter()
    for start in range(0, len(texts), BATCH):
        encoder.encode_passages_with_spans(texts[start : start + BATCH], spans[start : start + BATCH])  # type: ignore[attr-defined]
    seconds = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        build_index(speeches, encoder, Path(tmp) / "idx", cache=EmbeddingCache(Path(tmp) / "empty.sqlite"))
        ingest_s = time.perf_counter() - t0
    return {
        "paragraphs": len(texts),
        "seconds": seconds,
        "pps": len(texts) / seconds,
        "ingest_seconds": ingest_s,
        "ingest_pps": len(texts) / ingest_s,
    }


def parity(encoder: Encoder, reference: Encoder, texts: list[str]) -> dict:
    ours = np.vstack([encoder.encode_queries(texts), encoder.encode_passages(texts)])
    ref = np.vstack([reference.encode_queries(texts), reference.encode_passages(texts)])
    cos = (ours * ref).sum(axis=1)
    return {"n": len(cos), "mean": float(cos.mean()), "min": float(cos.min())}


def cmrc_retrieval(encoder: Encoder, cache, limit: int | None) -> dict:
    speeches, questions = load_cmrc("dev")
    if limit:
        speeches = first_paragraphs(speeches, limit)
        kept = {p.paragraph_id for s in speeches for p in s.paragraphs}
        questions = [q for q in questions if q["gold"] in kept]
    with tempfile.TemporaryDirectory() as tmp:
        build_index(speeches, encoder, Path(tmp) / "cmrc", cache=cache)
        retriever = HybridRetriever(load_index(Path(tmp) / "cmrc", encoder), encoder)
        qvecs = encoder.encode_queries([q["question"] for q in questions])
        out: dict = {"paragraphs": sum(len(s.paragraphs) for s in speeches), "questions": len(questions)}
        for mode in ("hybrid", "dense"):
            ranks = []
            for q, qv in zip(questions, qvecs, strict=True):
                hits = retriever.retrieve(q["question"], 5, mode=mode, query_vector=qv).hits
                ranks.append([h.passage_id == q["gold"] for h in hits])
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
                ranks.append([any(e in h.text for e in g["evidence"]) for h in hits])
            out[mode] = score(ranks)
    return out


def ingest_section(make, paragraphs: int, cores: int) -> dict[str, Encoder]:
    """Ingest runs on all cores (api/assemble.build_encoder(for_ingest=True)); every runtime gets the same
    paragraphs, and none finds a cached vector."""
    encoders = {rt: make(rt, cores) for rt in INGEST_RUNTIMES}
    speeches = first_paragraphs(load_cmrc("dev")[0], paragraphs)
    speed = {rt: ingest_speed(enc, speeches) for rt, enc in encoders.items()}
    n = next(iter(speed.values()))["paragraphs"]
    print(f"\n## Ingest, {n} CMRC2018 dev paragraphs with sentence spans, empty cache, {cores} threads")
    for rt, enc in encoders.items():
        print(
            f"{rt}: {enc.model_id}"
        )  # openvino-int8 falls back to onnx-int8 without its build: this says so
    print(
        "| runtime | encoder paragraphs/s | encoder s | build_index paragraphs/s | build_index s | speed-up vs torch |"
    )
    print("|---|---|---|---|---|---|")
    for rt, sp in speed.items():
        print(
            f"| {rt} | {sp['pps']:.2f} | {sp['seconds']:.1f} | {sp['ingest_pps']:.2f} | {sp['ingest_seconds']:.1f} "
            f"| {sp['ingest_pps'] / speed['torch']['ingest_pps']:.2f}x |"
        )
    return encoders


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="index only the first N CMRC2018 dev paragraphs")
    ap.add_argument("--paragraphs", type=int, default=300, help="CMRC2018 dev paragraphs for ingest speed")
    ap.add_argument("--queries", type=int, default=80, help="gold questions for query latency")
    ap.add_argument("--only", choices=("ingest", "queries"), default=None, help="run one section only")
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # sections show up as they finish under tee

    settings = Settings()
    cache = open_cache(settings)
    cores = os.cpu_count() or 1
    started = time.perf_counter()

    def make(runtime: str, threads: int) -> Encoder:
        return create_encoder(
            settings.model,
            runtime=runtime,  # type: ignore[arg-type]
            cache_dir=settings.home,
            threads=threads,
            benchmarks_dir=settings.benchmarks_dir or SHARED / "benchmarks",
            # As many calls at once as threads: one for queries, as in a worker of `serve --workers 2` (one
            # answer slot each); a one-worker server has a slot, and an OpenVINO stream, per core.
            concurrency=threads,
        )

    if args.only == "ingest":
        print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f} at start")
        ingest_section(make, args.paragraphs, cores)
        print(f"\n(whole run: {time.perf_counter() - started:.0f} s)")
        return
    if args.only == "queries":
        print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f} at start")
        batch_section(make, gold_questions())
        return

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

    batch_section(make, gold_questions())

    texts = parity_texts()
    print(f"\n## Cosine with torch fp32, {len(texts)} texts as query and as passage (batched)")
    print("| runtime | vectors | mean | min |\n|---|---|---|---|")
    for rt in RUNTIMES[1:]:
        par = parity(query_encoders[rt], query_encoders["torch"], texts)
        print(f"| {rt} | {par['n']} | {par['mean']:.5f} | {par['min']:.5f} |")
    del query_encoders

    ingest_encoders = ingest_section(make, args.paragraphs, cores)

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
