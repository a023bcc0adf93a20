"""The learned answerability model on corpora the test builds itself (real encoder, real index)."""

from __future__ import annotations

import pytest

from data.parse import make_speech
from qa.index import build_index
from qa.service import AnswerService

pytestmark = pytest.mark.slow

_COMMON = [
    ("一、总体安排", "新城坚持规划引领，推动产业、交通和生态协同发展，建设宜居宜业的现代化城区。"),
    ("二、交通建设", "新城将建设三条轨道交通线路，完善城市道路网络，实现与中心城区半小时通达。"),
    ("三、生态环境", "新城将新建两座城市公园，提升绿化覆盖率，打造蓝绿交织的生态空间。"),
    ("四、产业发展", "新城重点发展数字经济和高端制造业，引进一批龙头企业，培育创新型中小企业。"),
]
# Paragraphs that name no place or institution (qa.places.names_a_place).
_PLACELESS = [
    ("一、民生保障", "持续提高城乡居民收入，完善社会保障体系，稳定和扩大就业。"),
    ("三、产业发展", "重点发展数字经济和高端制造业，培育创新型中小企业。"),
    ("四、生态环境", "推动产业、交通和生态协同发展，提升绿化覆盖率。"),
]
_AREA = ("一、总体安排", "新城规划总面积为58平方公里，其中起步区面积为12平方公里。")


def _service(tmp_path, real_encoder, with_area: bool) -> AnswerService:
    paragraphs = list(_COMMON)
    if with_area:
        paragraphs.insert(1, _AREA)
    speech = make_speech(
        title="新城发展规划情况介绍", speaker="张明", role="新城管委会主任", paragraphs=paragraphs
    )
    index_dir = tmp_path / ("with" if with_area else "without")
    build_index([speech], real_encoder, index_dir)
    return AnswerService.open(index_dir, real_encoder)


@pytest.mark.parametrize(
    "question",
    # The unit named, or implied by the quantity: an area is stated in an area unit (qa.features.asks_area), and the
    # report's other figures (三条线路, 两座公园) are no area.
    ["新城规划总面积是多少平方公里？", "新城规划总面积有多大？"],
)
def test_question_whose_unit_is_absent_is_refused_and_answered_when_present(tmp_path, real_encoder, question):
    present = _service(tmp_path, real_encoder, with_area=True).ask(question)
    assert present.answerable, present.answer
    assert "58平方公里" in present.answer
    absent = _service(tmp_path, real_encoder, with_area=False).ask(question)
    assert not absent.answerable, absent.answer
    assert absent.citations == ()


def _served_report(
    index_dir, real_encoder, paragraphs: list[tuple[str, str]], composer: str | None = None
) -> AnswerService:
    """新城's 2025 report of ``paragraphs`` (section, text), indexed and served (the default composer unless named)."""
    speech = make_speech(
        title="2025年新城政府工作报告",
        speaker="张明",
        role="新城区长",
        date="2025-01-20",
        paragraphs=paragraphs,
    )
    build_index([speech], real_encoder, index_dir)
    options = {"composer": composer} if composer else {}
    return AnswerService.open(index_dir, real_encoder, **options)


def _new_town_report(index_dir, real_encoder, section: str, text: str) -> AnswerService:
    """新城's 2025 report: one paragraph under test beside the common ones, indexed, served as the default is."""
    return _served_report(index_dir, real_encoder, [(section, text), *_COMMON])


def test_a_figure_asked_in_units_is_refused_when_only_its_growth_rate_is_stated(tmp_path, real_encoder):
    """ "多少万辆" asks for a level: a sentence giving only the growth rate does not state it."""
    question = "新城去年新能源汽车产量是多少万辆？"
    answers = {}
    for level, output in (
        (True, "新城新能源汽车产量达12.5万辆，增长27%。"),
        (False, "新城新能源汽车产量增长27%，整车出口增长一倍。"),
    ):
        service = _new_town_report(tmp_path / str(level), real_encoder, "一、2024年工作回顾", output)
        answers[level] = service.ask(question)
    assert answers[True].answerable and "12.5万辆" in answers[True].answer, answers[True].answer
    assert not answers[False].answerable and answers[False].citations == (), answers[False].answer


def test_a_question_asking_which_year_is_refused_when_no_sentence_states_a_year(tmp_path, real_encoder):
    """ "哪一年" asks for a year: a sentence on the event that states none does not answer it, whatever the
    model's score (the fact gate's threshold is lowered until any sentence would clear it)."""
    question = "新城在哪一年举办国际马拉松赛？"
    answers = {}
    for stated, event in (
        (True, "新城将于2026年举办国际马拉松赛，届时将有3万名选手参赛。"),
        (False, "新城将举办国际马拉松赛，届时将有3万名选手参赛。"),
    ):
        service = _new_town_report(tmp_path / str(stated), real_encoder, "二、2025年工作安排", event)
        service.composer.threshold = 1e-9
        answers[stated] = service.ask(question)
    assert answers[True].answerable and "2026年" in answers[True].answer, answers[True].answer
    assert not answers[False].answerable and answers[False].citations == (), answers[False].answer


def test_a_number_question_is_refused_when_the_only_numeral_near_its_topic_names_a_plan(
    tmp_path, real_encoder
):
    """ "能耗下降目标是多少" is not answered by "全面完成“十四五”期间能耗强度下降…目标" (the numeral names the five-year
    plan), nor by the other targets stated beside it; the same paragraph stating the energy target is answered. At
    the model's own threshold: the plan's sentence is the one it scores high."""
    question = "新城2025年单位生产总值能耗下降目标是多少？"
    targets = "今年新城地区生产总值增长5%左右，一般公共预算收入增长3%{}，城镇新增就业3万人以上。"
    plan = "新城全面完成“十四五”期间能耗强度下降和主要污染物总量减排目标。"
    green = ("二、2025年工作安排", "新城将推进节能降碳改造，发展绿色低碳产业，建设美丽新城。")
    answers = {}
    for stated, energy in ((True, "，单位地区生产总值能耗下降2.5%左右"), (False, "")):
        paragraphs = [("二、2025年工作安排", targets.format(energy) + plan), green, *_COMMON]
        answers[stated] = _served_report(tmp_path / str(stated), real_encoder, paragraphs).ask(question)
    assert answers[True].answerable and "2.5%" in answers[True].answer, answers[True].answer
    assert not answers[False].answerable and answers[False].citations == (), answers[False].answer


def test_a_number_question_is_refused_when_the_sentence_states_only_the_numbers_it_asks_with(
    tmp_path, real_encoder
):
    """ "2024年…多少" asks for a figure: a sentence whose only numbers are the question's own (its year, its line
    number) does not state it, whatever the model's score (the fact gate's threshold is lowered until any sentence
    would clear it)."""
    question = "新城地铁3号线2024年客运量是多少？"
    answers = {}
    for stated, text in (
        (True, "2024年，新城地铁3号线客运量达到4200万人次，日均11.5万人次。"),
        (False, "2024年，新城地铁3号线客运量稳步增长，服务水平持续提升。"),
    ):
        paragraphs = [
            ("一、2024年工作回顾", text),
            ("一、2024年工作回顾", "新城地铁线网不断完善，公交线路持续优化，市民出行更加便捷。"),
            ("二、2025年主要任务", "新城将加快轨道交通建设，推进地铁沿线综合开发。"),
        ]
        service = _served_report(tmp_path / str(stated), real_encoder, paragraphs)
        service.composer.threshold = 1e-9
        answers[stated] = service.ask(question)
    assert answers[True].answerable and "4200万人次" in answers[True].answer, answers[True].answer
    assert not answers[False].answerable and answers[False].citations == (), answers[False].answer


def _report(tmp_path, real_encoder, composer: str, plan_states_it: bool) -> AnswerService:
    plan = "今年新城城镇调查失业率控制在5.5%左右，城镇新增就业3万人以上。"
    if not plan_states_it:
        plan = "今年新城城镇新增就业3万人以上，持续扩大就业容量。"
    paragraphs = [
        ("一、2024年工作回顾", "过去一年，新城城镇调查失业率为4.8%，居民人均可支配收入增长5.2%。"),
        ("一、2024年工作回顾", "新城新建两座城市公园，绿化覆盖率提高到45%。"),
        ("二、2025年主要任务", plan),
        ("二、2025年主要任务", "新城将新建三条轨道交通线路，完善城市道路网络。"),
    ]
    return _served_report(tmp_path / f"{composer}-{plan_states_it}", real_encoder, paragraphs, composer)


@pytest.mark.parametrize("composer", ["gated", "learned"])
def test_a_figure_stated_for_another_year_only_is_refused(tmp_path, real_encoder, composer):
    question = "新城2025年城镇调查失业率的目标是多少？"
    stated = _report(tmp_path, real_encoder, composer, plan_states_it=True).ask(question)
    assert stated.answerable and "5.5%" in stated.answer, stated.answer
    # Only last year's 4.8% is in the report: a sentence on the topic, not the asked fact.
    missing = _report(tmp_path, real_encoder, composer, plan_states_it=False).ask(question)
    assert not missing.answerable, missing.answer


def test_a_question_naming_a_person_or_place_the_corpus_never_mentions_is_refused(tmp_path, real_encoder):
    service = _service(tmp_path, real_encoder, with_area=True)
    named = service.ask("张明主任介绍了新城哪些产业？")  # the speaker, in the corpus
    assert named.answerable, named.answer
    for question in ("王建华主任介绍了新城哪些产业？", "海淀区新城规划总面积是多少平方公里？"):
        answer = service.ask(question)
        assert not answer.answerable, (question, answer.answer)


def test_a_place_named_with_another_administrative_suffix_is_known(tmp_path, real_encoder):
    """广西省 / 新疆地区 name the places a corpus calls 广西 / 新疆: known, as the speeches' regions are matched."""
    speech = make_speech(
        title="广西新疆新城发展规划情况介绍",
        speaker="张明",
        role="新城管委会主任",
        paragraphs=[_AREA, *_COMMON],
    )
    build_index([speech], real_encoder, tmp_path / "index")
    service = AnswerService.open(tmp_path / "index", real_encoder)
    for question in ("广西省新城规划总面积是多少平方公里？", "新疆地区新城规划总面积是多少平方公里？"):
        answer = service.ask(question)
        assert answer.answerable and "58" in answer.answer, (question, answer.answer)
    # A place the corpus never names, with or without its suffix, is still unknown.
    assert not service.ask("莆田市新城规划总面积是多少平方公里？").answerable


def test_the_open_gate_decides_as_scoring_every_sentence_would(tmp_path, real_encoder):
    """``LearnedComposer.clears`` scores the quoted sentences first and stops once one clears the threshold;
    its decision must be the one the whole candidate matrix gives, at any threshold."""
    service = _service(tmp_path, real_encoder, with_area=True)
    gated = service.composer
    for question in ("新城在生态环境方面有哪些安排？", "新城重点发展哪些产业？", "新城如何完善交通网络？"):
        retrieval = service.retriever.retrieve(question, 5)
        gated.learned.prepare(question)
        best = float(gated.learned.score(question, retrieval)[1].max())
        quoted = [(c.passage_id, c.start) for c in gated.base.compose(question, retrieval).citations]
        for threshold in (best / 2, best, best * 1.01, 0.999):
            cleared, _ = gated.learned.clears(question, retrieval, threshold, first=quoted)
            assert (cleared >= threshold) == (best >= threshold), (question, threshold, cleared, best)


def test_an_open_question_no_sentence_answers_is_refused_by_the_open_gate(tmp_path, real_encoder):
    """A "what / which / how" question the extractive writer would answer is refused when no candidate
    sentence reaches the model's open-question threshold, and answered when one does."""
    service = _service(tmp_path, real_encoder, with_area=True)
    gated = service.composer
    question = "新城在生态环境方面有哪些安排？"
    retrieval = service.retriever.retrieve(question, 5)
    best = float(gated.learned.score(question, retrieval)[1].max())
    assert gated.open_threshold == gated.learned.model.open_threshold > 0  # calibrated, not switched off
    gated.open_threshold = best * 1.01
    refused = gated.compose(question, retrieval)
    assert not refused.answerable and refused.features["refused"] == "no sentence of the passages answers it"
    gated.open_threshold = best * 0.99
    answered = gated.compose(question, retrieval)
    assert answered.answerable and "城市公园" in answered.answer


def test_a_question_asking_for_one_thing_meets_the_thing_gate_and_a_list_question_the_open_one(
    tmp_path, real_encoder
):
    """ "在哪里" asks for one thing: its gate is ``thing_threshold``, set like the fact gate's; "哪些产业" asks
    for a list and keeps the lenient open gate. The thing gate decides: just above the best sentence's score
    the question is refused, just below it is answered."""
    service = _service(tmp_path, real_encoder, with_area=True)
    gated = service.composer
    model = gated.learned.model
    assert model.thing_threshold > model.open_threshold > 0  # both calibrated (meta.json)
    listing = "新城重点发展哪些产业？"
    retrieval = service.retriever.retrieve(listing, 5)
    assert gated.compose(listing, retrieval).features["open_threshold"] == model.open_threshold
    thing = "新城的轨道交通枢纽在哪里？"
    retrieval = service.retriever.retrieve(thing, 5)
    best = float(gated.learned.score(thing, retrieval)[1].max())
    gated.thing_threshold = best * 1.01
    refused = gated.compose(thing, retrieval)
    assert not refused.answerable and refused.features["open_threshold"] == best * 1.01
    gated.thing_threshold = best * 0.99
    assert gated.compose(thing, retrieval).answerable


def test_a_question_about_a_report_of_a_year_the_corpus_lacks_is_refused(tmp_path, real_encoder):
    """Over a 2025 report, "2023年报告" is another report: its author or contents are not here."""
    service = _report(tmp_path, real_encoder, "gated", plan_states_it=True)
    for question in ("2023年政府工作报告是谁作的？", "2023年报告提出的城镇调查失业率目标是多少？"):
        answer = service.ask(question)
        assert not answer.answerable and answer.citations == (), (question, answer.answer)
    assert service.ask("2025年政府工作报告是谁作的？").answerable


def _written(scores: list[float], speeches: str = "abab"):
    """An answer of one labelled sentence per score (sentence i from speech ``speeches[i]``, labelled with it),
    with the scores the model gave them."""
    from qa.compose import _Cand, _write
    from qa.types import Hit

    text = "新城建设轨道交通。新城新建城市公园。新城发展数字经济。新城推进老旧小区改造。"
    starts = [i for i, ch in enumerate(text) if i == 0 or text[i - 1] == "。"][: len(scores)]
    cands = []
    for start, sid in zip(starts, speeches, strict=False):
        end = text.index("。", start) + 1
        hit = Hit(f"p-{sid}", text, sid, f"{sid}报告", sid, "主任", "一、总体安排", 1.0)
        cands.append(_Cand(0, hit, start, end, text[start:end], 0.5, 0.9, 0.0))
    comp = _write("", cands, {"evidence": 0.5}, [f"{c.hit.speech_id}：" for c in cands])
    return comp, {(c.hit.passage_id, c.start): p for c, p in zip(cands, scores, strict=True)}


def test_quotes_the_model_scores_far_below_the_best_are_dropped_with_their_citations():
    from qa.learned import WEAK_QUOTE, without_weak_quotes

    comp, scored = _written([0.6, 0.6 * WEAK_QUOTE / 2, 0.3, 0.004])
    kept = without_weak_quotes(comp, scored)
    assert [c.quote for c in kept.citations] == ["新城建设轨道交通。", "新城发展数字经济。"]
    assert [c.n for c in kept.citations] == [1, 2]
    assert kept.answer == "新城建设轨道交通。[1]新城发展数字经济。[2]"  # both of speech a: no labels
    # Quotes of several speeches keep their labels; of one speech, they lose them, as the writer would write it.
    assert (
        without_weak_quotes(*_written([0.6, 0.3, 0.004], "abc")).answer
        == "a：新城建设轨道交通。[1]b：新城新建城市公园。[2]"
    )
    alone = without_weak_quotes(*_written([0.6, 0.3, 0.004], "aab"))
    assert alone.answer == "新城建设轨道交通。[1]新城新建城市公园。[2]"
    # A label is said once per run of one speech's quotes; the first of a run, dropped, hands it to the next.
    run, scores = _written([0.004, 0.5, 0.6], "aab")
    assert run.answer == "a：新城建设轨道交通。[1]新城新建城市公园。[2]b：新城发展数字经济。[3]"
    assert without_weak_quotes(run, scores).answer == "a：新城新建城市公园。[1]b：新城发展数字经济。[2]"
    for answer in (kept, alone):
        assert answer.answer == "".join(t for t, _ in answer.pieces())
        for c in answer.citations:
            assert c.passage_text[c.start : c.end] == c.quote and f"{c.quote}[{c.n}]" in answer.answer
    assert kept.features["weak_quotes_dropped"] == 2


def test_quotes_are_kept_when_unscored():
    from qa.learned import without_weak_quotes

    comp, scored = _written([0.5, 0.001])
    del scored[
        (comp.citations[1].passage_id, comp.citations[1].start)
    ]  # a quote the model did not score stays
    assert without_weak_quotes(comp, scored) == comp
    assert without_weak_quotes(comp, {}) == comp


def test_a_quote_that_shares_the_words_but_not_the_answer_is_dropped(tmp_path, real_encoder):
    """On a real answer: the extractive writer quotes a second sentence on the topic ("交通规划"), with no
    number for a "几条" question; the model scores it far below the one stating it, and gated drops it. Each
    quoted sentence left scores at least WEAK_QUOTE x the best quoted one."""
    from qa.learned import WEAK_QUOTE

    paragraphs = [
        (section, text + ("新城交通规划注重公交优先。" if section == "二、交通建设" else ""))
        for section, text in _COMMON
    ]
    speech = make_speech(title="新城发展规划情况介绍", speaker="张明", role="主任", paragraphs=paragraphs)
    build_index([speech], real_encoder, tmp_path / "index")
    service = AnswerService.open(tmp_path / "index", real_encoder)
    gated = service.composer
    question = "新城将建设几条轨道交通线路？"
    retrieval = service.retriever.retrieve(question, 5)
    located, probs = gated.learned.score(question, retrieval)
    score = {(c.pid, c.start): float(p) for c, p in zip(located, probs, strict=True)}
    quoted = [c.quote for c in gated.base.compose(question, retrieval).citations]
    assert "新城交通规划注重公交优先。" in quoted  # the extractive writer quotes it
    comp = gated.compose(question, retrieval)
    assert comp.answerable and "三条" in comp.answer and "公交优先" not in comp.answer
    cited = [score[(c.passage_id, c.start)] for c in comp.citations]
    assert min(cited) >= WEAK_QUOTE * max(cited), cited


def test_a_number_question_is_refused_when_no_sentence_states_a_number(tmp_path, real_encoder):
    """ "有多少家企业？" over passages that only say the park drew "一批" firms: the model scores that sentence
    above its threshold, but a sentence stating no number cannot say how many, and gated refuses. With a
    sentence stating the count, the same question is answered with it."""
    from qa.features import states_number

    paragraphs = [
        ("一、总体安排", "新城坚持规划引领，推动产业、交通和生态协同发展，建设宜居宜业的现代化城区。"),
        ("二、科技园区", "推动新城科技园建设。新城科技园聚焦人工智能和集成电路，吸引一批创新企业入驻。"),
        ("三、生态环境", "新城将新建两座城市公园，提升绿化覆盖率，打造蓝绿交织的生态空间。"),
    ]
    question = "新城科技园有多少家企业？"
    for counted in (False, True):
        extra = [("四、企业发展", "新城科技园现有入驻企业260家。")] if counted else []
        speech = make_speech(
            title="新城发展规划情况介绍", speaker="张明", role="主任", paragraphs=paragraphs + extra
        )
        build_index([speech], real_encoder, tmp_path / str(counted))
        service = AnswerService.open(tmp_path / str(counted), real_encoder)
        answer = service.ask(question)
        if counted:
            assert answer.answerable and "260家" in answer.answer
            continue
        retrieval = service.retriever.retrieve(question, 5)
        located, probs = service.composer.learned.score(question, retrieval)
        best = max(range(len(probs)), key=lambda i: probs[i])
        # What the rule is for: the model alone would answer with a sentence that states no number.
        assert probs[best] >= service.composer.threshold and not states_number(located[best].cand.text)
        assert not answer.answerable


def test_states_number_reads_numbers_written_out():
    from qa.features import states_number

    for text in (
        "有效期二十年",
        "分为两种",
        "属第三区",
        "位居世界前五",
        "占四分之三",
        "一半以上",
        "共四十九旗",
        "增长5.1%",
    ):
        assert states_number(text), text
    for text in ("吸引一批创新企业入驻", "十分重要", "千万不要松懈", "推动成渝地区双城经济圈建设"):
        assert not states_number(text), text


def _two_regions(tmp_path, real_encoder, named_states_it: bool) -> AnswerService:
    jilin = [
        ("一、2024年工作回顾", "过去一年，全省粮食产量再创新高，新能源汽车产量持续增长，冰雪旅游持续升温。"),
        ("二、2025年主要目标", "今年全省城镇新增就业22万人以上，居民收入增长与经济增长同步。"),
    ]
    if named_states_it:
        jilin.insert(1, ("一、2024年工作回顾", "2024年全省地区生产总值增长4.3%，规上工业增加值增长4.6%。"))
    gansu = [
        ("一、2024年工作回顾", "2024年全省地区生产总值增长5.8%，增速居全国第3位，经济总量达到1.3万亿元。"),
        ("二、2025年主要目标", "今年全省城镇新增就业33万人以上，粮食产量稳定在1250万吨以上。"),
    ]
    speeches = [
        make_speech(
            title=f"2025年{region}政府工作报告",
            speaker=name,
            role="省长",
            date=date,
            region=region,
            paragraphs=paragraphs,
        )
        for region, name, date, paragraphs in (
            ("吉林省", "胡玉亭", "2025-01-14", jilin),
            ("甘肃省", "任振鹤", "2025-01-15", gansu),
        )
    ]
    index_dir = tmp_path / ("states" if named_states_it else "silent")
    build_index(speeches, real_encoder, index_dir)
    return AnswerService.open(index_dir, real_encoder)


def test_a_question_naming_a_region_is_answered_from_its_report_alone(tmp_path, real_encoder):
    """Another region's figure is not the answer to a question about 吉林, however well it matches: when 吉林's
    report does not state it the question is refused, and when it does the answer cites 吉林's report only."""
    question = "吉林2024年地区生产总值增长了多少？"
    silent = _two_regions(tmp_path, real_encoder, named_states_it=False).ask(question)
    assert not silent.answerable and silent.citations == (), silent.answer
    stated = _two_regions(tmp_path, real_encoder, named_states_it=True).ask(question)
    assert stated.answerable and "4.3%" in stated.answer, stated.answer
    assert {c.speech_title for c in stated.citations} == {"2025年吉林省政府工作报告"}


def test_a_quantity_question_is_answered_first_by_the_sentence_stating_it(tmp_path, real_encoder):
    """Issue 8: the answer's first sentence carries the asked-for fact, not a sentence on the topic that comes
    first in its paragraph (the first release quoted in reading order)."""
    speech = make_speech(
        title="2025年新城政府工作报告",
        speaker="张明",
        role="新城区长",
        date="2025-01-20",
        paragraphs=[
            (
                "一、2024年工作回顾",
                "新城生产总值连续跨越两个千亿台阶，去年生产总值占全市比重提高到12%。"
                "去年新城生产总值增长5.2%，城镇新增就业1.2万人。",
            ),
            (
                "一、2024年工作回顾",
                "新城就业形势保持稳定，去年新城开展就业培训3万人次。去年新城城镇新增就业1.3万人，生产总值增长5.1%。",
            ),
            *_COMMON,
        ],
    )
    build_index([speech], real_encoder, tmp_path / "index")
    service = AnswerService.open(tmp_path / "index", real_encoder)
    for question, stating in (
        ("新城去年生产总值增长了多少？", "去年新城生产总值增长5.2%"),
        ("新城去年城镇新增就业多少人？", "去年新城城镇新增就业1.3万人"),
    ):
        answer = service.ask(question)
        assert answer.answerable, (question, answer.answer)
        assert answer.answer.startswith(stating) and answer.citations[0].quote.startswith(stating), (
            answer.answer
        )


def test_an_answer_naming_things_opens_with_the_sentence_naming_them_not_with_its_paragraphs_topic(
    tmp_path, real_encoder
):
    """Issue 8: the first sentence carries the asked-for fact, not a heading-like sentence. A "哪些…" question is
    answered from a paragraph that opens with its topic ("文旅消费持续升温。") and a figure on another matter; the
    first release, and `gated` before, quoted it in reading order, so the scenic spots came third."""
    service = _new_town_report(
        tmp_path / "index",
        real_encoder,
        "一、2024年工作回顾",
        "文旅消费持续升温。新城开展消费促进活动，汽车、家电零售额分别增长20%、10%。"
        "新城湿地公园、古镇老街晋升国家5A级旅游景区，游客人次增长14%。",
    )
    answer = service.ask("新城去年有哪些景区晋升为国家5A级旅游景区？")
    assert answer.answerable, answer.answer
    naming = "新城湿地公园、古镇老街晋升国家5A级旅游景区"
    assert answer.answer.startswith(naming) and answer.citations[0].quote.startswith(naming), answer.answer


def _provincial_reports(
    index_dir, real_encoder, paragraphs: dict[str, list[tuple[str, str]]]
) -> AnswerService:
    """A 2025 report per region (its metadata naming the region), each with ``paragraphs[region]`` before the
    common ones, indexed and served as the default is."""
    speeches = [
        make_speech(
            title=f"2025年{region}政府工作报告",
            speaker="王李赵钱孙周吴郑冯陈褚卫"[n] + "一二三四五六七八九十"[n % 10],
            role=f"{region}省长",
            date="2025-01-15",
            region=region,
            paragraphs=[*own, *_COMMON],
        )
        for n, (region, own) in enumerate(paragraphs.items())
    ]
    build_index(speeches, real_encoder, index_dir)
    return AnswerService.open(index_dir, real_encoder)


def test_a_follow_up_is_answered_about_its_new_region_and_a_chain_keeps_the_first_question(
    tmp_path, real_encoder
):
    """ "那江苏省呢？" asks what the previous question asked, about 江苏: the answer states 江苏's figure (the
    question alone asks for nothing, and the fact gate refused it). The next "安徽省呢？" is read against that
    reading, not against the bare "那江苏省呢？"."""
    growth = {"浙江省": "5.5%", "江苏省": "5%", "安徽省": "6%"}
    service = _provincial_reports(
        tmp_path / "idx",
        real_encoder,
        {
            region: [
                (
                    "二、2025年工作安排",
                    f"今年经济社会发展主要预期目标是：地区生产总值增长{rate}左右，城镇新增就业50万人。",
                )
            ]
            for region, rate in growth.items()
        },
    )
    first = "浙江省今年地区生产总值预期增长多少？"
    history: list[str] = [first]
    assert "5.5%" in service.ask(first).answer
    for follow_up, region in (("那江苏省呢？", "江苏省"), ("安徽省呢？", "安徽省")):
        answer = service.ask(follow_up, history=history)
        assert answer.answerable, (follow_up, answer.answer)
        assert {c.speech_title for c in answer.citations} == {f"2025年{region}政府工作报告"}, answer.citations
        assert f"增长{growth[region]}左右" in answer.answer, answer.answer
        history.append(follow_up)


def test_a_question_about_a_city_is_answered_only_from_passages_that_speak_of_it(tmp_path, real_encoder):
    """苏州 has no report: 江苏's target for the whole province does not answer "苏州今年…", nor does 浙江's,
    though 江苏's report names 苏州 elsewhere.
    Once a passage of 江苏's report states 苏州's own target, that passage answers it."""

    def service(with_city: bool, name: str) -> AnswerService:
        jiangsu = [
            (
                "二、2025年工作安排",
                "今年经济社会发展主要预期目标是：地区生产总值增长5%左右，城镇新增就业120万人。",
            )
        ]
        # 苏州 is named in both corpora, so it is no unknown name: only what its passages say tells them apart.
        jiangsu.append(("三、区域发展", "支持苏州工业园区建设开放创新的世界一流高科技园区。"))
        if with_city:
            jiangsu.append(("四、城市发展", "支持苏州建设创新型城市，苏州今年地区生产总值目标增长5.5%左右。"))
        return _provincial_reports(
            tmp_path / name,
            real_encoder,
            {
                "江苏省": jiangsu,
                "浙江省": [("二、2025年工作安排", "今年主要预期目标是：地区生产总值增长5.5%左右。")],
            },
        )

    question = "苏州今年地区生产总值增长目标是多少？"
    without = service(False, "without")
    refused = without.ask(question)
    assert not refused.answerable and refused.citations == (), refused.answer
    province = without.ask("江苏今年地区生产总值增长目标是多少？")
    assert province.answerable and "增长5%左右" in province.answer, province.answer
    stated = service(True, "with").ask(question)
    assert stated.answerable and "5.5%" in stated.answer, stated.answer
    assert all("苏州" in c.passage_text for c in stated.citations), stated.citations


def test_a_question_about_another_country_is_answered_only_from_a_passage_that_names_it(
    tmp_path, real_encoder
):
    """China's consumer prices do not answer "美国…上涨了多少", though the same document names 美国 elsewhere (a
    division named once in a notice speaks for the whole notice; another country does not). Once a passage
    states America's figure, that passage answers it, and China's is still asked of as before."""

    def service(with_america: bool) -> AnswerService:
        paragraphs = [
            ("一、物价", "全年居民消费价格上涨2.0%，核心居民消费价格上涨0.9%，物价总水平保持稳定。"),
            ("二、外贸", "积极应对美国加征关税等外部冲击，货物贸易进出口总额增长7.7%。"),
            *_COMMON,
        ]
        if with_america:
            paragraphs.insert(1, ("三、国际", "美国全年居民消费价格上涨6.5%，通胀压力仍然较大。"))
        speech = make_speech(
            title="经济运行情况通报", speaker="张明", role="新闻发言人", paragraphs=paragraphs
        )
        index_dir = tmp_path / ("with" if with_america else "without")
        build_index([speech], real_encoder, index_dir)
        return AnswerService.open(index_dir, real_encoder)

    question = "美国全年居民消费价格上涨了多少？"
    without = service(False)
    refused = without.ask(question)
    assert not refused.answerable and refused.citations == (), refused.answer
    home = without.ask("全年居民消费价格上涨了多少？")
    assert home.answerable and "2.0%" in home.answer, home.answer
    stated = service(True).ask(question)
    assert stated.answerable and "6.5%" in stated.answer, stated.answer
    assert all("美国" in c.passage_text for c in stated.citations), stated.citations


def _three_reports(tmp_path, real_encoder) -> AnswerService:
    """Three years' reports, two by 李强: one names 低空经济, another 人工智能."""
    topics = {
        2023: "加快建设现代化产业体系。",
        2024: "积极打造生物制造、商业航天、低空经济等新增长引擎。",
        2025: "持续推进人工智能行动。",
    }
    speeches = [
        make_speech(
            title=f"{year}年政府工作报告",
            speaker="李克强" if year == 2023 else "李强",
            role="国务院总理",
            date=f"{year}-03-05",
            region="全国",
            paragraphs=[("二、今年工作任务", topics[year]), *_COMMON],
        )
        for year in topics
    ]
    build_index(speeches, real_encoder, tmp_path / "idx")
    return AnswerService.open(tmp_path / "idx", real_encoder)


def test_which_report_talks_about_a_topic_cites_the_sentence_that_does_and_counts_a_speakers_reports(
    tmp_path, real_encoder
):
    service = _three_reports(tmp_path, real_encoder)
    which = service.ask("哪一年的报告提到了低空经济？")
    assert which.answerable and "2024年政府工作报告" in which.answer, which.answer
    assert [c.quote for c in which.citations] == ["积极打造生物制造、商业航天、低空经济等新增长引擎。"]
    # No report talks about it: no speech is named for it.
    assert not service.ask("哪一年的报告提到了火星移民？").answerable
    # The kind of report may stand between the count and the noun.
    count = service.ask("李强作了几次政府工作报告？")
    assert count.answerable and "2篇" in count.answer, count.answer


def test_a_comparison_answers_every_region_it_names_and_says_which_has_no_report(tmp_path, real_encoder):
    """Each side of "吉林省和辽宁省…分别是多少？" is gated as the question asked of it alone (the other side's name
    is no term its sentences could state); a place with no report ("深圳") is said to be missing."""
    service = _provincial_reports(
        tmp_path / "idx",
        real_encoder,
        {
            region: [
                (
                    "二、2025年工作安排",
                    f"今年经济社会发展主要预期目标是：地区生产总值增长{rate}左右，城镇新增就业30万人。",
                )
            ]
            for region, rate in (("吉林省", "5.5%"), ("辽宁省", "5%"))
        },
    )
    both = service.ask("吉林省和辽宁省今年地区生产总值增长目标分别是多少？")
    assert both.answerable, both.answer
    assert {c.speech_title for c in both.citations} == {
        "2025年吉林省政府工作报告",
        "2025年辽宁省政府工作报告",
    }
    assert "吉林省：" in both.answer and "辽宁省：" in both.answer, both.answer
    one = service.ask("吉林省和深圳今年地区生产总值增长目标分别是多少？")
    assert one.answerable and one.answer.startswith("吉林省："), one.answer
    assert one.answer.endswith("深圳：现有资料未提及。"), one.answer


def test_which_regions_say_something_lists_every_region_that_does_and_refuses_what_none_says(
    tmp_path, real_encoder
):
    """A survey lists every report that says it, however many: ten regions of twelve plan 低空经济, each in
    its own words, and each is cited once (the first quoted, the rest named); the two that do not are left out.
    Asked about something no report says (火星基地, where reports only speak of other 基地), it is refused."""
    plans = [
        "大力发展低空经济，建设通用机场3个。",
        "培育低空经济产业集群，拓展低空物流应用场景。",
        "有序发展低空经济。",
        "制定低空经济发展行动方案，建设低空经济试验区。",
        "打造低空经济、商业航天等新增长引擎。",
        "加快布局低空经济发展，打造低空制造产业高地。",
        "争创全国低空经济示范区，加快构建低空飞行服务体系。",
        "设立低空经济产业投资基金，培育一批链主企业。",
        "推动低空经济与文旅融合发展，开通低空旅游航线。",
        "积极发展低空经济，完善低空飞行保障设施。",
    ]
    regions = [
        "安徽省",
        "江西省",
        "湖南省",
        "湖北省",
        "河南省",
        "河北省",
        "山东省",
        "山西省",
        "陕西省",
        "甘肃省",
    ]
    others = {
        "吉林省": "建设国家粮食安全产业基地，粮食产量稳定在800亿斤以上。",
        "辽宁省": "建设沈阳科技创新基地。",
    }
    reports = {region: [("二、2025年工作安排", plan)] for region, plan in zip(regions, plans, strict=True)}
    reports.update({region: [("二、2025年工作安排", text)] for region, text in others.items()})
    service = _provincial_reports(tmp_path / "index", real_encoder, reports)

    answer = service.ask("哪些省份提出发展低空经济？")
    assert answer.answerable, answer.answer
    cited = sorted(c.speech_title for c in answer.citations)
    assert cited == sorted(f"2025年{region}政府工作报告" for region in regions), answer.answer
    assert all(answer.answer.count(region) == 1 for region in regions), answer.answer
    assert not any(region in answer.answer for region in others), answer.answer

    refused = service.ask("哪些省份提出建设火星基地？")
    assert not refused.answerable and refused.citations == (), refused.answer


def test_which_speeches_say_something_is_a_survey_of_speeches_without_regions_too(tmp_path, real_encoder):
    """ "哪几篇讲话…" asks which speeches say it: over speeches without a region (a district's officials), each that
    does is named by its speaker with its own sentence, one that does not is left out."""
    talks = {
        "李华": "全面加强各类人才引进，为国际人才设立一站式服务窗口。",
        "王强": "实施人才引进计划，新建人才公寓500套。",
        "赵敏": "新建两座城市公园，提升绿化覆盖率。",
    }
    speeches = [
        make_speech(
            title=f"{name}在工作会上的讲话", speaker=name, role="主任", paragraphs=[("一、", text), *_COMMON]
        )
        for name, text in talks.items()
    ]
    build_index(speeches, real_encoder, tmp_path / "index")
    answer = AnswerService.open(tmp_path / "index", real_encoder).ask("哪几篇讲话提到了人才引进？")
    assert answer.answerable, answer.answer
    assert sorted(c.speaker for c in answer.citations) == ["李华", "王强"], answer.answer
    assert "李华：" in answer.answer and "王强：" in answer.answer, answer.answer


def test_which_regions_say_something_is_answered_with_one_sentence_of_each_that_does(tmp_path, real_encoder):
    """ "哪些省份…" asks which reports say it: each one that does is named once, with its own sentence, and a report
    that does not is left out. The best passages alone all came from the report that says most about it, so the
    answer quoted that report's sentences, each labelled with its region, and not the other's."""
    lifeline = "实施城市生命线安全工程"
    service = _provincial_reports(
        tmp_path / "index",
        real_encoder,
        {
            "安徽省": [
                (
                    "三、2025年工作安排",
                    f"深入{lifeline}，加快应用场景向城市全域延伸。健全省市县三级城市生命线安全监测服务体系。"
                    "努力建设城市生命线安全发展先行示范区，城市生命线安全监测覆盖所有设区市。",
                ),
                (
                    "三、2025年工作安排",
                    "城市生命线安全工程二期覆盖燃气、供水、排水、桥梁等领域，新增监测点位1万个。",
                ),
            ],
            "江西省": [("三、2025年工作安排", f"推进城市更新，{lifeline}，改造燃气管网650公里。")],
            "湖南省": [("三、2025年工作安排", "新建5G基站2万个，推进千兆光网进社区。")],
        },
    )
    answer = service.ask("哪些省份提出要实施城市生命线安全工程？")
    assert answer.answerable, answer.answer
    cited = [c.speech_title for c in answer.citations]
    assert sorted(cited) == ["2025年安徽省政府工作报告", "2025年江西省政府工作报告"], answer.answer
    assert answer.answer.count("安徽省：") == 1 and answer.answer.count("江西省：") == 1, answer.answer


def test_a_figure_asked_about_last_year_or_by_a_noun_that_starts_like_a_counter_is_answered_where_stated(
    tmp_path, real_encoder
):
    """A question says 去年 where a report's review says nothing or "2024年": as a term the sentence must hold, the
    word only counted against the sentence that states the figure, and the fact gate refused "青海去年原油产量有多少？".
    "多少天然气" asks for an amount of gas, not a count of days
    (天), so a sentence stating "38.8亿方" answers it. A port named by a city (青岛港) is about that city: 天津港's
    figure does not answer it."""
    review = "一、2024年工作回顾"
    service = _provincial_reports(
        tmp_path / "idx",
        real_encoder,
        {
            "青海省": [
                (review, "盐湖资源有序开发，生产钾肥749万吨。生产原油238万吨、再创历史新高。"),
                (review, "年产38.8亿方的柴达木气田增产项目全面投产，新增煤矿产能200万吨。"),
            ],
            "天津市": [
                (review, "天津港接入全球航运商业网络，集装箱航线147条、吞吐量2329万标准箱。"),
            ],
        },
    )
    for question, figure in (
        ("青海去年原油产量有多少？", "238万吨"),
        ("柴达木气田增产项目一年能产多少天然气？", "38.8亿方"),
        ("天津港去年集装箱吞吐量是多少万标准箱？", "2329万标准箱"),
    ):
        answer = service.ask(question)
        assert answer.answerable and figure in answer.answer, (question, answer.answer)
    refused = service.ask("青岛港去年集装箱吞吐量是多少万标准箱？")
    assert not refused.answerable and refused.citations == (), refused.answer


@pytest.mark.parametrize(
    ("question", "stated", "named", "others"),
    [
        # The common paragraphs name places (城区, 城市公园), but no city of 安徽.
        (
            "2025年新城杯国际马拉松赛在安徽哪个城市办？",
            "2025年新城杯国际马拉松赛将在芜湖举办",
            "芜湖",
            _COMMON,
        ),
        (
            "2025年新城杯国际马拉松赛在哪里举办？",
            "2025年新城杯国际马拉松赛将在滨江体育中心举办",
            "滨江体育中心",
            _PLACELESS,
        ),
        (
            "2025年新城杯国际马拉松赛由谁承办？",
            "2025年新城杯国际马拉松赛由滨江体育局承办",
            "滨江体育局",
            _PLACELESS,
        ),
    ],
)
def test_a_question_asking_where_or_who_is_refused_when_no_sentence_names_a_place_or_someone(
    tmp_path, real_encoder, question, stated, named, others
):
    """ "在安徽哪个城市办" is answered by a city of 安徽, "在哪里举办" by a place or an institution the question does not
    name, "由谁承办" by someone it does not name: a sentence naming the event alone does not answer them, whatever the
    model's score (the gates' thresholds are lowered until any sentence would clear them, so the report's other
    sentences name no such place or body)."""
    answers = {}
    for said, text in ((True, stated), (False, "2025年新城杯国际马拉松赛将如期举办")):
        speech = make_speech(
            title="2025年安徽省政府工作报告",
            speaker="张明",
            role="安徽省省长",
            date="2025-01-20",
            region="安徽省",
            paragraphs=[("二、2025年工作安排", f"{text}，报名即日开始。"), *others],
        )
        build_index([speech], real_encoder, tmp_path / str(said))
        service = AnswerService.open(tmp_path / str(said), real_encoder)
        service.composer.thing_threshold = 1e-9  # type: ignore[attr-defined]
        service.composer.threshold = 1e-9  # type: ignore[attr-defined]
        answers[said] = service.ask(question)
    assert answers[True].answerable and named in answers[True].answer, answers[True].answer
    assert not answers[False].answerable and answers[False].citations == (), answers[False].answer


def test_when_none_of_the_writers_quotes_clears_the_fact_gate_the_sentence_that_did_opens_the_answer(
    tmp_path, real_encoder
):
    """The extractive writer's count requirement is met by a slogan's 个 (“四个中心”), which states no figure; the fact
    gate cleared on the sentence that lists the industries. That sentence opens the answer, and the slogan goes."""
    service = _served_report(
        tmp_path / "idx",
        real_encoder,
        [
            ("一、发展概况", "园区聚焦“四个中心”功能建设和“四个服务”水平提升，推动主导产业发展。"),
            ("二、产业发展", "经过30年的发展，园区形成了以轨道交通、航空航天为主导产业的发展格局。"),
            *_COMMON,
        ],
    )
    answer = service.ask("园区有几个主导产业？")
    assert answer.answerable and "轨道交通、航空航天" in answer.answer, answer.answer
    assert "四个中心" not in answer.answer, answer.answer
