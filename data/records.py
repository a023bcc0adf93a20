"""Domain records: small frozen dataclasses shared by every layer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Sentence:
    """A sentence inside its paragraph: ``paragraph.text[start:end] == text``."""

    sentence_id: str
    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class Paragraph:
    paragraph_id: str
    speech_id: str
    ordinal: int  # position within the speech, 0-based
    section: str  # section path joined with " / ", "" before the first heading
    text: str
    sentences: tuple[Sentence, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Speech:
    speech_id: str
    title: str
    speaker: str  # person's name, "" when unknown
    role: str  # speaker's role/office, "" when unknown
    date: str  # ISO date (YYYY-MM-DD, YYYY-MM or YYYY) or ""
    source: str  # file path or URL it came from
    paragraphs: tuple[Paragraph, ...]
    region: str = ""  # province/city the speech is about ("浙江省"), "" when unknown
    place: str = ""  # where it was given ("浙江省第十四届人民代表大会第三次会议"), "" when unknown
    # Any other string metadata (year, doc_type, url, credit, the front-matter lines read as metadata…).
    # A plain dict so that dataclasses.asdict and json round-trip it; left out of the hash (dicts have none).
    extra: Mapping[str, str] = field(default_factory=dict, hash=False)
