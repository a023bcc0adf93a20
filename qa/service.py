"""AnswerService: the one path from a question to a cited answer, shared by the API, the CLI and eval."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from data.errors import InvalidQuestionError, NotFoundError, SpeechQAError
from embeddings.encoder import Encoder
from qa.compose import REFUSAL, Composer, ExtractiveComposer, check_citations, meta_question
from qa.index import LoadedIndex, load_index
from qa.lexical import warm_up
from qa.retrieve import HybridRetriever, Mode
from qa.types import Answer, AnswerEvent, Filters, Hit

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 500
MAX_TOP_K = 20
# Calibrated on data/eval/gold.jsonl with `python benchmarks/bench_answers.py --calibrate` (see docs/benchmarks.md).
DEFAULT_THRESHOLD = 0.22
_FOLLOW_UP = re.compile(r"^(那|那么|还有|另外|此外|以及|和|跟)|呢[？?]?$")


class LockedEncoder:
    """Serializes calls into the model: two torch forwards at once on two cores only slow each other down."""

    def __init__(self, encoder: Encoder) -> None:
        self._encoder = encoder
        self._lock = threading.Lock()
        self.model_id = encoder.model_id
        self.dim = encoder.dim

    def encode_queries(self, texts: Sequence[str]):
        with self._lock:
            return self._encoder.encode_queries(texts)

    def encode_passages(self, texts: Sequence[str]):
        with self._lock:
            return self._encoder.encode_passages(texts)

    def __getattr__(self, name: str):
        # Optional capabilities of the wrapped encoder (span pooling for ingest) stay available, under
        # the same lock: an ingest through this wrapper must produce the vectors a direct one would.
        if name.startswith("_"):
            raise AttributeError(name)
        attr = getattr(self._encoder, name)
        if not callable(attr):
            return attr

        def locked(*args, **kwargs):
            with self._lock:
                return attr(*args, **kwargs)

        return locked


class AnswerService:
    def __init__(
        self,
        index: LoadedIndex,
        encoder: Encoder,
        *,
        composer: Composer | None = None,
        threshold: float | None = None,
        top_k: int = 5,
        max_chars: int = 200,
    ) -> None:
        self.index = index
        self.encoder = LockedEncoder(encoder)
        self.retriever = HybridRetriever(index, self.encoder)
        self.composer: Composer = composer or ExtractiveComposer(
            index, threshold=DEFAULT_THRESHOLD if threshold is None else threshold
        )
        self.top_k = top_k
        self.max_chars = max_chars

    @classmethod
    def open(cls, index_dir: Path, encoder: Encoder, **options) -> AnswerService:
        """Load the index (checked against the encoder) and warm up everything a first request would pay for."""
        index = load_index(Path(index_dir), encoder)
        service = cls(index, encoder, **options)
        warm_up()
        service.retriever.encode_query("预热")
        return service

    @property
    def index_version(self) -> str:
        return self.index.version

    # -- questions ------------------------------------------------------------------------------------

    @staticmethod
    def validate_question(question: object) -> str:
        if not isinstance(question, str):
            raise InvalidQuestionError("the question must be a string")
        q = question.strip()
        if not q:
            raise InvalidQuestionError(
                "the question is empty", fix="ask something, e.g. 丽泽商务区的交通有哪些安排？"
            )
        if len(q) > MAX_QUESTION_CHARS:
            raise InvalidQuestionError(
                f"the question has {len(q)} characters; at most {MAX_QUESTION_CHARS} are accepted",
                fix="shorten it to the question itself",
            )
        return q

    @staticmethod
    def _top_k(top_k: int | None, default: int) -> int:
        k = default if top_k is None else top_k
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_TOP_K:
            raise InvalidQuestionError(f"top_k must be an integer from 1 to {MAX_TOP_K}, got {top_k!r}")
        return k

    @staticmethod
    def retrieval_query(question: str, history: Sequence[str] | None) -> str:
        """A follow-up ("那丰台园呢？") is read together with the previous question of the conversation."""
        if not history:
            return question
        previous = [h.strip() for h in history if isinstance(h, str) and h.strip()]
        if previous and (len(question) <= 12 or _FOLLOW_UP.search(question)):
            return f"{previous[-1][:MAX_QUESTION_CHARS]} {question}"
        return question

    def search(
        self,
        question: str,
        top_k: int | None = None,
        filters: Filters | None = None,
        *,
        mode: Mode = "hybrid",
    ) -> list[Hit]:
        q = self.validate_question(question)
        return self.retriever.retrieve(q, self._top_k(top_k, self.top_k), filters, mode=mode).hits

    def ask(
        self,
        question: str,
        top_k: int | None = None,
        filters: Filters | None = None,
        history: Sequence[str] | None = None,
    ) -> Answer:
        t0 = time.perf_counter()
        q = self.validate_question(question)
        k = self._top_k(top_k, self.top_k)
        retrieval = self.retriever.retrieve(self.retrieval_query(q, history), k, filters)
        if retrieval.hits and meta_question(q, retrieval.mentioned) is not None:
            target = retrieval.mentioned[0] if retrieval.mentioned else retrieval.hits[0].speech_id
            retrieval = self.retriever.promote_opening(retrieval, target, filters)
        t1 = time.perf_counter()
        comp = self.composer.compose(q, retrieval, max_chars=self.max_chars)
        problems = check_citations(comp.answer, comp.citations, self.index)
        if problems:
            # Never hand out a citation that does not check out; this is a bug, so say it loudly.
            log.error("composer produced invalid citations for %r: %s", q, problems)
            raise SpeechQAError("the answer's citations failed validation: " + "; ".join(problems))
        t2 = time.perf_counter()
        return Answer(
            question=q,
            answer=comp.answer,
            answerable=comp.answerable,
            citations=comp.citations,
            related=tuple(retrieval.hits),
            timing_ms={
                "retrieve": round((t1 - t0) * 1000, 2),
                "compose": round((t2 - t1) * 1000, 2),
                "total": round((t2 - t0) * 1000, 2),
            },
            index_version=self.index_version,
        )

    def check_filters(self, filters: Filters | None) -> None:
        """Raise UnknownFilterError for a filter naming nothing in the index (before a stream starts)."""
        if filters is not None:
            self.retriever.allowed_rows(filters)

    def ask_events(
        self,
        question: str,
        top_k: int | None = None,
        filters: Filters | None = None,
        history: Sequence[str] | None = None,
    ) -> Iterator[AnswerEvent]:
        """The answer as events: retrieved passages first, then the text a sentence at a time, each sentence
        only after its citation was checked, then the citations and the timing."""
        answer = self.ask(question, top_k, filters, history)
        yield AnswerEvent("meta", hits=answer.related, index_version=answer.index_version)
        for piece in _pieces(answer.answer):
            yield AnswerEvent("delta", text=piece)
        yield AnswerEvent("citations", citations=answer.citations, answerable=answer.answerable)
        yield AnswerEvent("done", timing_ms=answer.timing_ms, answerable=answer.answerable)

    # -- browsing -------------------------------------------------------------------------------------

    def passage(self, passage_id: str) -> dict:
        row = self.index.row_of.get(passage_id)
        if row is None:
            raise NotFoundError(
                f"no passage with id {passage_id!r}", fix="use an id from a search or an answer"
            )
        p = self.index.paragraphs[row]
        sp = self.index.speeches[p.speech_id]
        siblings = sp.paragraphs
        pos = next(i for i, x in enumerate(siblings) if x.paragraph_id == passage_id)
        return {
            "passage_id": p.paragraph_id,
            "text": p.text,
            "speech_id": sp.speech_id,
            "speech_title": sp.title,
            "speaker": sp.speaker,
            "speaker_role": sp.role,
            "section": p.section,
            "prev_id": siblings[pos - 1].paragraph_id if pos > 0 else None,
            "next_id": siblings[pos + 1].paragraph_id if pos + 1 < len(siblings) else None,
        }

    def speeches(self) -> list[dict]:
        return [
            {
                "speech_id": sp.speech_id,
                "title": sp.title,
                "speaker": sp.speaker,
                "role": sp.role,
                "date": sp.date,
                "paragraphs": len(sp.paragraphs),
            }
            for sp in self.index.speeches.values()
        ]


def _pieces(answer: str) -> Iterator[str]:
    """Split the answer after each citation marker or sentence end, so a client renders it as it arrives."""
    start = 0
    for i, ch in enumerate(answer):
        if ch == "]" or (ch in "。！？：" and answer[i + 1 : i + 2] != "["):
            yield answer[start : i + 1]
            start = i + 1
    if start < len(answer):
        yield answer[start:]


__all__ = ["AnswerService", "LockedEncoder", "REFUSAL", "DEFAULT_THRESHOLD"]
