"""Index scale benchmark: build, size, start-up, RSS, search latency, ANN recall, add/remove at N paragraphs.

The corpus is synthetic: paragraphs of 2-5 sentences drawn at random from the public government work
reports in ../shared/benchmarks (national + provincial), grouped into speeches of 100 paragraphs. The
encoder is not what is measured, so vectors are cheap: a sentence's vector is the fake HashEncoder's
(signed hashing of character unigrams and bigrams into ``--dim`` buckets, L2-normalized) and a
paragraph's is the normalized sum of its sentences'. BM25 tokens are jieba's, computed once per pool
sentence and concatenated. Hashed vectors have no cluster structure, which is why ``auto`` uses PQ codes
with exact re-ranking rather than IVF above 50k rows (docs/index.md). Above ``--chunk`` paragraphs the corpus
is generated and written a chunk at a time (``build_index_from_chunks``). Start-up, RSS and searches run in a
fresh process, as a server would.

    python benchmarks/bench_scale.py --sizes 10000,100000
    python benchmarks/bench_scale.py                 # 10k, 100k, 1M (~12 min on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import SHARED, pct  # noqa: E402
from data.records import Paragraph, Sentence, Speech  # noqa: E402
from data.text import split_sentences  # noqa: E402
from embeddings.testing import HashEncoder  # noqa: E402

PARAS_PER_SPEECH = 100


class BenchEncoder:
    """Sentence vectors from HashEncoder; a paragraph's vector is the normalized sum of its sentences'."""

    def __init__(self, dim: int) -> None:
        self._hash = HashEncoder(dim)
        self.dim = dim
        self.model_id = f"bench-sentence-sum-d{dim}"

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._hash.encode_queries(texts)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._hash.encode_passages(texts)

    def encode_passages_with_spans(self, texts, spans):
        pvecs, svecs = [], []
        for text, sp in zip(texts, spans, strict=True):
            s = (
                self._hash.encode_passages([text[a:b] for a, b in sp])
                if sp
                else np.zeros((0, self.dim), np.float32)
            )
            v = s.sum(0) if len(s) else self._hash.encode_passages([text])[0]
            pvecs.append(v / max(float(np.linalg.norm(v)), 1e-12))
            svecs.append(s)
        return np.asarray(pvecs, dtype=np.float32), svecs


def sentence_pool() -> list[str]:
    """Sentences of the public work reports (national and provincial)."""
    texts = []
    for path in sorted((SHARED / "benchmarks").glob("gov_work_reports_*/*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            d = json.loads(line)
            content = d.get("content") or "\n".join(d.get("paragraphs") or [])
            texts.extend(p.strip() for p in content.split("\n") if p.strip())
    pool = []
    for t in texts:
        pool.extend(s for a, b in split_sentences(t) if 4 <= len(s := t[a:b].strip()) <= 200)
    return list(dict.fromkeys(pool))


class Corpus:
    """Pool sentence vectors and tokens computed once; paragraphs are index lists into the pool."""

    def __init__(self, dim: int, seed: int = 0) -> None:
        from qa.lexical import tokenize

        t0 = time.perf_counter()
        self.pool = sentence_pool()
        self.vectors = HashEncoder(dim).encode_passages(self.pool).astype(np.float16)
        self.tokens = [tokenize(s) for s in self.pool]
        self.dim = dim
        self.rng = random.Random(seed)
        self._meta_tokens: dict[str, list[str]] = {}
        print(
            f"sentence pool: {len(self.pool)} sentences, vectors + tokens in {time.perf_counter() - t0:.1f} s"
        )

    def speeches(self, n_paragraphs: int, prefix: str = "b") -> tuple[list[Speech], list[np.ndarray]]:
        """Speeches of PARAS_PER_SPEECH paragraphs, and per paragraph the pool indices of its sentences."""
        speeches, picks = [], []
        n_speeches = (n_paragraphs + PARAS_PER_SPEECH - 1) // PARAS_PER_SPEECH
        row = 0
        for s in range(n_speeches):
            sid = f"{prefix}{s:07d}"
            paragraphs = []
            for j in range(min(PARAS_PER_SPEECH, n_paragraphs - row)):
                idx = np.asarray([self.rng.randrange(len(self.pool)) for _ in range(self.rng.randint(2, 5))])
                pos, sents, parts = 0, [], []
                for k, i in enumerate(idx):
                    text = self.pool[i]
                    sents.append(Sentence(f"{sid}-p{j}-{k}", pos, pos + len(text), text))
                    parts.append(text)
                    pos += len(text)
                pid = f"{sid}-p{j}"
                paragraphs.append(
                    Paragraph(pid, sid, j, f"第{j // 20 + 1}部分", "".join(parts), tuple(sents))
                )
                picks.append(idx)
                row += 1
            year = 2000 + s % 26
            speeches.append(
                Speech(
                    sid,
                    f"合成报告{s}",
                    f"发言人{s % 50}",
                    "省长",
                    f"{year}-01-15",
                    f"synthetic:{s}",
                    tuple(paragraphs),
                )
            )
        return speeches, picks

    def arrays(self, speeches: Sequence[Speech], picks: Sequence[np.ndarray]):
        """(passage vectors, sentence vectors float16, token lists) as BenchEncoder and lexical_text give them."""
        flat = np.concatenate(picks)
        svecs = self.vectors[flat]
        counts = np.asarray([len(p) for p in picks])
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        pvecs = np.zeros((len(picks), self.dim), dtype=np.float32)
        for a in range(
            0, len(picks), 100_000
        ):  # in blocks: a float32 copy of every sentence vector is GBs at 1M
            b = min(len(picks), a + 100_000)
            lo, hi = starts[a], (starts[b] if b < len(picks) else len(svecs))
            pvecs[a:b] = np.add.reduceat(svecs[lo:hi].astype(np.float32), starts[a:b] - lo, axis=0)
        pvecs /= np.maximum(np.linalg.norm(pvecs, axis=1, keepdims=True), 1e-12)
        tokens = []
        i = 0
        from qa.lexical import tokenize

        for sp in speeches:
            for p in sp.paragraphs:
                key = f"{sp.title} {sp.speaker} {sp.role} {p.section}"
                meta = self._meta_tokens.get(key)
                if meta is None:
                    meta = self._meta_tokens[key] = tokenize(key)
                tokens.append([t for k in picks[i] for t in self.tokens[k]] + meta)
                i += 1
        return pvecs, svecs, tokens


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def measure(index_dir: Path, dim: int, n_queries: int) -> dict:
    """Start-up, RSS and search latencies in this (fresh) process."""
    t0 = time.perf_counter()
    from qa.index import load_index
    from qa.lexical import tokenize, warm_up
    from qa.retrieve import HybridRetriever
    from qa.stores.faiss_dense import exact_top, recall_at_k

    warm_up()
    t1 = time.perf_counter()
    enc = BenchEncoder(dim)
    snap = load_index(index_dir, enc)
    t2 = time.perf_counter()
    rss_loaded = _rss_mb()
    rng = random.Random(1)
    pool = sentence_pool()
    questions = [s[: rng.randint(6, 20)] for s in rng.sample(pool, n_queries)]
    qvecs = enc.encode_queries(questions)
    retriever = HybridRetriever(snap, enc)
    lat: dict[str, list[float]] = {"dense": [], "bm25": [], "fusion": []}
    found = []
    for q, qv in zip(questions, qvecs, strict=True):
        a = time.perf_counter()
        _, scores = snap.dense.search(qv, 10)
        b = time.perf_counter()
        snap.lexical.top(tokenize(q), 10)
        c = time.perf_counter()
        retriever.retrieve(q, 5, query_vector=qv)
        d = time.perf_counter()
        lat["dense"].append((b - a) * 1000)
        lat["bm25"].append((c - b) * 1000)
        lat["fusion"].append((d - c) * 1000)
        found.append(np.pad(scores, (0, 10 - len(scores)), constant_values=-np.inf))
    rss_after, rss_anon = (
        _rss_mb(),
        _rss_mb("RssAnon:"),
    )  # before the exact reference below reads every vector
    exact_s = np.full((len(qvecs), 0), 0.0)
    parts = [s.passages.passage_vectors for s in snap._segments]  # exact reference over every segment
    exact_s = np.concatenate([exact_top(v, qvecs, 10)[0] for v in parts], axis=1)
    exact_s = -np.sort(-exact_s, axis=1)[:, :10]
    return {
        "import_s": round(t1 - t0, 2),
        "load_s": round(t2 - t1, 2),
        "rss_loaded_mb": rss_loaded,
        "rss_after_queries_mb": rss_after,
        # Of which anonymous (private) memory; the rest is file pages of the memory maps, shared and reclaimable.
        "rss_anon_after_queries_mb": rss_anon,
        "recall_at_10": round(recall_at_k(np.asarray(found), exact_s), 4),
        **{f"{k}_p50_ms": round(pct(v, 50), 2) for k, v in lat.items()},
        **{f"{k}_p95_ms": round(pct(v, 95), 2) for k, v in lat.items()},
        "dense": [dict(s.entry.dense) for s in snap._segments],
    }


class _PeakSampler:
    """Highest RssAnon and RssFile of this process while the block runs (sampled by a thread)."""

    def __enter__(self) -> _PeakSampler:
        import threading

        self.anon = self.file = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.anon = max(self.anon, _rss_mb("RssAnon:"))
            self.file = max(self.file, _rss_mb("RssFile:"))

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _rss_mb(field: str = "VmRSS:") -> float:
    """Resident set (or with "VmHWM:" its peak) of this process in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def run_size(corpus: Corpus, n: int, root: Path, n_queries: int, faiss_kind: str, chunk: int) -> dict:
    """Build (streamed in chunks of ``chunk`` paragraphs above that size), then measure in a fresh process."""
    from qa.index import add_to_index, build_index_from_chunks, build_index_from_vectors, remove_from_index

    index_dir = root / f"idx-{n}"
    enc = BenchEncoder(corpus.dim)
    kw = {"model_id": enc.model_id, "dim": enc.dim, "faiss_kind": faiss_kind}
    corpus_s = 0.0

    def chunks():
        nonlocal corpus_s
        for c, start in enumerate(range(0, n, chunk)):
            a = time.perf_counter()
            speeches, picks = corpus.speeches(min(chunk, n - start), prefix=f"b{c}-")
            pvecs, svecs, tokens = corpus.arrays(speeches, picks)
            corpus_s += time.perf_counter() - a
            yield speeches, pvecs, svecs, tokens
            del speeches, picks, pvecs, svecs, tokens

    t0 = time.perf_counter()
    rss_before = _rss_mb()
    with _PeakSampler() as peak:
        if n <= chunk:
            m = build_index_from_vectors(*next(chunks()), index_dir, **kw)
        else:
            m = build_index_from_chunks(chunks(), index_dir, **kw)
    total = time.perf_counter() - t0
    out = {
        "paragraphs": m.counts["paragraphs"],
        "corpus_s": round(corpus_s, 1),  # generating the synthetic chunks, interleaved with the build
        "build_s": round(total - corpus_s, 1),
        "chunks": (n + chunk - 1) // chunk,
        # Peak of this process (corpus pool + one chunk of Speech objects, token lists, vectors + the build),
        # and its RSS before the build started (the sentence pool and earlier sizes).
        "rss_before_build_mb": rss_before,
        "peak_rss_build_mb": _rss_mb("VmHWM:"),
        # Sampled every 0.1 s during the build: private memory, and file pages of the memory maps read and
        # written (page cache, shared and reclaimable, but counted in RSS).
        "peak_rss_anon_build_mb": peak.anon,
        "peak_rss_file_build_mb": peak.file,
        "load_average": round(os.getloadavg()[0], 2),
    }
    out["disk_mb"] = round(du(index_dir) / 1e6, 1)
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--measure",
            str(index_dir),
            "--dim",
            str(corpus.dim),
            "--queries",
            str(n_queries),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    out.update(json.loads(proc.stdout.strip().splitlines()[-1]))
    new, _ = corpus.speeches(PARAS_PER_SPEECH, prefix="added")
    a = time.perf_counter()
    add_to_index(index_dir, new, enc)
    b = time.perf_counter()
    remove_from_index(index_dir, [new[0].speech_id], enc)
    c = time.perf_counter()
    out["add_100_paragraphs_s"] = round(b - a, 2)
    out["remove_speech_s"] = round(c - b, 2)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--dim", type=int, default=384, help="vector dimension (multilingual-e5-small: 384)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--faiss", default="auto", choices=["auto", "flat", "ivf", "hnsw"])
    parser.add_argument(
        "--dir", type=Path, help="where to build (default: a temporary directory, removed after)"
    )
    parser.add_argument("--chunk", type=int, default=100_000, help="paragraphs per streamed build chunk")
    parser.add_argument("--keep", action="store_true", help="keep the indexes under --dir")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.dim, args.queries)))
        return 0
    import logging

    logging.basicConfig(level=logging.WARNING)
    root = args.dir or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"cores: {os.cpu_count()}, dim {args.dim}, {args.queries} queries, index under {root}")
    corpus = Corpus(args.dim)
    try:
        for n in (int(x) for x in args.sizes.split(",")):
            result = run_size(corpus, n, root, args.queries, args.faiss, args.chunk)
            print(json.dumps(result, ensure_ascii=False), flush=True)
            if not args.keep:
                shutil.rmtree(root / f"idx-{n}", ignore_errors=True)
    finally:
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
