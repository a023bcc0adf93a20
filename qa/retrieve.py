"""Hybrid retrieval: dense and BM25 candidates fused by a convex combination of normalized scores (RRF on request)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from data.errors import UnknownFilterError
from data.records import Speech
from embeddings.encoder import Encoder
from qa.features import period_of, question_period_years, relative_years
from qa.lexical import question_terms
from qa.mentions import compares, firmly_named, mentioned_speeches, speech_region
from qa.snapshot import Snapshot
from qa.stores.base import LexicalStore
from qa.types import Filters, Hit

# Words asking what a speaker intends (grammar: they look ahead from the speech's own time), not 计划 or 将,
# which also name a plan's title ("行动计划") or a plain future.
_PLANS = re.compile(r"打算|准备怎么|准备如何|下一步|接下来|今后")

log = logging.getLogger(__name__)

Mode = Literal["hybrid", "dense", "bm25"]
MODES: tuple[str, ...] = get_args(Mode)
_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)


@dataclass(frozen=True)
class Retrieval:
    hits: list[Hit]
    query_vector: np.ndarray
    mentioned: tuple[str, ...]  # speech ids the question names (by speaker or title)
    # Whether it names speeches by two or more different labels ("上海和北京…分别"): each side is answered for
    # itself (qa.mentions.compares); several reports of one region or speaker are one side.
    compared: bool = False
    # Whether the question asks which speeches say something and names none ("哪些省份提出…"): the hits are the
    # best passage of each speech that may (AnswerService._across_speeches), and each is answered for itself.
    surveyed: bool = False


class _Sparse:
    """BM25 of one question: the ranked top rows, and any other row's score looked up on demand (0 without a
    query term), so no document outside the candidates is scored."""

    def __init__(self, lexical: LexicalStore, tokens: list[str], k: int, allowed: np.ndarray | None) -> None:
        self._lexical, self._tokens = lexical, tokens
        self.ranked, _ = lexical.top(tokens, k, allowed)

    def at(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self._lexical.scores(self._tokens, np.asarray(rows, dtype=np.int64)), np.float32)


def speech_year(sp: Speech) -> int | None:
    """The year of a speech: from its ISO date, else from ``extra["year"]``."""
    if len(sp.date) >= 4 and sp.date[:4].isdigit():
        return int(sp.date[:4])
    year = str((getattr(sp, "extra", None) or {}).get("year", ""))
    return int(year) if year[:4].isdigit() and len(year) == 4 else None


def _date_range(sp: Speech) -> tuple[str, str] | None:
    """The first and last ISO day a (possibly partial) speech date stands for."""
    d = sp.date
    if len(d) >= 4 and d[:4].isdigit():
        lo = (d + "-01-01"[len(d) - 4 :]) if len(d) < 10 else d[:10]
        hi = (d + "-12-31"[len(d) - 4 :]) if len(d) < 10 else d[:10]
        return lo, hi
    year = speech_year(sp)
    return (f"{year}-01-01", f"{year}-12-31") if year else None


class HybridRetriever:
    """Ranks paragraphs for a question. Read-only after construction, so safe to share between threads.

    Uses the snapshot's stores only through their protocols (dense ``search``, lexical ``top``).
    """

    def __init__(
        self,
        index: Snapshot,
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
        self._titles = {sid: _PUNCT.sub("", sp.title) for sid, sp in index.speeches.items()}

    def _speech_rows(self, speech_id: str) -> np.ndarray:
        return self.index.speech_rows(speech_id)

    # -- filters and mentions -------------------------------------------------------------------------

    def allowed_rows(self, filters: Filters | None) -> np.ndarray | None:
        """Row ids a filter allows, or None for all. Unknown speaker/speech/region is an error, not silence."""
        if filters is None:
            return None
        speeches = self.index.speeches
        sids: set[str] | None = None

        def narrow(keep: set[str]) -> None:
            nonlocal sids
            sids = keep if sids is None else sids & keep

        wanted_ids = [
            s for s in ((filters.speech_id,) if filters.speech_id else ()) + tuple(filters.speech_ids or ())
        ]
        for sid in wanted_ids:
            if sid not in speeches:
                raise UnknownFilterError(
                    f"unknown speech_id {sid!r}", fix="list speeches with GET /v1/speeches"
                )
        if filters.speech_id:
            narrow({filters.speech_id})
        if filters.speech_ids is not None:
            narrow(set(filters.speech_ids))
        if filters.speaker:
            wanted = filters.speaker.strip()
            by_speaker = {
                sid
                for sid, sp in speeches.items()
                if sp.speaker and (sp.speaker == wanted or wanted in sp.speaker)
            }
            if not by_speaker:
                raise UnknownFilterError(
                    f"no speech by speaker {wanted!r}", fix="list speakers with GET /v1/speeches"
                )
            narrow(by_speaker)
        if filters.region:
            region = filters.region.strip()
            by_region = {
                sid
                for sid, sp in speeches.items()
                if (r := speech_region(sp)) and (r == region or region in r)
            }
            if not by_region:
                raise UnknownFilterError(
                    f"no speech from region {region!r}", fix="list speeches with GET /v1/speeches"
                )
            narrow(by_region)
        if filters.year_from is not None or filters.year_to is not None:
            lo, hi = filters.year_from or -(10**9), filters.year_to or 10**9
            narrow(
                {sid for sid, sp in speeches.items() if (y := speech_year(sp)) is not None and lo <= y <= hi}
            )
        if filters.date_from or filters.date_to:
            lo_d, hi_d = filters.date_from or "0000", filters.date_to or "9999"
            narrow(
                {
                    sid
                    for sid, sp in speeches.items()
                    if (span := _date_range(sp)) is not None and span[1] >= lo_d and span[0] <= hi_d
                }
            )
        rows: np.ndarray | None = None
        if sids is not None:
            parts = [self._speech_rows(s) for s in sids]
            rows = np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)
        if filters.exclude_passages:
            excluded = [x for pid in filters.exclude_passages if (x := self.index.row_of(pid)) is not None]
            if excluded:
                rows = np.setdiff1d(rows if rows is not None else self.index.live_rows(), excluded)
        return rows

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
        confine: bool = False,
    ) -> Retrieval:
        """Top ``k`` paragraphs; ``exclude_rows`` retrieves as if those paragraphs were not indexed (used to
        build leave-the-paragraph-out training data). With ``confine``, a question that names speeches firmly
        (their speaker, region or report year: ``qa.mentions.firmly_named``) and compares none gets only their
        paragraphs: another region's figure is not the answer to a question about 吉林, however well it
        matches. Their scores are the ones the unconfined retrieval gives them (the same fusion over the same
        candidates), which is what the answerability model was trained on. When none of their paragraphs is
        among the candidates the ranking stays unconfined (it never happened on the dev sets: 98 questions
        naming a speech firmly, each with at least ``k`` of its paragraphs among them)."""
        if mode not in MODES:  # a typo would otherwise retrieve nothing, silently
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        allowed = self.allowed_rows(filters)
        if exclude_rows is not None and len(exclude_rows):
            base = allowed if allowed is not None else self.index.live_rows()
            allowed = np.setdiff1d(base, exclude_rows)
        qv = query_vector if query_vector is not None else self.encode_query(question)
        n = self.index.n_paragraphs
        if n == 0 or (allowed is not None and len(allowed) == 0):
            return Retrieval([], qv, ())
        depth = min(n, max(self.candidates, 4 * k))

        rankings: list[tuple[str, np.ndarray]] = []
        if mode in ("hybrid", "dense"):
            rankings.append(("dense", self.index.dense.search(qv, depth, allowed)[0]))
        bm25 = None
        if mode in ("hybrid", "bm25"):
            # The top ``depth`` by BM25; fusion looks up the BM25 scores of the dense candidates too.
            bm25 = _Sparse(
                self.index.lexical, list(question_terms(question, self.index.lexical.df)), depth, allowed
            )
            rankings.append(("bm25", bm25.ranked))
        mentioned = self.mentioned_speeches(question) if mode == "hybrid" else ()
        rows = np.zeros(0, dtype=np.int64)
        if mentioned:
            rows = np.concatenate([self._speech_rows(s) for s in mentioned])
            if allowed is not None:
                rows = np.intersect1d(rows, allowed)
            sims = self.index.passage_vectors_of(rows) @ qv
            rankings.append(("mention", rows[np.argsort(-sims)][:depth]))

        if self.fusion == "rrf" or mode != "hybrid":
            fused = self._rrf(rankings)
        else:
            fused = self._linear(rankings, qv, bm25, set(rows.tolist()) if mentioned else set())
        if mode == "bm25" and bm25 is not None:
            # A BM25-only ranking has no place for documents without any query term.
            has_term = bm25.at(np.fromiter(fused, dtype=np.int64, count=len(fused))) > 0
            fused = {r: s for (r, s), ok in zip(fused.items(), has_term, strict=True) if ok}
        order = sorted(fused, key=lambda r: (-fused[r], r))
        compared = compares(mentioned, self.index.speeches, question)
        if confine and mentioned and not compared:
            named = firmly_named(question, mentioned, self.index.speeches)
            if named:
                own = set(np.concatenate([self._speech_rows(s) for s in named]).tolist())
                order = [r for r in order if r in own] or order
        if mode == "hybrid":
            order = self._period_first(question, order, 2 * k)
        order = order[:k]
        rows_arr = np.asarray(order, dtype=np.int64)
        cos = self.index.passage_vectors_of(rows_arr) @ qv if len(order) else np.zeros(0)
        lex = bm25.at(rows_arr) if bm25 is not None else np.zeros(len(order))
        hits = [self._hit(row, fused[row], float(cos[j]), float(lex[j])) for j, row in enumerate(order)]
        return Retrieval(hits, qv, mentioned, compared)

    def _period_first(self, question: str, order: list[int], window: int) -> list[int]:
        """A question about a year ("2024年…增长多少", "今年…打算") reads first the passages of the top
        ``window`` that speak about that year (the plans, not the review of the year before), in fused order;
        the others follow. A question asking what is intended ("打算如何…", "下一步…") asks about the speech's
        own year, as 今年 does. A question naming no year keeps the fused order."""
        explicit = question_period_years(question)
        relative = relative_years(question) or ((0,) if _PLANS.search(question) else ())
        if not explicit and not relative:
            return order
        head, tail = order[:window], order[window:]

        def about(row: int) -> bool:
            p = self.index.paragraph(row)
            year = speech_year(self.index.speeches[p.speech_id]) or 0
            asked = explicit | {year + off for off in relative} if year else explicit
            return bool(asked & period_of((p.section, p.text), year))

        matches = [about(r) for r in head]
        first = [r for r, m in zip(head, matches, strict=True) if m]
        return first + [r for r, m in zip(head, matches, strict=True) if not m] + tail

    def _hit(self, row: int, score: float, dense: float, lexical: float) -> Hit:
        p = self.index.paragraph(row)
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
            date=sp.date,
            source=sp.source,
        )

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
        bm25: _Sparse | None,
        mentioned: set[int],
    ) -> dict[int, float]:
        """Convex combination of min-max normalized cosine and max-normalized BM25 over the candidate union.

        Measured on the gold set and CMRC2018 (docs/benchmarks.md): better than RRF, which throws away how far
        apart the scores are, and on a small corpus turns every list into near-ties.
        """
        cand = np.unique(np.concatenate([r for name, r in rankings if name in ("dense", "bm25")]))
        if len(cand) == 0:
            return {}
        dense = self.index.passage_vectors_of(cand) @ qv
        span = float(dense.max() - dense.min())
        d = (dense - dense.min()) / span if span > 1e-9 else np.ones_like(dense)
        b = bm25.at(cand) if bm25 is not None else np.zeros_like(dense)
        b = b / b.max() if b.max() > 0 else b
        fused = self.alpha * d + (1 - self.alpha) * b
        if mentioned:
            fused = fused + self.weights["mention"] * np.isin(cand, list(mentioned))
        return {int(r): float(f) for r, f in zip(cand, fused, strict=True)}
