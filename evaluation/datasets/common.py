"""What every data set shares: the Benchmark record, finding data files and licences, unique slices, chunks."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from data.errors import InputFileError
from data.records import Speech
from data.shared import default_data_roots
from data.text import split_sentences
from evaluation.gold import GoldItem, SkippedLine
from evaluation.metrics import normalize

log = logging.getLogger(__name__)

EVIDENCE_CHARS = 30  # long enough to be distinctive in these corpora, short enough to sit inside one chunk
CHUNK_CHARS = 300


@dataclass(frozen=True, slots=True)
class Benchmark:
    name: str
    speeches: tuple[Speech, ...]
    items: tuple[GoldItem, ...]
    licence: str  # the licence line of the dataset's SOURCE.md
    internal_only: bool
    data_file: Path
    description: str
    skipped: tuple[SkippedLine, ...] = ()  # malformed lines of a gold file
    details: Mapping[str, Any] = field(
        default_factory=dict
    )  # how it was built (counts, seeds), for the summary

    def info(self) -> dict[str, Any]:
        """What the summary and the report say about the benchmark."""
        return {
            "name": self.name,
            "licence": self.licence,
            "internal_only": self.internal_only,
            "data": str(self.data_file),
            "notes": self.description,
            "passages": sum(len(s.paragraphs) for s in self.speeches),
            "documents": len(self.speeches),
            **self.details,
        }


# ----------------------------------------------------------------------------------------------------
# Finding the data


def find_data_file(
    name: str, folder: str, file: str, data: Path | None = None, roots: Sequence[Path] | None = None
) -> Path:
    """A data set's file ``folder/file``; ``data`` may be the file itself, its folder or the benchmarks root."""
    candidates: list[Path] = []
    for base in [data] if data is not None else list(roots or default_data_roots()):
        candidates += [base, base / file, base / folder / file]
    for path in candidates:
        if path.is_file():
            return path
    where = ", ".join(str(c) for c in candidates[1::3]) if data is None else str(data)
    raise InputFileError(
        f"no {name} data found (looked for {folder}/{file} under {where})",
        fix="pass --data with the benchmarks folder or the data file, e.g. --data ../shared/benchmarks",
    )


def licence_line(source_md: Path) -> str:
    """The ``- License:`` bullet of a SOURCE.md, with its indented continuation lines."""
    try:
        lines = source_md.read_text(encoding="utf-8").splitlines()
    except OSError:
        return f"Licence unknown: {source_md} not found."
    for i, line in enumerate(lines):
        if re.match(r"^\s*-\s*Licen[cs]e\s*:", line, re.IGNORECASE):
            parts = [line.strip().lstrip("-").strip()]
            for more in lines[i + 1 :]:
                if not more.startswith("  ") or more.strip().startswith("- ") or not more.strip():
                    break
                parts.append(more.strip())
            return " ".join(parts)
    return f"Licence unknown: no 'License:' line in {source_md}."


# ----------------------------------------------------------------------------------------------------
# Helpers shared by the converters


class UniqueSlicer:
    """Finds pieces of a text that occur nowhere else in a corpus (compared after normalization)."""

    def __init__(self, texts: Iterable[str]) -> None:
        # normalize() drops whitespace, so "\n" can never be part of a match across two texts.
        self._haystack = "\n".join(normalize(t) for t in texts)

    def is_unique(self, piece: str) -> bool:
        norm = normalize(piece)
        return bool(norm) and self._haystack.count(norm) == 1

    def slice(self, text: str, *, around: int = 0, length: int = EVIDENCE_CHARS) -> str:
        """A ``length``-char piece of ``text`` (one of the corpus texts) near ``around`` that is unique.

        Falls back to longer pieces, then to the whole text, when every window is shared (duplicated text).
        """
        size = length
        while size < len(text):
            first = max(0, around - size // 2)
            starts = sorted(range(0, len(text) - size + 1), key=lambda s: abs(s - first))
            for start in starts[:50]:
                piece = text[start : start + size].strip()
                if len(normalize(piece)) >= size // 2 and self.is_unique(piece):
                    return piece
            size *= 2
        return text.strip()


def chunk_text(text: str, target: int = CHUNK_CHARS) -> list[tuple[int, int]]:
    """Spans of ~``target``-char chunks that end at sentence ends (``data.text.split_sentences``) and together
    cover the whole text; overlong sentences are cut."""
    ends = [b for _, b in split_sentences(text)]
    sentences = [(a, b) for a, b in zip([0, *ends[:-1]], ends, strict=True) if b > a]
    if ends and ends[-1] < len(text):
        sentences.append((ends[-1], len(text)))
    pieces: list[tuple[int, int]] = []
    for a, b in sentences:
        # A "sentence" of a policy list can run for pages without a full stop; cut it at ~target chars.
        while b - a > target * 3 // 2:
            pieces.append((a, a + target))
            a += target
        pieces.append((a, b))
    chunks: list[tuple[int, int]] = []
    for a, b in pieces:
        if chunks and b - chunks[-1][0] <= target:
            chunks[-1] = (chunks[-1][0], b)
        else:
            chunks.append((a, b))
    return [(a, b) for a, b in chunks if text[a:b].strip()]


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    out = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            log.warning("%s:%d skipped: invalid JSON (%s)", path, lineno, exc.msg)
    return out


def first(items: list[GoldItem], limit: int | None) -> list[GoldItem]:
    return items if limit is None else items[: max(0, limit)]


# ----------------------------------------------------------------------------------------------------
# Leave the paragraph out: the stable hold-out rule and the half/half sample every such benchmark uses


def stable_share(key: str) -> float:
    """A stable number in [0, 1) for ``key`` (SHA-256, so the same on every machine and run)."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2**64


def _by_hash(items: Sequence[GoldItem]) -> list[GoldItem]:
    return sorted(items, key=lambda i: hashlib.sha256(i.id.encode("utf-8")).hexdigest())


def balanced_sample(
    answerable: Sequence[GoldItem], unanswerable: Sequence[GoldItem], n: int
) -> list[GoldItem]:
    """``n`` questions, half unanswerable (the odd one answerable), each half the first by sha256(id); a
    smaller ``n`` is a prefix of each half, so --limit keeps the ratio and picks the same questions again."""
    n_unanswerable = min(n // 2, len(unanswerable))
    n_answerable = min(n - n_unanswerable, len(answerable))
    chosen = {i.id for i in _by_hash(answerable)[:n_answerable]} | {
        i.id for i in _by_hash(unanswerable)[:n_unanswerable]
    }
    # One stable order (sha256 of the id) for the run, mixing the two kinds.
    return [i for i in _by_hash([*answerable, *unanswerable]) if i.id in chosen]


class HoldOutSplit(Protocol):
    """What a leave-the-paragraph-out split reports (``cmrc2018.HoldOut``, ``ncp.NcpHoldOut``)."""

    @property
    def indexed(self) -> Sequence[object]: ...
    @property
    def held_out(self) -> Sequence[object]: ...
    @property
    def answerable(self) -> Sequence[GoldItem]: ...
    @property
    def unanswerable(self) -> Sequence[GoldItem]: ...
    @property
    def answer_elsewhere(self) -> int: ...


def hold_out_benchmark(
    name: str,
    path: Path,
    speeches: Sequence[Speech],
    split: HoldOutSplit,
    *,
    share: float,
    questions: int,
    limit: int | None,
    internal_only: bool,
    description: str,
    **dropped: int,
) -> Benchmark:
    """A leave-the-paragraph-out benchmark: ``questions`` (or ``limit``) of the split's questions, half of them
    unanswerable (``balanced_sample``), over the indexed ``speeches``; its details (also logged) count the
    paragraphs on each side, the candidates of each kind, the held-out questions dropped because an indexed
    paragraph states the answer (``dropped``: others dropped, by reason) and the questions of each kind."""
    items = balanced_sample(split.answerable, split.unanswerable, min(questions, limit or questions))
    details: dict[str, Any] = {
        "hold_out_share": share,
        "paragraphs_indexed": len(split.indexed),
        "paragraphs_held_out": len(split.held_out),
        "candidates_answerable": len(split.answerable),
        "candidates_unanswerable": len(split.unanswerable),
        "held_out_dropped_answer_elsewhere": split.answer_elsewhere,
        **dropped,
        "questions_answerable": sum(1 for i in items if i.answerable),
        "questions_unanswerable": sum(1 for i in items if not i.answerable),
    }
    log.info("%s: %s", name, details)
    return Benchmark(
        name=name,
        speeches=tuple(speeches),
        items=tuple(items),
        licence=licence_line(path.parent / "SOURCE.md"),
        internal_only=internal_only,
        data_file=path,
        description=description,
        details=details,
    )
