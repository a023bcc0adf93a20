"""Public benchmarks (CMRC 2018, RGB, NCP policy QA) turned into a speech corpus plus gold questions."""

from __future__ import annotations

import json
import logging
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from data.errors import InputFileError
from data.parse import make_speech
from data.records import Speech
from embeddings.cache import EmbeddingCache
from embeddings.encoder import Encoder
from qa.evaluate import GoldItem, normalize
from qa.index import build_index
from qa.service import AnswerService

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BenchmarkSpec:
    name: str
    folder: str  # folder under the benchmarks root
    file: str  # data file inside the folder
    internal_only: bool  # no licence to redistribute: keep results in-house
    description: str


BENCHMARKS: dict[str, BenchmarkSpec] = {
    "cmrc2018": BenchmarkSpec(
        "cmrc2018",
        "cmrc2018",
        "cmrc2018_dev.json",
        False,
        "CMRC 2018 dev: 848 Wikipedia paragraphs, span questions; key point = any reference answer",
    ),
    "rgb": BenchmarkSpec(
        "rgb",
        "rgb_zh",
        "zh_refine.json",
        False,
        "RGB zh_refine: news passages (positive + negative, deduplicated); evidence = positive passages",
    ),
    "ncp": BenchmarkSpec(
        "ncp",
        "ncp_policy_qa",
        "dev.json",
        True,
        "NCP policy QA dev: 58 policy documents chunked at 。 into ~300-char paragraphs; key point = answer span",
    ),
}
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
        }


# ----------------------------------------------------------------------------------------------------
# Finding the data


def default_data_roots(cwd: Path | None = None) -> list[Path]:
    """Where ``../shared/benchmarks`` may be: relative to the current dir and to the installed package."""
    repo = Path(__file__).resolve().parents[1]
    roots = [(cwd or Path.cwd()) / ".." / "shared" / "benchmarks", repo / ".." / "shared" / "benchmarks"]
    out: list[Path] = []
    for root in roots:
        resolved = root.resolve()
        if resolved not in out:
            out.append(resolved)
    return out


def find_data_file(name: str, data: Path | None = None, roots: Sequence[Path] | None = None) -> Path:
    """The benchmark's data file; ``data`` may be the file itself, its folder or the benchmarks root."""
    spec = _spec(name)
    candidates: list[Path] = []
    for base in [data] if data is not None else list(roots or default_data_roots()):
        candidates += [base, base / spec.file, base / spec.folder / spec.file]
    for path in candidates:
        if path.is_file():
            return path
    where = ", ".join(str(c) for c in candidates[1::3]) if data is None else str(data)
    raise InputFileError(
        f"no {name} data found (looked for {spec.folder}/{spec.file} under {where})",
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


def _spec(name: str) -> BenchmarkSpec:
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise InputFileError(
            f"unknown benchmark {name!r}", fix=f"choose one of {', '.join(BENCHMARKS)}"
        ) from None


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


_SENTENCE = re.compile(r"[^。！？!?]*(?:[。！？!?]+[”’」』)）]*|$)")


def chunk_text(text: str, target: int = CHUNK_CHARS) -> list[tuple[int, int]]:
    """Spans of ~``target``-char chunks that end at sentence boundaries (。！？); overlong sentences are cut."""
    sentences = [(m.start(), m.end()) for m in _SENTENCE.finditer(text) if m.end() > m.start()]
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


def _read_json_lines(path: Path) -> list[dict[str, Any]]:
    out = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            log.warning("%s:%d skipped: invalid JSON (%s)", path, lineno, exc.msg)
    return out


def _limit(items: list[GoldItem], limit: int | None) -> list[GoldItem]:
    return items if limit is None else items[: max(0, limit)]


# ----------------------------------------------------------------------------------------------------
# Converters: raw data -> (speeches, gold items). The corpus is always the whole benchmark, so --limit
# changes how many questions are asked, not how hard retrieval is.


def convert_cmrc2018(data: dict[str, Any], limit: int | None = None) -> tuple[list[Speech], list[GoldItem]]:
    """One speech per article; gold = the question's paragraph; key point = any of the reference answers."""
    speeches: list[Speech] = []
    paragraphs: list[tuple[str, dict[str, Any]]] = []  # (paragraph id of the index, raw paragraph)
    for article in data.get("data", []):
        paras = [p for p in article.get("paragraphs", []) if str(p.get("context", "")).strip()]
        if not paras:
            continue
        speech = make_speech(
            title=str(article.get("title") or article.get("id", "")),
            paragraphs=[("", p["context"]) for p in paras],
            source=f"cmrc2018:{article.get('id', '')}",
            speech_key=f"cmrc2018:{article.get('id', '')}",
        )
        speeches.append(speech)
        paragraphs += [(built.paragraph_id, raw) for built, raw in zip(speech.paragraphs, paras, strict=True)]

    slicer = UniqueSlicer(raw["context"] for _, raw in paragraphs)
    items: list[GoldItem] = []
    for pid, raw in paragraphs:
        for qa in raw.get("qas", []):
            answers = list(
                dict.fromkeys(a["text"].strip() for a in qa.get("answers", []) if a.get("text", "").strip())
            )
            if not answers:
                continue
            start = next((a.get("answer_start", 0) for a in qa["answers"] if a.get("text", "").strip()), 0)
            items.append(
                GoldItem(
                    id=str(qa["id"]),
                    question=str(qa["question"]).strip(),
                    answerable=True,
                    key_points=(tuple(answers),),
                    evidence=(slicer.slice(raw["context"], around=int(start)),),
                    type="cmrc2018",
                    gold_passage_ids=(pid,),
                )
            )
            if limit is not None and len(items) >= limit:
                return speeches, items
    return speeches, items


def convert_rgb(
    records: Sequence[dict[str, Any]], limit: int | None = None
) -> tuple[list[Speech], list[GoldItem]]:
    """One speech per distinct passage; evidence and gold = the question's positive passages."""
    pid_of: dict[str, str] = {}  # normalized text -> paragraph id; passages differing in spacing are one
    speeches: list[Speech] = []
    for rec in records:
        for text in [*rec.get("positive", []), *rec.get("negative", [])]:
            key = normalize(str(text))
            if not key or key in pid_of:
                continue
            n = len(speeches)
            speech = make_speech(
                title=f"RGB passage {n}",
                paragraphs=[("", str(text).strip())],
                source=f"rgb:zh_refine#{n}",
                speech_key=f"rgb:{key}",
            )
            speeches.append(speech)
            pid_of[key] = speech.paragraphs[0].paragraph_id

    items: list[GoldItem] = []
    for rec in records:
        answer = rec.get("answer", [])
        # A flat list is one fact in several spellings; a nested list is several facts, each with spellings.
        groups = [answer] if answer and all(isinstance(a, str) for a in answer) else answer
        key_points = tuple(
            tuple(str(v) for v in (g if isinstance(g, list) else [g]) if normalize(str(v))) for g in groups
        )
        positives = list(dict.fromkeys(str(p).strip() for p in rec.get("positive", []) if str(p).strip()))
        items.append(
            GoldItem(
                id=f"rgb-{rec.get('id')}",
                question=str(rec.get("query", "")).strip(),
                answerable=bool(positives),
                key_points=tuple(k for k in key_points if k),
                evidence=tuple(positives),
                type="rgb",
                gold_passage_ids=tuple(
                    dict.fromkeys(pid_of[normalize(p)] for p in positives if normalize(p))
                ),
            )
        )
    return speeches, _limit(items, limit)


_TITLE_END = re.compile(r"[ \u00a0\u3000]")


def _ncp_title(context: str, docid: str) -> str:
    # The scraped documents start with their headline followed by a space; use it when it looks like one.
    head = _TITLE_END.split(context.strip(), maxsplit=1)[0]
    return head if 4 <= len(head) <= 80 and "。" not in head else f"ncp {docid[:8]}"


def convert_ncp(
    records: Sequence[dict[str, Any]], limit: int | None = None
) -> tuple[list[Speech], list[GoldItem]]:
    """One speech per document, chunked at 。 into ~300-char paragraphs; gold = chunks holding the answer span."""
    docs: dict[str, tuple[Speech, list[tuple[int, int]]]] = {}
    for rec in records:
        docid, context = str(rec.get("docid", "")), str(rec.get("context", ""))
        if docid in docs or not context.strip():
            continue
        spans = chunk_text(context)
        speech = make_speech(
            title=_ncp_title(context, docid),
            paragraphs=[("", context[a:b]) for a, b in spans],
            source=f"ncp:{docid}",
            speech_key=f"ncp:{docid}",
        )
        docs[docid] = (speech, spans)

    items: list[GoldItem] = []
    for rec in records:
        docid, context = str(rec.get("docid", "")), str(rec.get("context", ""))
        answer = rec.get("answer") or {}
        text = str(answer.get("text", ""))
        if docid not in docs or not normalize(text):
            continue
        speech, spans = docs[docid]
        start, end = answer.get("span", [context.find(text), context.find(text) + len(text) - 1])
        end = int(end) + 1  # the dataset's span end is inclusive
        overlaps = [
            (min(b, end) - max(a, int(start)), i)
            for i, (a, b) in enumerate(spans)
            if min(b, end) > max(a, int(start))
        ]
        gold_ids = tuple(speech.paragraphs[i].paragraph_id for _, i in overlaps)
        # Evidence must sit inside one chunk to be findable: the answer's part in its main chunk, cut to 30 chars.
        evidence: tuple[str, ...] = ()
        if overlaps:
            _, main = max(overlaps)
            a, b = spans[main]
            piece = context[max(a, int(start)) : min(b, end)].strip()
            evidence = (piece[:EVIDENCE_CHARS],) if normalize(piece) else ()
        items.append(
            GoldItem(
                id=f"ncp-{rec.get('id', len(items))}",
                question=str(rec.get("question", "")).strip(),
                answerable=True,
                key_points=((text.strip(),),),
                evidence=evidence,
                reference_answer=text.strip(),
                type="ncp",
                gold_passage_ids=gold_ids,
            )
        )
    return list(s for s, _ in docs.values()), _limit(items, limit)


def load_benchmark(name: str, data: Path | None = None, *, limit: int | None = None) -> Benchmark:
    """Read a benchmark's data and its licence line, convert it, and keep the first ``limit`` questions."""
    spec = _spec(name)
    path = find_data_file(name, data)
    try:
        if name == "cmrc2018":
            speeches, items = convert_cmrc2018(json.loads(path.read_text(encoding="utf-8")), limit)
        elif name == "rgb":
            speeches, items = convert_rgb(_read_json_lines(path), limit)
        else:
            speeches, items = convert_ncp(_read_json_lines(path), limit)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InputFileError(
            f"cannot convert {name} data {path}: {exc}", fix="pass the unchanged dataset file"
        ) from exc
    log.info("%s: %d documents, %d questions from %s", name, len(speeches), len(items), path)
    return Benchmark(
        name=name,
        speeches=tuple(speeches),
        items=tuple(items),
        licence=licence_line(path.parent / "SOURCE.md"),
        internal_only=spec.internal_only,
        data_file=path,
        description=spec.description,
    )


# ----------------------------------------------------------------------------------------------------
# Running one


def open_benchmark_service(
    benchmark: Benchmark,
    encoder: Encoder,
    index_dir: Path,
    *,
    cache: EmbeddingCache | None = None,
    progress: bool = False,
    **service_options: Any,
) -> AnswerService:
    """Index the benchmark's passages in ``index_dir`` (through the embedding cache) and open the service on it."""
    bar = _EncodingProgress(f"indexing {benchmark.name}") if progress else None
    try:
        build_index(benchmark.speeches, encoder, index_dir, cache=cache, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    return AnswerService.open(index_dir, encoder, **service_options)


class _EncodingProgress:
    """build_index's progress callback as a tqdm bar on stderr."""

    def __init__(self, desc: str) -> None:
        self._desc = desc
        self._bar: tqdm | None = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            self._bar = tqdm(total=total, desc=self._desc, unit="para", leave=False)
        self._bar.n = done
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def temporary_index_dir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="speechqa-bench-")
