"""Speech documents (files, folders, archives) -> Speech records with stable ids; the text speech format."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from data.records import Paragraph, Sentence, Speech
from data.text import split_sentences

log = logging.getLogger(__name__)


_CN_NUM = "一二三四五六七八九十百零〇"
# Level 1: "一、学习体会"; level 2: "(一) 强化…" / "（一）…"; level 3: "1. …" / "1、…"
_SECTION_PATTERNS = (
    (1, re.compile(rf"^[{_CN_NUM}]+、")),
    (2, re.compile(rf"^[(（][{_CN_NUM}]+[)）]")),
    (3, re.compile(r"^\d{1,2}[.、．]\s*\S")),
    (3, re.compile(r"^第[" + _CN_NUM + r"\d]+[章节部分]")),
)
_CREDIT = re.compile(r"(责编|责任编辑|美编|校对|编辑|撰稿|审核|审校|来源)\s*[/／:：]")
_NAME = r"[\u4e00-\u9fff·]{2,5}"
_SPEAKER_LINE = re.compile(rf"^(?P<role>\S.{{1,60}}?)[ \t\u3000]+(?P<name>{_NAME})$")
_BARE_NAME_LINE = re.compile(rf"^(?P<name>{_NAME})$")
_DATE_LINE = re.compile(r"^[(（]?\s*(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日\s*[)）]?$")
# A paragraph ends a sentence when its last visible char is one of these (closing quotes/brackets may follow).
_TERMINAL = "。！？!?…；;：:"
_CLOSERS = "”’」』)）》】\"'"


def section_level(line: str) -> int | None:
    for level, pattern in _SECTION_PATTERNS:
        if pattern.match(line):
            return level
    return None


def clean_text(text: str) -> str:
    """Collapse runs of spaces; every other character stays, so a citation quotes the source verbatim.

    Stray noise such as an English word inside Chinese text ("提升业务水平 and 分级管控能力") is kept as the
    source has it: rewriting it would make quotes that a reader cannot find in the original; the lexical
    index drops such function words instead.
    """
    return re.sub(r"[ \t\u3000]+", " ", text).strip()


def ends_sentence(text: str) -> bool:
    stripped = text.rstrip().rstrip(_CLOSERS)
    return bool(stripped) and stripped[-1] in _TERMINAL


def _digest(*parts: str, n: int = 10) -> str:
    h = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return h[:n]


def make_speech(
    *,
    title: str,
    paragraphs: Sequence[tuple[str, str]],
    speaker: str = "",
    role: str = "",
    date: str = "",
    source: str = "",
    speech_key: str | None = None,
    region: str = "",
    place: str = "",
    extra: Mapping[str, str] | None = None,
) -> Speech:
    """Build a Speech from (section, text) pairs, assigning stable ids and splitting sentences.

    The speech id depends on title and speaker (or ``speech_key``), never on the file path, so moving a
    file keeps its ids; a paragraph id depends on the speech id and the paragraph's text only.
    """
    speech_id = "s" + _digest(speech_key if speech_key is not None else f"{title}\x1e{speaker}", n=8)
    seen: dict[str, int] = {}
    built: list[Paragraph] = []
    for section, raw in paragraphs:
        text = raw.strip()
        if not text:
            continue
        base = f"{speech_id}-p{_digest(text)}"
        seen[base] = seen.get(base, 0) + 1
        pid = base if seen[base] == 1 else f"{base}-{seen[base]}"
        sentences = tuple(
            Sentence(sentence_id=f"{pid}-{i}", start=a, end=b, text=text[a:b])
            for i, (a, b) in enumerate(split_sentences(text))
        )
        built.append(
            Paragraph(
                paragraph_id=pid,
                speech_id=speech_id,
                ordinal=len(built),
                section=section,
                text=text,
                sentences=sentences,
            )
        )
    return Speech(
        speech_id=speech_id,
        title=title.strip(),
        speaker=speaker.strip(),
        role=role.strip(),
        date=date.strip(),
        source=source,
        paragraphs=tuple(built),
        region=region.strip(),
        place=place.strip(),
        extra=dict(extra or {}),
    )


# ----------------------------------------------------------------------------------------------------
# The markdown-like format


@dataclass
class _Block:
    text: str
    heading: bool  # came from a "## " line (or a markdown heading of any depth)


@dataclass
class _Draft:
    title: str
    speaker: str = ""
    role: str = ""
    date: str = ""
    blocks: list[tuple[str, str]] = field(default_factory=list)  # (section path, text)


def _blocks(text: str) -> list[_Block]:
    blocks = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.strip().lstrip("\ufeff")
        if not line:
            continue
        m = re.match(r"^#{1,6}\s*(.*)$", line)
        if m:
            if m.group(1).strip():
                blocks.append(_Block(m.group(1).strip(), heading=True))
        else:
            blocks.append(_Block(line, heading=False))
    return blocks


def _speaker_of(line: str) -> tuple[str, str] | None:
    """(role, name) if ``line`` looks like a speaker line: short, no sentence punctuation, ends in a name."""
    if len(line) > 70 or any(ch in line for ch in "。！？，,；;：:"):
        return None
    m = _SPEAKER_LINE.match(line)
    if m:
        return m.group("role").strip(), m.group("name")
    m = _BARE_NAME_LINE.match(line)
    if m:
        return "", m.group("name")
    return None


def _date_of(line: str) -> str | None:
    m = _DATE_LINE.match(line)
    if not m:
        return None
    y, mo, d = (int(g) for g in m.groups())
    return f"{y:04d}-{mo:02d}-{d:02d}"


def _looks_like_title(block: _Block) -> bool:
    return (
        section_level(block.text) is None
        and len(block.text) <= 60
        and not ends_sentence(block.text)
        and not _CREDIT.search(block.text)
    )


def parse_speech_text(text: str, source: str = "", default_title: str = "") -> list[Speech]:
    """Parse the markdown-like speech format: one or several speeches per file.

    ``## `` marks a column name, a speech title or a numbered section; they are told apart by numbering
    (sections) and position: a title is followed by its speaker line (or directly by body text), while a
    heading followed by another title-like heading is a column name and is dropped.
    """
    blocks = [b for b in _blocks(text) if not (_CREDIT.search(b.text) and len(b.text) <= 80)]
    drafts: list[_Draft] = []
    current: _Draft | None = None
    sections: list[tuple[int, str]] = []
    i = 0
    while i < len(blocks):
        block = blocks[i]
        nxt = blocks[i + 1] if i + 1 < len(blocks) else None
        level = section_level(block.text) if (block.heading or _short_heading(block.text)) else None
        if level is not None:
            if current is None:
                current = _Draft(title=default_title)
                drafts.append(current)
            sections = [(lv, t) for lv, t in sections if lv < level] + [(level, block.text)]
            i += 1
            continue
        is_title = (block.heading or current is None) and _looks_like_title(block)
        if is_title:
            if block.heading and nxt is not None and nxt.heading and _looks_like_title(nxt):
                i += 1  # a column name ("## 首都发展大讲堂") directly above a speech title
                continue
            current = _Draft(title=block.text)
            drafts.append(current)
            sections = []
            i += 1
            # Speaker line and/or date line right after the title.
            for _ in range(2):
                if i >= len(blocks) or blocks[i].heading:
                    break
                spk = _speaker_of(blocks[i].text)
                date = _date_of(blocks[i].text)
                if spk and not current.speaker:
                    current.role, current.speaker = spk
                elif date and not current.date:
                    current.date = date
                else:
                    break
                i += 1
            continue
        if current is None:
            current = _Draft(title=default_title)
            drafts.append(current)
        path = " / ".join(t for _, t in sections)
        current.blocks.append((path, block.text))
        i += 1

    speeches = []
    for draft in drafts:
        paragraphs = _repair_page_breaks(draft.blocks)
        if not paragraphs:
            log.info("%s: speech %r has no body text; skipped", source, draft.title)
            continue
        speeches.append(
            make_speech(
                title=draft.title or default_title,
                speaker=draft.speaker,
                role=draft.role,
                date=draft.date,
                source=source,
                paragraphs=paragraphs,
            )
        )
    return speeches


def _short_heading(line: str) -> bool:
    # In plain-text files a section heading is a short line of its own without sentence punctuation.
    return len(line) <= 40 and not ends_sentence(line) and "，" not in line


def _repair_page_breaks(blocks: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Join a paragraph that stops mid-sentence to the next one of the same section, with no space."""
    out: list[tuple[str, str]] = []
    for section, text in blocks:
        text = clean_text(text)
        if not text:
            continue
        if out and out[-1][0] == section and not ends_sentence(out[-1][1]):
            out[-1] = (section, out[-1][1] + text)
        else:
            out.append((section, text))
    return out
