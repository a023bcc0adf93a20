"""ncp-unanswerable: the NCP chunks left out of the index, on synthetic policy documents (no shared data)."""

from __future__ import annotations

import json

import pytest

from evaluation.datasets import BENCHMARKS
from evaluation.datasets.common import stable_share
from evaluation.datasets.ncp import convert_ncp, hold_out_ncp, load_unanswerable
from evaluation.metrics import normalize

SHARE = 0.4
SHARED_ANSWER = "统一咨询热线一二三四五"  # every chunk of every document states it
FILLER = "一般性内容说明" * 26


def _record(docid: str, context: str, qid: str, text: str) -> dict:
    start = context.index(text)
    return {
        "id": qid,
        "docid": docid,
        "context": context,
        "question": f"{qid}问什么？",
        "answer": {"text": text, "span": [start, start + len(text) - 1]},  # the dataset's end is inclusive
    }


def _records(n_docs: int = 20, n_chunks: int = 4) -> list[dict]:
    """Documents of ``n_chunks`` ~200-char sentences (one chunk each, chunk_text's target being 300). Per
    document: a question on each chunk with an answer only that chunk states, one whose answer every chunk
    states, and one whose span runs from the end of chunk 1 into chunk 2."""
    records = []
    for d in range(n_docs):
        docid = f"doc{d:03d}"
        context = "".join(
            f"第{d:03d}号文件第{c}条{FILLER}{SHARED_ANSWER}措施{d:03d}号{c}条款。" for c in range(n_chunks)
        )
        records += [_record(docid, context, f"u{d}-{c}", f"措施{d:03d}号{c}条款") for c in range(n_chunks)]
        records.append(_record(docid, context, f"s{d}", SHARED_ANSWER))
        records.append(
            _record(docid, context, f"x{d}", f"措施{d:03d}号1条款。第{d:03d}号文件第2条一般性内容说明")
        )
    return records


def test_synthetic_documents_chunk_as_designed():
    speeches, items = convert_ncp(_records())
    assert len(speeches) == 20 and all(len(s.paragraphs) == 4 for s in speeches)
    gold = {i.id: i.gold_passage_ids for i in items}
    assert all(len(gold[f"ncp-u{d}-{c}"]) == 1 for d in range(20) for c in range(4))
    assert all(len(gold[f"ncp-x{d}"]) == 2 for d in range(20))


@pytest.mark.parametrize("share", [SHARE, 0.8])
def test_held_out_chunks_are_not_indexed_and_a_document_with_none_left_is_gone(share):
    speeches, _ = convert_ncp(_records())
    split = hold_out_ncp(_records(), share)
    all_ids = {p.paragraph_id for s in speeches for p in s.paragraphs}
    held = {p.paragraph_id for p in split.held_out}
    assert held == {pid for pid in all_ids if stable_share(pid) < share}
    assert 0 < len(held) < len(all_ids)
    indexed = {p.paragraph_id for s in split.speeches for p in s.paragraphs}
    assert indexed == {p.paragraph_id for p in split.indexed} == all_ids - held
    # The kept chunks keep their ids and order, renumbered from 0.
    for s in split.speeches:
        assert [p.ordinal for p in s.paragraphs] == list(range(len(s.paragraphs)))
    whole = {s.speech_id for s in speeches if any(p.paragraph_id not in held for p in s.paragraphs)}
    assert {s.speech_id for s in split.speeches} == whole
    assert (len(whole) < len(speeches)) == (share == 0.8)  # at 0.8 some documents lose every chunk


def test_unanswerable_questions_are_those_whose_chunks_are_all_held_out_with_the_answer_nowhere_indexed():
    records = _records()
    _, items = convert_ncp(records)
    split = hold_out_ncp(records, SHARE)
    held = {p.paragraph_id for p in split.held_out}
    answer = {f"ncp-{r['id']}": r["answer"]["text"] for r in records}
    indexed_texts = [normalize(p.text) for s in split.speeches for p in s.paragraphs]
    expected = {
        i.id for i in items if set(i.gold_passage_ids) <= held and not i.id.startswith("ncp-s")
    }  # the chunk-unique answers and the cross-chunk spans both of whose chunks are held out
    assert expected and {i.id for i in split.unanswerable} == expected
    for item in split.unanswerable:
        assert not item.answerable and item.reference_answer is None and item.gold_passage_ids == ()
        assert not any(normalize(answer[item.id]) in t for t in indexed_texts), item.id


def test_a_held_out_question_whose_answer_an_indexed_chunk_states_is_dropped_not_unanswerable():
    records = _records()
    _, items = convert_ncp(records)
    split = hold_out_ncp(records, SHARE)
    held = {p.paragraph_id for p in split.held_out}
    shared_held = {i.id for i in items if i.id.startswith("ncp-s") and set(i.gold_passage_ids) <= held}
    assert shared_held and split.answer_elsewhere == len(shared_held)
    kept = {i.id for i in (*split.answerable, *split.unanswerable)}
    assert not shared_held & kept


def test_answerable_questions_cite_only_indexed_chunks_that_hold_their_evidence():
    records = _records()
    _, items = convert_ncp(records)
    split = hold_out_ncp(records, SHARE)
    held = {p.paragraph_id for p in split.held_out}
    text_of = {p.paragraph_id: normalize(p.text) for p in split.indexed}
    assert split.answerable and all(i.answerable for i in split.answerable)
    for item in split.answerable:
        assert item.gold_passage_ids and all(pid in text_of for pid in item.gold_passage_ids), item.id
        assert item.evidence and all(
            any(normalize(e) in text_of[pid] for pid in item.gold_passage_ids) for e in item.evidence
        )
    by_id = {i.id: i for i in items}
    # A cross-chunk span with one chunk held out keeps the other as its only gold, or is dropped when the
    # evidence (the answer's part in its main chunk) was in the held-out one.
    partly = [i for i in items if i.id.startswith("ncp-x") and len(set(i.gold_passage_ids) & held) == 1]
    assert partly
    answerable = {i.id: i for i in split.answerable}
    for item in partly:
        if item.id in answerable:
            assert answerable[item.id].gold_passage_ids == tuple(set(by_id[item.id].gold_passage_ids) - held)
    dropped = [i for i in partly if i.id not in answerable]
    assert split.neither == len(dropped)


def test_the_split_and_the_benchmark_are_deterministic_and_a_limit_keeps_the_ratio(tmp_path):
    assert hold_out_ncp(_records(), SHARE) == hold_out_ncp(_records(), SHARE)
    path = tmp_path / "dev.json"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in _records()), encoding="utf-8")
    bench = load_unanswerable(path)
    again = load_unanswerable(path)
    assert [i.id for i in bench.items] == [i.id for i in again.items]
    assert bench.internal_only and bench.name == "ncp-unanswerable"
    details = bench.details
    assert details["questions_unanswerable"] == sum(not i.answerable for i in bench.items)
    assert details["candidates_unanswerable"] >= details["questions_unanswerable"] > 0
    assert details["paragraphs_indexed"] + details["paragraphs_held_out"] == 80
    small = load_unanswerable(path, limit=6)
    assert [i.answerable for i in small.items].count(False) == 3 and len(small.items) == 6
    assert {i.id for i in small.items} <= {i.id for i in bench.items}
    spec = BENCHMARKS["ncp-unanswerable"]
    assert spec.needs_shared_data and "DEV set" in spec.description and "internal only" in spec.description
