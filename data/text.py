"""Text rules every layer shares: sentence splitting, citation markers, display normalisation.

One definition each, imported by the parser, the composer, the evaluator and the report; the widget gets the
same rules from the server (``rules_for_clients``) instead of a copy.
"""

from __future__ import annotations

import re
import unicodedata

# A sentence ends at 。！？!?；; or …, together with the closing quotes or brackets right after the stop.
SENTENCE_END_CHARS = "。！？!?；;…"
CLOSING_CHARS = "”’」』)）\"'"
_SENTENCE_END = re.compile(rf"[{SENTENCE_END_CHARS}]+[{re.escape(CLOSING_CHARS)}]*")

# A citation marker is an ASCII "[n]" with 1..2 digits (top_k <= 20). Only ASCII brackets count: a source's
# own "［27］" or "[2020]" (筑府办发电[2020]5号) is text. The composer shows a passage's own "[27]" full-width
# (``display_text``) so that every ASCII "[n]" in an answer is a marker.
MARKER_PATTERN = r"\[(\d{1,2})\]"
MARKER = re.compile(MARKER_PATTERN)


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans (start, end) of ``text``; together they cover every non-space character."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        spans.append((start, end))
        start = end
    if start < len(text):
        spans.append((start, len(text)))
    trimmed = []
    for a, b in spans:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a:
            trimmed.append((a, b))
    return trimmed


def display_text(sentence: str) -> str:
    """A sentence as shown in an answer: its own "[2020]" or "[27]" become full-width so that every ASCII
    "[n]" in an answer is a citation marker. A citation's ``quote`` keeps the sentence verbatim."""
    return re.sub(r"\[(\d+)\]", lambda m: f"［{m.group(1)}］", sentence)


def markers(answer: str) -> list[int]:
    """Citation numbers in an answer, in order of appearance (ASCII markers only)."""
    return [int(m) for m in MARKER.findall(answer)]


def strip_markers(text: str) -> str:
    """Remove citation markers; a full-width "［27］" is text and stays (NFKC is applied after, not before)."""
    return unicodedata.normalize("NFKC", MARKER.sub("", text))


def answer_sentences(answer: str) -> list[str]:
    """Sentences of an answer, each keeping its own markers; a marker written after the stop ("…发展。[1]")
    belongs to the sentence before it."""
    moved = re.sub(rf"({_SENTENCE_END.pattern})((?:\s*{MARKER_PATTERN})+)", r"\2\1", answer)
    out = []
    for line in moved.split("\n"):
        for a, b in split_sentences(line):
            piece = line[a:b].strip()
            if strip_markers(piece).strip(SENTENCE_END_CHARS + CLOSING_CHARS + " "):
                out.append(piece)
    return out


def rules_for_clients() -> dict[str, str]:
    """The rules a browser client needs, as JavaScript-compatible regex sources."""
    return {
        "marker": MARKER_PATTERN,
        "sentence_end": f"[{SENTENCE_END_CHARS}]+[{CLOSING_CHARS}]*",
    }
