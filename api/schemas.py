"""HTTP wire models; domain records stay dataclasses and are converted here at the edge."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator

from qa.service import MAX_QUESTION_CHARS, MAX_TOP_K
from qa.types import Answer, Citation, Filters, Hit

# Caps on what a request may carry (the body as a whole is capped by SPEECHQA_MAX_BODY_BYTES).
MAX_HISTORY_ITEMS = 5
MAX_HISTORY_CHARS = 500


def _no_lone_surrogates(value: str, what: str) -> str:
    """JSON may carry an escaped lone surrogate ("\\ud800"); it is no character and cannot be encoded."""
    if any("\ud800" <= ch <= "\udfff" for ch in value):
        raise ValueError(f"{what} contains an invalid character (a lone UTF-16 surrogate)")
    return value


class FiltersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    speaker: StrictStr | None = Field(
        default=None, max_length=100, description="speaker name (or part of it)"
    )
    speech_id: StrictStr | None = Field(default=None, max_length=100)
    speech_ids: list[StrictStr] | None = Field(
        default=None, max_length=100, description="any of these speeches"
    )
    region: StrictStr | None = Field(
        default=None, max_length=50, description="the speech's region, e.g. 浙江省 (or part of it)"
    )
    year_from: StrictInt | None = Field(
        default=None, ge=1900, le=2200, description="speeches from this year on"
    )
    year_to: StrictInt | None = Field(default=None, ge=1900, le=2200, description="speeches up to this year")
    date_from: StrictStr | None = Field(
        default=None,
        pattern=r"^\d{4}(-\d{2}(-\d{2})?)?$",
        description="ISO date (YYYY, YYYY-MM or YYYY-MM-DD)",
    )
    date_to: StrictStr | None = Field(default=None, pattern=r"^\d{4}(-\d{2}(-\d{2})?)?$")

    @field_validator("speaker", "speech_id", "region")
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        return None if value is None else _no_lone_surrogates(value, "the filter")

    @field_validator("speech_ids")
    @classmethod
    def _ids(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [_no_lone_surrogates(v, "the filter") for v in value]

    def to_domain(self) -> Filters:
        return Filters(
            speaker=self.speaker or None,
            speech_id=self.speech_id or None,
            speech_ids=tuple(self.speech_ids) if self.speech_ids else None,
            region=self.region or None,
            year_from=self.year_from,
            year_to=self.year_to,
            date_from=self.date_from or None,
            date_to=self.date_to or None,
        )


class QuestionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: StrictStr = Field(
        description=f"the question, 1..{MAX_QUESTION_CHARS} characters",
        examples=["丽泽商务区的地铁16号线什么时候通车？"],
    )
    top_k: StrictInt | None = Field(default=None, ge=1, le=MAX_TOP_K, description="passages to retrieve")
    filters: FiltersIn | None = None

    @field_validator("question")
    @classmethod
    def _question(cls, value: str) -> str:
        q = _no_lone_surrogates(value, "the question").strip()
        if not q:
            raise ValueError("the question is empty or only whitespace")
        if len(q) > MAX_QUESTION_CHARS:
            raise ValueError(
                f"the question has {len(q)} characters; at most {MAX_QUESTION_CHARS} are accepted"
            )
        return q


class AskIn(QuestionIn):
    history: list[StrictStr] = Field(
        default_factory=list,
        max_length=MAX_HISTORY_ITEMS,
        description=(
            f"previous questions of this conversation, oldest first, at most {MAX_HISTORY_ITEMS} of at most "
            f"{MAX_HISTORY_CHARS} characters each; a follow-up is read with them"
        ),
    )

    @field_validator("history")
    @classmethod
    def _history(cls, value: list[str]) -> list[str]:
        for i, item in enumerate(value):
            _no_lone_surrogates(item, f"history item {i}")
            if len(item) > MAX_HISTORY_CHARS:
                raise ValueError(
                    f"history item {i} has {len(item)} characters; at most {MAX_HISTORY_CHARS} are accepted"
                )
        return value


class _Passage(BaseModel):
    """A paragraph with the speech it belongs to."""

    passage_id: str
    text: str
    speech_id: str
    speech_title: str
    speaker: str
    speaker_role: str
    section: str
    date: str = Field(default="", description="the speech's date (ISO, possibly partial), '' when unknown")
    source: str = Field(default="", description="the file or URL the speech came from")


class PassageOut(_Passage):
    score: float

    @classmethod
    def of(cls, hit: Hit) -> PassageOut:
        # Field by field: every field is a str or a float, and dataclasses.asdict deep-copies each one (about
        # a tenth of a millisecond of an answer's five passages and citations, /tmp profile of 2026-12-06).
        return cls(**{k: getattr(hit, k) for k in cls.model_fields})


class CitationOut(BaseModel):
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
    date: str = ""
    source: str = ""

    @classmethod
    def of(cls, c: Citation) -> CitationOut:
        return cls(**{k: getattr(c, k) for k in cls.model_fields})


class TimingOut(BaseModel):
    retrieve: float
    compose: float
    total: float


class AnswerOut(BaseModel):
    answer: str
    answerable: bool
    citations: list[CitationOut]
    related: list[PassageOut]
    timing_ms: TimingOut
    index_version: str

    @classmethod
    def of(cls, a: Answer) -> AnswerOut:
        return cls(
            answer=a.answer,
            answerable=a.answerable,
            citations=[CitationOut.of(c) for c in a.citations],
            related=[PassageOut.of(h) for h in a.related],
            timing_ms=TimingOut(**a.timing_ms),
            index_version=a.index_version,
        )


class SearchOut(BaseModel):
    passages: list[PassageOut]


class PassageDetailOut(_Passage):
    prev_id: str | None
    next_id: str | None


class SpeechOut(BaseModel):
    speech_id: str
    title: str
    speaker: str
    role: str
    date: str
    paragraphs: int


class ErrorOut(BaseModel):
    detail: str
    code: str


# -- admin ----------------------------------------------------------------------------------------------


class DocumentOut(BaseModel):
    speech_id: str
    title: str
    speaker: str
    role: str
    date: str
    region: str
    source: str = Field(description="the uploaded file name, or the path the CLI read")
    paragraphs: int
    ingested_at: str = Field(description="UTC time of the ingest that added this version; '' when unknown")


class DocumentsOut(BaseModel):
    documents: list[DocumentOut]
    index_version: str


class JobCreatedOut(BaseModel):
    job_id: str


class JobErrorOut(BaseModel):
    file: str
    reason: str


class JobOut(BaseModel):
    job_id: str
    state: Literal["queued", "running", "done", "failed"]
    paragraphs_done: int
    paragraphs_total: int
    rate: float = Field(description="paragraphs encoded per second")
    eta_seconds: float | None
    errors: list[JobErrorOut]
    speeches: list[str] = Field(description="ids of the speeches the job added or replaced")
    index_version: str | None = Field(description="the index version the job wrote; null until done")


class RemovedOut(BaseModel):
    removed: str
    index_version: str
