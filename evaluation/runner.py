"""Batch evaluation: ask every gold question through a backend, score the answers, summarize the run."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from data.errors import InputFileError
from evaluation.backends import Backend
from evaluation.gold import GoldItem, SkippedLine
from evaluation.metrics import (
    RETRIEVAL_DEPTH,
    PassageJudge,
    char_f1,
    citation_coverage,
    citation_problem,
    first_relevant_rank,
    key_points_found,
    mean,
    retrieval_metrics,
)
from qa.types import Answer

log = logging.getLogger(__name__)

# The summary's groups and keys, in the order people read them; `summary.json` always has all of them.
SUMMARY_GROUPS: dict[str, tuple[str, ...]] = {
    "retrieval": ("hit@1", "hit@3", "hit@5", "recall@5", "mrr", "ndcg@5"),
    "answer": ("key_point_recall", "key_point_first", "char_f1"),
    "citations": ("precision", "coverage", "valid"),
    "abstention": ("accuracy", "false_refusals", "false_answers"),
    "latency_ms": ("p50", "p95", "max"),
}
# For these a smaller number is better; the other summary metrics are higher-is-better, counts are neither.
LOWER_IS_BETTER = frozenset(
    {"abstention.false_refusals", "abstention.false_answers", "skipped", "errors", "failures"}
)


def metric_direction(metric: str) -> str | None:
    """Which way is better for a dotted summary metric: "lower", "higher", or None (counts, unknown names)."""
    if metric in LOWER_IS_BETTER or metric.startswith("latency_ms."):
        return "lower"
    group, _, key = metric.partition(".")
    if key in SUMMARY_GROUPS.get(group, ()):
        return "higher"
    return None


# ----------------------------------------------------------------------------------------------------
# Evaluating questions


@dataclass(frozen=True, slots=True)
class QuestionResult:
    """Everything measured for one gold question; ``to_json`` is its row in results.jsonl."""

    item: GoldItem
    answer: Answer | None  # None when asking failed
    error: str | None
    latency_ms: float | None
    retrieved: tuple[dict[str, Any], ...] = ()
    citations: tuple[dict[str, Any], ...] = ()
    key_points: tuple[dict[str, Any], ...] = ()
    evidence: tuple[dict[str, Any], ...] = ()
    gold_passages: tuple[dict[str, Any], ...] = ()
    metrics: dict[str, float | None] = field(default_factory=dict)
    failures: tuple[str, ...] = ()

    @property
    def answered(self) -> bool | None:
        return None if self.answer is None else self.answer.answerable

    def to_json(self) -> dict[str, Any]:
        item = self.item
        return {
            "id": item.id,
            "question": item.question,
            "type": item.type,
            "line": item.line,
            "answerable": item.answerable,
            "answered": self.answered,
            "answer": self.answer.answer if self.answer is not None else "",
            "error": self.error,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 2),
            "index_version": self.answer.index_version if self.answer is not None else "",
            "reference_answer": item.reference_answer,
            "region": item.region,
            "key_points": list(self.key_points),
            "evidence": list(self.evidence),
            "citations": list(self.citations),
            "retrieved_ids": [r["passage_id"] for r in self.retrieved],
            "retrieved": list(self.retrieved),
            "gold_passages": list(self.gold_passages),
            "metrics": dict(self.metrics),
            "failures": list(self.failures),
        }


class _PassageLookup:
    """Caches passage lookups; citations and gold ids repeat across questions."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._cache: dict[str, Mapping[str, Any] | None] = {}
        self._lock = threading.Lock()

    def __call__(self, passage_id: str) -> Mapping[str, Any] | None:
        with self._lock:
            if passage_id in self._cache:
                return self._cache[passage_id]
        try:
            found = self._backend.passage(passage_id)
        except Exception as exc:  # a lookup that errors is as unresolvable as a 404 for the verdict
            log.warning("passage lookup %s failed: %s", passage_id, exc)
            found = None
        with self._lock:
            self._cache[passage_id] = found
        return found


def score_answer(
    item: GoldItem,
    answer: Answer,
    latency_ms: float,
    lookup: Callable[[str], Mapping[str, Any] | None],
) -> QuestionResult:
    """Every metric of one answered (or refused) question."""
    judge = PassageJudge(item.evidence, item.gold_passage_ids)
    metrics: dict[str, float | None] = {}
    failures: list[str] = []

    retrieved = []
    found_units: set[int] = set()
    first_rank_of_evidence: dict[int, int] = {}
    relevance: list[bool] = []
    for rank, hit in enumerate(answer.related, 1):
        hits_evidence = judge.evidence_in(hit.text)
        relevant = hit.passage_id in judge.gold_ids or bool(hits_evidence)  # == judge.is_relevant
        relevance.append(relevant)
        for e in hits_evidence:
            first_rank_of_evidence.setdefault(e, rank)
        if rank <= RETRIEVAL_DEPTH:
            found_units.update(hits_evidence)
        retrieved.append(
            {
                "rank": rank,
                "passage_id": hit.passage_id,
                "speech_title": hit.speech_title,
                "section": hit.section,
                "score": hit.score,
                "relevant": relevant,
                "text": hit.text,
            }
        )

    evidence_rows = [
        {"text": text, "found_at_rank": first_rank_of_evidence.get(i)} for i, text in enumerate(item.evidence)
    ]
    gold_passages = _gold_passages(item, judge, retrieved, lookup)

    metrics["first_relevant_rank"] = None
    if item.answerable and item.has_retrieval_gold:
        if any(judge.evidence):
            units_total, units_found = sum(1 for e in judge.evidence if e), len(found_units)
        else:
            top_ids = {r["passage_id"] for r in retrieved[:RETRIEVAL_DEPTH]}
            units_total, units_found = len(judge.gold_ids), len(judge.gold_ids & top_ids)
        # The corpus-wide count of relevant passages is unknown (evidence can occur in passages nobody
        # listed), so the ideal ranking holds the known gold ids or, if more, the relevant passages retrieved.
        n_relevant = max(len(judge.gold_ids), sum(relevance))
        metrics.update(
            retrieval_metrics(
                relevance, units_found=units_found, units_total=units_total, n_relevant=n_relevant
            )
        )
        metrics["first_relevant_rank"] = first_relevant_rank(relevance)
        if not metrics["hit@5"]:
            failures.append("evidence not retrieved")
    else:
        metrics.update(dict.fromkeys(("hit@1", "hit@3", "hit@5", "recall@5", "rr", "ndcg@5")))

    answer_text = answer.answer if answer.answerable else ""
    found = key_points_found(answer_text, item.key_points)
    key_points = [
        {"variants": list(group), "found": f} for group, f in zip(item.key_points, found, strict=True)
    ]
    metrics["key_point_recall"] = sum(found) / len(found) if item.answerable and found else None
    # Issue 8: "the answer's first sentence carries the asked-for fact". Whether the first quoted sentence holds a
    # key point, over the answered answerable questions with key points (a metadata answer's lead sentence,
    # uncited, is not the first quote).
    first_quote = answer.citations[0].quote if answer.answerable and answer.citations else ""
    metrics["key_point_first"] = (
        float(any(key_points_found(first_quote, item.key_points)))
        if item.answerable and answer.answerable and item.key_points
        else None
    )
    metrics["char_f1"] = (
        char_f1(answer_text, item.reference_answer) if item.reference_answer is not None else None
    )

    citations = []
    relevant_flags: list[bool] = []
    valid_flags: list[bool] = []
    for c in answer.citations:
        problem = citation_problem(c, lookup)
        on_gold = judge.is_relevant(c.passage_id, c.passage_text) if item.has_retrieval_gold else None
        if on_gold is not None:
            relevant_flags.append(on_gold)
        valid_flags.append(problem is None)
        citations.append(
            {
                "n": c.n,
                "passage_id": c.passage_id,
                "speech_title": c.speech_title,
                "speaker": c.speaker,
                "section": c.section,
                "quote": c.quote,
                "start": c.start,
                "end": c.end,
                "passage_text": c.passage_text,
                "relevant": on_gold,
                "valid": problem is None,
                "problem": problem,
            }
        )
    metrics["citation_precision"] = sum(relevant_flags) / len(relevant_flags) if relevant_flags else None
    metrics["citation_valid"] = sum(valid_flags) / len(valid_flags) if valid_flags else None
    metrics["citation_coverage"] = citation_coverage(answer.answer) if answer.answerable else None

    correct = answer.answerable == item.answerable
    metrics["abstention_correct"] = float(correct)
    if not correct:
        failures.append("false refusal" if item.answerable else "false answer")
    if metrics["key_point_recall"] is not None and metrics["key_point_recall"] < 1 and answer.answerable:
        failures.append("key points missing")
    if metrics["citation_precision"] is not None and metrics["citation_precision"] < 1:
        failures.append("citation off the evidence")
    if metrics["citation_valid"] is not None and metrics["citation_valid"] < 1:
        failures.append("citation not verbatim")
    if metrics["citation_coverage"] is not None and metrics["citation_coverage"] < 1:
        failures.append("uncited sentence")

    return QuestionResult(
        item=item,
        answer=answer,
        error=None,
        latency_ms=latency_ms,
        retrieved=tuple(retrieved),
        citations=tuple(citations),
        key_points=tuple(key_points),
        evidence=tuple(evidence_rows),
        gold_passages=tuple(gold_passages),
        metrics=metrics,
        failures=tuple(failures),
    )


def _gold_passages(
    item: GoldItem,
    judge: PassageJudge,
    retrieved: Sequence[Mapping[str, Any]],
    lookup: Callable[[str], Mapping[str, Any] | None],
) -> list[dict[str, Any]]:
    """The passages known to hold the evidence: the gold ids (fetched by id), else the retrieved relevant ones."""
    rank_of = {r["passage_id"]: r["rank"] for r in retrieved}
    out: list[dict[str, Any]] = []
    if item.gold_passage_ids:
        for pid in item.gold_passage_ids:
            found = lookup(pid)
            out.append(
                {
                    "passage_id": pid,
                    "speech_title": str(found.get("speech_title", "")) if found else "",
                    "text": str(found.get("text", "")) if found else "",
                    "rank": rank_of.get(pid),
                }
            )
        return out
    return [
        {
            "passage_id": r["passage_id"],
            "speech_title": r["speech_title"],
            "text": r["text"],
            "rank": r["rank"],
        }
        for r in retrieved
        if r["relevant"]
    ]


def _failed(
    item: GoldItem,
    error: str,
    latency_ms: float | None,
    lookup: Callable[[str], Mapping[str, Any] | None],
) -> QuestionResult:
    """A question whose ask failed: no metrics, but what was expected, so the report can show it."""
    return QuestionResult(
        item=item,
        answer=None,
        error=error,
        latency_ms=latency_ms,
        key_points=tuple({"variants": list(g), "found": False} for g in item.key_points),
        evidence=tuple({"text": e, "found_at_rank": None} for e in item.evidence),
        gold_passages=tuple(
            _gold_passages(item, PassageJudge(item.evidence, item.gold_passage_ids), [], lookup)
        ),
        failures=("error",),
    )


def evaluate(
    items: Sequence[GoldItem],
    backend: Backend,
    *,
    k: int = 5,
    concurrency: int = 1,
    progress: bool = False,
) -> list[QuestionResult]:
    """Ask every gold question (``concurrency`` at a time) and score the answers, in gold order.

    A question whose ask fails is kept as a row with its error, so one bad question never stops the run.
    """
    lookup = _PassageLookup(backend)

    def run_one(item: GoldItem) -> QuestionResult:
        started = time.perf_counter()
        try:
            answer = backend.ask(item.question, k)
        except Exception as exc:  # recorded per question; the summary counts errors
            elapsed = (time.perf_counter() - started) * 1000
            log.warning("question %s failed: %s: %s", item.id, type(exc).__name__, exc)
            return _failed(item, f"{type(exc).__name__}: {exc}", elapsed, lookup)
        elapsed = (time.perf_counter() - started) * 1000
        return score_answer(item, answer, elapsed, lookup)

    results: list[QuestionResult | None] = [None] * len(items)
    with tqdm(total=len(items), desc="eval", unit="q", disable=not progress, leave=False) as bar:
        if concurrency <= 1:
            for i, item in enumerate(items):
                results[i] = run_one(item)
                bar.update(1)
        else:
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                futures = {pool.submit(run_one, item): i for i, item in enumerate(items)}
                for future in as_completed(futures):
                    results[futures[future]] = future.result()
                    bar.update(1)
    return [r for r in results if r is not None]


# ----------------------------------------------------------------------------------------------------
# Summary, comparison, gates


def percentile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else None


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def summarize(
    results: Sequence[QuestionResult],
    *,
    skipped: Sequence[SkippedLine] = (),
    k: int = 5,
    source: str = "",
    index_version: str = "",
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The summary.json object: every group and key always present, null where a metric has no data."""
    ok = [r for r in results if r.answer is not None]

    def mean_of(name: str, rows: Sequence[QuestionResult] = ok) -> float | None:
        return _round(mean(r.metrics.get(name) for r in rows))

    answerable = [r for r in ok if r.item.answerable]
    unanswerable = [r for r in ok if not r.item.answerable]
    latencies = [r.latency_ms for r in ok if r.latency_ms is not None]
    summary: dict[str, Any] = {
        "n": len(results),
        "retrieval": {
            "hit@1": mean_of("hit@1"),
            "hit@3": mean_of("hit@3"),
            "hit@5": mean_of("hit@5"),
            "recall@5": mean_of("recall@5"),
            "mrr": mean_of("rr"),
            "ndcg@5": mean_of("ndcg@5"),
            "n": sum(1 for r in ok if r.metrics.get("hit@1") is not None),
        },
        "answer": {
            "key_point_recall": mean_of("key_point_recall"),
            "key_point_first": mean_of("key_point_first"),
            "char_f1": mean_of("char_f1"),
            "n_key_points": sum(1 for r in ok if r.metrics.get("key_point_recall") is not None),
            "n_references": sum(1 for r in ok if r.metrics.get("char_f1") is not None),
        },
        "citations": {
            "precision": mean_of("citation_precision"),
            "coverage": mean_of("citation_coverage"),
            "valid": mean_of("citation_valid"),
            "n_citations": sum(len(r.citations) for r in ok),
        },
        "abstention": {
            "accuracy": mean_of("abstention_correct"),
            "false_refusals": _round(mean(float(not r.answered) for r in answerable)),
            "false_answers": _round(mean(float(bool(r.answered)) for r in unanswerable)),
            "n_answerable": len(answerable),
            "n_unanswerable": len(unanswerable),
        },
        "latency_ms": {
            "p50": _round(percentile(latencies, 50), 2),
            "p95": _round(percentile(latencies, 95), 2),
            "max": _round(max(latencies), 2) if latencies else None,
            "mean": _round(mean(latencies), 2),
        },
        "skipped": len(skipped),
        "skipped_lines": [{"line": s.line, "error": s.error} for s in skipped],
        "errors": len(results) - len(ok),
        "failures": sum(1 for r in results if r.failures),
        "k": k,
        "source": source,
        "index_version": index_version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if extra:
        summary.update(extra)
    return summary


def write_results(out_dir: Path, results: Sequence[QuestionResult], summary: Mapping[str, Any]) -> None:
    """results.jsonl (one row per question) and summary.json in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "results.jsonl").open("w", encoding="utf-8") as fh:
        for r in results:
            fh.write(json.dumps(r.to_json(), ensure_ascii=False) + "\n")
    (out_dir / "summary.json").write_text(
        json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )


def load_summary(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputFileError(
            f"cannot read summary {path}: {exc}", fix="pass a summary.json written by speechqa eval"
        ) from exc
    if not isinstance(data, dict):
        raise InputFileError(
            f"{path} is not a summary object", fix="pass a summary.json written by speechqa eval"
        )
    return data
