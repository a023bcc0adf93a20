"""rgb-unanswerable: RGB's answers left out of the index, on synthetic news records (no shared data)."""

from __future__ import annotations

import json

from evaluation.datasets import BENCHMARKS
from evaluation.datasets.common import stable_share
from evaluation.datasets.rgb import ANSWER_ANYWHERE_CHARS, HOLD_OUT_SHARE, hold_out_rgb, load_unanswerable
from evaluation.metrics import normalize


def _records(n: int = 40) -> list[dict]:
    """Question ``q`` asks for a count only its positives state ("第q号工程投资了q千万元"); its negatives are
    on the topic without it, but one of them states the answer after all (RGB's search results sometimes
    do). Questions 0 and 1 share a two-character answer ("上海") that other passages name in passing."""
    records = []
    for q in range(n):
        answer = "上海" if q < 2 else f"{q}千万元"
        records.append(
            {
                "id": q,
                "query": f"第{q}号工程投资了多少？" if q >= 2 else f"第{q}号工程在哪里？",
                "answer": [answer],
                "positive": [
                    f"第{q}号工程位于新区，总投资{answer}，今年开工。",
                    f"报道称第{q}号工程投入{answer}建设。",
                ],
                "negative": [
                    f"第{q}号工程的设计方案公示了，市民可以提出意见。",
                    f"第{q}号工程进展顺利，有关部门表示工期不变。",
                    f"回顾第{q}号工程：当初计划{answer}，如今已经完成。",
                    f"第{q}号工程附近的上海路将拓宽。",
                ],
            }
        )
    return records


def _indexed(speeches) -> list[str]:
    return [normalize(s.paragraphs[0].text) for s in speeches]


def test_a_question_that_loses_its_answers_keeps_its_near_misses_and_no_indexed_passage_states_its_answer():
    records = _records()
    speeches, split = hold_out_rgb(records)
    indexed = _indexed(speeches)
    losing = {f"rgb-{r['id']}" for r in records if stable_share(f"rgb-{r['id']}") < HOLD_OUT_SHARE}
    assert losing and {i.id for i in split.unanswerable} == losing
    answer_of = {f"rgb-{r['id']}": normalize(r["answer"][0]) for r in records}
    for item in split.unanswerable:
        assert not item.answerable and item.gold_passage_ids == ()
        q = item.id.removeprefix("rgb-")
        pool = [t for t in indexed if f"第{q}号工程" in t]
        # Its two negatives that do not state the answer stay: the near misses it must be refused over.
        assert len(pool) >= 2, item.id
        assert not any(answer_of[item.id] in t for t in pool), item.id
    assert split.answer_elsewhere == 0


def test_a_long_answer_leaves_the_index_wherever_it_occurs_a_short_one_only_in_its_own_pool():
    records = _records()
    # Question 5's answer ("5千万元", over the length) also occurs in an answerable question's negative.
    keeper = next(r for r in records if r["id"] >= 2 and stable_share(f"rgb-{r['id']}") >= HOLD_OUT_SHARE)
    loser = next(r for r in records if r["id"] >= 2 and stable_share(f"rgb-{r['id']}") < HOLD_OUT_SHARE)
    assert len(normalize(loser["answer"][0])) >= ANSWER_ANYWHERE_CHARS
    keeper["negative"].append(f"另据了解，有项目也投资了{loser['answer'][0]}。")
    speeches, split = hold_out_rgb(records)
    indexed = _indexed(speeches)
    assert not any(normalize(loser["answer"][0]) in t for t in indexed)
    # "上海" names a road in every pool: those passages stay, though the short answer's own pool loses them.
    short_losers = [r for r in records[:2] if stable_share(f"rgb-{r['id']}") < HOLD_OUT_SHARE]
    assert any("上海路" in t for t in indexed)
    for r in short_losers:
        assert not any(f"第{r['id']}号工程" in t and "上海" in t for t in indexed)


def test_answerable_questions_cite_indexed_passages_that_state_every_key_point():
    records = _records()
    speeches, split = hold_out_rgb(records)
    indexed = set(_indexed(speeches))
    ids = {s.paragraphs[0].paragraph_id for s in speeches}
    assert split.answerable and all(i.answerable for i in split.answerable)
    for item in split.answerable:
        assert item.gold_passage_ids and set(item.gold_passage_ids) <= ids
        assert all(normalize(e) in indexed for e in item.evidence)
        stated = "\n".join(normalize(e) for e in item.evidence)
        assert all(any(normalize(v) in stated for v in group) for group in item.key_points)


def test_the_benchmark_is_deterministic_and_a_limit_keeps_the_ratio(tmp_path):
    path = tmp_path / "zh_refine.json"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in _records()), encoding="utf-8")
    bench, again = load_unanswerable(path), load_unanswerable(path)
    assert [i.id for i in bench.items] == [i.id for i in again.items]
    details = bench.details
    assert details["questions_unanswerable"] == sum(not i.answerable for i in bench.items) > 0
    assert details["questions_answerable"] == sum(i.answerable for i in bench.items) > 0
    small = load_unanswerable(path, limit=6)
    assert [i.answerable for i in small.items].count(False) == 3 and len(small.items) == 6
    assert {i.id for i in small.items} <= {i.id for i in bench.items}
    spec = BENCHMARKS["rgb-unanswerable"]
    assert spec.needs_shared_data and "DEV set" in spec.description
