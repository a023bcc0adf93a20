"""Speech documents (files, folders, archives) -> Speech records with stable ids; the text speech format."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from data.errors import InputFileError
from data.records import Paragraph, Sentence, Speech
from data.text import split_sentences

if TYPE_CHECKING:
    from data.convert.base import Metadata

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


@dataclass
class LoadReport:
    """What an ingest read: the speeches, and every file it read or skipped (with the reason)."""

    speeches: list[Speech] = field(default_factory=list)
    files_read: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    # (path:line, reason): records with wrong types; the ingest fails on them unless --skip-bad.
    errors: list[tuple[str, str]] = field(default_factory=list)


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


# ----------------------------------------------------------------------------------------------------
# Folders and files: each file goes to its converter (data/convert/)


def iter_input_files(paths: Iterable[Path], *, follow_symlinks: bool = False) -> Iterator[tuple[Path, str]]:
    """(file, refusal) for every file under ``paths``; refusal is "" for a file to read.

    Without ``follow_symlinks`` a symlink (file or folder) is refused, and so is anything whose real path
    lies outside the roots given: reading a folder must not read what a link inside it points at."""
    for root in paths:
        if not root.exists() and not root.is_symlink():
            yield root, "no such file or directory"
            continue
        if root.is_symlink() and not follow_symlinks:
            yield root, "refused: a symlink (pass --follow-symlinks to read it)"
            continue
        if not root.is_dir():
            yield root, ""
            continue
        real_root = root.resolve()
        seen: set[Path] = set()
        for folder, dirs, files in os.walk(root, followlinks=follow_symlinks):
            dirs.sort()
            here = Path(folder)
            if follow_symlinks:  # a link back up the tree must not loop forever
                real = here.resolve()
                if real in seen:
                    dirs.clear()
                    continue
                seen.add(real)
            for d in [d for d in dirs if not follow_symlinks and (here / d).is_symlink()]:
                dirs.remove(d)
                yield here / d, "refused: a symlinked folder (pass --follow-symlinks to read it)"
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in sorted(files):
                if name.startswith("."):
                    continue
                path = here / name
                if follow_symlinks:
                    yield path, ""
                elif path.is_symlink():
                    yield path, "refused: a symlink (pass --follow-symlinks to read it)"
                elif not path.resolve().is_relative_to(real_root):
                    yield path, f"refused: resolves outside {root}"
                else:
                    yield path, ""


def load_paths(
    paths: Sequence[Path],
    *,
    follow_symlinks: bool = False,
    skip_bad: bool = False,
    overrides: Metadata | None = None,
) -> LoadReport:
    """Load every speech under ``paths`` (files, folders recursively, archives).

    A bad file is reported in ``skipped`` and the others are read. A bad record inside a file (a JSONL line
    with wrong types) goes to ``errors``, which should fail the command, or to ``skipped`` with
    ``skip_bad``. ``overrides`` (title, speaker, role, date, region, place) replace what the files say."""
    from data.convert import Context, convert, converter_for, suffixes
    from data.convert.base import read_input

    report = LoadReport()
    ctx = Context(route=convert, skip_bad=skip_bad, skipped=report.skipped, errors=report.errors)
    for path, refusal in iter_input_files(paths, follow_symlinks=follow_symlinks):
        where = str(path)
        if refusal:
            report.skipped.append((where, refusal))
            continue
        if converter_for(path.name) is None:
            report.skipped.append(
                (
                    where,
                    f"unsupported file type {path.suffix.lower() or '(none)'}; use {', '.join(suffixes())}",
                )
            )
            continue
        try:
            speeches = convert(read_input(path), where, ctx)
        except InputFileError as exc:
            report.skipped.append((where, exc.message.removeprefix(f"{where}: ")))
            continue
        if not speeches:
            report.skipped.append((where, "no speech text found"))
            continue
        log.debug("%s: %d speeches", path, len(speeches))
        report.files_read.append(where)
        report.speeches.extend(speeches)
    if overrides is not None and not overrides.is_empty():
        report.speeches = [_override(sp, overrides) for sp in report.speeches]
    report.speeches = _dedupe_ids(report.speeches)
    return report


def _override(sp: Speech, meta: Metadata) -> Speech:
    return make_speech(
        title=meta.title or sp.title,
        speaker=meta.speaker or sp.speaker,
        role=meta.role or sp.role,
        date=meta.date or sp.date,
        region=meta.region or sp.region,
        place=meta.place or sp.place,
        extra={**sp.extra, **meta.extra},
        source=sp.source,
        paragraphs=[(p.section, p.text) for p in sp.paragraphs],
    )


def _dedupe_ids(speeches: list[Speech]) -> list[Speech]:
    """Two different speeches with the same title and speaker get ids keyed by their source as well."""
    by_id: dict[str, int] = {}
    out = []
    for sp in speeches:
        by_id[sp.speech_id] = by_id.get(sp.speech_id, 0) + 1
        if by_id[sp.speech_id] > 1:
            sp = make_speech(
                title=sp.title,
                speaker=sp.speaker,
                role=sp.role,
                date=sp.date,
                source=sp.source,
                region=sp.region,
                place=sp.place,
                extra=sp.extra,
                paragraphs=[(p.section, p.text) for p in sp.paragraphs],
                speech_key=f"{sp.title}\x1e{sp.speaker}\x1e{sp.source}\x1e{by_id[sp.speech_id]}",
            )
        out.append(sp)
    return out


def builtin_corpus_dir() -> Path:
    """The sample corpus shipped inside the package: the service's default input."""
    return Path(__file__).resolve().parent / "corpus"
