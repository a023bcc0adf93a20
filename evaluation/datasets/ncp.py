"""NCP policy QA (dev): pandemic policy documents chunked into paragraphs, answer spans as key points."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from data.parse import make_speech
from data.records import Speech
from evaluation.datasets.common import (
    EVIDENCE_CHARS,
    Benchmark,
    chunk_text,
    find_data_file,
    first,
    licence_line,
    read_json_lines,
)
from evaluation.gold import GoldItem
from evaluation.metrics import normalize

FOLDER, FILE = "ncp_policy_qa", "dev.json"


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
    return list(s for s, _ in docs.values()), first(items, limit)


def load(data: Path | None = None, limit: int | None = None) -> Benchmark:
    path = find_data_file("ncp", FOLDER, FILE, data)
    speeches, items = convert_ncp(read_json_lines(path), limit)
    return Benchmark(
        name="ncp",
        speeches=tuple(speeches),
        items=tuple(items),
        licence=licence_line(path.parent / "SOURCE.md"),
        internal_only=True,
        data_file=path,
        description="NCP policy QA dev: 58 policy documents chunked at sentence ends into ~300-char paragraphs; "
        "key point = answer span",
    )
