"""RGB zh_refine: news passages (positive and negative) and questions whose positives hold the answer."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from data.parse import make_speech
from data.records import Speech
from evaluation.datasets.common import Benchmark, find_data_file, first, licence_line, read_json_lines
from evaluation.gold import GoldItem
from evaluation.metrics import normalize

FOLDER, FILE = "rgb_zh", "zh_refine.json"


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
