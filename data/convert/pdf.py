""".pdf with a text layer -> Document: running headers/footers and page numbers dropped, lines re-joined."""

from __future__ import annotations

import io
import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from data.convert.base import Block, Context, Document, Metadata
from data.convert.structure import document_to_speeches, is_cjk
from data.errors import InputFileError
from data.parse import ends_sentence, section_level
from data.records import Speech

log = logging.getLogger(__name__)

# A page whose text layer holds fewer visible characters than this is treated as having none.
MIN_TEXT_CHARS = 20
# A running header/footer is a line among the first/last EDGE_LINES of a page that recurs (digits aside)
# on at least REPEAT_SHARE of the pages.
EDGE_LINES = 2
REPEAT_SHARE = 0.5
# A line narrower than SHORT_LINE of the body's full line width ended before the margin.
SHORT_LINE = 0.85
_PAGE_NUMBER = re.compile(
    r"^(?:[-—–－~\s]*\d{1,4}[-—–－~\s]*|第\s*\d+\s*页(?:\s*[,，/]?\s*共\s*\d+\s*页)?|\d+\s*/\s*\d+"
    r"|(?:page|Page|PAGE)\s*\d+(?:\s*of\s*\d+)?)$"
)


@dataclass
class _Line:
    text: str  # stripped
    indent: int  # columns of leading space in the layout text
    width: int  # indent + display width of the text


class PdfConverter:
    """PDFs with a text layer, read with pypdf's layout mode (which keeps indentation and line lengths).
    Scanned PDFs (no text layer), encrypted ones (unless the empty password opens them) and damaged ones
    are refused with the reason. Multi-column layouts are read line by line across the columns."""

    suffixes = (".pdf",)

    def convert(self, data: bytes, name: str, ctx: Context) -> list[Speech]:
        return document_to_speeches(read_pdf(data, name))


def read_pdf(data: bytes, name: str) -> Document:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise InputFileError(f"{name}: encrypted PDF (needs a password); save an unencrypted copy")
        pages = [_page_lines(page.extract_text(extraction_mode="layout")) for page in reader.pages]
        info: Mapping[str, Any] = reader.metadata or {}
    except InputFileError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as exc:
        if "crypt" in str(exc).lower():
            raise InputFileError(f"{name}: encrypted PDF that cannot be opened ({exc})") from exc
        raise InputFileError(f"{name}: not a readable PDF (damaged or another format: {exc})") from exc
    visible = sum(len(line.text) for lines in pages for line in lines)
    if visible < MIN_TEXT_CHARS:
        raise InputFileError(f"{name}: no text layer (scanned?); run OCR on it first")
    lines = [line for page in _drop_running_lines(pages) for line in page]
    blocks = _paragraphs(lines)
    title = str(info.get("/Title") or "").removeprefix("Microsoft Word - ").strip()
    extra = {"author": str(info["/Author"]).strip()} if info.get("/Author") else {}
    return Document(name=name, blocks=blocks, metadata=Metadata(title=title, extra=extra))


def _display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


# Spaces next to a CJK character in a text layer are layout (Word's and LibreOffice's spacing between Chinese
# and Latin/digits, justification), not text: "成立   75周年" is "成立75周年" in the document.
_CJK_SPACE = re.compile(
    r"(?<=[\u2e80-\u9fff\uff00-\uffef\u3000-\u303f])[ \t\u3000]+|[ \t\u3000]+(?=[\u2e80-\u9fff\uff00-\uffef\u3000-\u303f])"
)


def _page_lines(layout: str) -> list[_Line]:
    out = []
    for raw in layout.split("\n"):
        shown = re.sub(r"[ \t\u3000]+", " ", raw.strip())
        text = _CJK_SPACE.sub("", shown)
        if not text:
            continue
        indent = len(raw) - len(raw.lstrip())
        # The width is about where the line ends on the page: a dropped space counts, a justification gap once.
        out.append(_Line(text=text, indent=indent, width=indent + _display_width(shown)))
    return out


def _edge_key(text: str) -> str:
    return re.sub(r"\d+", "#", re.sub(r"\s+", "", text))


def _drop_running_lines(pages: list[list[_Line]]) -> list[list[_Line]]:
    """Drop page numbers and lines repeated at the top or bottom of most pages (running heads)."""
    counts: Counter[str] = Counter()
    for lines in pages:
        edges = {_edge_key(ln.text) for ln in lines[:EDGE_LINES] + lines[-EDGE_LINES:]}
        counts.update(edges)
    repeated = {k for k, n in counts.items() if len(pages) >= 3 and n >= REPEAT_SHARE * len(pages)}
    out = []
    for lines in pages:
        keep = list(lines)
        for _ in range(EDGE_LINES):  # from the top
            if keep and (_PAGE_NUMBER.match(keep[0].text) or _edge_key(keep[0].text) in repeated):
                keep.pop(0)
        for _ in range(EDGE_LINES):  # from the bottom
            if keep and (_PAGE_NUMBER.match(keep[-1].text) or _edge_key(keep[-1].text) in repeated):
                keep.pop()
        out.append(keep)
    return out


def _wrapped_before_a_word(prev: str, line: str) -> bool:
    """A short line cut mid-sentence before a number or Latin word that did not fit ("…分别增长" /
    "18.1%、16.6%…"): the layout wrapped early, the paragraph goes on."""
    return (
        bool(re.match(r"[0-9A-Za-z]", line))
        and not ends_sentence(prev)
        and section_level(prev) is None
        and not re.search(r"[:：]$", prev)
    )


def _paragraphs(lines: list[_Line]) -> list[Block]:
    """Re-join wrapped lines. A paragraph starts at an indented line, after a line that stopped short of the
    right margin (unless it was cut before a number or Latin word that did not fit), and around centred
    lines; a line that reaches the margin continues on the next line (and page), with no space between CJK
    characters.

    Measured on LibreOffice PDFs of the provincial reports: requiring the short line to end a sentence too
    merged front-matter lines ("来源：南方日报" + the dateline) and headings into the next paragraph."""
    if not lines:
        return []
    margin = Counter(ln.indent for ln in lines).most_common(1)[0][0]
    widths = sorted(ln.width for ln in lines)
    full = widths[int(0.9 * (len(widths) - 1))]
    blocks: list[str] = []
    prev: _Line | None = None
    prev_centred = False
    for line in lines:
        offset = line.indent - margin
        centred = offset > 6 and line.width < full * SHORT_LINE
        new = (
            prev is None
            or offset >= 1
            or centred
            or prev_centred
            or (prev.width < full * SHORT_LINE and not _wrapped_before_a_word(prev.text, line.text))
        )
        if new:
            blocks.append(line.text)
        else:
            joiner = "" if is_cjk(blocks[-1][-1]) or is_cjk(line.text[0]) else " "
            blocks[-1] += joiner + line.text
        prev, prev_centred = line, centred
    return [Block(text) for text in blocks]
