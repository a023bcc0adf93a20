"""Data set loaders: the SQuAD-style parser, leave-the-paragraph-out, DRCD in simplified Chinese, our gold sets."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest

from evaluation.datasets import BENCHMARKS, load_benchmark
from evaluation.datasets.cmrc2018 import hold_out
from evaluation.datasets.common import balanced_sample, stable_share
from evaluation.datasets.squad import parse_squad, squad_gold, squad_speeches
from evaluation.gold import GoldItem
from evaluation.metrics import normalize

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "benchmarks"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="shared benchmarks not present")


def _squad(n_articles: int = 12) -> dict:
    """Articles with one or two paragraphs; each question's answer is a word unique to its paragraph."""
    data = []
    for a in range(n_articles):
        paragraphs = []
        for p in range(1 + a % 2):
            word = f"词{a}x{p}"
            paragraphs.append(
                {
                    "id": f"A{a}-{p}",
                    "context": f"第{a}篇第{p}段说的是{word}，还有共同的内容。",
                    "qas": [
                        {
                            "id": f"Q{a}-{p}",
                            "question": f"第{a}篇第{p}段说什么？",
                            "answers": [{"text": word}],
                        },
                        # An answer every paragraph states: never unanswerable when its paragraph is held out.
                        {
                            "id": f"C{a}-{p}",
                            "question": "共同的是什么？",
                            "answers": [{"text": "共同的内容"}],
                        },
                    ],
                }
            )
        data.append({"id": f"A{a}", "title": f"文章{a}", "paragraphs": paragraphs})
    return {"data": data}


def test_squad_records_become_one_speech_per_article_with_stable_ids():
    articles = parse_squad(_squad())
    speeches, pid_of = squad_speeches(articles, "t")
    again, pid_again = squad_speeches(parse_squad(_squad()), "t")
    assert [s.speech_id for s in speeches] == [s.speech_id for s in again] and pid_of == pid_again
    assert [s.title for s in speeches] == [a.title for a in articles]
    assert [len(s.paragraphs) for s in speeches] == [len(a.paragraphs) for a in articles]
    items = squad_gold(articles, pid_of, type_="t")
    by_id = {i.id: i for i in items}
    assert by_id["Q3-1"].key_points == (("词3x1",),)
    assert by_id["Q3-1"].gold_passage_ids == (pid_of["A3-1"],)


def test_squad_conversion_maps_every_text_and_refinds_answer_starts():
    data = {
        "data": [
            {
                "id": "1",
                "title": "臺灣",
                "paragraphs": [
                    {
                        "id": "1-0",
                        "context": "臺灣大學的圖書館",
                        "qas": [
                            {
                                "id": "q",
                                "question": "哪個圖書館？",
                                "answers": [{"text": "圖書館", "answer_start": 0}],
                            }
                        ],
                    }
                ],
            }
        ]
    }
    (article,) = parse_squad(data, convert=lambda s: s.replace("臺", "台").replace("圖書館", "图书馆"))
    assert article.title == "台灣"
    q = article.paragraphs[0].questions[0]
    assert q.answers == ("图书馆",) and article.paragraphs[0].context[q.answer_starts[0] :].startswith(
        "图书馆"
    )


def test_held_out_questions_are_unanswerable_only_when_no_indexed_paragraph_states_an_answer():
    articles = parse_squad(_squad(40))
    share = 0.3
    held_ids = {p.id for a in articles for p in a.paragraphs if stable_share(p.id) < share}
    speeches, pid_of = squad_speeches(articles, "t", keep=lambda p: p.id not in held_ids)
    split = hold_out(articles, pid_of, share)
    assert held_ids and {p.id for p in split.held_out} == held_ids
    indexed_text = "\n".join(normalize(p.text) for s in speeches for p in s.paragraphs)
    assert split.unanswerable and all(not i.answerable for i in split.unanswerable)
    assert {i.id[0] for i in split.unanswerable} == {"Q"}  # the shared "共同的内容" is stated elsewhere
    assert split.answer_elsewhere == len(held_ids)
    answers = {q.id: q.answers for a in articles for para in a.paragraphs for q in para.questions}
    for item in split.unanswerable:
        assert not any(normalize(ans) in indexed_text for ans in answers[item.id])
    indexed_pids = {p.paragraph_id for s in speeches for p in s.paragraphs}
    assert all(set(i.gold_passage_ids) <= indexed_pids for i in split.answerable)


def test_balanced_sample_is_half_unanswerable_and_a_limit_keeps_the_ratio_and_the_questions():
    answerable = [GoldItem(f"a{i}", "问？", True, (("甲",),)) for i in range(50)]
    unanswerable = [GoldItem(f"u{i}", "问？", False) for i in range(30)]
    full = balanced_sample(answerable, unanswerable, 40)
    assert len(full) == 40 and sum(not i.answerable for i in full) == 20
    small = balanced_sample(answerable, unanswerable, 9)
    assert sum(not i.answerable for i in small) == 4 and sum(i.answerable for i in small) == 5
    assert {i.id for i in small} <= {i.id for i in full}
    assert balanced_sample(answerable, unanswerable, 9) == small  # deterministic


@needs_shared
def test_cmrc2018_unanswerable_has_1000_questions_half_of_them_unanswerable():
    bench = load_benchmark("cmrc2018-unanswerable")
    assert len(bench.items) == 1000
    assert sum(not i.answerable for i in bench.items) == 500
    assert bench.details["paragraphs_held_out"] + bench.details["paragraphs_indexed"] == 848
    indexed = "\n".join(normalize(p.text) for s in bench.speeches for p in s.paragraphs)
    dev = json.loads((SHARED / "cmrc2018" / "cmrc2018_dev.json").read_text(encoding="utf-8"))
    answers = {
        qa["id"]: [a["text"] for a in qa["answers"] if normalize(a["text"])]
        for article in dev["data"]
        for para in article["paragraphs"]
        for qa in para["qas"]
    }
    for item in (i for i in bench.items if not i.answerable):
        assert not any(normalize(a) in indexed for a in answers[item.id]), item.id
    pids = {p.paragraph_id for s in bench.speeches for p in s.paragraphs}
    assert all(
        len(i.gold_passage_ids) == 1 and i.gold_passage_ids[0] in pids for i in bench.items if i.answerable
    )
    small = load_benchmark("cmrc2018-unanswerable", limit=20)
    assert sum(not i.answerable for i in small.items) == 10 and len(small.items) == 20
    assert {i.id for i in small.items} <= {i.id for i in bench.items}


@needs_shared
def test_drcd_is_read_in_simplified_chinese():
    bench = load_benchmark("drcd")
    assert len(bench.items) == 3524 and sum(len(s.paragraphs) for s in bench.speeches) == 1000
    text = "".join(p.text for s in bench.speeches[:50] for p in s.paragraphs)
    assert "臺" not in text and "們" not in text and "学" in text
    assert load_benchmark("drcd-test").name == "drcd-test"


def test_builtin_gold_sets_load_over_the_builtin_corpus():
    test, dev = load_benchmark("gold-test"), load_benchmark("gold-dev")
    assert (len(test.items), len(dev.items)) == (55, 56)
    assert not {i.id for i in test.items} & {i.id for i in dev.items}
    assert test.skipped == () and len(test.speeches) == 3


def test_gold_dev2_is_a_dev_set_on_the_builtin_corpus_with_new_questions():
    dev2, dev, gold = load_benchmark("gold-dev2"), load_benchmark("gold-dev"), load_benchmark("gold")
    assert dev2.name == "gold-dev2" and not dev2.internal_only and dev2.skipped == ()
    assert [s.speech_id for s in dev2.speeches] == [s.speech_id for s in dev.speeches]
    assert len(dev2.items) == 60 and sum(not i.answerable for i in dev2.items) == 16
    # Written separately: no question repeats one of gold.jsonl (and so of gold_dev/gold_test).
    questions = {i.question for i in dev2.items}
    assert not questions & {i.question for i in dev.items}
    assert not questions & {i.question for i in gold.items}
    texts = [normalize(p.text) for s in dev2.speeches for p in s.paragraphs]
    for item in dev2.items:
        if not item.answerable:
            assert not item.evidence and not item.key_points, item.id
            continue
        assert item.evidence and item.key_points, item.id
        for e in item.evidence:
            assert sum(normalize(e) in t for t in texts) == 1, (item.id, e)


def test_provincial_questions_carry_their_region_and_their_evidence_is_in_the_corpus():
    bench = load_benchmark("provincial")
    assert len(bench.items) >= 90 and bench.skipped == ()
    assert all(i.region for i in bench.items)
    texts = [normalize(p.text) for s in bench.speeches for p in s.paragraphs]
    for item in bench.items:
        for e in item.evidence:
            assert sum(normalize(e) in t for t in texts) == 1, (item.id, e)
    assert not any("北京" in s.title for s in bench.speeches)


def _evidence_once_and_in_its_region(speeches, answerable) -> None:
    """Every answerable item has evidence, each string once in the whole corpus and in its own region's report."""
    texts = {s.region: [normalize(p.text) for p in s.paragraphs] for s in speeches}
    everywhere = [t for ts in texts.values() for t in ts]
    for item in answerable:
        assert item.evidence, item.id
        for e in item.evidence:
            assert sum(normalize(e) in t for t in everywhere) == 1, (item.id, e)
            assert any(normalize(e) in t for t in texts[item.region]), (item.id, e)


def test_provincial_dev_is_a_dev_set_on_the_same_reports_and_only_the_regions_provincial_leaves_out():
    dev, held_out = load_benchmark("provincial-dev"), load_benchmark("provincial")
    assert not dev.internal_only and dev.skipped == () and dev.name == "provincial-dev"
    assert [s.speech_id for s in dev.speeches] == [s.speech_id for s in held_out.speeches]
    assert not {i.region for i in dev.items} & {i.region for i in held_out.items}
    answerable = [i for i in dev.items if i.answerable]
    assert len(answerable) >= 40 and len(dev.items) - len(answerable) >= 20
    assert all(i.region for i in dev.items) and not any("北京" in i.question for i in dev.items)
    _evidence_once_and_in_its_region(dev.speeches, answerable)


def _a_later_provincial_dev_set(
    name: str, earlier: tuple[str, ...], answerable_at_least: int, near_misses: int
):
    """What every provincial dev set after the first holds to: the held-out set's 30 reports, none of its regions,
    no question of an ``earlier`` set again, no Beijing, each answerable question's evidence once in the corpus and
    in its region's report, near misses with no evidence or key points. (the set, its answerable items, the dev
    regions of the first set)"""
    bench, held_out, first = (
        load_benchmark(name),
        load_benchmark("provincial"),
        load_benchmark("provincial-dev"),
    )
    assert not bench.internal_only and bench.skipped == () and bench.name == name
    assert [s.speech_id for s in bench.speeches] == [s.speech_id for s in held_out.speeches]
    assert not {i.region for i in bench.items} & {i.region for i in held_out.items}
    answerable = [i for i in bench.items if i.answerable]
    assert len(answerable) >= answerable_at_least and len(bench.items) - len(answerable) >= near_misses
    assert all(i.region for i in bench.items) and not any("北京" in i.question for i in bench.items)
    asked_before = {normalize(i.question) for n in earlier for i in load_benchmark(n).items}
    assert not {normalize(i.question) for i in bench.items} & asked_before
    _evidence_once_and_in_its_region(bench.speeches, answerable)
    assert all(not i.evidence and not i.key_points for i in bench.items if not i.answerable)
    return bench, answerable, {i.region for i in first.items}


def test_provincial_dev2_is_a_second_dev_set_on_the_same_reports_regions_and_new_questions():
    dev2, _, regions = _a_later_provincial_dev_set("provincial-dev2", ("provincial-dev",), 48, 22)
    assert {i.region for i in dev2.items} == regions


def test_provincial_dev3_is_a_third_dev_set_on_the_same_reports_regions_and_new_questions():
    earlier = ("provincial-dev", "provincial-dev2")
    dev3, _, regions = _a_later_provincial_dev_set("provincial-dev3", earlier, 46, 22)
    assert {i.region for i in dev3.items} == regions
    assert min(Counter(i.region for i in dev3.items).values()) >= 4


def test_provincial_dev4_is_a_fourth_dev_set_on_the_same_reports_regions_and_new_questions():
    earlier = ("provincial-dev", "provincial-dev2", "provincial-dev3")
    dev4, answerable, regions = _a_later_provincial_dev_set("provincial-dev4", earlier, 48, 20)
    # Answerable questions cover exactly the 13 dev regions; the only other regions are two places without a report.
    assert {i.region for i in answerable} == regions
    report_regions = {s.region for s in dev4.speeches}
    assert {i.region for i in dev4.items} - report_regions == {"厦门市", "青岛市"}
    assert all(not i.answerable for i in dev4.items if i.region not in report_regions)
    assert min(Counter(i.region for i in answerable).values()) >= 3


def test_provincial_dev5_is_a_fifth_dev_set_on_the_same_reports_regions_and_new_questions():
    earlier = ("provincial-dev", "provincial-dev2", "provincial-dev3", "provincial-dev4")
    dev5, answerable, regions = _a_later_provincial_dev_set("provincial-dev5", earlier, 48, 22)
    # Every question, answerable or not, is about one of the 13 dev regions (cities inside them carry their province).
    assert {i.region for i in dev5.items} == {i.region for i in answerable} == regions
    assert min(Counter(i.region for i in answerable).values()) >= 3


def test_national_dev_is_an_internal_dev_set_on_the_three_reports_with_its_evidence_in_their_passages():
    bench = load_benchmark("national-dev")
    assert bench.internal_only and bench.skipped == ()
    assert sorted((s.date, s.speaker) for s in bench.speeches) == [
        ("2023-03-05", "李克强"),
        ("2024-03-05", "李强"),
        ("2025-03-05", "李强"),
    ]
    assert {s.region for s in bench.speeches} == {"全国"}
    answerable = [i for i in bench.items if i.answerable]
    assert len(answerable) >= 40 and len(bench.items) - len(answerable) >= 30
    assert all(i.region == "全国" for i in bench.items)
    texts = [normalize(p.text) for s in bench.speeches for p in s.paragraphs]
    for item in answerable:
        assert item.evidence, item.id
        for e in item.evidence:
            assert sum(normalize(e) in t for t in texts) == 1, (item.id, e)


@needs_shared
def test_national_corpus_is_rebuilt_byte_identically_from_the_2023_to_2025_reports_only():
    spec = importlib.util.spec_from_file_location(
        "make_national", REPO / "data" / "corpora" / "make_national.py"
    )
    assert spec is not None and spec.loader is not None
    make_national = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_national)
    build = make_national.build

    src = SHARED / "gov_work_reports_national" / "government_work_reports.jsonl"
    rows = [json.loads(line) for line in src.read_text(encoding="utf-8").splitlines() if line.strip()]
    built = "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in build(rows))
    assert built == (REPO / "data" / "corpora" / "national-2023-2025.jsonl").read_text(encoding="utf-8")
    assert [s["year"] for s in build(rows)] == [2023, 2024, 2025]


def test_cpc_dev_is_an_internal_dev_set_on_the_three_congress_reports_with_new_questions():
    bench = load_benchmark("cpc-dev")
    assert bench.internal_only and bench.skipped == () and bench.name == "cpc-dev"
    # The 2012 text names no speaker, so none is set (see data/corpora/README.md).
    assert sorted((s.date, s.speaker) for s in bench.speeches) == [
        ("2012-11-08", ""),
        ("2017-10-18", "习近平"),
        ("2022-10-16", "习近平"),
    ]
    assert {s.region for s in bench.speeches} == {"全国"}
    answerable = [i for i in bench.items if i.answerable]
    assert len(answerable) >= 45 and len(bench.items) - len(answerable) >= 25
    assert all(i.region == "全国" for i in bench.items)
    # Every question names the congress or the year: the three reports discuss the same topics.
    assert all(any(m in i.question for m in ("十八大", "十九大", "二十大", "2012年")) for i in bench.items)
    texts = [normalize(p.text) for s in bench.speeches for p in s.paragraphs]
    for item in answerable:
        assert item.evidence, item.id
        for e in item.evidence:
            assert sum(normalize(e) in t for t in texts) == 1, (item.id, e)
    assert all(not i.evidence and not i.key_points for i in bench.items if not i.answerable)
    others = {
        normalize(json.loads(line)["question"])
        for path in sorted((REPO / "data" / "eval").glob("*.jsonl"))
        if path.name != "cpc_dev.jsonl"
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    }
    assert not {normalize(i.question) for i in bench.items} & others


@needs_shared
def test_cpc_corpus_is_rebuilt_byte_identically_from_the_18th_to_20th_congress_reports_only():
    spec = importlib.util.spec_from_file_location("make_cpc", REPO / "data" / "corpora" / "make_cpc.py")
    assert spec is not None and spec.loader is not None
    make_cpc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_cpc)

    src = SHARED / "gov_work_reports_national" / "cpc_congress_reports.jsonl"
    rows = [json.loads(line) for line in src.read_text(encoding="utf-8").splitlines() if line.strip()]
    built = "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in make_cpc.build(rows))
    assert built == (REPO / "data" / "corpora" / "cpc-2012-2022.jsonl").read_text(encoding="utf-8")
    assert [s["year"] for s in make_cpc.build(rows)] == [2012, 2017, 2022]


def test_every_registered_benchmark_has_a_loader_and_a_description():
    assert {
        "cmrc2018-unanswerable",
        "gold-test",
        "gold-dev",
        "gold-dev2",
        "provincial",
        "provincial-dev",
        "provincial-dev2",
        "provincial-dev3",
        "provincial-dev4",
        "provincial-dev5",
        "national-dev",
        "cpc-dev",
        "drcd",
    } <= set(BENCHMARKS)
    assert all(spec.description and callable(spec.load) for spec in BENCHMARKS.values())


def test_squad_corpus_gives_speeches_and_gold_in_one_call():
    from evaluation.datasets.squad import squad_corpus

    speeches, items = squad_corpus(parse_squad(_squad(3)), "t")
    pids = {p.paragraph_id for s in speeches for p in s.paragraphs}
    assert len(speeches) == 3 and len(items) == 8
    assert all(i.answerable and len(i.gold_passage_ids) == 1 and i.gold_passage_ids[0] in pids for i in items)
