"""Training data made from report text (training/govgen.py): each question has the answer its rule promises."""

from __future__ import annotations

from data.parse import make_speech
from training.govgen import PLACES, extract_facts, gov_questions


def _report(year: int, review: str, plan: str):
    return make_speech(
        title=f"{year}年政府工作报告",
        date=str(year),
        paragraphs=[(f"一、{year - 1}年工作回顾", review), (f"二、{year}年主要任务", plan)],
    )


def test_a_stated_figure_becomes_a_question_about_the_year_it_speaks_of():
    sp = _report(
        2019, "过去一年，国内生产总值增长6.6%，城镇新增就业1361万人。", "今年粮食产量稳定在1.3万亿斤以上。"
    )
    facts = {(f.metric, f.year): f for f in extract_facts([sp])}
    assert facts[("国内生产总值", 2018)].span == "国内生产总值增长6.6%"
    assert facts[("城镇新增就业", 2018)].span == "城镇新增就业1361万人"
    questions = {q.answers[0]: q for q in gov_questions([sp])}
    q = questions["国内生产总值增长6.6%"]
    assert "2018年" in q.question and q.paragraph_id == sp.paragraphs[0].paragraph_id


def test_near_misses_ask_for_a_year_or_place_no_report_states():
    reports = [
        _report(2019, "过去一年，国内生产总值增长6.6%。", "今年要做好各项工作。"),
        _report(2020, "过去一年，国内生产总值增长6.1%。", "今年要做好各项工作。"),
    ]
    questions = gov_questions(reports)
    assert len(questions) == 2
    for q in questions:
        years_stated = {"2018年", "2019年"}
        swapped_years = [s for s in q.swaps if not any(y in s for y in years_stated)]
        assert swapped_years, q.swaps  # another year, stated by no report
        # A place swap names a province or city the stating paragraphs never mention.
        corpus = "".join(p.text for r in reports for p in r.paragraphs)
        named = [place for place in PLACES for s in q.swaps if place in s]
        assert named, q.swaps
        assert all(place[:2] not in corpus for place in named)
