"""Metrics, one implementation each: normalization, char F1, recall@k, MRR, nDCG, key points, citations.

``speechqa eval`` and the scripts in ``benchmarks/`` both score with these.
"""

from __future__ import annotations

import math
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

from data.text import answer_sentences, markers, strip_markers
from qa.types import Citation

RETRIEVAL_DEPTH = 5  # hit@5, recall@5 and nDCG@5 look this deep whatever k is

# ----------------------------------------------------------------------------------------------------
# Normalization


def normalize(text: str) -> str:
    """Text for containment tests: NFKC (full/half width), no [n] markers, whitespace or punctuation, casefolded."""
    text = strip_markers(text)
    # Unicode category P* covers ASCII and CJK punctuation (。，、“”《》…) alike.
    return "".join(
        ch for ch in text if not ch.isspace() and not unicodedata.category(ch).startswith("P")
    ).casefold()


def char_f1(prediction: str, reference: str) -> float:
    """F1 over normalized characters (Chinese has no whitespace tokens), as in CMRC's evaluation."""
    pred, ref = normalize(prediction), normalize(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


# ----------------------------------------------------------------------------------------------------
# Ranking metrics. ``relevance`` flags the retrieved passages in rank order.


def first_relevant_rank(relevance: Sequence[bool]) -> int | None:
    """1-based rank of the first relevant passage, None when none is relevant."""
    return next((rank for rank, rel in enumerate(relevance, 1) if rel), None)


def hit_at(relevance: Sequence[bool], k: int) -> float:
    """1.0 when a relevant passage is in the top ``k`` (what benchmarks often call R@k for one gold passage)."""
    first = first_relevant_rank(relevance)
    return float(first is not None and first <= k)


def recall_at_k(units_found: int, units_total: int) -> float:
    """Share of the gold units (evidence strings or gold passage ids) found in the top k."""
    return units_found / units_total if units_total else 0.0


def reciprocal_rank(relevance: Sequence[bool]) -> float:
    """1 / rank of the first relevant passage (0 when none); its mean over questions is MRR."""
    first = first_relevant_rank(relevance)
    return 1.0 / first if first is not None else 0.0


def dcg(relevance: Sequence[bool], depth: int) -> float:
    return sum(1.0 / math.log2(rank + 1) for rank, rel in enumerate(relevance[:depth], 1) if rel)


def ndcg(relevance: Sequence[bool], depth: int, n_relevant: int) -> float:
    """Binary nDCG@depth; the ideal ranking puts ``n_relevant`` relevant passages first."""
    ideal = dcg([True] * min(depth, max(n_relevant, 1)), depth)
    return dcg(relevance, depth) / ideal


def retrieval_metrics(
    relevance: Sequence[bool], *, units_found: int, units_total: int, n_relevant: int
) -> dict[str, float]:
    """hit@1/3/5, recall@5, reciprocal rank and nDCG@5 of one ranking.

    ``units_found`` of ``units_total`` evidence strings (or gold passage ids) occur in the top 5;
    ``n_relevant`` is the size of the ideal ranking.
    """
    return {
        "hit@1": hit_at(relevance, 1),
        "hit@3": hit_at(relevance, 3),
        "hit@5": hit_at(relevance, RETRIEVAL_DEPTH),
        "recall@5": recall_at_k(units_found, units_total),
        "rr": reciprocal_rank(relevance),
        "ndcg@5": ndcg(relevance, RETRIEVAL_DEPTH, n_relevant),
    }


class PassageJudge:
    """Decides which passages are relevant to a question: a gold id, or text containing an evidence string."""

    def __init__(self, evidence: Sequence[str] = (), gold_ids: Iterable[str] = ()) -> None:
        self.evidence = [normalize(e) for e in evidence]  # same order as the evidence given
        self.gold_ids = set(gold_ids)

    def evidence_in(self, text: str) -> list[int]:
        norm = normalize(text)
        return [i for i, e in enumerate(self.evidence) if e and e in norm]

    def is_relevant(self, passage_id: str, text: str) -> bool:
        return passage_id in self.gold_ids or bool(self.evidence_in(text))


# ----------------------------------------------------------------------------------------------------
# Answer text


def key_points_found(answer: str, key_points: Sequence[Sequence[str]]) -> list[bool]:
    """For each key point (a tuple of variants), whether any variant occurs in the normalized answer."""
    norm = normalize(answer)
    return [any(normalize(v) and normalize(v) in norm for v in variants) for variants in key_points]


def key_point_recall(answer: str, key_points: Sequence[Sequence[str]]) -> float | None:
    """Share of key points found in the answer; None when there are no key points."""
    found = key_points_found(answer, key_points)
    return sum(found) / len(found) if found else None


# ----------------------------------------------------------------------------------------------------
# Citations

PassageLookup = Callable[[str], Mapping[str, object] | None]


def citation_problem(citation: Citation, lookup: PassageLookup) -> str | None:
    """Why a citation is not verbatim and resolvable, or None if it is."""
    if citation.passage_text[citation.start : citation.end] != citation.quote:
        return "passage_text[start:end] != quote"
    found = lookup(citation.passage_id)
    if found is None:
        return "passage id does not resolve"
    if citation.quote not in str(found.get("text", "")):
        return "quote not in the passage fetched by id"
    return None


def citation_coverage(answer: str) -> float | None:
    """Share of the answer's sentences that carry a citation marker; None for an empty answer.

    Only real markers count (``data.text.markers``): a passage's own "［27］" or "[2020]" quoted in a
    sentence is text, not a citation.
    """
    sentences = answer_sentences(answer)
    if not sentences:
        return None
    return sum(bool(markers(s)) for s in sentences) / len(sentences)


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the values that are not None; None when there are none."""
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None
