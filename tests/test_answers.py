"""Answer composition: citation invariants, refusal, metadata answers, follow-ups, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest

from qa.compose import REFUSAL, check_citations
from qa.index import load_index
from qa.service import AnswerService
from qa.types import Citation, Filters

from .conftest import GOLD, REPO, speechqa_home


def _gold():
    return [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]


def _citation(n, p, start, end, quote=None):
    return Citation(
        n=n,
        passage_id=p.paragraph_id,
        speech_id=p.speech_id,
        speech_title="",
        speaker="",
        speaker_role="",
        section=p.section,
        quote=quote if quote is not None else p.text[start:end],
        start=start,
        end=end,
        passage_text=p.text,
        score=1.0,
    )


def test_check_citations_catches_every_broken_invariant(fake_index_dir, fake_encoder):
    index = load_index(fake_index_dir, fake_encoder)
    p = index.paragraph(0)
    good = _citation(1, p, 0, 5)
    assert check_citations("甲[1]", [good], index) == []
    assert check_citations("甲[2]", [_citation(2, p, 0, 5)], index)  # not numbered from 1
    assert check_citations("甲[1]乙[2]", [good], index)  # marker without citation
    assert check_citations("甲", [good], index)  # citation never used
    assert check_citations("甲[1]", [_citation(1, p, 0, 5, quote="不对的引文")], index)  # not verbatim
    assert check_citations("甲[1]", [replace(good, passage_id="nope")], index)  # unknown passage


def test_questions_are_validated(fake_index_dir, fake_encoder):
    from data.errors import InvalidQuestionError

    service = AnswerService(load_index(fake_index_dir, fake_encoder), fake_encoder, composer="extractive-v1")
    for bad in ["", "   ", "问" * 501, None]:
        with pytest.raises(InvalidQuestionError):
            service.ask(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidQuestionError):
        service.ask("地铁", top_k=0)


def test_a_question_typed_another_way_is_read_and_answered_as_the_plain_one(fake_index_dir, fake_encoder):
    """Full-width digits and letters, spaces between words, a greeting or 请问 before it, no question mark or an
    ASCII one: the same question, read the same and answered the same; what the user typed is echoed back."""
    from qa.terms import as_asked

    service = AnswerService(load_index(fake_index_dir, fake_encoder), fake_encoder, composer="extractive-v1")
    plain = "2024年丽泽商务区GDP增长多少？"
    typed = [
        "２０２４年丽泽商务区ＧＤＰ增长多少？",
        "2024年 丽泽商务区 GDP 增长多少？",
        "请问2024年丽泽商务区GDP增长多少？",
        "你好，请问一下，2024年丽泽商务区GDP增长多少",
        "2024年丽泽商务区GDP增长多少?",
        "2024年丽泽商务区GDP增长多少呢？",
    ]
    expected = service.ask(plain)
    for question in typed:
        assert service.reading(question) == service.reading(plain), question
        answer = service.ask(question)
        assert answer.question == question.strip()
        assert (answer.answer, answer.citations) == (expected.answer, expected.citations), question
    # Only what a user's typing changes: Latin words keep their space, a statement keeps its full stop.
    assert as_asked("iPhone SE 3的起售价是多少？") == "iPhone SE 3的起售价是多少？"
    assert as_asked("介绍一下丽泽商务区。") == "介绍一下丽泽商务区。"
    assert as_asked("那江苏省呢？") == "那江苏省呢？"


def test_follow_up_is_read_with_the_previous_question(fake_index_dir, fake_encoder):
    service = AnswerService(load_index(fake_index_dir, fake_encoder), fake_encoder, composer="extractive-v1")
    q = service.retrieval_query("那丰台园呢？", ["丽泽商务区有哪些交通建设安排？"])
    assert q.startswith("丽泽商务区有哪些交通建设安排？") and q.endswith("那丰台园呢？")
    assert (
        service.retrieval_query("中关村丰台园的主导产业是什么？", ["之前的问题"])
        == "中关村丰台园的主导产业是什么？"
    )


def test_follow_up_naming_a_new_region_asks_about_that_region_alone(tmp_path, fake_encoder):
    from data.parse import make_speech
    from qa.index import build_index

    speeches = [
        make_speech(
            title=f"2025年{region}政府工作报告", paragraphs=[("", f"{region}今年经济增长目标为百分之五。")]
        )
        for region in ("浙江省", "江苏省")
    ]
    build_index(speeches, fake_encoder, tmp_path / "idx")
    service = AnswerService(
        load_index(tmp_path / "idx", fake_encoder), fake_encoder, composer="extractive-v1"
    )
    q = service.retrieval_query("那江苏省呢？", ["浙江省2025年经济增长目标是多少？"])
    assert q == "江苏省2025年经济增长目标是多少？"
    assert service.retriever.mentioned_speeches(q) == (speeches[1].speech_id,)


def test_follow_up_naming_a_year_asks_the_previous_question_of_that_year(fake_index_dir, fake_encoder):
    service = AnswerService(load_index(fake_index_dir, fake_encoder), fake_encoder, composer="extractive-v1")
    previous = "吉林2025年地区生产总值增长目标是多少？"
    for follow_up in ("2024年呢？", "那2024年的呢？", "2024年呢", "那 2024年呢？"):
        assert service.retrieval_query(follow_up, [previous]) == "吉林2024年地区生产总值增长目标是多少？", (
            follow_up
        )
    assert service.retrieval_query("去年呢？", ["吉林今年GDP增长多少？"]) == "吉林去年GDP增长多少？"
    # A previous question naming no year is asked of the one named; "比上年" compares, it names no year.
    assert service.retrieval_query("2023年呢？", ["丽泽商务区有多少企业？"]) == "2023年丽泽商务区有多少企业？"
    assert (
        service.retrieval_query("2023年呢？", ["吉林GDP比上年增长多少？"]) == "2023年吉林GDP比上年增长多少？"
    )
    # A follow-up with more than a year is not a year follow-up.
    assert "那2024年的就业呢？" in service.retrieval_query("那2024年的就业呢？", [previous])


@pytest.mark.slow
def test_every_gold_answer_has_verbatim_citations_numbered_in_order(real_service):
    answers = [(g, real_service.ask(g["question"])) for g in _gold()]
    for g, a in answers:
        assert check_citations(a.answer, a.citations, real_service.index) == [], g["id"]
        for c in a.citations:
            assert c.passage_text[c.start : c.end] == c.quote
    refusals = [a for _, a in answers if not a.answerable]
    assert refusals, "no gold question was refused, so the refusal shape went unchecked"
    for a in refusals:
        assert a.answer == REFUSAL and not a.citations and a.related


@pytest.mark.slow
def test_unanswerable_questions_are_refused_and_answerable_ones_mostly_answered(real_service):
    gold = _gold()
    unans = [g for g in gold if not g["answerable"]]
    ans = [g for g in gold if g["answerable"]]
    refused = [g["id"] for g in unans if not real_service.ask(g["question"]).answerable]
    false_refusals = [g["id"] for g in ans if not real_service.ask(g["question"]).answerable]
    assert len(refused) / len(unans) >= 0.9, sorted({g["id"] for g in unans} - set(refused))
    assert len(false_refusals) / len(ans) <= 0.05, false_refusals


@pytest.mark.slow
def test_who_question_is_answered_from_speech_metadata(real_service):
    a = real_service.ask("谁在讲话中谈到了丽泽金融商务区的发展？")
    assert a.answerable
    assert "李国龙" in a.answer and "丽泽金融商务区工委书记" in a.answer
    assert all(c.speaker == "李国龙" for c in a.citations[:1])


@pytest.mark.slow
def test_speaker_filter_limits_citations(real_service):
    a = real_service.ask("如何推动发展？", filters=Filters(speaker="孙睿"))
    assert {h.speaker for h in a.related} == {"孙睿"}
    assert all(c.speaker == "孙睿" for c in a.citations)


@pytest.mark.slow
def test_cli_ask_prints_answer_and_numbered_sources(real_index_dir):
    env = {"SPEECHQA_HOME": str(speechqa_home()), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli",
            "ask",
            "丽泽商务区的地铁16号线什么时候通车？",
            "--index",
            str(real_index_dir),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "16号线" in out.stdout and "来源：" in out.stdout and "[1] 李国龙" in out.stdout


def _one_paragraph_service(tmp_path, fake_encoder, title: str, *texts: str) -> AnswerService:
    """A speech of one paragraph (or one per text), indexed, answered by the first release's writer that never
    refuses."""
    from data.parse import make_speech
    from qa.index import build_index

    sp = make_speech(title=title, speaker="王五", role="区长", paragraphs=[("", text) for text in texts])
    build_index([sp], fake_encoder, tmp_path / "idx")
    return AnswerService(
        load_index(tmp_path / "idx", fake_encoder), fake_encoder, composer="extractive-v1", threshold=-1.0
    )


def test_front_matter_restating_the_title_is_never_quoted_as_content(tmp_path, fake_encoder):
    """ "为全面建设新城而团结奋斗——在新城第二次代表大会上的报告（2022年10月16日）" says where and when the report was
    given (metadata answers say that), not what it says; a content sentence sharing a short phrase with the title
    stays a candidate."""
    title = "为全面建设现代化新城而团结奋斗"
    service = _one_paragraph_service(
        tmp_path,
        fake_encoder,
        title,
        f"{title}——在新城第二次代表大会上的报告（2022年10月16日）。同志们：",
        "今后五年的奋斗目标是全面建设现代化新城。新城将建设三条轨道交通线路。",
    )
    retrieval = service.retrieval_for("报告提出的奋斗目标是什么？", 5)
    cands, _, _ = service.composer.candidates("报告提出的奋斗目标是什么？", retrieval)
    texts = [c.text for c in cands]
    assert "今后五年的奋斗目标是全面建设现代化新城。" in texts
    assert not any("代表大会上的报告" in t for t in texts), texts


def test_bracketed_numbers_in_a_passage_never_look_like_citation_markers(tmp_path, fake_encoder):
    service = _one_paragraph_service(
        tmp_path,
        fake_encoder,
        "关于文件落实的讲话",
        "根据筑府办发电[2020]5号文件要求，全区完成整改任务[27]。下一步要巩固整改成果。",
    )
    a = service.ask("筑府办发电文件要求完成什么任务？")
    assert a.answerable and a.citations
    assert check_citations(a.answer, a.citations, service.index) == []
    assert "[2020]" not in a.answer and "［2020］" in a.answer
    assert any("[2020]" in c.quote for c in a.citations)  # the quote itself stays verbatim


class _WritesOneBadCitation:
    """A test composer: one good cited sentence, then one whose quote is not in its passage."""

    def compose_stream(self, question, retrieval, *, max_chars=200):
        from qa.compose import _Cand, _citation

        hit = retrieval.hits[0]
        first = hit.text.split("。")[0] + "。"
        yield f"{first}[1]", _citation(1, _Cand(0, hit, 0, len(first), first, 1.0, 0.0, 0.0))
        yield "编造的句子。[2]", _citation(2, _Cand(0, hit, 0, 7, "编造的句子。", 1.0, 0.0, 0.0))

    def compose(self, question, retrieval, *, max_chars=200):  # pragma: no cover - the stream is used
        raise AssertionError("the service streams")


def test_the_stream_stops_before_a_piece_whose_citation_does_not_check_out(fake_index_dir, fake_encoder):
    from data.errors import SpeechQAError

    service = AnswerService(
        load_index(fake_index_dir, fake_encoder), fake_encoder, composer=_WritesOneBadCitation()
    )
    seen = []
    with pytest.raises(SpeechQAError, match="citations failed validation"):
        for event in service.ask_events("丽泽金融商务区的发展定位是什么？"):
            seen.append(event)
    deltas = [e.text for e in seen if e.kind == "delta"]
    assert [e.kind for e in seen] == ["meta", "delta"] and "编造" not in "".join(deltas)


def test_streamed_deltas_equal_the_answer(fake_index_dir, fake_encoder):
    service = AnswerService(load_index(fake_index_dir, fake_encoder), fake_encoder, composer="extractive-v1")
    for question in ["丽泽金融商务区的发展定位是什么？", "丰台区2023年的财政预算是多少？"]:
        answer = service.ask(question)
        events = list(service.ask_events(question))
        assert "".join(e.text for e in events if e.kind == "delta") == answer.answer
        assert events[-2].citations == answer.citations and events[-1].kind == "done"


def test_a_count_question_is_answered_by_an_approximate_count():
    """ "2.1万余人" states how many people; "多" / "余" between the number and its counter still count it."""
    from qa.compose import answer_requirement

    requirement = answer_requirement("蓄滞洪区迁建了多少人？")
    assert requirement is not None and requirement[0] == "count:人"
    for stated in ("蓄滞洪区2.1万余人进行迁建", "70多人参加", "十来人", "迁建2100人"):
        assert requirement[1].search(stated), stated
    assert not requirement[1].search("蓄滞洪区居民进行迁建，人数众多")


def test_a_sentence_of_one_clause_without_a_figure_names_a_topic():
    """Work reports' unnumbered headings and lead-ins name what is done; a sentence stating a figure, or several
    clauses, says something about it."""
    from qa.compose import names_a_topic

    for topic in ("全力打造全国算力高地。", "拓展跨省域合作。", "人居条件不断改善。", "加快发展现代物流业"):
        assert names_a_topic(topic), topic
    for fact in (
        "新建5G基站8000个。",
        "科技进步贡献率达到六成。",
        "携手天津、山东深化东西部协作。",
        "。",
        "",
    ):
        assert not names_a_topic(fact), fact


def test_an_enumerated_heading_opening_a_paragraph_is_never_quoted_as_the_answer(tmp_path, fake_encoder):
    """ "（一）着力扩大国内需求。" names the topic; the answer is what the paragraph says after it."""
    from qa.compose import is_heading

    assert is_heading("（一）着力扩大国内需求。", 0, 3) and is_heading("三、2024年工作安排", 0, 2)
    assert not is_heading("（一）着力扩大国内需求。", 1, 3)  # not opening its paragraph
    assert not is_heading("（一）着力扩大国内需求。", 0, 1)  # the whole paragraph: nothing else answers
    assert not is_heading("2.5%的增长目标已经实现。", 0, 2) and not is_heading("一是加强领导。", 0, 2)
    service = _one_paragraph_service(
        tmp_path,
        fake_encoder,
        "政府工作报告",
        "（一）着力扩大国内需求。稳定汽车等大宗消费，推动餐饮、文化、旅游消费恢复。",
    )
    a = service.ask("如何着力扩大国内需求？")
    assert a.answerable and a.citations
    assert not a.answer.startswith("（一）") and all("（一）" not in c.quote for c in a.citations)
    assert "大宗消费" in a.answer


@pytest.mark.slow
def test_who_gave_a_report_the_speech_speaks_of_is_answered_from_its_text(tmp_path, real_encoder):
    """ "谁作的专题辅导报告" asks about a lecture the speech reports, not about the speech's speaker; "这篇讲话是
    谁作的" still asks about the speech and is answered from its metadata."""
    from data.parse import make_speech
    from qa.index import build_index

    speech = make_speech(
        title="推动新城高质量发展",
        speaker="赵六",
        role="新城管委会主任",
        paragraphs=[
            ("", "3月5日，新城举行专题辅导报告会。会上，市社科院研究员钱七围绕城市更新作专题辅导报告。"),
            ("一、产业发展", "新城重点发展数字经济和高端制造业，引进一批龙头企业。"),
        ],
    )
    build_index([speech], real_encoder, tmp_path / "index")
    service = AnswerService.open(tmp_path / "index", real_encoder)
    lecture = service.ask("报告会上是谁作的专题辅导报告？")
    assert lecture.answerable and "钱七" in lecture.answer, lecture.answer
    assert not lecture.answer.startswith("《")  # not the metadata lead ("《…》的讲话人是赵六")
    own = service.ask("这篇讲话是谁作的？")
    assert own.answerable and "赵六" in own.answer, own.answer


def test_a_list_question_may_quote_more_of_its_measures_than_a_fact_question(tmp_path, fake_encoder):
    """ "有哪些措施" is answered by several sentences; the list budget lets the answer carry more of them, while a
    question asking for one fact keeps the short answer."""
    from qa.compose import ExtractiveComposer

    measures = [
        f"城市更新第{i}项措施是改造老旧小区{i}00个，同步完善配套设施和公共服务。" for i in range(1, 9)
    ]
    service = _one_paragraph_service(tmp_path, fake_encoder, "政府工作报告", "".join(measures))
    answers = {}
    for budget in (1.0, 2.0):
        service.composer = ExtractiveComposer(service.index, threshold=-1.0, list_budget=budget)
        for question in ("城市更新有哪些措施？", "城市更新要改造多少个老旧小区？"):
            a = service.ask(question)
            assert a.answerable and check_citations(a.answer, a.citations, service.index) == []
            answers[budget, question] = a
    short, long = answers[1.0, "城市更新有哪些措施？"], answers[2.0, "城市更新有哪些措施？"]
    assert len(long.citations) > len(short.citations) >= 2
    assert sum(len(c.quote) for c in short.citations) <= 200 * 1.15
    assert 200 * 1.15 < sum(len(c.quote) for c in long.citations) <= 400 * 1.15
    fact = "城市更新要改造多少个老旧小区？"
    assert answers[1.0, fact].answer == answers[2.0, fact].answer


def test_a_statistic_asked_by_its_common_name_finds_the_reports_official_one(tmp_path, fake_encoder):
    """People ask for "GDP", "财政收入"; reports print 地区生产总值, 一般公共预算收入 (qa.terms)."""
    from qa.terms import official_terms

    assert official_terms("湖南去年GDP是多少？") == "湖南去年生产总值是多少？"
    assert (
        official_terms("今年财政收入和居民收入增长多少？")
        == "今年一般公共预算收入和居民人均可支配收入增长多少？"
    )
    assert official_terms("城镇居民人均可支配收入增长多少？") == "城镇居民人均可支配收入增长多少？"
    assert official_terms("丽泽商务区的交通有哪些安排？") == "丽泽商务区的交通有哪些安排？"
    # Every row of the table applies (a row whose pattern lacks a quick-test mark would silently never apply).
    for common, official in [
        ("经济增速", "生产总值增长"),
        ("ＧＤＰ", "生产总值"),
        ("gdp", "生产总值"),
        ("农民人均收入", "农村居民人均可支配收入"),
        ("CPI", "居民消费价格"),
        ("ＣＰＩ", "居民消费价格"),
        ("Ｒ＆Ｄ经费", "研发经费"),
        ("r&d经费", "研发经费"),
        ("研究与试验发展（R&D）经费", "研发经费"),
        ("社零额", "社会消费品零售总额"),
        ("规上工业", "规模以上工业"),
        ("固投", "固定资产投资"),
        ("社会消费品零售额", "社会消费品零售总额"),
        ("细颗粒物", "PM2.5"),
        ("pm2.5", "PM2.5"),
        ("细颗粒物（PM2.5）", "PM2.5"),
    ]:
        assert official_terms(f"今年{common}多少？") == f"今年{official}多少？", common
    # Sentences are read the same way, so the asked name is found whichever name a report prints.
    for asked, name, stated in [
        ("今年GDP增长多少？", "生产总值", "地区生产总值增长5%左右"),
        ("单位GDP能耗下降多少？", "单位生产总值能耗", "单位GDP能耗下降3.5%"),
        ("今年居民收入增长多少？", "居民人均可支配收入", "居民收入增长快于经济增长"),
        ("农民收入增长多少？", "农村居民人均可支配收入", "农村居民人均可支配收入增长7%"),
        ("研发投入强度是多少？", "研发经费投入强度", "研究与试验发展（R&D）经费投入强度达到2.6%"),
        ("能耗强度下降多少？", "单位生产总值能耗", "单位GDP能耗下降3.5%"),
        ("粮食总产量是多少？", "粮食产量", "粮食总产突破600亿斤"),
        ("空气中细颗粒物年均浓度是多少？", "PM2.5", "PM2.5年均浓度降至36微克/立方米"),
    ]:
        assert name in official_terms(asked) and name in official_terms(stated)
        # A question is read again after a follow-up is joined to it: reading twice changes nothing more.
        assert official_terms(official_terms(asked)) == official_terms(asked)
        assert official_terms(official_terms(stated)) == official_terms(stated)
    service = _one_paragraph_service(
        tmp_path,
        fake_encoder,
        "政府工作报告",
        "今年的主要预期目标是：地区生产总值增长5%左右，城镇新增就业30万人。",
        "今年的主要预期目标是：粮食产量保持稳定，森林覆盖率增长0.5个百分点。",
    )
    with pytest.raises(ValueError, match="mode must be one of"):
        service.search("今年GDP预期增长多少？", mode="lexical")  # type: ignore[arg-type]
    hits = service.search("今年GDP预期增长多少？", top_k=2, mode="bm25")
    assert "地区生产总值" in hits[0].text and hits[0].score > hits[1].score
    answer = service.ask("今年GDP预期增长多少？")
    assert answer.question == "今年GDP预期增长多少？"  # the user's words, as asked
    assert answer.answerable and "地区生产总值增长5%" in answer.citations[0].quote


def test_an_office_named_in_pieces_finds_its_holder_and_never_the_deputy(tmp_path, fake_encoder):
    """ "云湖新区管委会主任是谁" names a body the speaker's role spells apart ("云湖新区工委书记、管委会主任"); a
    管委会副主任 is not the 管委会主任 asked for."""
    from data.parse import make_speech
    from qa.index import build_index

    speeches = [
        make_speech(
            title="建设现代化新区",
            speaker="张三",
            role="云湖新区工委书记、管委会主任",
            paragraphs=[("", "新区今年重点推进产业园区建设，新增企业两百家。")],
        ),
        make_speech(
            title="建设科技园区",
            speaker="李四",
            role="星河科技园工委书记、管委会副主任",
            paragraphs=[("", "科技园今年重点推进孵化器建设，新增科技企业一百家。")],
        ),
    ]
    build_index(speeches, fake_encoder, tmp_path / "idx")
    service = AnswerService(
        load_index(tmp_path / "idx", fake_encoder), fake_encoder, composer="extractive-v1"
    )
    head = service.ask("云湖新区管委会主任是谁？")
    assert head.answerable and "张三" in head.answer and "李四" not in head.answer
    deputy = service.ask("星河科技园管委会副主任是谁？")
    assert deputy.answerable and "李四" in deputy.answer
    assert "李四" not in service.ask("星河科技园管委会主任是谁？").answer


def test_a_lead_stating_the_asked_quantity_opens_the_answer_and_any_other_lead_is_ignored(
    tmp_path, fake_encoder
):
    """The gated composer hands the extractive writer the sentence its model reads as stating the fact asked
    (``lead``); the writer opens with it when it states the quantity or time asked, and otherwise writes as it
    would without one."""
    service = _one_paragraph_service(
        tmp_path,
        fake_encoder,
        "新城政府工作报告",
        "新城轨道交通建设取得新进展，新城轨道交通线网规划建设线路12条。轨道交通沿线城市更新稳步推进。",
        "新城绿化覆盖率继续提升。今年新城新建轨道交通线路3条，总里程达到45公里。",
    )
    composer = service.composer

    def sentences():
        for hit in service.retriever.retrieve("新城", 5).hits:
            for s in service.index.paragraph(service.index.row_of(hit.passage_id)).sentences:
                yield hit.passage_id, s

    where = {s.text: (pid, s.start) for pid, s in sentences()}
    stating, topic = (
        where["今年新城新建轨道交通线路3条，总里程达到45公里。"],
        where["轨道交通沿线城市更新稳步推进。"],
    )

    question = "新城今年新建多少条轨道交通线路？"
    retrieval = service.retriever.retrieve(question, 5)
    own = composer.compose(question, retrieval)
    assert own.answer.startswith(
        "新城轨道交通建设取得新进展"
    )  # the writer's own pick opens with another figure
    led = composer.compose(question, retrieval, lead=stating)
    assert led.answerable and check_citations(led.answer, led.citations, service.index) == []
    assert (led.citations[0].passage_id, led.citations[0].start) == stating
    assert led.answer.startswith("今年新城新建轨道交通线路3条")
    # A lead that states no number of lines, or a question asking no quantity or time: the writer's own answer.
    assert composer.compose(question, retrieval, lead=topic) == own
    open_question = "新城轨道交通建设有什么进展？"
    retrieval = service.retriever.retrieve(open_question, 5)
    assert composer.compose(open_question, retrieval, lead=stating) == composer.compose(
        open_question, retrieval
    )


def test_which_speeches_is_a_survey_of_speeches_and_never_a_count():
    """ "哪几篇讲话提到…" asks which speeches, of any kind; "作了几篇讲话" asks how many; "哪些省份…" asks for regions."""
    from qa.meta import asks_which_reports, asks_which_speeches, meta_kind, surveyed_topic

    assert meta_kind("哪几篇讲话提到了人才引进？", ()) is None
    assert meta_kind("孙睿作了几篇讲话？", ()).kind == "count"
    assert asks_which_speeches("哪几篇讲话提到了人才引进？") and asks_which_reports(
        "哪几篇讲话提到了人才引进？"
    )
    assert asks_which_speeches("哪几个省提出发展低空经济？") and not asks_which_reports(
        "哪几个省提出发展低空经济？"
    )
    assert surveyed_topic("哪几个省提出发展低空经济？") == "提出发展低空经济？"


def _new_town_report(tmp_path, fake_encoder, **fields) -> AnswerService:
    """新城发展报告 of ``fields`` (speaker, role, date, place, paragraphs), indexed with the fake encoder and served
    by the extractive writer: the metadata questions' tests ask it."""
    from data.parse import make_speech
    from qa.index import build_index

    build_index([make_speech(title="新城发展报告", **fields)], fake_encoder, tmp_path / "idx")
    return AnswerService(load_index(tmp_path / "idx", fake_encoder), fake_encoder, composer="extractive-v1")


def test_who_or_when_of_a_thing_a_report_names_is_no_question_about_the_report_itself(tmp_path, fake_encoder):
    """ "由谁承办", "讲话中提到的劳动模范是谁", "这项工作是谁做的" and "报告提出的目标是什么时候实现" ask about what the
    speech says, which its text answers or not; "报告由谁作", "讲话由谁发表" and "报告是哪天作的" ask about the speech,
    which its metadata states. Answering the first kind from the metadata named the speaker as the model worker."""
    from qa.meta import meta_kind

    for content in (
        "新城杯马拉松赛由谁承办？",
        "讲话中提到的劳动模范是谁？",
        "报告中表扬的先进个人是谁？",
        "这项工作是谁做的？",
        "报告提出的目标是什么时候实现？",
        "讲话提到的冬奥会是哪年举办的？",
        "中央经济工作会议什么时候召开？",
    ):
        assert meta_kind(content, ("x",)) is None, content
    for about, kind in (
        ("青海省政府工作报告由谁作？", "author"),
        ("这篇讲话由谁发表？", "author"),
        ("谁在讲话中提到了丽泽？", "author"),
        ("《走好网上群众路线》是谁讲的？", "author"),
        ("政府工作报告是哪天作的？", "when"),
    ):
        assert meta_kind(about, ("x",)).kind == kind, about  # type: ignore[union-attr]

    service = _new_town_report(
        tmp_path,
        fake_encoder,
        speaker="张明",
        role="新城管委会主任",
        paragraphs=[("", "全国劳动模范王强扎根一线三十年。新城规划总面积58平方公里。")],
    )
    answer = service.ask("讲话中提到的劳动模范是谁？")
    assert "讲话人" not in answer.answer and "张明" not in answer.answer, answer.answer


def test_an_office_held_at_another_time_is_not_read_from_the_metadata(tmp_path, fake_encoder):
    """The metadata states a speaker's office when the speech was given: "之前担任过什么职务", "前任市长是谁" and an office
    in another year than a dated speech's are asked of the text, which here does not say (the issue's "past office
    that the speeches never state")."""
    from qa.meta import meta_kind

    assert meta_kind("张明担任什么职务？", ("x",)).kind == "role"  # type: ignore[union-attr]
    assert meta_kind("张明之前担任过什么职务？", ("x",)) is None
    assert meta_kind("张明曾任什么职务？", ("x",)) is None
    assert meta_kind("新城前任市长是谁？", ()) is None
    service = _new_town_report(
        tmp_path,
        fake_encoder,
        speaker="张明",
        role="新城管委会主任",
        date="2022-07-09",
        paragraphs=[("", "新城规划总面积58平方公里。新城将建设三条轨道交通线路。")],
    )
    now = service.ask("张明2022年担任什么职务？")
    assert now.answerable and "新城管委会主任" in now.answer, now.answer
    for question in ("张明2020年担任什么职务？", "张明之前担任过什么职务？"):
        before = service.ask(question)
        assert "新城管委会主任" not in before.answer, (question, before.answer)


def test_a_question_about_a_place_a_report_names_is_no_question_about_where_the_report_was_given(
    tmp_path, fake_encoder
):
    """ "报告是在哪次会议上作的" asks where the report was given (its metadata); "报告提到的展览馆建在哪里" asks
    about a thing it names, which its text answers or not, and a speaker the metadata does not state is never
    answered from it."""
    from qa.meta import meta_kind

    assert meta_kind("十九大报告是在哪里作的？", ("x",)).kind == "where"
    assert meta_kind("李国龙在哪次会议上作的报告？", ()).kind == "where"
    assert meta_kind("报告提到的展览馆建在哪里？", ("x",)) is None
    assert meta_kind("新城的枢纽站在哪里？", ()) is None

    service = _new_town_report(
        tmp_path,
        fake_encoder,
        speaker="",
        role="",
        place="新城第五次代表大会",
        paragraphs=[("", "新城将新建一座城市展览馆，展示新城发展成就。新城规划总面积58平方公里。")],
    )
    where = service.ask("新城发展报告是在哪次会议上作的？")
    assert where.answerable and "新城第五次代表大会" in where.answer
    thing = service.ask("新城发展报告提到的城市展览馆建在哪里？")
    assert "第五次代表大会" not in thing.answer
    who = service.ask("新城发展报告是谁作的？")
    assert "讲话人" not in who.answer
