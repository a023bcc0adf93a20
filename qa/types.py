"""Records the QA layer hands to its front doors (API, CLI, evaluator)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Filters:
    """Which paragraphs a retrieval may return; every field given must hold (None: no constraint)."""

    speaker: str | None = None  # matches the speaker's name (exact) or a substring of it
    speech_id: str | None = None
    speech_ids: tuple[str, ...] | None = None  # any of these speeches
    region: str | None = None  # Speech.region (or extra["region"]), exact or a substring of it
    year_from: int | None = None  # inclusive; the year comes from Speech.date or extra["year"]
    year_to: int | None = None
    date_from: str | None = None  # ISO dates, inclusive; compared on the speech's (possibly partial) date
    date_to: str | None = None
    # Retrieve as if these paragraphs were not indexed (leave-the-paragraph-out training data).
    exclude_passages: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Hit:
    """A retrieved paragraph with its speech metadata."""

    passage_id: str
    text: str
    speech_id: str
    speech_title: str
    speaker: str
    speaker_role: str
    section: str
    score: float  # fused score, higher is better
    dense_score: float = 0.0  # cosine with the query
    bm25_score: float = 0.0
    date: str = ""  # the speech's date (ISO, possibly partial) and where it came from
    source: str = ""


@dataclass(frozen=True, slots=True)
class Citation:
    """One cited sentence. Invariant: ``passage_text[start:end] == quote``."""

    n: int
    passage_id: str
    speech_id: str
    speech_title: str
    speaker: str
    speaker_role: str
    section: str
    quote: str
    start: int
    end: int
    passage_text: str
    score: float
    date: str = ""  # the speech's date and source, so a reader can find the original
    source: str = ""


@dataclass(frozen=True, slots=True)
class Answer:
    question: str
    answer: str  # text with inline [n] markers, or the refusal message
    answerable: bool
    citations: tuple[Citation, ...]
    related: tuple[Hit, ...]  # the retrieved passages (closest ones when refused)
    timing_ms: dict[str, float] = field(default_factory=dict)  # retrieve, compose, total
    index_version: str = ""


@dataclass(frozen=True, slots=True)
class AnswerEvent:
    """One step of a streamed answer: ``meta`` (retrieved passages), ``delta`` (text), ``citations``, ``done``.

    The deltas of one answer, concatenated, equal ``Answer.answer``; every marker in a delta refers to a
    citation that the service has already validated.
    """

    kind: str
    text: str = ""
    hits: tuple[Hit, ...] = ()
    citations: tuple[Citation, ...] = ()
    answerable: bool = False
    timing_ms: dict[str, float] = field(default_factory=dict)
    index_version: str = ""
