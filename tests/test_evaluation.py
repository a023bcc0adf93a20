"""Evaluation: metrics on hand-made cases, gold parsing, compare and gates, benchmarks, the in-process run."""

from __future__ import annotations

import argparse
import json
import math
import re
import socket
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from data.errors import InputFileError, NotFoundError, SpeechQAError
from data.text import answer_sentences, strip_markers
from evaluation.backends import HttpBackend, ServiceBackend
from evaluation.gates import check_gates, compare_summaries, parse_gate
from evaluation.gold import GoldItem, parse_gold_lines
from evaluation.metrics import char_f1, citation_coverage, ndcg, normalize, retrieval_metrics
from evaluation.runner import SUMMARY_GROUPS, evaluate, summarize
from qa.types import Answer, Citation, Hit

REPO = Path(__file__).resolve().parents[1]

# ----------------------------------------------------------------------------------------------------
# A tiny fake answering side: fixed passages, a scripted answer per question


PASSAGES = {
    "p1": "2022年7月9日，区委理论学习中心组举行专题辅导报告会。",
    "p2": "市委研究室副主任王汝满作专题辅导报告。",
    "p3": "丽泽金融商务区要打造产业聚焦、北联南拓的金融新区。",
    "p4": "会议要求各部门抓好落实。",
    "p5": "蔡奇同志代表十二届市委所作的报告是纲领性文件。",
}

# The fake encoder has no answerability calibration: the learned and gated composers refuse to start with it.
FAKE_COMPOSER = "extractive-v1"


def hit(pid: str, score: float = 0.5) -> Hit:
    return Hit(pid, PASSAGES[pid], "s1", "讲话", "李国龙", "主任", "", score)


def cite(n: int, pid: str, quote: str | None = None, *, start: int | None = None) -> Citation:
    text = PASSAGES[pid]
    quote = quote if quote is not None else text
    begin = text.find(quote) if start is None else start
    return Citation(n, pid, "s1", "讲话", "李国龙", "主任", "", quote, begin, begin + len(quote), text, 0.5)


class FakeService:
    """Quacks like AnswerService: ``ask``, ``passage``, ``index_version``."""

    index_version = "fake-1"

    def __init__(self, script: Mapping[str, Answer]) -> None:
        self.script = script

    def ask(self, question: str, top_k: int = 5) -> Answer:
        if question not in self.script:
            raise SpeechQAError("question not scripted")
        return self.script[question]

    def passage(self, passage_id: str) -> dict[str, Any]:
        if passage_id not in PASSAGES:
            raise NotFoundError(f"no passage {passage_id}")
        return {"passage_id": passage_id, "text": PASSAGES[passage_id]}


def answer(
    q: str, text: str, *, answerable: bool = True, citations=(), related=("p1", "p2", "p3", "p4", "p5")
):
    return Answer(q, text, answerable, tuple(citations), tuple(hit(p) for p in related))


GOLD = [
    GoldItem("a", "报告会哪天举行？", True, (("2022年7月9日",),), ("2022年7月9日，区委理论学习中心组",)),
    GoldItem("b", "谁作的辅导报告？", True, (("王汝满",), ("市委研究室副主任",)), ("王汝满作专题辅导报告",)),
    GoldItem(
        "c",
        "丽泽要打造什么？",
        True,
        (("金融新区",),),
        ("北联南拓的金融新区",),
        reference_answer="北联南拓的金融新区",
    ),
    GoldItem("d", "地铁哪天开通？", False),
    GoldItem("e", "谁代表市委作报告？", False),
]
SCRIPT = {
    # Right answer, evidence at rank 1, one valid citation, marker after the full stop.
    "报告会哪天举行？": answer(
        "报告会哪天举行？", "报告会于２０２２年７月９日举行。[1]", citations=[cite(1, "p1")]
    ),
    # Evidence at rank 3; one key point of two; second sentence uncited; citation quote does not match offsets.
    "谁作的辅导报告？": answer(
        "谁作的辅导报告？",
        "王汝满作了报告[1]。他很重要。",
        citations=[cite(1, "p2", "王汝满作专题辅导报告", start=0)],
        related=("p4", "p5", "p2", "p1", "p3"),
    ),
    # False refusal; evidence not retrieved.
    "丽泽要打造什么？": answer(
        "丽泽要打造什么？", "没有找到依据。", answerable=False, related=("p4", "p5", "p1", "p2")
    ),
    # Correct refusal.
    "地铁哪天开通？": answer("地铁哪天开通？", "没有找到依据。", answerable=False),
    # False answer, citing a passage that does not resolve.
    "谁代表市委作报告？": answer(
        "谁代表市委作报告？",
        "蔡奇同志[1]。",
        citations=[Citation(1, "gone", "s1", "讲话", "", "", "", "蔡奇", 0, 2, "蔡奇同志", 0.4)],
    ),
}


@pytest.fixture(scope="module")
def fake_run():
    backend = ServiceBackend(FakeService(SCRIPT), source="fake")
    results = evaluate(GOLD, backend, k=5)
    return results, summarize(results, k=5, source="fake", index_version=backend.index_version)


# ----------------------------------------------------------------------------------------------------
# Normalization and text metrics


def test_normalize_unifies_width_and_drops_punctuation_space_and_markers():
    assert normalize("２０２２年７月９日") == normalize("2022年7月9日") == "2022年7月9日"
    assert normalize("“首都发展”，大讲堂！ [1]（一）") == "首都发展大讲堂一"
    assert normalize("ＡＢＣ abc") == "abcabc"
    assert normalize("6.4%") == normalize("６．４％")


def test_strip_markers_removes_markers_but_keeps_a_passages_own_full_width_number():
    assert strip_markers("发展[1][12]。推进［３］。") == "发展。推进[3]。"


def test_a_passages_own_full_width_number_is_not_a_citation_in_coverage():
    # The composer shows a quoted "[27]" full-width; the old evaluator NFKC-folded it back into a marker.
    assert citation_coverage("文件［27］规定了甲。乙很重要。[1]") == 0.5
    assert citation_coverage("依据筑府办发电[2020]5号。") == 0.0
    assert citation_coverage("依据筑府办发电[2020]5号[1]。") == 1.0


def test_char_f1_counts_characters_not_tokens():
    assert char_f1("北京市", "北京") == pytest.approx(0.8)
    assert char_f1("北京，[1]", "北京。") == 1.0
    assert char_f1("上海", "北京") == 0.0
    assert char_f1("", "北京") == 0.0


def test_answer_sentences_attach_a_marker_written_after_the_full_stop():
    sentences = answer_sentences("甲发展。[1]乙推进[2]。丙没有出处！")
    assert len(sentences) == 3
    assert ["[" in s for s in sentences] == [True, True, False]
    quoted = answer_sentences("总书记指出：“知屋漏者在宇下。”[1]要强化互联网思维。[2]")
    assert len(quoted) == 2 and all("[" in s for s in quoted)
    assert answer_sentences("第一行[1]\n第二行") == ["第一行[1]", "第二行"]


# ----------------------------------------------------------------------------------------------------
# Ranking metrics


def test_known_ranking_gives_known_mrr_and_ndcg():
    relevance = [False, True, False, True, False]
    m = retrieval_metrics(relevance, units_found=1, units_total=2, n_relevant=2)
    assert m["rr"] == 0.5
    assert (m["hit@1"], m["hit@3"], m["hit@5"]) == (0.0, 1.0, 1.0)
    assert m["recall@5"] == 0.5
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert m["ndcg@5"] == pytest.approx(expected)


def test_ndcg_is_one_for_a_perfect_ranking_and_zero_for_a_miss():
    assert ndcg([True, True, False], 5, 2) == pytest.approx(1.0)
    assert ndcg([False] * 5, 5, 1) == 0.0
    # Relevant only below the cut-off counts nothing at depth 5.
    assert retrieval_metrics([False] * 5 + [True], units_found=0, units_total=1, n_relevant=1)["hit@5"] == 0.0


def test_ndcg_stays_within_one_when_evidence_occurs_in_more_passages_than_the_gold_ids():
    item = GoldItem("g", "谁作报告？", True, (("王汝满",),), ("专题辅导报告",), gold_passage_ids=("p2",))
    backend = ServiceBackend(FakeService({item.question: answer(item.question, "没有。", answerable=False)}))
    (result,) = evaluate([item], backend)
    assert result.metrics["first_relevant_rank"] == 1  # p1 holds the evidence too
    assert result.metrics["ndcg@5"] == pytest.approx(1.0)


def test_a_bracketed_year_in_the_text_is_not_a_citation_marker():
    assert normalize("筑府办发电[2020]5号[1]") == "筑府办发电20205号"
    assert answer_sentences("依据筑府办发电[2020]5号。") == ["依据筑府办发电[2020]5号。"]


def test_a_sentence_citing_nothing_but_quoting_a_full_width_number_counts_as_uncited():
    # The composer shows a passage's own "[27]" as "［27］"; the old evaluator folded it back (NFKC) into a
    # marker and scored this answer's coverage 1.0.
    q = "文件规定了什么？"
    item = GoldItem("fw", q, True, (("甲",),))
    text = "文件［27］规定了甲。乙很重要。[1]"
    scripted = answer(q, text, citations=[cite(1, "p1")])
    (result,) = evaluate([item], ServiceBackend(FakeService({q: scripted})), k=5)
    assert result.metrics["citation_coverage"] == 0.5
    assert "uncited sentence" in result.failures


def test_key_point_first_asks_whether_the_first_quote_holds_a_key_point():
    """Issue 8's "the answer's first sentence carries the asked-for fact", measured: the same key points found,
    but only the answer that opens with the sentence stating one scores 1."""
    q = "谁作的专题辅导报告？"
    item = GoldItem("kf", q, True, (("王汝满",),))
    meeting, speaker = PASSAGES["p1"], PASSAGES["p2"]
    late = answer(q, f"{meeting}[1]{speaker}[2]", citations=[cite(1, "p1"), cite(2, "p2")])
    early = answer(q, f"{speaker}[1]{meeting}[2]", citations=[cite(1, "p2"), cite(2, "p1")])
    scores = []
    for scripted in (late, early):
        (result,) = evaluate([item], ServiceBackend(FakeService({q: scripted})), k=5)
        assert result.metrics["key_point_recall"] == 1.0
        scores.append(result.metrics["key_point_first"])
    assert scores == [0.0, 1.0]
    refused = GoldItem("kr", "没说的？", False, ())
    scripted = answer("没说的？", "根据现有讲话资料，无法回答该问题。", answerable=False)
    (result,) = evaluate([refused], ServiceBackend(FakeService({"没说的？": scripted})), k=5)
    assert result.metrics["key_point_first"] is None


# ----------------------------------------------------------------------------------------------------
# Gold file parsing


def test_malformed_gold_lines_are_reported_with_line_numbers_and_the_rest_runs():
    lines = [
        '{"id": "q1", "question": "谁？", "key_points": ["甲"], "evidence": ["甲乙"], "answerable": true}',
        "",
        '{"id": "q2", "question": "谁？", "answerable": true, "key_points": ["甲"]',
        '{"id": "q3", "key_points": ["甲"], "answerable": true}',
        '{"id": "q4", "question": "哪？", "key_points": ["甲"], "answerable": "yes"}',
        '{"id": "q1", "question": "又是谁？", "key_points": ["甲"], "answerable": true}',
        '{"id": "q5", "question": "哪？", "key_points": "甲", "answerable": true}',
        '["not", "an", "object"]',
        '{"id": "q6", "question": "哪年？", "answerable": false}',
        '{"id": "q7", "question": "什么？", "key_points": [["一", "1"], "二"], "key_points_any": ["x", "y"],'
        ' "answerable": true, "reference_answer": "一二"}',
    ]
    gold = parse_gold_lines(lines)
    assert [i.id for i in gold.items] == ["q1", "q6", "q7"]
    skipped = {s.line: s.error for s in gold.skipped}
    assert set(skipped) == {3, 4, 5, 6, 7, 8}
    assert "invalid JSON" in skipped[3]
    assert '"question"' in skipped[4]
    assert '"answerable"' in skipped[5] and '"yes"' in skipped[5]
    assert "duplicate id" in skipped[6] and "line 1" in skipped[6]
    assert '"key_points"' in skipped[7]
    assert "JSON object" in skipped[8]
    assert gold.items[2].key_points == (("一", "1"), ("二",), ("x", "y"))
    assert gold.items[2].line == 10


def test_the_shipped_gold_set_parses_cleanly():
    from evaluation.gold import load_gold

    gold = load_gold(REPO / "data" / "eval" / "gold.jsonl")
    assert gold.skipped == ()
    assert len(gold.items) >= 50
    assert any(not i.answerable for i in gold.items)


# ----------------------------------------------------------------------------------------------------
# A scripted run: per-question metrics and the summary


def test_scripted_run_scores_each_question(fake_run):
    results, _ = fake_run
    by_id = {r.item.id: r for r in results}
    a, b, c, d, e = (by_id[x] for x in "abcde")

    assert a.metrics["rr"] == 1.0 and a.metrics["key_point_recall"] == 1.0
    assert a.metrics["citation_valid"] == 1.0 and a.metrics["citation_precision"] == 1.0
    assert a.metrics["citation_coverage"] == 1.0
    assert a.failures == ()

    assert b.metrics["first_relevant_rank"] == 3 and b.metrics["rr"] == pytest.approx(1 / 3)
    assert b.metrics["key_point_recall"] == 0.5
    assert b.metrics["citation_coverage"] == 0.5
    assert b.citations[0]["problem"] == "passage_text[start:end] != quote"
    assert {"key points missing", "citation not verbatim", "uncited sentence"} <= set(b.failures)

    assert c.metrics["hit@5"] == 0.0 and c.metrics["key_point_recall"] == 0.0 and c.metrics["char_f1"] == 0.0
    assert "false refusal" in c.failures and "evidence not retrieved" in c.failures

    assert d.metrics["abstention_correct"] == 1.0 and d.failures == ()
    assert d.metrics["hit@1"] is None  # no retrieval metrics for unanswerable questions

    assert e.citations[0]["problem"] == "passage id does not resolve"
    assert "false answer" in e.failures


def test_summary_has_exactly_the_documented_groups_with_known_values(fake_run):
    _, summary = fake_run
    for group, keys in SUMMARY_GROUPS.items():
        assert set(keys) <= set(summary[group]), group
    assert summary["n"] == 5 and summary["skipped"] == 0 and summary["errors"] == 0
    r = summary["retrieval"]
    assert r["hit@1"] == pytest.approx(1 / 3, abs=1e-4)
    assert r["hit@5"] == pytest.approx(2 / 3, abs=1e-4)
    assert r["mrr"] == pytest.approx((1 + 1 / 3 + 0) / 3, abs=1e-4)
    assert summary["answer"]["key_point_recall"] == pytest.approx((1 + 0.5 + 0) / 3, abs=1e-4)
    assert summary["answer"]["char_f1"] == 0.0
    ab = summary["abstention"]
    assert ab["accuracy"] == pytest.approx(3 / 5)
    assert ab["false_refusals"] == pytest.approx(1 / 3, abs=1e-4)
    assert ab["false_answers"] == pytest.approx(0.5)
    assert summary["citations"]["valid"] == pytest.approx(1 / 3, abs=1e-4)
    assert (
        summary["latency_ms"]["p50"] is not None
        and summary["latency_ms"]["max"] >= summary["latency_ms"]["p95"]
    )
    assert summary["index_version"] == "fake-1"


def test_metrics_without_data_are_null():
    results = evaluate([GOLD[0]], ServiceBackend(FakeService(SCRIPT)), k=5)
    summary = summarize(results)
    assert summary["answer"]["char_f1"] is None
    assert summary["abstention"]["false_answers"] is None


def test_a_failing_question_is_recorded_and_the_rest_still_runs():
    items = [GOLD[0], GoldItem("x", "没有脚本的问题", True, (("甲",),))]
    results = evaluate(items, ServiceBackend(FakeService(SCRIPT)), k=5, concurrency=2)
    assert [r.item.id for r in results] == ["a", "x"]
    assert results[1].error and "not scripted" in results[1].error
    summary = summarize(results)
    assert summary["errors"] == 1 and summary["abstention"]["accuracy"] == 1.0


def test_result_rows_carry_answer_citations_retrieved_ids_and_metrics(fake_run):
    results, _ = fake_run
    row = json.loads(json.dumps(results[0].to_json(), ensure_ascii=False))
    assert row["answer"].startswith("报告会")
    assert row["retrieved_ids"] == ["p1", "p2", "p3", "p4", "p5"]
    assert row["citations"][0]["passage_id"] == "p1"
    assert {"hit@1", "recall@5", "rr", "ndcg@5", "key_point_recall", "citation_valid"} <= set(row["metrics"])


# ----------------------------------------------------------------------------------------------------
# Over HTTP


def _fake_server(request: httpx.Request) -> httpx.Response:
    """Serves the scripted answers through the API's own wire models, as the real server does."""
    from api.schemas import AnswerOut, PassageDetailOut

    if request.url.path == "/healthz":
        return httpx.Response(200, json={"status": "ok", "index_version": "v-http"})
    if request.url.path == "/v1/ask":
        question = json.loads(request.content)["question"]
        timed = replace(
            SCRIPT[question],
            timing_ms={"retrieve": 0.5, "compose": 0.5, "total": 1.0},
            index_version="v-http",
        )
        return httpx.Response(200, content=AnswerOut.of(timed).model_dump_json())
    if request.url.path.startswith("/v1/passages/"):
        pid = request.url.path.rsplit("/", 1)[1]
        if pid in PASSAGES:
            body = PassageDetailOut(
                passage_id=pid,
                text=PASSAGES[pid],
                speech_id="s1",
                speech_title="讲话",
                speaker="李国龙",
                speaker_role="主任",
                section="",
                prev_id=None,
                next_id=None,
            )
            return httpx.Response(200, content=body.model_dump_json())
        return httpx.Response(404, json={"detail": "not found", "code": "not_found"})
    return httpx.Response(404)


def test_http_backend_gives_the_same_metrics_as_in_process(fake_run):
    _, in_process = fake_run
    backend = HttpBackend.connect("http://speechqa.test", transport=httpx.MockTransport(_fake_server))
    results = evaluate(GOLD, backend, k=5, concurrency=3)
    summary = summarize(results, source=backend.source, index_version=backend.index_version)
    for group in ("retrieval", "answer", "citations", "abstention"):
        assert summary[group] == in_process[group], group
    assert summary["index_version"] == "v-http"


def test_http_backend_rejects_a_body_that_is_not_the_api_schema():
    def server(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/healthz":
            return httpx.Response(200, json={"status": "ok"})
        return httpx.Response(200, json={"answer": "甲", "answerable": True, "citations": [{"n": 1}]})

    backend = HttpBackend.connect("http://speechqa.test", transport=httpx.MockTransport(server))
    with pytest.raises(SpeechQAError, match="not a valid AnswerOut"):
        backend.ask("谁？", 5)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_url_fails_fast_with_a_clear_message():
    started = time.monotonic()
    with pytest.raises(SpeechQAError, match="cannot reach the speechqa server"):
        HttpBackend.connect(f"http://127.0.0.1:{_closed_port()}")
    assert time.monotonic() - started < 5


# ----------------------------------------------------------------------------------------------------
# Compare and gates (through the CLI entry point)


def _eval_args(**overrides: Any) -> argparse.Namespace:
    from cli.eval import add_eval_parser

    parser = argparse.ArgumentParser(prog="speechqa")
    add_eval_parser(parser.add_subparsers(dest="command"))
    argv = ["eval"]
    for key, value in overrides.items():
        flag = "--" + key.replace("_", "-")
        for v in value if isinstance(value, list) else [value]:
            argv += (
                [flag, *(str(x) for x in (v if isinstance(v, tuple) else (v,)))] if v is not True else [flag]
            )
    return parser.parse_args(argv)


@pytest.fixture
def two_summaries(tmp_path, fake_run):
    _, summary = fake_run
    better = json.loads(json.dumps(summary))
    better["answer"]["key_point_recall"] = 0.9
    better["abstention"]["false_refusals"] = 0.05
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(summary), encoding="utf-8")
    b.write_text(json.dumps(better), encoding="utf-8")
    return a, b


def test_compare_prints_metric_a_b_and_delta(two_summaries, capsys):
    from api.settings import Settings
    from cli.eval import run_eval

    a, b = two_summaries
    assert run_eval(_eval_args(compare=(a, b)), Settings()) == 0
    out = capsys.readouterr().out
    assert "| metric | A | B | delta |" in out
    line = next(x for x in out.splitlines() if x.startswith("| answer.key_point_recall "))
    assert "0.500" in line and "0.900" in line and "+0.400" in line and "better" in line
    line = next(x for x in out.splitlines() if x.startswith("| abstention.false_refusals "))
    assert "-0.283" in line and "better" in line


def test_compare_deltas_know_which_way_is_better():
    deltas = {
        d.metric: d for d in compare_summaries({"latency_ms": {"p95": 100.0}}, {"latency_ms": {"p95": 80.0}})
    }
    assert deltas["latency_ms.p95"].delta == -20.0 and deltas["latency_ms.p95"].better is True


def test_fail_under_and_fail_over_exit_non_zero_naming_the_metric(two_summaries, capsys):
    from api.settings import Settings
    from cli.eval import run_eval

    a, b = two_summaries
    ok = _eval_args(
        compare=(a, b), fail_under="answer.key_point_recall=0.85", fail_over="abstention.false_refusals=0.1"
    )
    assert run_eval(ok, Settings()) == 0
    capsys.readouterr()
    bad = _eval_args(compare=(b, a), fail_under=["answer.key_point_recall=0.85", "retrieval.mrr=0.1"])
    assert run_eval(bad, Settings()) == 1
    out = capsys.readouterr().out
    assert "answer.key_point_recall" in out and "retrieval.mrr" not in out.split("FAIL")[-1]
    over = _eval_args(compare=(b, a), fail_over="abstention.false_refusals=0.1")
    assert run_eval(over, Settings()) == 1
    assert "FAIL abstention.false_refusals" in capsys.readouterr().out


def test_gates_reject_unknown_metrics_and_bad_specs(two_summaries, fake_run, capsys):
    from api.settings import Settings
    from cli.eval import run_eval

    _, summary = fake_run
    with pytest.raises(SpeechQAError, match="answer.kp_recall"):
        check_gates(summary, [parse_gate("answer.kp_recall=0.5", "under")])
    with pytest.raises(ValueError, match="METRIC=VALUE"):
        parse_gate("answer.key_point_recall", "under")
    a, b = two_summaries
    assert run_eval(_eval_args(compare=(a, b), fail_under="answer.kp=0.5"), Settings()) == 2
    assert "unknown metric answer.kp" in capsys.readouterr().err
    # A metric without data cannot pass its gate.
    assert check_gates({"answer": {"char_f1": None}}, [parse_gate("answer.char_f1=0.1", "under")])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"benchmark": "ncp", "url": "http://127.0.0.1:1"}, "--index and --url do not apply"),
        ({"data": "/tmp"}, "use it with --benchmark"),
        ({"benchmark": "gold-test", "data": "/tmp"}, "--data applies to the public data sets only"),
        ({"concurrency": 0}, "at least 1"),
        ({"fail_under": "answer.recall=0.5"}, "unknown metric answer.recall"),
    ],
)
def test_cli_rejects_bad_option_combinations_before_running(tmp_path, capsys, options, message):
    from api.settings import Settings
    from cli.eval import run_eval

    args = _eval_args(out=tmp_path / "out", **options)
    assert run_eval(args, Settings(home=tmp_path)) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_with_unreachable_url_exits_2_fast(tmp_path, capsys):
    from api.settings import Settings
    from cli.eval import run_eval

    gold = tmp_path / "gold.jsonl"
    gold.write_text(
        '{"id": "q", "question": "谁？", "key_points": ["甲"], "answerable": true}\n', encoding="utf-8"
    )
    args = _eval_args(url=f"http://127.0.0.1:{_closed_port()}", out=tmp_path / "out")
    args.file = gold
    assert run_eval(args, Settings(home=tmp_path)) == 2
    assert "cannot reach the speechqa server" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------------------------------
# The report


def test_report_escapes_text_and_needs_nothing_from_the_network(fake_run, tmp_path):
    from evaluation.report import render_report

    results, summary = fake_run
    rows = [r.to_json() for r in results]
    rows[1]["question"] = '<script>alert("x")</script> 谁？'
    rows[1]["answer"] = "<img src=x onerror=alert(1)>[1]"
    page = render_report(summary, rows)
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;" in page and '<sup class="m">[1]</sup>' in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page and "@import" not in page
    assert not re.search(r"<[^>]*\s(src|href)=", page)  # no tag loads or links anything
    assert page.count("<svg") >= 3
    assert 'id="summary"' in page and "key_point_recall" in page
    assert page.count('class="failure"') == sum(1 for r in rows if r["failures"])


def test_report_marks_only_real_citation_markers(fake_run):
    from evaluation.report import render_report

    results, summary = fake_run
    rows = [r.to_json() for r in results]
    rows[1]["answer"] = "依据筑府办发电[2020]5号和文件［27］。甲[1]。"
    page = render_report(summary, [rows[1]])  # a failing row, so its answer is shown
    assert page.count('<sup class="m">') == 1
    assert "[2020]5号" in page and "［27］" in page and '<sup class="m">[1]</sup>' in page


def test_report_shows_benchmark_licence_and_internal_warning(fake_run):
    from evaluation.report import render_report, summary_markdown

    results, summary = fake_run
    summary = {
        **summary,
        "benchmark": {"name": "ncp", "licence": "License: NONE.", "internal_only": True, "data": "x"},
    }
    page = render_report(summary, [r.to_json() for r in results])
    assert "License: NONE." in page and "Internal evaluation only" in page
    md = summary_markdown(summary)
    assert "| answer.key_point_recall |" in md and "(ncp)" in md


# ----------------------------------------------------------------------------------------------------
# Benchmarks


def test_chunking_ends_at_full_stops_near_the_target_size():
    from evaluation.datasets.common import chunk_text

    text = "".join(f"第{i}句话说的是一件比较长的事情，需要写得足够长才行。" for i in range(40))
    spans = chunk_text(text, target=100)
    assert "".join(text[a:b] for a, b in spans) == text
    assert all(text[a:b].endswith("。") for a, b in spans)
    assert all(b - a <= 100 for a, b in spans)
    long = "没有句号" * 200
    assert max(b - a for a, b in chunk_text(long, target=100)) <= 150


def test_licence_line_includes_its_continuation(tmp_path):
    from evaluation.datasets.common import licence_line

    md = tmp_path / "SOURCE.md"
    md.write_text(
        "# X\n- Repository: r\n- License: NONE. No file;\n  internal only.\n- Not copied: y\n",
        encoding="utf-8",
    )
    assert licence_line(md) == "License: NONE. No file; internal only."
    assert "unknown" in licence_line(tmp_path / "missing.md")


def test_missing_benchmark_data_is_a_clear_error(tmp_path):
    from evaluation.datasets.common import find_data_file

    with pytest.raises(InputFileError, match="no rgb data found") as info:
        find_data_file("rgb", "rgb_zh", "zh_refine.json", tmp_path / "nowhere")
    assert "--data" in (info.value.fix or "")


def test_converters_map_gold_to_passage_ids():
    from evaluation.datasets.cmrc2018 import convert as convert_cmrc2018
    from evaluation.datasets.ncp import convert_ncp
    from evaluation.datasets.rgb import convert_rgb
    from evaluation.datasets.squad import parse_squad

    cmrc = {
        "data": [
            {
                "id": "D0",
                "title": "甲",
                "paragraphs": [
                    {
                        "id": "D0",
                        "context": "甲公司由张三创立于1990年，总部位于北京市海淀区中关村大街一号。",
                        "qas": [
                            {
                                "id": "Q0",
                                "question": "谁创立了甲公司？",
                                "answers": [
                                    {"text": "张三", "answer_start": 3},
                                    {"text": "张三", "answer_start": 3},
                                ],
                            }
                        ],
                    }
                ],
            },
            {
                "id": "D1",
                "title": "乙",
                "paragraphs": [
                    {
                        "id": "D1",
                        "context": "乙公司由李四创立于2001年，总部位于上海市浦东新区世纪大道一百号。",
                        "qas": [],
                    }
                ],
            },
        ]
    }
    speeches, items = convert_cmrc2018(parse_squad(cmrc))
    assert len(speeches) == 2 and len(items) == 1
    assert items[0].key_points == (("张三",),)
    assert items[0].gold_passage_ids == (speeches[0].paragraphs[0].paragraph_id,)
    assert items[0].evidence[0] in speeches[0].paragraphs[0].text

    rgb = [
        {
            "id": 0,
            "query": "几人？",
            "answer": ["12人", "十二人"],
            "positive": ["共12人死亡。"],
            "negative": ["别的。", "共12人死亡。 "],
        },
        {
            "id": 1,
            "query": "多少？",
            "answer": [["131万", "1313851"], ["4次"]],
            "positive": ["131万人，4次。"],
            "negative": [],
        },
    ]
    speeches, items = convert_rgb(rgb)
    assert len(speeches) == 3  # deduplicated, spacing ignored
    assert items[0].key_points == (("12人", "十二人"),)
    assert items[1].key_points == (("131万", "1313851"), ("4次",))
    assert len(items[0].gold_passage_ids) == 1

    context = "某市通知 " + "一般性内容说明。" * 50 + "企业可以申请延期缴纳社会保险费。" + "其他。" * 10
    start = context.index("企业可以")
    ncp = [
        {
            "id": "n1",
            "docid": "abc",
            "context": context,
            "question": "企业可以怎样？",
            "answer": {"text": "企业可以申请延期缴纳社会保险费", "span": [start, start + 14]},
        }
    ]
    speeches, items = convert_ncp(ncp)
    assert speeches[0].title == "某市通知" and len(speeches[0].paragraphs) > 1
    gold = {p.paragraph_id: p.text for p in speeches[0].paragraphs}
    assert all("企业可以" in gold[pid] or "保险费" in gold[pid] for pid in items[0].gold_passage_ids)
    assert items[0].reference_answer == "企业可以申请延期缴纳社会保险费"


@pytest.mark.skipif(
    not (REPO.parent / "shared" / "benchmarks").is_dir(), reason="shared benchmarks not present"
)
@pytest.mark.parametrize(
    ("name", "documents", "questions"), [("cmrc2018", 848, 3219), ("rgb", 7259, 300), ("ncp", 58, 58)]
)
def test_shipped_benchmarks_convert(name, documents, questions):
    from evaluation.datasets import load_benchmark

    bench = load_benchmark(name)
    assert len(bench.items) == questions
    assert len(bench.speeches) == documents
    assert bench.licence.startswith("License:")
    ids = {p.paragraph_id for s in bench.speeches for p in s.paragraphs}
    assert all(set(i.gold_passage_ids) <= ids and i.gold_passage_ids for i in bench.items)
    assert bench.internal_only == (name == "ncp")
    assert len(load_benchmark(name, limit=5).items) == 5


# ----------------------------------------------------------------------------------------------------
# The real service in-process (fake encoder, real index), through the CLI entry point


def test_in_process_eval_of_the_gold_set_writes_results_summary_and_report(
    fake_index_dir, fake_encoder, tmp_path, monkeypatch, capsys
):
    from api.settings import Settings
    from cli import eval as cli_eval

    monkeypatch.setattr(cli_eval, "build_encoder", lambda settings: fake_encoder)
    out = tmp_path / "out"
    args = _eval_args(index=fake_index_dir, out=out, no_progress=True, concurrency=2)
    args.file = REPO / "data" / "eval" / "gold.jsonl"
    assert cli_eval.run_eval(args, Settings(home=tmp_path / "home", composer=FAKE_COMPOSER)) == 0

    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    n = len(rows)
    assert summary["n"] == n >= 50 and summary["skipped"] == 0 and summary["errors"] == 0
    for group, keys in SUMMARY_GROUPS.items():
        assert set(keys) <= set(summary[group])
    assert summary["retrieval"]["n"] == sum(1 for r in rows if r["answerable"])
    assert 0 < summary["retrieval"]["hit@5"] <= 1
    # The service checks its own citations, so every one must be verbatim and resolvable by id.
    assert summary["citations"]["n_citations"] > 0
    assert summary["citations"]["valid"] == 1.0
    assert summary["index_version"] and summary["source"].startswith("in-process:")
    assert all(len(r["retrieved_ids"]) == 5 for r in rows)
    assert all({"hit@1", "rr", "key_point_recall", "abstention_correct"} <= set(r["metrics"]) for r in rows)
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("<svg") >= 3 and page.count('class="failure"') == sum(1 for r in rows if r["failures"])
    stdout = capsys.readouterr().out
    assert "| retrieval.hit@1 |" in stdout and "report.html" in stdout


def test_malformed_gold_lines_are_counted_in_the_summary(
    fake_index_dir, fake_encoder, tmp_path, monkeypatch, capsys
):
    from api.settings import Settings
    from cli import eval as cli_eval

    monkeypatch.setattr(cli_eval, "build_encoder", lambda settings: fake_encoder)
    gold = tmp_path / "gold.jsonl"
    good = (REPO / "data" / "eval" / "gold.jsonl").read_text(encoding="utf-8").splitlines()[:3]
    gold.write_text(
        "\n".join([good[0], "{broken", good[1], '{"id": "x", "answerable": true}', good[2]]) + "\n", "utf-8"
    )
    args = _eval_args(index=fake_index_dir, out=tmp_path / "out", no_progress=True)
    args.file = gold
    assert cli_eval.run_eval(args, Settings(home=tmp_path / "home", composer=FAKE_COMPOSER)) == 0
    err = capsys.readouterr().err
    assert f"{gold}:2: skipped: invalid JSON" in err and f"{gold}:4: skipped:" in err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["n"] == 3 and summary["skipped"] == 2
    assert [s["line"] for s in summary["skipped_lines"]] == [2, 4]


@pytest.mark.skipif(
    not (REPO.parent / "shared" / "benchmarks").is_dir(), reason="shared benchmarks not present"
)
def test_benchmark_run_builds_a_temporary_index_and_reports_the_licence(
    fake_encoder, tmp_path, monkeypatch, capsys
):
    from api.settings import Settings
    from cli import eval as cli_eval

    monkeypatch.setattr(cli_eval, "build_encoder", lambda settings: fake_encoder)
    out = tmp_path / "out"
    settings = Settings(home=tmp_path / "home", composer=FAKE_COMPOSER)
    args = _eval_args(benchmark="ncp", limit=4, out=out, no_progress=True)
    assert cli_eval.run_eval(args, settings) == 0
    stdout = capsys.readouterr().out
    assert "internal evaluation only" in stdout and "License: NONE" in stdout
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["n"] == 4 and summary["source"] == "benchmark:ncp"
    assert summary["benchmark"]["licence"].startswith("License: NONE")
    assert summary["answer"]["char_f1"] is not None  # ncp carries reference answers
    assert settings.cache_path.exists()  # reruns reuse the embeddings
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "License: NONE" in page and "Internal evaluation only" in page


# ----------------------------------------------------------------------------------------------------
# The real path: real model, real index, a real server on 127.0.0.1


@pytest.mark.slow
def test_http_and_in_process_runs_agree_on_every_quality_metric(real_service, live_server):
    from evaluation.gold import load_gold

    items = load_gold(REPO / "data" / "eval" / "gold.jsonl").items[:20]
    local = summarize(evaluate(items, ServiceBackend(real_service), k=5))
    backend = HttpBackend.connect(live_server)
    try:
        remote = summarize(evaluate(items, backend, k=5, concurrency=4))
    finally:
        backend.close()
    for group in ("retrieval", "answer", "citations", "abstention"):
        assert remote[group] == local[group], group
    assert remote["errors"] == 0 and remote["citations"]["valid"] in (1.0, None)


# ----------------------------------------------------------------------------------------------------
# Named benchmarks of our own data, the leave-the-paragraph-out set, and the composer hook


def test_gold_test_benchmark_runs_through_the_cli_on_a_temporary_index(
    fake_encoder, tmp_path, monkeypatch, capsys
):
    from api.settings import Settings
    from cli import eval as cli_eval

    monkeypatch.setattr(cli_eval, "build_encoder", lambda settings: fake_encoder)
    out = tmp_path / "out"
    args = _eval_args(benchmark="gold-test", limit=6, out=out, no_progress=True)
    assert cli_eval.run_eval(args, Settings(home=tmp_path / "home", composer=FAKE_COMPOSER)) == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["n"] == 6 and summary["source"] == "benchmark:gold-test"
    assert summary["benchmark"]["data"].endswith("gold_test.jsonl")


@pytest.mark.skipif(
    not (REPO.parent / "shared" / "benchmarks").is_dir(), reason="shared benchmarks not present"
)
def test_cmrc2018_unanswerable_limit_keeps_half_unanswerable_and_reports_the_construction(
    fake_encoder, tmp_path, monkeypatch
):
    from api.settings import Settings
    from cli import eval as cli_eval

    monkeypatch.setattr(cli_eval, "build_encoder", lambda settings: fake_encoder)
    out = tmp_path / "out"
    args = _eval_args(benchmark="cmrc2018-unanswerable", limit=8, out=out, no_progress=True)
    assert cli_eval.run_eval(args, Settings(home=tmp_path / "home", composer=FAKE_COMPOSER)) == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["abstention"]["n_answerable"] == summary["abstention"]["n_unanswerable"] == 4
    assert summary["benchmark"]["paragraphs_held_out"] == 192
    assert summary["abstention"]["false_answers"] is not None


def test_composer_option_reaches_the_service_options_when_settings_know_composers(tmp_path):
    from api.assemble import service_options
    from api.settings import Settings
    from evaluation.backends import with_composer

    class WithComposers(Settings):
        composer: str = "learned"

    settings = WithComposers(home=tmp_path)
    assert with_composer(settings, "extractive-v1").composer == "extractive-v1"
    assert with_composer(settings, None) is settings
    plain = Settings(home=tmp_path)
    # A build without a composer registry runs its one composer: the option is a no-op, not a crash.
    assert service_options(with_composer(plain, "gated")) == service_options(plain)


def test_composer_and_url_together_are_rejected(tmp_path, capsys):
    from api.settings import Settings
    from cli.eval import run_eval

    args = _eval_args(url="http://127.0.0.1:1", composer="learned", out=tmp_path / "out")
    assert run_eval(args, Settings(home=tmp_path)) == 2
    assert "--composer" in capsys.readouterr().err


def test_answer_table_has_one_row_per_set_and_composer_with_the_five_numbers(fake_run):
    from evaluation.report import ANSWER_TABLE_COLUMNS, answer_table

    _, summary = fake_run
    table = answer_table([("gold-test", "extractive-v1", summary), ("gold-test", "learned", summary)])
    lines = table.splitlines()
    assert all(c in lines[0] for c in ANSWER_TABLE_COLUMNS) and len(lines) == 4
    # false_answers 0.5 -> unanswerable refused 0.500; false_refusals 1/3; citations valid 1/3.
    assert lines[2].startswith("| gold-test (3 answerable, 2 unanswerable) | extractive-v1 | 0.500 | 0.333 |")
