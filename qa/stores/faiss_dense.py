"""FAISS dense store: exact for small segments, compressed codes plus exact re-ranking above ``FLAT_MAX_ROWS``.

``auto`` picks ``flat`` up to ``FLAT_MAX_ROWS`` paragraphs and ``pq`` above: every vector's 4-bit product
quantization code (dim/4 bytes; 96 MB for a million 384-dim vectors) is scanned with FAISS fast-scan, and the
best ``rerank`` candidates are re-scored exactly against the memory-mapped float32 vectors. ``rerank`` is
calibrated at build time so that recall@10 against exact search is at least ``CALIBRATION_RECALL``. Unlike
IVF, this does not depend on the vectors having cluster structure. IVF and HNSW remain available on request.

Inner product equals cosine on the L2-normalized vectors every encoder returns. A flat segment keeps no
file of its own: it is searched on the passage store's memory-mapped vectors. IVF files are memory-mapped.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

log = logging.getLogger(__name__)

# Exact search costs n * dim multiply-adds per query: 50k x 384 is ~5 ms on one core, still interactive.
FLAT_MAX_ROWS = 50_000
# A filtered search over at most this many rows is exact (a matrix product over just those rows).
EXACT_ALLOWED_MAX = 50_000
TARGET_RECALL = 0.95
# Calibration aims higher than the target: its queries are a sample, not the queries users will ask.
CALIBRATION_RECALL = 0.97
KINDS = ("auto", "flat", "pq", "ivf", "hnsw")
# Candidates re-scored exactly after the PQ scan: the smallest that reaches CALIBRATION_RECALL is kept.
PQ_RERANK_VALUES = (50, 100, 200, 300, 500, 700, 1000, 1500, 2000)
PQ_TRAIN_ROWS = 65_536
# One query runs on one thread: the server answers queries in parallel threads, and on a busy 2-core machine
# a 2-thread OpenMP search of 10k x 384 took 67 ms against 3 ms on one thread. (Set per calling thread.)
SEARCH_THREADS = 1
FILES_ANN = ("dense.faiss",)


def recall_at_k(found_scores: np.ndarray, exact_scores: np.ndarray, k: int = 10) -> float:
    """Share of the exact top-k a search found, by score, so ties between equal vectors are not misses."""
    kth = exact_scores[:, k - 1 : k] - 1e-5
    return float(np.mean(np.sum(found_scores[:, :k] >= kth, axis=1) / k))


def exact_top(
    vectors: np.ndarray, queries: np.ndarray, k: int, block: int = 65536
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k (scores, ids) by blocks, without a second in-memory copy of a memory-mapped matrix."""
    best_s = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), 0), dtype=np.int64)
    for start in range(0, len(vectors), block):
        sims = np.asarray(vectors[start : start + block], dtype=np.float32) @ queries.T
        kk = min(k, sims.shape[0])
        part = np.argpartition(-sims, kk - 1, axis=0)[:kk].T
        s = np.take_along_axis(sims.T, part, axis=1)
        best_s = np.concatenate([best_s, s], axis=1)
        best_i = np.concatenate([best_i, part + start], axis=1)
        order = np.argsort(-best_s, axis=1, kind="stable")[:, :k]
        best_s = np.take_along_axis(best_s, order, axis=1)
        best_i = np.take_along_axis(best_i, order, axis=1)
    return best_s, best_i


def calibration_queries(vectors: np.ndarray, n: int = 200, seed: int = 0) -> list[np.ndarray]:
    """Two query sets: perturbed stored vectors, and draws from a Gaussian fitted to the vectors (off-data)."""
    rng = np.random.default_rng(seed)
    sample = np.asarray(
        vectors[np.sort(rng.choice(len(vectors), min(len(vectors), 10_000), replace=False))], np.float32
    )
    noise = rng.standard_normal((n // 2, vectors.shape[1])).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    near = sample[rng.choice(len(sample), n // 2)] + 0.5 * noise
    fitted = sample.mean(0) + sample.std(0) * rng.standard_normal((n - n // 2, vectors.shape[1])).astype(
        np.float32
    )
    return [_unit(near), _unit(fitted)]


def _unit(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float32)
    return q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)


class FaissDenseStore:
    """One segment's dense index over local rows 0..n-1."""

    def __init__(self, dim: int, kind: str = "auto") -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown FAISS kind {kind!r}")
        self.dim = dim
        self.kind = kind
        self.params: dict[str, Any] = {}
        self.index: faiss.Index | None = None
        self.vectors: np.ndarray = np.zeros((0, dim), dtype=np.float32)
        self.dead: np.ndarray | None = None
        self._live: np.ndarray | None = None  # ~dead and its count, kept so a query does no O(rows) work
        self._n_live = 0
        self._sel: Any = None
        # Vectors like the questions users will ask (the index writer passes a sample of sentence vectors):
        # short texts are the hardest queries for IVF, harder than whole paragraphs.
        self.calibration_vectors: np.ndarray | None = None

    # -- writing --------------------------------------------------------------------------------------

    def add(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        if len(rows) and int(rows[0]) != len(self.vectors):
            raise ValueError("rows of a segment are added in order")
        if not len(self.vectors):  # keep a reference (a memory map at 1M rows), not a second copy
            self.vectors = vectors if vectors.dtype == np.float32 else np.asarray(vectors, np.float32)
        else:
            self.vectors = np.vstack([self.vectors, np.asarray(vectors, dtype=np.float32)])

    def save(self, directory: Path) -> dict[str, Any]:
        """Build the index for the vectors added so far and write it; returns the manifest parameters."""
        vectors = self.vectors
        n = len(vectors)
        kind = self.kind
        if kind == "auto":
            kind = "flat" if n <= FLAT_MAX_ROWS else "pq"
        if kind in ("ivf", "pq") and n < 1000:
            log.info("%s needs more rows than %d; using an exact index", kind, n)
            kind = "flat"
        started = time.perf_counter()
        self.index, self.params = _build(vectors, kind, self.calibration_vectors)
        if self.index is not None:  # flat keeps no file: it searches the passage store's vectors
            faiss.write_index(self.index, str(directory / "dense.faiss"))
        self.params["build_seconds"] = round(time.perf_counter() - started, 3)
        return dict(self.params)

    # -- reading --------------------------------------------------------------------------------------

    @classmethod
    def load(cls, directory: Path, params: dict[str, Any], vectors: np.ndarray) -> FaissDenseStore:
        store = cls(vectors.shape[1], params.get("kind", "flat"))
        store.params = dict(params)
        store.vectors = vectors
        index: Any
        if store.kind == "flat":
            store.index = None  # searched on the memory-mapped vectors themselves: nothing to load
            return store
        if store.kind == "pq":
            index = faiss.read_index(str(directory / "dense.faiss"))
        elif store.kind == "ivf":
            index = faiss.read_index(str(directory / "dense.faiss"), faiss.IO_FLAG_MMAP)
            index.nprobe = int(params["nprobe"])
        else:
            index = faiss.read_index(str(directory / "dense.faiss"))
            index.hnsw.efSearch = int(params["ef_search"])
        if index.ntotal != len(vectors) or index.d != store.dim:
            raise ValueError("dense index rows do not match the passage vectors")
        store.index = index
        return store

    def view(self) -> FaissDenseStore:
        other = FaissDenseStore.__new__(FaissDenseStore)
        other.__dict__.update(self.__dict__)
        other.dead = None if self.dead is None else self.dead.copy()
        return other

    def delete(self, rows: np.ndarray) -> None:
        if self.dead is None:
            self.dead = np.zeros(len(self.vectors), dtype=bool)
        self.dead[np.asarray(rows, dtype=np.int64)] = True
        self._live = ~self.dead
        self._n_live = int(self._live.sum())
        dead_ids = np.flatnonzero(self.dead).astype(np.int64)
        batch = faiss.IDSelectorBatch(dead_ids)
        self._sel = (faiss.IDSelectorNot(batch), batch)  # keep the inner selector alive

    def _search_params(self, sel: Any) -> Any:
        f: Any = faiss  # the SWIG classes take keyword arguments the type stubs do not know
        if self.kind == "ivf":
            return f.SearchParametersIVF(sel=sel, nprobe=int(self.params["nprobe"]))
        if self.kind == "hnsw":
            return f.SearchParametersHNSW(sel=sel, efSearch=int(self.params["ef_search"]))
        return f.SearchParameters(sel=sel)

    def search(
        self, query_vector: np.ndarray, k: int, allowed_rows: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        if faiss.omp_get_max_threads() != SEARCH_THREADS:
            faiss.omp_set_num_threads(SEARCH_THREADS)
        q = np.asarray(query_vector, dtype=np.float32).reshape(1, -1)
        if allowed_rows is not None:
            allowed = np.asarray(allowed_rows, dtype=np.int64)
            if self.dead is not None:
                allowed = allowed[~self.dead[allowed]]
            if not len(allowed) or k <= 0:
                return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
            if self.kind in ("flat", "pq") or len(allowed) <= EXACT_ALLOWED_MAX:
                if self.kind == "pq" and len(allowed) > EXACT_ALLOWED_MAX:
                    keep = np.zeros(len(self.vectors), dtype=bool)
                    keep[allowed] = True
                    return self._pq_search(q[0], k, keep, len(allowed))
                return _exact_rows(self.vectors, np.sort(allowed), q[0], k)
            assert self.index is not None, "search before save/load"
            sel = faiss.IDSelectorBatch(allowed)
            k = min(k, len(allowed))
            scores, ids = self.index.search(q, k, params=self._search_params(sel))
        else:
            n_live = len(self.vectors) if self._live is None else self._n_live
            k = min(k, n_live)
            if k <= 0:
                return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
            if self.kind == "flat":
                return _exact_all(self.vectors, q[0], k, self.dead, n_live)
            if self.kind == "pq":
                return self._pq_search(q[0], k, self._live, n_live)
            assert self.index is not None, "search before save/load"
            params = self._search_params(self._sel[0]) if self._sel is not None else None
            if params is None and self.kind != "flat":
                params = self._search_params(None)
            scores, ids = self.index.search(q, k, params=params)
        keep = ids[0] >= 0
        return ids[0][keep].astype(np.int64), scores[0][keep]

    def _pq_search(
        self, q: np.ndarray, k: int, keep: np.ndarray | None, n_keep: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """PQ fast-scan candidates, only rows in ``keep`` (``n_keep`` of them), re-scored exactly; exact search
        if too few are left."""
        k = min(k, n_keep)
        if k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        breadth = max(int(self.params["rerank"]), k)
        if keep is not None:  # widen the scan by the share of rows excluded, so enough candidates survive
            breadth = min(len(self.vectors), int(breadth * len(self.vectors) / n_keep) + k)
        ids = _pq_candidates(self.index, q, breadth)
        if keep is not None:
            ids = ids[keep[ids]]
        if len(ids) < k:
            rows = np.arange(len(self.vectors)) if keep is None else np.flatnonzero(keep)
            return _exact_rows(self.vectors, rows, q, k)
        return _exact_rows(self.vectors, np.sort(ids), q, k)


def _pq_candidates(index: Any, q: np.ndarray, breadth: int) -> np.ndarray:
    _, ids = index.search(q.reshape(1, -1), min(breadth, index.ntotal))
    ids = ids[0]
    return ids[ids >= 0].astype(np.int64)


def _knn(x: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(positions, scores) of the exact top-k of ``x`` by inner product, on the calling thread's OpenMP threads.

    Not numpy: its BLAS spreads one query over every core, and on a busy 2-core machine a 10k x 384 product
    took 5.4 ms that way against 0.6 ms on one thread. A float32 memory map is passed without a copy.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    k = min(k, len(x))
    if k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    scores, ids = faiss.knn(np.asarray(q, np.float32).reshape(1, -1), x, k, metric=faiss.METRIC_INNER_PRODUCT)
    keep = ids[0] >= 0
    return ids[0][keep].astype(np.int64), scores[0][keep]


def _exact_rows(
    vectors: np.ndarray, rows: np.ndarray, q: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k among ``rows``: ties by row, as the other paths order them."""
    i, s = _knn(vectors[rows], q, k)
    return _top(rows[i], s, k)


def _top(rows: np.ndarray, sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    if len(sims) > k:
        part = np.argpartition(-sims, k - 1)[:k]
        rows, sims = rows[part], sims[part]
    order = np.lexsort((rows, -sims))
    return rows[order].astype(np.int64), sims[order].astype(np.float32)


def _exact_all(
    vectors: np.ndarray, q: np.ndarray, k: int, dead: np.ndarray | None, n_live: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k over the live rows of a (memory-mapped) matrix: the top k + dead, then the dead dropped."""
    if dead is None:
        return _top(*_knn(vectors, q, k), k)
    i, s = _knn(vectors, q, k + len(vectors) - n_live)
    keep = ~dead[i]
    return _top(i[keep], s[keep], k)


def _build(
    vectors: np.ndarray, kind: str, extra: np.ndarray | None = None
) -> tuple[faiss.Index | None, dict[str, Any]]:
    """The index of ``kind`` over ``vectors`` and its manifest parameters (None for flat: nothing to build)."""
    n, dim = vectors.shape
    if kind == "flat":
        return None, {"kind": "flat"}
    query_sets = calibration_queries(vectors)
    if extra is not None and len(extra):
        query_sets.append(_unit(extra[:200]))
    exact = [exact_top(vectors, q, 10)[0] for q in query_sets]
    rng = np.random.default_rng(0)
    if kind == "pq":
        m = _pq_m(dim)
        pq = faiss.IndexPQFastScan(dim, m, 4, faiss.METRIC_INNER_PRODUCT)
        pq.train(np.ascontiguousarray(vectors[np.sort(rng.choice(n, min(n, PQ_TRAIN_ROWS), replace=False))]))
        for start in range(0, n, 100_000):
            pq.add(np.ascontiguousarray(vectors[start : start + 100_000], dtype=np.float32))
        state = {"rerank": PQ_RERANK_VALUES[0]}

        def search(qs: np.ndarray, k: int) -> tuple[np.ndarray, None]:
            out = np.full((len(qs), k), -np.inf, dtype=np.float32)
            for i, q in enumerate(qs):
                s = _exact_rows(vectors, np.sort(_pq_candidates(pq, q, state["rerank"])), q, k)[1]
                out[i, : len(s)] = s
            return out, None

        probe = type("Probe", (), {"search": staticmethod(search)})
        value, recall = _calibrate(
            probe, query_sets, exact, list(PQ_RERANK_VALUES), lambda v: state.update(rerank=v)
        )
        return pq, {"kind": "pq", "m": m, "bits": 4, "rerank": value, "calibrated_recall_at_10": recall}
    if kind == "ivf":
        nlist = int(np.clip(round(2 * np.sqrt(n)), 16, 65536))
        quantizer = faiss.IndexFlatIP(dim)
        ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        train = vectors[np.sort(rng.choice(n, min(n, 64 * nlist), replace=False))]
        ivf.train(np.ascontiguousarray(train))
        for start in range(0, n, 100_000):
            ivf.add(np.ascontiguousarray(vectors[start : start + 100_000], dtype=np.float32))
        values = [
            v for v in (1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024) if v < nlist
        ]
        values.append(nlist)
        value, recall = _calibrate(ivf, query_sets, exact, values, lambda v: setattr(ivf, "nprobe", v))
        ivf.nprobe = value
        return ivf, {"kind": "ivf", "nlist": nlist, "nprobe": value, "calibrated_recall_at_10": recall}
    hnsw = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 80
    hnsw.add(np.ascontiguousarray(vectors, dtype=np.float32))
    values = [16, 32, 64, 96, 128, 192, 256, 384, 512, 1024]
    value, recall = _calibrate(hnsw, query_sets, exact, values, lambda v: setattr(hnsw.hnsw, "efSearch", v))
    hnsw.hnsw.efSearch = value
    return hnsw, {"kind": "hnsw", "m": 32, "ef_search": value, "calibrated_recall_at_10": recall}


def _pq_m(dim: int) -> int:
    """Sub-quantizers for 4-bit PQ: one per 2 dimensions (dim/4 bytes a vector), a divisor of dim.

    On the benchmark's 1M hashed 384-dim vectors, one per 4 dimensions needed 1,000 re-ranked candidates for
    recall@10 0.965; one per 2 gave 0.99 at 5 ms a query."""
    m = max(1, dim // 2)
    while dim % m:
        m -= 1
    return m


def _calibrate(index, query_sets, exact, values, set_value) -> tuple[int, float]:
    """The smallest search breadth whose recall@10 reaches CALIBRATION_RECALL on every calibration set."""
    recall = 0.0
    for v in values:
        set_value(v)
        recall = min(recall_at_k(index.search(q, 10)[0], e) for q, e in zip(query_sets, exact, strict=True))
        if recall >= CALIBRATION_RECALL:
            return v, round(recall, 4)
    return values[-1], round(recall, 4)
