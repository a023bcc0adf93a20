"""Batch evaluation of answer quality: gold questions in, per-question results and a summary out."""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import httpx
import numpy as np
from tqdm import tqdm

from data.errors import InputFileError, NotFoundError, SpeechQAError
from qa.types import Answer, Citation, Hit

log = logging.getLogger(__name__)

# The summary's groups and keys, in the order people read them; `summary.json` always has all of them.
SUMMARY_GROUPS: dict[str, tuple[str, ...]] = {
    "retrieval": ("hit@1", "hit@3", "hit@5", "recall@5", "mrr", "ndcg@5"),
    "answer": ("key_point_recall", "char_f1"),
    "citations": ("precision", "coverage", "valid"),
    "abstention": ("accuracy", "false_refusals", "false_answers"),
    "latency_ms": ("p50", "p95", "max"),
}
RETRIEVAL_DEPTH = 5  # hit@5, recall@5 and nDCG@5 look this deep whatever k is
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
# Gold questions


@dataclass(frozen=True, slots=True)
class GoldItem:
    """One gold question. A key point is a tuple of variants; it counts as found if any variant appears."""

    id: str
    question: str
    answerable: bool
    key_points: tuple[tuple[str, ...], ...] = ()
    evidence: tuple[str, ...] = ()  # strings a relevant passage contains
    reference_answer: str | None = None
    type: str = ""
    gold_passage_ids: tuple[str, ...] = ()  # passages known to be relevant (benchmarks know them)
    line: int = 0  # 1-based line in the gold file, 0 when made in code

    @property
    def has_retrieval_gold(self) -> bool:
        return bool(self.gold_passage_ids) or any(normalize(e) for e in self.evidence)


@dataclass(frozen=True, slots=True)
class SkippedLine:
    line: int
    error: str


@dataclass(frozen=True, slots=True)
class GoldSet:
    items: tuple[GoldItem, ...]
    skipped: tuple[SkippedLine, ...] = ()


class _Malformed(ValueError):
    """What is wrong with one gold line; becomes a SkippedLine."""


def _string_list(obj: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = obj.get(key, [])
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Malformed(f'"{key}" must be a list of strings')
    return tuple(v for v in value if v.strip())


def _key_points(obj: Mapping[str, Any]) -> tuple[tuple[str, ...], ...]:
    value = obj.get("key_points", [])
    if value is None:
        value = []
    if not isinstance(value, list):
        raise _Malformed('"key_points" must be a list')
    groups: list[tuple[str, ...]] = []
    for i, point in enumerate(value):
        # A nested list is one fact with several acceptable spellings (RGB's format).
        variants = [point] if isinstance(point, str) else point
        if not isinstance(variants, list) or not all(isinstance(v, str) for v in variants):
            raise _Malformed(f'"key_points"[{i}] must be a string or a list of strings')
        kept = tuple(v for v in variants if normalize(v))
        if kept:
            groups.append(kept)
    any_of = _string_list(obj, "key_points_any")
    if any_of:
        # "Any reference answer counts" (CMRC's several annotators) is one key point with variants.
        groups.append(tuple(v for v in any_of if normalize(v)))
    return tuple(g for g in groups if g)


def parse_gold_item(obj: object, line: int = 0) -> GoldItem:
    """Validate one decoded gold record; raises ValueError saying what is wrong."""
    if not isinstance(obj, dict):
        raise _Malformed(f"expected a JSON object, got {type(obj).__name__}")
    raw_id = obj.get("id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or str(raw_id).strip() == "":
        raise _Malformed('"id" is missing or empty (a string or number)')
    question = obj.get("question")
    if not isinstance(question, str) or not question.strip():
        raise _Malformed('"question" is missing or empty')
    answerable = obj.get("answerable")
    if not isinstance(answerable, bool):
        raise _Malformed(
            f'"answerable" must be true or false, got {json.dumps(answerable, ensure_ascii=False)}'
        )
    reference = obj.get("reference_answer")
    if reference is not None and not isinstance(reference, str):
        raise _Malformed('"reference_answer" must be a string')
    qtype = obj.get("type", "")
    if qtype is None:
        qtype = ""
    if not isinstance(qtype, str):
        raise _Malformed('"type" must be a string')
    item = GoldItem(
        id=str(raw_id).strip(),
        question=question.strip(),
        answerable=answerable,
        key_points=_key_points(obj),
        evidence=_string_list(obj, "evidence"),
        reference_answer=reference if reference and reference.strip() else None,
        type=qtype,
        gold_passage_ids=_string_list(obj, "gold_passage_ids"),
        line=line,
    )
    if (
        item.answerable
        and not item.key_points
        and not item.has_retrieval_gold
        and item.reference_answer is None
    ):
        raise _Malformed('an answerable question needs "key_points", "evidence" or "reference_answer"')
    return item


def parse_gold_lines(lines: Iterable[str]) -> GoldSet:
    """Parse gold JSONL; a malformed line is skipped and reported with its line number, the rest is kept."""
    items: list[GoldItem] = []
    skipped: list[SkippedLine] = []
    seen: dict[str, int] = {}
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip().lstrip("\ufeff")
        if not line:
            continue
        try:
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise _Malformed(f"invalid JSON: {exc.msg} at column {exc.colno}") from exc
            item = parse_gold_item(obj, lineno)
            if item.id in seen:
                raise _Malformed(f'duplicate id "{item.id}" (first on line {seen[item.id]})')
        except _Malformed as exc:
            skipped.append(SkippedLine(lineno, str(exc)))
            log.warning("gold line %d skipped: %s", lineno, exc)
            continue
        seen[item.id] = lineno
        items.append(item)
    return GoldSet(tuple(items), tuple(skipped))


def load_gold(path: Path) -> GoldSet:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"cannot read gold file {path}: {exc}", fix="pass a UTF-8 JSONL file") from exc
    return parse_gold_lines(text.splitlines())


# ----------------------------------------------------------------------------------------------------
# Normalization


# Markers are [1]..[20] (top_k <= 20); "[2020]" in a document number (筑府办发电[2020]5号) is text.
_MARKER = re.compile(r"\[\d{1,2}\]")


def strip_markers(text: str) -> str:
    """Remove inline citation markers like [1] (full-width ［１］ too)."""
    return _MARKER.sub("", unicodedata.normalize("NFKC", text))


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


# A sentence ends at 。！？; (or a line break), together with any closing quotes or brackets after the stop.
_STOP = r"[。！？!?；;]+[”’」』)）\"']*"
_SENTENCE = re.compile(rf"[^。！？!?；;\n]*(?:{_STOP}|\n|$)")
# A marker written after the full stop ("…发展。[1]", "…草野。”[1]") belongs to the sentence before it.
_MARKERS_AFTER_STOP = re.compile(rf"({_STOP})((?:\s*\[\d{{1,2}}\])+)")


def answer_sentences(answer: str) -> list[str]:
    """Sentences of an answer, each keeping its own [n] markers."""
    text = _MARKERS_AFTER_STOP.sub(r"\2\1", unicodedata.normalize("NFKC", answer))
    return [m.group().strip() for m in _SENTENCE.finditer(text) if normalize(m.group())]


# ----------------------------------------------------------------------------------------------------
# Metrics of one question


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

    ``relevance`` flags the retrieved passages in rank order; ``units_found`` of ``units_total`` evidence
    strings (or gold passage ids) occur in the top 5; ``n_relevant`` is the size of the ideal ranking.
    """
    first = next((rank for rank, rel in enumerate(relevance, 1) if rel), None)
    return {
        "hit@1": float(first is not None and first <= 1),
        "hit@3": float(first is not None and first <= 3),
        "hit@5": float(first is not None and first <= 5),
        "recall@5": units_found / units_total if units_total else 0.0,
        "rr": 1.0 / first if first is not None else 0.0,
        "ndcg@5": ndcg(relevance, RETRIEVAL_DEPTH, n_relevant),
    }


class PassageJudge:
    """Decides which passages are relevant to a gold item: a gold id, or text containing an evidence string."""

    def __init__(self, item: GoldItem) -> None:
        self.item = item
        self.evidence = [normalize(e) for e in item.evidence]  # same order as item.evidence
        self.gold_ids = set(item.gold_passage_ids)

    def evidence_in(self, text: str) -> list[int]:
        norm = normalize(text)
        return [i for i, e in enumerate(self.evidence) if e and e in norm]

    def is_relevant(self, passage_id: str, text: str) -> bool:
        return passage_id in self.gold_ids or bool(self.evidence_in(text))


# ----------------------------------------------------------------------------------------------------
# Where answers come from: the service in-process or a server over HTTP


class Backend(Protocol):
    """What the evaluator needs from the answering side (the same service the API serves)."""

    @property
    def source(self) -> str: ...

    @property
    def index_version(self) -> str: ...

    def ask(self, question: str, top_k: int) -> Answer: ...

    def passage(self, passage_id: str) -> Mapping[str, Any] | None:
        """The passage record, or None if the id does not resolve."""
        ...


class ServiceBackend:
    """Asks an in-process AnswerService (anything with ``ask``, ``passage`` and ``index_version``)."""

    def __init__(self, service: Any, source: str = "in-process") -> None:
        self._service = service
        self._source = source

    @property
    def source(self) -> str:
        return self._source

    @property
    def index_version(self) -> str:
        return str(getattr(self._service, "index_version", ""))

    def ask(self, question: str, top_k: int) -> Answer:
        return self._service.ask(question, top_k=top_k)

    def passage(self, passage_id: str) -> Mapping[str, Any] | None:
        try:
            return self._service.passage(passage_id)
        except NotFoundError:
            return None


def _record(cls: type, obj: Mapping[str, Any]) -> Any:
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in obj.items() if k in names})


def answer_from_json(question: str, body: Mapping[str, Any]) -> Answer:
    """The /v1/ask response body as the same Answer record the service returns in-process."""
    return Answer(
        question=question,
        answer=str(body.get("answer", "")),
        answerable=bool(body.get("answerable", False)),
        citations=tuple(_record(Citation, c) for c in body.get("citations", [])),
        related=tuple(_record(Hit, h) for h in body.get("related", [])),
        timing_ms=dict(body.get("timing_ms", {})),
        index_version=str(body.get("index_version", "")),
    )


class HttpBackend:
    """Asks a running speechqa server: POST /v1/ask, GET /v1/passages/{id}."""

    def __init__(self, client: httpx.Client, base_url: str, index_version: str = "") -> None:
        self._client = client
        self._base_url = base_url
        self._index_version = index_version

    @classmethod
    def connect(
        cls,
        base_url: str,
        *,
        timeout: float = 60.0,
        health_timeout: float = 3.0,
        transport: httpx.BaseTransport | None = None,
    ) -> HttpBackend:
        """Check /healthz first, with a short timeout, so a wrong URL fails at once and says so."""
        base_url = base_url.rstrip("/")
        client = httpx.Client(base_url=base_url, timeout=timeout, transport=transport)
        try:
            response = client.get("/healthz", timeout=health_timeout)
        except httpx.HTTPError as exc:
            client.close()
            raise SpeechQAError(
                f"cannot reach the speechqa server at {base_url} ({type(exc).__name__}: {exc})",
                fix="start it with `speechqa serve` or check --url (scheme, host and port).",
            ) from exc
        if response.status_code != 200:
            client.close()
            raise SpeechQAError(
                f"{base_url}/healthz answered HTTP {response.status_code}, the server is not ready",
                fix="wait until the index is loaded or check the server log.",
            )
        try:
            health = response.json()
        except ValueError:
            health = {}
        version = str(health.get("index_version", "")) if isinstance(health, dict) else ""
        return cls(client, base_url, version)

    @property
    def source(self) -> str:
        return self._base_url

    @property
    def index_version(self) -> str:
        return self._index_version

    def ask(self, question: str, top_k: int) -> Answer:
        response = self._client.post("/v1/ask", json={"question": question, "top_k": top_k})
        if response.status_code != 200:
            try:
                body = response.json()
            except ValueError:
                body = None
            # The API's error body is {"detail", "code"}; anything else (a proxy's page) is shown as is.
            detail = body.get("detail", response.text) if isinstance(body, dict) else response.text[:300]
            raise SpeechQAError(f"HTTP {response.status_code}: {detail}")
        answer = answer_from_json(question, response.json())
        if answer.index_version and not self._index_version:
            self._index_version = answer.index_version
        return answer

    def passage(self, passage_id: str) -> Mapping[str, Any] | None:
        response = self._client.get(f"/v1/passages/{quote(passage_id, safe='')}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

    def close(self) -> None:
        self._client.close()


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


def _check_citation(citation: Citation, lookup: Callable[[str], Mapping[str, Any] | None]) -> str | None:
    """Why a citation is not verbatim and resolvable, or None if it is."""
    if citation.passage_text[citation.start : citation.end] != citation.quote:
        return "passage_text[start:end] != quote"
    found = lookup(citation.passage_id)
    if found is None:
        return "passage id does not resolve"
    if citation.quote not in str(found.get("text", "")):
        return "quote not in the passage fetched by id"
    return None


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def score_answer(
    item: GoldItem,
    answer: Answer,
    latency_ms: float,
    lookup: Callable[[str], Mapping[str, Any] | None],
) -> QuestionResult:
    """Every metric of one answered (or refused) question."""
    judge = PassageJudge(item)
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
        metrics["first_relevant_rank"] = next((r for r, rel in enumerate(relevance, 1) if rel), None)
        if not metrics["hit@5"]:
            failures.append("evidence not retrieved")
    else:
        metrics.update(dict.fromkeys(("hit@1", "hit@3", "hit@5", "recall@5", "rr", "ndcg@5")))

    answer_text = answer.answer if answer.answerable else ""
    norm_answer = normalize(answer_text)
    found = [any(normalize(v) in norm_answer for v in group) for group in item.key_points]
    key_points = [
        {"variants": list(group), "found": f} for group, f in zip(item.key_points, found, strict=True)
    ]
    metrics["key_point_recall"] = sum(found) / len(found) if item.answerable and found else None
    metrics["char_f1"] = (
        char_f1(answer_text, item.reference_answer) if item.reference_answer is not None else None
    )

    citations = []
    relevant_flags: list[bool] = []
    valid_flags: list[bool] = []
    for c in answer.citations:
        problem = _check_citation(c, lookup)
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
    sentences = answer_sentences(answer.answer) if answer.answerable else []
    metrics["citation_coverage"] = (
        sum(bool(_MARKER.search(s)) for s in sentences) / len(sentences) if sentences else None
    )

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
        gold_passages=tuple(_gold_passages(item, PassageJudge(item), [], lookup)),
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
        return _round(_mean(r.metrics.get(name) for r in rows))

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
            "false_refusals": _round(_mean(float(not r.answered) for r in answerable)),
            "false_answers": _round(_mean(float(bool(r.answered)) for r in unanswerable)),
            "n_answerable": len(answerable),
            "n_unanswerable": len(unanswerable),
        },
        "latency_ms": {
            "p50": _round(percentile(latencies, 50), 2),
            "p95": _round(percentile(latencies, 95), 2),
            "max": _round(max(latencies), 2) if latencies else None,
            "mean": _round(_mean(latencies), 2),
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


def metric_paths(summary: Mapping[str, Any]) -> dict[str, float | None]:
    """Every numeric metric of a summary under its dotted path (``answer.key_point_recall``), in reading order."""
    out: dict[str, float | None] = {"n": summary.get("n")}
    for group, keys in SUMMARY_GROUPS.items():
        values = summary.get(group) or {}
        for key in keys:
            out[f"{group}.{key}"] = values.get(key) if isinstance(values, dict) else None
    for name in ("skipped", "errors", "failures"):
        if name in summary:
            out[name] = summary[name]
    # Keep any further numeric values (e.g. latency_ms.mean) addressable for gates.
    for group, values in summary.items():
        if isinstance(values, dict):
            for key, value in values.items():
                path = f"{group}.{key}"
                if (
                    path not in out
                    and (value is None or isinstance(value, int | float))
                    and not isinstance(value, bool)
                ):
                    out[path] = value
    return out


@dataclass(frozen=True, slots=True)
class MetricDelta:
    metric: str
    a: float | None
    b: float | None

    @property
    def delta(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a

    @property
    def better(self) -> bool | None:
        """Whether B improves on A (None when equal or unknown)."""
        d, direction = self.delta, metric_direction(self.metric)
        if d is None or abs(d) < 1e-12 or direction is None:
            return None
        return (d < 0) if direction == "lower" else (d > 0)


def compare_summaries(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[MetricDelta]:
    """Each metric of A next to B, for the groups of the summary (and anything numeric both share)."""
    pa, pb = metric_paths(a), metric_paths(b)
    names = [m for m in pa if m in pb or m.split(".")[0] in SUMMARY_GROUPS or m == "n"]
    names += [m for m in pb if m not in names]
    return [MetricDelta(m, pa.get(m), pb.get(m)) for m in names]


@dataclass(frozen=True, slots=True)
class Gate:
    """A threshold on one summary metric: ``under`` fails below it, ``over`` fails above it."""

    metric: str
    threshold: float
    kind: str  # "under" | "over"

    def describe(self) -> str:
        return f"--fail-{self.kind} {self.metric}={self.threshold:g}"


def parse_gate(spec: str, kind: str) -> Gate:
    """``answer.key_point_recall=0.85`` -> Gate; raises ValueError with what is wrong."""
    if kind not in ("under", "over"):
        raise ValueError(f"unknown gate kind {kind!r}")
    metric, sep, value = spec.partition("=")
    if not sep or not metric.strip():
        raise ValueError(f"{spec!r}: expected METRIC=VALUE, e.g. answer.key_point_recall=0.85")
    try:
        threshold = float(value)
    except ValueError:
        raise ValueError(f"{spec!r}: {value!r} is not a number") from None
    return Gate(metric.strip(), threshold, kind)


def check_gates(summary: Mapping[str, Any], gates: Sequence[Gate]) -> list[str]:
    """One message per violated gate, naming the metric; a metric without data fails its gate.

    Raises SpeechQAError for a metric name the summary does not have (a typo must not pass silently).
    """
    paths = metric_paths(summary)
    unknown = [g.metric for g in gates if g.metric not in paths]
    if unknown:
        raise SpeechQAError(
            f"unknown metric {', '.join(unknown)}",
            fix="use a dotted summary path: " + ", ".join(p for p in paths if "." in p),
        )
    violations = []
    for gate in gates:
        value = paths[gate.metric]
        if value is None:
            violations.append(f"{gate.metric} has no data ({gate.describe()})")
        elif gate.kind == "under" and value < gate.threshold:
            violations.append(f"{gate.metric} = {value:g} is under {gate.threshold:g}")
        elif gate.kind == "over" and value > gate.threshold:
            violations.append(f"{gate.metric} = {value:g} is over {gate.threshold:g}")
    return violations
