"""RGB zh_refine: news passages (positive and negative) and questions whose positives hold the answer; and the
leave-the-answers-out refusal test on the same passages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data.parse import make_speech
from data.records import Speech
from evaluation.datasets.common import (
    Benchmark,
    find_data_file,
    first,
    hold_out_benchmark,
    licence_line,
    read_json_lines,
    stable_share,
)
from evaluation.gold import GoldItem
from evaluation.metrics import normalize

FOLDER, FILE = "rgb_zh", "zh_refine.json"


def answer_groups(answer: Any) -> tuple[tuple[str, ...], ...]:
    """An RGB answer as facts, each with its spellings: a flat list is one fact in several spellings, a nested
    list several facts, each with spellings."""
    groups = [answer] if answer and all(isinstance(a, str) for a in answer) else answer
    return tuple(
        tuple(str(v) for v in (g if isinstance(g, list) else [g]) if normalize(str(v))) for g in groups
    )


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
        key_points = answer_groups(rec.get("answer", []))
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
    return speeches, first(items, limit)


def load(data: Path | None = None, limit: int | None = None) -> Benchmark:
    path = find_data_file("rgb", FOLDER, FILE, data)
    speeches, items = convert_rgb(read_json_lines(path), limit)
    return Benchmark(
        name="rgb",
        speeches=tuple(speeches),
        items=tuple(items),
        licence=licence_line(path.parent / "SOURCE.md"),
        internal_only=False,
        data_file=path,
        description="RGB zh_refine: news passages (positive + negative, deduplicated); evidence = positive passages",
    )


# ----------------------------------------------------------------------------------------------------
# Leave the answers out: news questions whose retrieved neighbours are on the topic but do not state the answer

HOLD_OUT_SHARE = 0.5  # of the questions; the sample is half/half, so half the candidates of each kind
QUESTIONS = 300  # every question RGB has, as far as the split leaves them
# An answer of at least this many characters ("冰墩墩", "张艺谋", "1269万人") states the fact wherever it occurs, so
# every passage holding one is left out with the question's own; a shorter one ("上海", "90", "福建") names too many
# other things, so only the question's own pool (its positive and negative passages, RGB's search results for it)
# loses the passages that hold it.
ANSWER_ANYWHERE_CHARS = 3


def _variants(answer: Any) -> list[str]:
    """Every spelling of every fact of an RGB answer (``answer_groups``), normalized."""
    return list(dict.fromkeys(normalize(v) for group in answer_groups(answer) for v in group))


@dataclass(frozen=True, slots=True)
class RgbHoldOut:
    """The split of the leave-the-answers-out run, with the counts the summary reports."""

    indexed: tuple[str, ...]  # normalized passage texts
    held_out: tuple[str, ...]
    answerable: tuple[GoldItem, ...]  # questions with an indexed positive stating every key point
    unanswerable: tuple[GoldItem, ...]  # held-out questions whose answer no indexed passage states
    answer_elsewhere: int  # held-out questions dropped because an indexed passage states an answer
    positives_held_out: int  # answerable candidates dropped because another question's hold-out took them


def hold_out_rgb(
    records: Sequence[dict[str, Any]], share: float = HOLD_OUT_SHARE
) -> tuple[list[Speech], RgbHoldOut]:
    """Split zh_refine for the refusal test.

    - The questions whose sha256("rgb-" + id) share (``stable_share``) is under ``share`` lose their answers:
      every positive passage, and every negative one that states an answer after all, is not indexed. Their
      other negatives stay: RGB's search results on the same topic, i.e. near misses as a user meets them.
      So is every passage anywhere holding an answer of ``ANSWER_ANYWHERE_CHARS`` or more characters.
    - Unanswerable: those questions, unless a passage still indexed states an answer after all
      (``answer_elsewhere``; none by construction, counted to show it).
    - Answerable: the other questions whose indexed positives state every fact of the answer (key points and
      evidence as ``convert_rgb`` makes them, over the indexed passages only).
    """
    key_of = {
        p: normalize(str(p)) for rec in records for p in [*rec.get("positive", []), *rec.get("negative", [])]
    }
    held_keys: set[str] = set()
    losing: set[int] = set()
    everywhere: set[str] = set()
    for n, rec in enumerate(records):
        if stable_share(f"rgb-{rec.get('id')}") >= share:
            continue
        losing.add(n)
        variants = _variants(rec.get("answer", []))
        held_keys.update(key_of[p] for p in rec.get("positive", []))
        held_keys.update(key_of[p] for p in rec.get("negative", []) if any(v in key_of[p] for v in variants))
        everywhere.update(v for v in variants if len(v) >= ANSWER_ANYWHERE_CHARS)
    held_keys.update(key for key in key_of.values() if any(v in key for v in everywhere))
    held_keys.discard("")
    kept = [
        {
            **rec,
            "positive": [p for p in rec.get("positive", []) if key_of[p] not in held_keys],
            "negative": [p for p in rec.get("negative", []) if key_of[p] not in held_keys],
        }
        for rec in records
    ]
    speeches, items = convert_rgb(kept)
    indexed = tuple(dict.fromkeys(normalize(s.paragraphs[0].text) for s in speeches))
    # normalize() drops whitespace, so "\n" never joins two passages into a false match.
    haystack = "\n".join(indexed)
    answerable: list[GoldItem] = []
    unanswerable: list[GoldItem] = []
    elsewhere = lost = 0
    for n, (rec, item) in enumerate(zip(kept, items, strict=True)):
        if n in losing:
            variants = _variants(rec.get("answer", []))
            pool = "\n".join(key_of[p] for p in rec.get("negative", []))
            if any(v in pool or (len(v) >= ANSWER_ANYWHERE_CHARS and v in haystack) for v in variants):
                elsewhere += 1
                continue
            unanswerable.append(GoldItem(item.id, item.question, answerable=False, type="rgb-held-out"))
            continue
        stated = "\n".join(normalize(e) for e in item.evidence)
        if item.key_points and all(any(normalize(v) in stated for v in group) for group in item.key_points):
            answerable.append(item)
        else:
            lost += 1
    split = RgbHoldOut(
        indexed, tuple(sorted(held_keys)), tuple(answerable), tuple(unanswerable), elsewhere, lost
    )
    return speeches, split


def load_unanswerable(data: Path | None = None, limit: int | None = None) -> Benchmark:
    """RGB zh_refine with half its questions' answers left out of the index (see ``hold_out_rgb``); ``limit``
    subsamples keeping the half/half ratio. A DEV set for refusals on news nobody here wrote questions for (no
    model here is trained on RGB: its licence is non-commercial)."""
    path = find_data_file("rgb", FOLDER, FILE, data)
    speeches, split = hold_out_rgb(read_json_lines(path))
    return hold_out_benchmark(
        "rgb-unanswerable",
        path,
        speeches,
        split,
        share=HOLD_OUT_SHARE,
        questions=QUESTIONS,
        limit=limit,
        internal_only=False,
        description=(
            f"RGB zh_refine (DEV set), leave the answers out: the questions with sha256(id) < {HOLD_OUT_SHARE} "
            f"lose every passage stating their answer ({len(split.held_out)} of "
            f"{len(split.held_out) + len(split.indexed)} passages are not indexed) and must be refused over their "
            "other search results; the others are answered (key point = any spelling of each fact)"
        ),
        dropped_positives_held_out=split.positives_held_out,
    )
