"""Chinese numerals read as digits for matching (qa.numerals), and only where the grammar makes them numbers."""

from __future__ import annotations

import pytest

from qa.numerals import arabic_numerals
from qa.terms import matched_text


@pytest.mark.parametrize(
    ("text", "read"),
    [
        ("二〇二四年新城生产总值达到三千二百五十亿元", "2024年新城生产总值达到3250亿元"),
        ("到二○三〇年基本建成", "到2030年基本建成"),
        ("比二0一五年翻一番", "比2015年翻一番"),
        # A lone digit is left (no magnitude says it is a figure); qa.features reads 七月 as a month already.
        ("一九九七年七月一日", "1997年七月一日"),
        ("新建学校一百二十六所", "新建学校126所"),
        ("覆盖人口十三亿五千万人", "覆盖人口13.5亿人"),
        ("投资二万三千亿元", "投资23000亿元"),
        ("总量达到五十六点八万亿元", "总量达到56.8万亿元"),
        ("提高三点五个百分点，达到百分之七十二点四", "提高3.5个百分点，达到72.4%"),
        ("党员四千八百多万名", "党员4800多万名"),
        ("增长一点五倍", "增长1.5倍"),
    ],
)
def test_numerals_that_state_a_figure_are_read_as_digits(text, read):
    assert arabic_numerals(text) == read


@pytest.mark.parametrize(
    "text",
    [
        "这项工作十分重要",  # 十分 = very
        "十月二十日召开，实施十项措施和十件民生实事，连续十年",  # counts under a hundred name things too
        "千方百计保障老百姓的利益",
        "一点一滴做起，两点一线",
        "党的十九届四中全会和二十大",  # ordinals and names stay as a question names them
        "第十四条规定",
        "实施十四五规划",
        "坚持两个确立，做到一个都不能少",  # a digit without a magnitude: already read as a number where it is one
        "千百年来，百万雄师",  # magnitudes without a digit
        "三二一，开始",  # not a positional numeral
        "2025年增长5%",
    ],
)
def test_words_made_of_numeral_characters_stay_as_they_are(text):
    assert arabic_numerals(text) == text


def test_a_sentence_is_matched_with_digits_and_official_names_while_its_quote_stays():
    assert matched_text("二〇二四年新城GDP增长百分之五点二") == "2024年新城生产总值增长5.2%"
