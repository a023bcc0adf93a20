"""AnswerService: the one path from a question to a cited answer, shared by the API, the CLI and eval."""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from data.errors import InvalidQuestionError, NotFoundError, SpeechQAError
from embeddings.encoder import Encoder
from qa import places, prepare
from qa.compose import REFUSAL, Composer, check_citation, compose_stream
from qa.composers import DEFAULT_COMPOSER, make_composer
from qa.features import PERIOD
from qa.index import LoadedIndex, load_index
from qa.lexical import warm_up
from qa.mentions import rewrite_follow_up, speech_region
from qa.meta import asks_which_reports, asks_which_speeches
from qa.retrieve import HybridRetriever, Mode, Retrieval
from qa.terms import as_asked, official_terms
from qa.types import Answer, AnswerEvent, Citation, Filters, Hit

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 500
MAX_TOP_K = 20
MAX_COMPARED = 4  # sides of a comparison answered at once; more would not read as a short answer
# "哪些省份…": a survey reads every regional speech's best passages, not the best passages of the index (which come
# from a few reports: "哪几个省提出发展低空经济？" found 3 of the 29 that do). All three set by hand, fitted on nothing:
# MAX_SURVEYED, more than China's 34 provincial-level regions; SURVEY_PASSAGES, room for a speech whose best passage
# by retrieval is about something else (the best passage named 低空经济 for 26 of 29 reports, the best three for all);
# SURVEY_DEPTH, passages retrieved per regional speech (4 per speech reached every report of the 30), at most
# MAX_SURVEY_DEPTH (a retrieval that deep costs ~60 ms here; only such questions pay it).
MAX_SURVEYED = 40
SURVEY_PASSAGES = 3
SURVEY_DEPTH = 4
MAX_SURVEY_DEPTH = 400
_FOLLOW_UP = re.compile(r"^(那|那么|还有|另外|此外|以及|和|跟)|呢[？?]?$")
# A follow-up that is a year alone ("2024年呢？", "那去年的呢？", qa.features.PERIOD): the previous question asked
# of that year.
_PERIOD_FOLLOW_UP = re.compile(rf"^(?:那么|那)?\s*({PERIOD})(?:的情况|的)?\s*呢?\s*[？?]?$")
_PERIOD_IN = re.compile(PERIOD)


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


def serialized(encoder: Encoder) -> Encoder:
    """The encoder, behind one lock unless it says it is safe to call from many threads at once.

    The ONNX encoder is (onnxruntime sessions and a tokenizer configured once are thread-safe), so queries
    run in parallel in one process; torch's fast tokenizer is not ("Already borrowed"), so it is locked.
    """
    if isinstance(encoder, LockedEncoder) or getattr(encoder, "thread_safe", False):
        return encoder
    return LockedEncoder(encoder)


def _nothing() -> None:
    return None


class AnswerService:
    def __init__(
        self,
        index: LoadedIndex,
        encoder: Encoder,
        *,
        composer: Composer | str | None = None,
        threshold: float | None = None,
        answerability_dir: Path | None = None,
        top_k: int = 5,
        max_chars: int = 200,
    ) -> None:
        self.index = index
        self.encoder = serialized(encoder)
        self.retriever = HybridRetriever(index, self.encoder)
        if composer is None or isinstance(composer, str):
            composer = make_composer(
                composer or DEFAULT_COMPOSER,
                index,
                encoder.model_id,
                threshold=threshold,
                model_dir=answerability_dir,
            )
        self.composer: Composer = composer
        self.top_k = top_k
        self.max_chars = max_chars

    @classmethod
    def open(
        cls, index_dir: Path, encoder: Encoder, *, segments: dict | None = None, **options
    ) -> AnswerService:
        """Load the index (checked against the encoder) and warm up everything a first request would pay for.

        ``segments`` is a cache of open segments shared across versions: a new version of a live index opens
        only the segments it adds (the dict is updated in place)."""
        index = load_index(Path(index_dir), encoder, segments=segments)
        service = cls(index, encoder, **options)
        warm_up()
        places.warm_up()
        service.retriever.encode_query("预热")
        return service

    @property
    def index_version(self) -> str:
        return self.index.version

    # -- questions ------------------------------------------------------------------------------------

    def announce(self, question: str, history: Sequence[str] | None = None) -> Callable[[], None]:
        """Tell the encoder that ``question`` will be asked soon (a request waiting for an answer slot), so
        whoever encodes first can batch it (``qa.batching``); returns the call that withdraws it.

        A follow-up is not announced: the text it is retrieved with depends on the history and the index,
        worked out only once its turn comes. Nor is anything when the encoder does not batch."""
        announce = getattr(self.encoder, "announce", None)
        if announce is None or history:
            return _nothing
        ticket = announce(self.reading(self.validate_question(question)))
        return functools.partial(self.encoder.withdraw, ticket)  # type: ignore[attr-defined]

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
    def reading(question: str) -> str:
        """The (validated) question as the passages are searched for and answered with: in one form however it
        was typed (qa.terms.as_asked: "请问…２０２４年…" → "…2024年…？"), the common names of statistics in it
        replaced by the reports' own (qa.terms: "GDP" → "生产总值")."""
        return official_terms(as_asked(question))

    @staticmethod
    def _top_k(top_k: int | None, default: int) -> int:
        k = default if top_k is None else top_k
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_TOP_K:
            raise InvalidQuestionError(f"top_k must be an integer from 1 to {MAX_TOP_K}, got {top_k!r}")
        return k

    def retrieval_query(self, question: str, history: Sequence[str] | None) -> str:
        """A follow-up is read with the previous question: "那江苏省呢？" after a question about 浙江 becomes
        that question about 江苏 alone, "2024年呢？" that question about 2024; other short follow-ups ("那丰台园呢？")
        are read together with it. The previous question is itself read with the ones before it, so a chain of
        follow-ups ("那江苏省呢？", then "安徽省呢？") keeps the question first asked. The answer is written for the
        question read this way."""
        previous = [h.strip()[:MAX_QUESTION_CHARS] for h in history or () if isinstance(h, str) and h.strip()]
        if not previous:
            return question
        read = previous[0]
        for earlier in previous[1:]:
            read = self._with_previous(earlier, read)
        return self._with_previous(question, read)

    def _with_previous(self, question: str, previous: str) -> str:
        period = _PERIOD_FOLLOW_UP.match(question)
        if period:
            # The previous question's period replaced ("吉林2025年GDP目标是多少？" → "吉林2024年GDP目标是多少？"), or
            # named first where it named none.
            year = period.group(1).replace(" ", "")
            named = _PERIOD_IN.search(previous)
            return _PERIOD_IN.sub(year, previous, count=1) if named else year + previous
        if len(question) <= 12 or _FOLLOW_UP.search(question):
            rewritten = rewrite_follow_up(question, previous, self.index.speeches)
            if rewritten is not None:
                return rewritten[0]
            return f"{previous[:MAX_QUESTION_CHARS]} {question}"
        return question

    def search(
        self,
        question: str,
        top_k: int | None = None,
        filters: Filters | None = None,
        *,
        mode: Mode = "hybrid",
    ) -> list[Hit]:
        q = self.reading(self.validate_question(question))
        return self.retriever.retrieve(q, self._top_k(top_k, self.top_k), filters, mode=mode).hits

    def ask(
        self,
        question: str,
        top_k: int | None = None,
        filters: Filters | None = None,
        history: Sequence[str] | None = None,
    ) -> Answer:
        """The cited answer: the events of ``ask_events`` put together (one path for JSON and SSE)."""
        q = self.validate_question(question)
        hits: tuple[Hit, ...] = ()
        parts: list[str] = []
        citations: tuple[Citation, ...] = ()
        answerable, timing = False, {}
        for event in self.ask_events(q, top_k, filters, history):
            if event.kind == "meta":
                hits = event.hits
            elif event.kind == "delta":
                parts.append(event.text)
            elif event.kind == "citations":
                citations = event.citations
            elif event.kind == "done":
                answerable, timing = event.answerable, event.timing_ms
        return Answer(
            question=q,
            answer="".join(parts),
            answerable=answerable,
            citations=citations,
            related=hits,
            timing_ms=timing,
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
        """The answer as events: retrieved passages first (``meta``), then the text as the composer writes it
        (``delta``), each cited piece only after its citation was checked against the index, then the
        ``citations`` and ``done`` with the timing."""
        t0 = time.perf_counter()
        q = self.reading(self.validate_question(question))
        k = self._top_k(top_k, self.top_k)
        query = self.reading(self.retrieval_query(q, history))
        composer_prepare = getattr(self.composer, "prepare", None)
        # The composer's work on the question alone overlaps the encoder (qa/prepare.py).
        prepared = prepare.start(composer_prepare, query) if composer_prepare is not None else None
        retrieval = self.retrieval_for(query, k, filters)
        if prepared is not None:
            prepared.result()
        t1 = time.perf_counter()
        yield AnswerEvent("meta", hits=tuple(retrieval.hits), index_version=self.index_version)
        citations: list[Citation] = []
        # A follow-up is answered as it was read ("那江苏省呢？" asks what the previous question asked).
        for text, citation in compose_stream(self.composer, query, retrieval, max_chars=self.max_chars):
            if citation is not None:
                problem = check_citation(citation, self.index)
                if problem is None and (citation.n != len(citations) + 1 or f"[{citation.n}]" not in text):
                    problem = f"[{citation.n}] is out of order or has no marker"
                if problem:
                    # Never hand out a citation that does not check out; this is a bug, so say it loudly.
                    log.error("composer produced an invalid citation for %r: %s", q, problem)
                    raise SpeechQAError("the answer's citations failed validation: " + problem)
                citations.append(citation)
            yield AnswerEvent("delta", text=text)
        t2 = time.perf_counter()
        timing = {
            "retrieve": round((t1 - t0) * 1000, 2),
            "compose": round((t2 - t1) * 1000, 2),
            "total": round((t2 - t0) * 1000, 2),
        }
        answerable = bool(citations)
        yield AnswerEvent("citations", citations=tuple(citations), answerable=answerable)
        yield AnswerEvent("done", timing_ms=timing, answerable=answerable)

    def retrieval_for(self, query: str, k: int, filters: Filters | None = None) -> Retrieval:
        """The passages the composer answers ``query`` from, as ``ask`` retrieves them."""
        # A composer that answers per speech also answers a question naming speeches from them alone.
        names = getattr(self.composer, "compares", False)
        retrieval = self.retriever.retrieve(query, k, filters, confine=names)
        if retrieval.compared and names:
            retrieval = self._per_speech(query, retrieval, filters)
        elif names and not retrieval.mentioned and asks_which_speeches(query):
            retrieval = self._across_speeches(query, retrieval, k, filters)
        return retrieval

    def _across_speeches(
        self, query: str, retrieval: Retrieval, k: int, filters: Filters | None
    ) -> Retrieval:
        """A question asking which speeches say something ("哪些省份提出…") gets the best SURVEY_PASSAGES passages of
        each speech, of at most MAX_SURVEYED speeches, from a retrieval deep enough to reach every speech surveyed;
        the best passages alone would mostly come from one report. Over regions' speeches (each passage's speech
        has one), or over any speeches when the question asks for reports or speeches themselves."""
        # Only regions' speeches answer "哪些省份": in a corpus of articles, "分布在哪些地区" asks about content.
        # "哪些报告…" asks for speeches, whichever they are.
        any_speech = asks_which_reports(query)
        surveyed = sum(1 for sp in self.index.speeches.values() if any_speech or speech_region(sp))
        depth = min(MAX_SURVEY_DEPTH, max(k * SURVEY_DEPTH, surveyed * SURVEY_DEPTH))
        deeper = self.retriever.retrieve(query, depth, filters, query_vector=retrieval.query_vector)
        taken: dict[str, int] = {}
        hits: list[Hit] = []
        for hit in deeper.hits:
            if not any_speech and not speech_region(self.index.speeches[hit.speech_id]):
                return retrieval
            n = taken.get(hit.speech_id, 0)
            if n < SURVEY_PASSAGES and (n or len(taken) < MAX_SURVEYED):
                taken[hit.speech_id] = n + 1
                hits.append(hit)
        if len(taken) < 2:
            return retrieval  # one speech: nothing to survey
        return Retrieval(hits, retrieval.query_vector, (), surveyed=True)

    def _per_speech(self, query: str, retrieval: Retrieval, filters: Filters | None) -> Retrieval:
        """A question naming several speeches ("上海和北京…分别") gets the best passages of each one."""
        hits: list[Hit] = []
        for sid in retrieval.mentioned[:MAX_COMPARED]:
            narrowed = Filters(speaker=filters.speaker if filters else None, speech_id=sid)
            try:
                part = self.retriever.retrieve(query, 2, narrowed, query_vector=retrieval.query_vector)
            except SpeechQAError:
                continue
            hits.extend(part.hits)
        return Retrieval(hits, retrieval.query_vector, retrieval.mentioned, compared=True)

    # -- browsing -------------------------------------------------------------------------------------

    def passage(self, passage_id: str) -> dict:
        row = self.index.row_of(passage_id)
        if row is None:
            raise NotFoundError(
                f"no passage with id {passage_id!r}", fix="use an id from a search or an answer"
            )
        p = self.index.paragraph(row)
        sp = self.index.speeches[p.speech_id]
        siblings = self.index.speech_rows(sp.speech_id)  # snapshot speeches carry no paragraphs: rows instead
        pos = int(np.searchsorted(siblings, row))
        return {
            "passage_id": p.paragraph_id,
            "text": p.text,
            "speech_id": sp.speech_id,
            "speech_title": sp.title,
            "speaker": sp.speaker,
            "speaker_role": sp.role,
            "section": p.section,
            "date": sp.date,
            "source": sp.source,
            "prev_id": self.index.paragraph(int(siblings[pos - 1])).paragraph_id if pos > 0 else None,
            "next_id": self.index.paragraph(int(siblings[pos + 1])).paragraph_id
            if pos + 1 < len(siblings)
            else None,
        }

    def speeches(self) -> list[dict]:
        return [
            {
                "speech_id": sp.speech_id,
                "title": sp.title,
                "speaker": sp.speaker,
                "role": sp.role,
                "date": sp.date,
                "paragraphs": len(self.index.speech_rows(sp.speech_id)),
            }
            for sp in self.index.speeches.values()
        ]


__all__ = ["AnswerService", "LockedEncoder", "REFUSAL", "serialized"]
