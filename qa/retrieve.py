"""Hybrid retrieval: dense (FAISS) and BM25 rankings fused by reciprocal rank, with speaker/speech filters."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Literal

import faiss
import numpy as np

from data.errors import UnknownFilterError
from embeddings.encoder import Encoder
from qa.index import LoadedIndex
from qa.mentions import mentioned_speeches
from qa.types import Filters, Hit

log = logging.getLogger(__name__)

Mode = Literal["hybrid", "dense", "bm25"]
_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)


@dataclass(frozen=True)
class Retrieval:
    hits: list[Hit]
    query_vector: np.ndarray
    mentioned: tuple[str, ...]  # speech ids the question names (by speaker or title)


class HybridRetriever:
    """Ranks paragraphs for a question. Read-only after construction, so safe to share between threads."""

    def __init__(
        self,
        index: LoadedIndex,
        encoder: Encoder,
        *,
        rrf_k: int = 60,
        candidates: int = 50,
        dense_weight: float = 1.0,
        bm25_weight: float = 1.0,
        mention_weight: float = 0.1,
        fusion: str = "linear",
        alpha: float = 0.4,
    ) -> None:
        self.index = index
        self.encoder = encoder
        self.rrf_k = rrf_k
        self.candidates = candidates
        self.weights = {"dense": dense_weight, "bm25": bm25_weight, "mention": mention_weight}
        self.fusion = fusion
        self.alpha = alpha
        # One pass over the paragraphs, not one per speech: a corpus of thousands of speeches loads in time.
        rows_of: dict[str, list[int]] = {sid: [] for sid in index.speeches}
        for i, p in enumerate(index.paragraphs):
            rows_of[p.speech_id].append(i)
        self._speech_rows = {sid: np.asarray(rows, dtype=np.int64) for sid, rows in rows_of.items()}
        self._titles = {sid: _PUNCT.sub("", sp.title) for sid, sp in index.speeches.items()}

    # -- filters and mentions -------------------------------------------------------------------------

    def allowed_rows(self, filters: Filters | None) -> np.ndarray | None:
        """Row ids a filter allows, or None for all. Unknown speaker/speech ids are an error, not silence."""
        if filters is None or (not filters.speaker and not filters.speech_id):
            return None
        sids = set(self.index.speeches)
        if filters.speech_id:
            if filters.speech_id not in self.index.speeches:
                raise UnknownFilterError(
                    f"unknown speech_id {filters.speech_id!r}", fix="list speeches with GET /v1/speeches"
                )
            sids &= {filters.speech_id}
        if filters.speaker:
            wanted = filters.speaker.strip()
            by_speaker = {
                sid
                for sid, sp in self.index.speeches.items()
                if sp.speaker and (sp.speaker == wanted or wanted in sp.speaker)
            }
            if not by_speaker:
                raise UnknownFilterError(
                    f"no speech by speaker {wanted!r}", fix="list speakers with GET /v1/speeches"
                )
            sids &= by_speaker
        if not sids:
            return np.zeros(0, dtype=np.int64)
        return np.sort(np.concatenate([self._speech_rows[s] for s in sids]))

    def mentioned_speeches(self, question: str) -> tuple[str, ...]:
        """Speeches the question names by speaker, (part of) title or region (qa/mentions.py)."""
        return mentioned_speeches(question, self.index.speeches)

    # -- retrieval ------------------------------------------------------------------------------------

    def encode_query(self, question: str) -> np.ndarray:
        return np.asarray(self.encoder.encode_queries([question])[0], dtype=np.float32)

    def retrieve(
        self,
        question: str,
        k: int = 5,
        filters: Filters | None = None,
        *,
        mode: Mode = "hybrid",
        query_vector: np.ndarray | None = None,
        exclude_rows: np.ndarray | None = None,
    ) -> Retrieval:
        """Top ``k`` paragraphs; ``exclude_rows`` retrieves as if those paragraphs were not indexed (used to
        build leave-the-paragraph-out training data)."""
        allowed = self.allowed_rows(filters)
        if exclude_rows is not None and len(exclude_rows):
            base = allowed if allowed is not None else np.arange(len(self.index.paragraphs), dtype=np.int64)
            allowed = np.setdiff1d(base, exclude_rows)
        qv = query_vector if query_vector is not None else self.encode_query(question)
        n = len(self.index.paragraphs)
        if allowed is not None and len(allowed) == 0:
            return Retrieval([], qv, ())
        depth = min(n, max(self.candidates, 4 * k))

        rankings: list[tuple[str, np.ndarray]] = []
        if mode in ("hybrid", "dense"):
            rankings.append(("dense", self._dense_rank(qv, depth, allowed)))
        bm25 = None
        if mode in ("hybrid", "bm25"):
            bm25 = self.index.lexical.scores(question)
            rankings.append(("bm25", self._lexical_rank(bm25, depth, allowed)))
        mentioned = self.mentioned_speeches(question) if mode == "hybrid" else ()
        rows = np.zeros(0, dtype=np.int64)
        if mentioned:
            rows = np.concatenate([self._speech_rows[s] for s in mentioned])
            if allowed is not None:
                rows = np.intersect1d(rows, allowed)
            sims = self.index.passage_vectors[rows] @ qv
            rankings.append(("mention", rows[np.argsort(-sims)][:depth]))

        if self.fusion == "rrf" or mode != "hybrid":
            fused = self._rrf(rankings)
        else:
            fused = self._linear(rankings, qv, bm25, set(rows.tolist()) if mentioned else set())
        if mode == "bm25" and bm25 is not None:
            # A BM25-only ranking has no place for documents without any query term.
            fused = {r: s for r, s in fused.items() if bm25[r] > 0}
        order = sorted(fused, key=lambda r: (-fused[r], r))[:k]
        rows_arr = np.asarray(order, dtype=np.int64)
        cos = self.index.passage_vectors[rows_arr] @ qv if len(order) else np.zeros(0)
        hits = [
            self._hit(row, fused[row], float(cos[j]), float(bm25[row]) if bm25 is not None else 0.0)
            for j, row in enumerate(order)
        ]
        return Retrieval(hits, qv, mentioned)

    def _hit(self, row: int, score: float, dense: float, lexical: float) -> Hit:
        p = self.index.paragraphs[row]
        sp = self.index.speeches[p.speech_id]
        return Hit(
            passage_id=p.paragraph_id,
            text=p.text,
            speech_id=sp.speech_id,
            speech_title=sp.title,
            speaker=sp.speaker,
            speaker_role=sp.role,
            section=p.section,
            score=float(score),
            dense_score=dense,
            bm25_score=lexical,
        )

    def promote_opening(
        self, retrieval: Retrieval, speech_id: str, filters: Filters | None = None
    ) -> Retrieval:
        """Put the speech's opening paragraph first: the citation for a question about the speech itself."""
        allowed = self.allowed_rows(filters)
        rows = self._speech_rows.get(speech_id)
        if rows is None or len(rows) == 0 or (allowed is not None and rows[0] not in set(allowed.tolist())):
            return retrieval
        row = int(rows[0])
        top = retrieval.hits[0].score if retrieval.hits else 1.0
        dense = float(self.index.passage_vectors[row] @ retrieval.query_vector)
        opening = self._hit(row, top, dense, 0.0)
        rest = [h for h in retrieval.hits if h.passage_id != opening.passage_id]
        k = max(1, len(retrieval.hits))
        return Retrieval([opening, *rest][:k], retrieval.query_vector, retrieval.mentioned)

    def _rrf(self, rankings: list[tuple[str, np.ndarray]]) -> dict[int, float]:
        fused: dict[int, float] = {}
        for name, ranked in rankings:
            w = self.weights[name]
            for rank, row in enumerate(ranked.tolist()):
                fused[row] = fused.get(row, 0.0) + w / (self.rrf_k + rank + 1)
        return fused

    def _linear(
        self,
        rankings: list[tuple[str, np.ndarray]],
        qv: np.ndarray,
        bm25: np.ndarray | None,
        mentioned: set[int],
    ) -> dict[int, float]:
        """Convex combination of min-max normalized cosine and max-normalized BM25 over the candidate union.

        Measured on the gold set and CMRC2018 (docs/benchmarks.md): better than RRF, which throws away how far
        apart the scores are, and on a small corpus turns every list into near-ties.
        """
        cand = np.unique(np.concatenate([r for name, r in rankings if name in ("dense", "bm25")]))
        if len(cand) == 0:
            return {}
        dense = self.index.passage_vectors[cand] @ qv
        span = float(dense.max() - dense.min())
        d = (dense - dense.min()) / span if span > 1e-9 else np.ones_like(dense)
        b = bm25[cand] if bm25 is not None else np.zeros_like(dense)
        b = b / b.max() if b.max() > 0 else b
        fused = self.alpha * d + (1 - self.alpha) * b
        if mentioned:
            fused = fused + self.weights["mention"] * np.isin(cand, list(mentioned))
        return {int(r): float(f) for r, f in zip(cand, fused, strict=True)}

    def _dense_rank(self, qv: np.ndarray, depth: int, allowed: np.ndarray | None) -> np.ndarray:
        params = None
        if allowed is not None:
            params = faiss.SearchParameters()
            params.sel = faiss.IDSelectorBatch(allowed)
            depth = min(depth, len(allowed))
        _, ids = self.index.dense.search(qv.reshape(1, -1), depth, params=params)
        ids = ids[0]
        return ids[ids >= 0]

    @staticmethod
    def _lexical_rank(scores: np.ndarray, depth: int, allowed: np.ndarray | None) -> np.ndarray:
        if allowed is not None:
            masked = np.full_like(scores, -1.0)
            masked[allowed] = scores[allowed]
            scores = masked
        positive = int((scores > 0).sum())
        depth = min(depth, positive)
        if depth <= 0:
            return np.zeros(0, dtype=np.int64)
        top = np.argpartition(-scores, depth - 1)[:depth]
        return top[np.argsort(-scores[top], kind="stable")]
