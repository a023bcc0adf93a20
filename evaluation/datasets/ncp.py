"""NCP policy QA (dev): pandemic policy documents chunked into paragraphs, answer spans as key points; and the
leave-the-paragraph-out refusal test on the same chunks."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from data.parse import make_speech
from data.records import Paragraph, Speech
from evaluation.datasets.common import (
    EVIDENCE_CHARS,
    Benchmark,
    chunk_text,
    find_data_file,
    first,
    hold_out_benchmark,
    licence_line,
    read_json_lines,
    stable_share,
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


# ----------------------------------------------------------------------------------------------------
# Leave the paragraph out: does the service refuse when the chunk that answered is gone?

# The refusal test reads train.json (600 questions over 599 documents), which nothing in this repo trains or
# tunes a model on (training/ reads CMRC 2018 trial, DRCD and the State Council reports): dev.json's 58
# questions cannot give 150 unanswerable at any share (even 1.0 gives 58 and indexes nothing). Over
# train.json, 0.35 is the smallest round share that leaves at least 150 unanswerable questions for the
# half/half sample of 300 (0.30 leaves fewer): the NCP counterpart of CMRC's 0.20.
HOLD_OUT_FILE = "train.json"
HOLD_OUT_SHARE = 0.35
QUESTIONS = 300  # at most, half unanswerable: the 150 the split was meant for, were there that many


@dataclass(frozen=True, slots=True)
class NcpHoldOut:
    """The split of one leave-the-paragraph-out run over the NCP chunks, with the counts the summary reports."""

    speeches: tuple[Speech, ...]  # the indexed chunks only; a document with none left is gone
    indexed: tuple[Paragraph, ...]
    held_out: tuple[Paragraph, ...]
    answerable: tuple[GoldItem, ...]  # a gold chunk indexed, the evidence in an indexed gold chunk
    unanswerable: tuple[GoldItem, ...]  # every gold chunk held out, the answer in no indexed chunk
    answer_elsewhere: int  # every gold chunk held out, but an indexed chunk states the answer: dropped
    neither: int  # dropped too: a gold chunk indexed but the evidence held out, or no gold chunk


def hold_out_ncp(records: Sequence[dict[str, Any]], share: float = HOLD_OUT_SHARE) -> NcpHoldOut:
    """Split ``convert_ncp``'s chunks and questions for the refusal test.

    - Held out: the chunks whose sha256(paragraph id) share (``stable_share``) is under ``share``. They are
      not indexed: each speech keeps its other chunks (same ids, renumbered), a speech with none left is gone.
    - Unanswerable: the questions ALL of whose gold chunks are held out and whose answer (``normalize``d)
      occurs in no indexed chunk; those whose answer an indexed chunk states count as ``answer_elsewhere``.
    - Answerable: the questions with a gold chunk indexed and their evidence inside an indexed gold chunk;
      key points and evidence as ``convert_ncp`` makes them, gold ids cut to the indexed chunks.
    - Every other question (a gold chunk indexed but the evidence held out, or no gold chunk) is ``neither``.
    """
    speeches, items = convert_ncp(records)
    held_ids = {
        p.paragraph_id for s in speeches for p in s.paragraphs if stable_share(p.paragraph_id) < share
    }
    kept: list[Speech] = []
    for speech in speeches:
        paras = [p for p in speech.paragraphs if p.paragraph_id not in held_ids]
        if paras:
            kept.append(replace(speech, paragraphs=tuple(replace(p, ordinal=i) for i, p in enumerate(paras))))
    indexed = tuple(p for s in kept for p in s.paragraphs)
    text_of = {p.paragraph_id: normalize(p.text) for p in indexed}
    # normalize() drops whitespace, so "\n" never joins two chunks into a false match.
    haystack = "\n".join(text_of.values())
    answerable: list[GoldItem] = []
    unanswerable: list[GoldItem] = []
    elsewhere = neither = 0
    for item in items:
        gold = [pid for pid in item.gold_passage_ids if pid not in held_ids]
        if item.gold_passage_ids and not gold:
            if normalize(item.reference_answer or "") in haystack:
                elsewhere += 1
                continue
            unanswerable.append(GoldItem(item.id, item.question, answerable=False, type="ncp-held-out"))
        elif (
            gold
            and item.evidence
            and all(any(normalize(e) in text_of[g] for g in gold) for e in item.evidence)
        ):
            answerable.append(replace(item, gold_passage_ids=tuple(gold), type="ncp-indexed"))
        else:
            neither += 1
    held = tuple(p for s in speeches for p in s.paragraphs if p.paragraph_id in held_ids)
    return NcpHoldOut(tuple(kept), indexed, held, tuple(answerable), tuple(unanswerable), elsewhere, neither)


def load_unanswerable(data: Path | None = None, limit: int | None = None) -> Benchmark:
    """NCP policy QA train.json with ~35% of its chunks left out of the index (see ``hold_out_ncp``): 300
    questions, half unanswerable; ``limit`` subsamples keeping the half/half ratio. A DEV set for tuning
    refusals (no model here is trained on it), internal only like ``ncp`` (no licence)."""
    path = find_data_file("ncp", FOLDER, HOLD_OUT_FILE, data)
    split = hold_out_ncp(read_json_lines(path))
    return hold_out_benchmark(
        "ncp-unanswerable",
        path,
        split.speeches,
        split,
        share=HOLD_OUT_SHARE,
        questions=QUESTIONS,
        limit=limit,
        internal_only=True,
        description=(
            f"NCP policy QA train.json (DEV set, internal only), leave the paragraph out: {len(split.held_out)} of "
            f"{len(split.held_out) + len(split.indexed)} chunks (sha256(paragraph id) < {HOLD_OUT_SHARE}) are "
            "not indexed; the questions whose every gold chunk is held out and whose answer occurs in no "
            "indexed chunk must be refused, those with a gold chunk and their evidence indexed answered "
            "(key point = answer span)"
        ),
        dropped_evidence_held_out=split.neither,
    )
