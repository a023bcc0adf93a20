"""Chinese numerals read as Arabic ones ("二0一一年" → "2011年", "百分之六十四点七" → "64.7%"), for matching only.

Reports of every kind write numbers both ways: the provincial and State Council reports of the 2020s mostly in
digits, party congress reports and older documents in characters ("国内生产总值达到四十七点三万亿元", "全国八百三十二个
贫困县", "到二○三五年"). Questions use digits. The answerability model learned from texts in digits (reading
comprehension, the reports it generates questions from), and its year and number features read digits, so a
sentence in characters looked to it as if it stated no year and no figure (cpc-dev, docs/answerability.md, "An
unseen corpus"). Candidate sentences and passages are matched with this (qa.terms.matched_text), beside the official
names of statistics; questions are not (their words are weighed by the index's document frequencies, which count
the text as written), and quotes stay verbatim.

Conservative by design: characters are numbers only where the grammar says so, because a false number ("十分重要"
→ "10分重要") would make a sentence state a figure it does not. A run of numeral characters is read when
- it is a year written digit by digit before 年 ("二〇二二年", "一九四九年");
- it follows 百分之 (a percentage);
- it has a digit and a magnitude of a hundred or more (百千万亿) or a decimal point (点), and is followed by a
  measure word, a unit or 多/余 ("八百三十二个", "十一点六个百分点", "九千六百多万名"), not by anything else
  ("十分", "千方百计", "百姓", "一千零一夜" stay), and is no ordinal ("第十四条", "十九届" stay).

Counts under a hundred stay in characters: they name things as often as they count them ("十项措施",
"十件民生实事", "“十县百乡千村万户”工程"), a question quotes such a name as the text writes it, and qa.features
already reads them as numbers ("十四条", "三十年").
"""

from __future__ import annotations

import re

_DIGIT = {"零": 0, "〇": 0, "○": 0, "0": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4}
_DIGIT |= {"五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_SMALL = {"十": 10, "百": 100, "千": 1000}
_CHARS = "零〇○一二两三四五六七八九十百千万亿"
# What may follow a number: measure words and units (qa.features' lists, by their first character), 多 / 余
# ("九千六百多万"), and the magnitudes themselves. Not 届 / 期, nor after 第: ordinals name things ("十九届", "第十四
# 条"), and a question names them as the text does.
_AFTER = frozenset(
    "个家所条项次名位倍成种类岁年天周月日时人户批层间床张件部辆台套枚只头架艘斤吨米度座栋盘场轮首篇章节级块片份组"
    "支对双处段秒元里国省市区县旗公平立千万亿多余%％美港英亩克瓦标"
)
_YEAR = re.compile(r"(?<![" + _CHARS + r"\d])([零〇○0一二三四五六七八九]{4})(?=\s*年)")
_PERCENT = re.compile(r"百分之([" + _CHARS + r"]+(?:点[零〇○一二三四五六七八九]+)?)")
_RUN = re.compile(r"(?<![第" + _CHARS + r"\d])([" + _CHARS + r"]+(?:点[零〇○一二三四五六七八九]+)?)(?=(.?))")


def _integer(run: str) -> int | None:
    """The value of a positional numeral ("八百三十二" → 832, "十亿四千万" → 1040000000), None if it is not one
    ("二三": two digits in a row, except after 零 as in "一千零一")."""
    yi = wan = below = digit = 0
    previous = ""
    for ch in run:
        if ch in _DIGIT:
            if previous in _DIGIT and _DIGIT[previous] != 0:
                return None
            digit = _DIGIT[ch]
        elif ch in _SMALL:
            below += (digit or 1) * _SMALL[ch]
            digit = 0
        elif ch == "万":
            wan = (wan + below + digit) * 10**4
            below = digit = 0
        elif ch == "亿":
            yi = (yi + wan + below + digit) * 10**8
            wan = below = digit = 0
        else:
            return None
        previous = ch
    return yi + wan + below + digit


def _number(run: str) -> str | None:
    """``run`` in Arabic digits ("四十七点三" → "47.3", "二万八千亿" → "28000亿", "九千六百" → "9600"), None when it
    is not a numeral. A value with 万 or 亿 in it keeps the largest of them, as reports write figures."""
    whole, point, rest = run.partition("点")
    value = _integer(whole)
    if value is None:
        return None
    if point:
        return f"{value}." + "".join(str(_DIGIT[c]) for c in rest)
    for word, unit in (("亿", 10**8), ("万", 10**4)):
        if word in run and value >= unit:
            return f"{value / unit:.4f}".rstrip("0").rstrip(".") + word
    return str(value)


def _read_run(m: re.Match[str]) -> str:
    run, after = m.group(1), m.group(2)
    magnitude = any(c in "百千万亿点" for c in run)  # counts under a hundred stay (module docstring)
    has_digit = any(c in _DIGIT for c in run)
    if not (magnitude and has_digit and after in _AFTER):
        return run
    return _number(run) or run


def _read_percent(m: re.Match[str]) -> str:
    number = _number(m.group(1))
    return f"{number}%" if number else m.group(0)


def arabic_numerals(text: str) -> str:
    """``text`` with the Chinese numerals the grammar marks as numbers written in digits; unchanged otherwise.
    Not memoized here: its one caller, qa.terms.matched_text, is."""
    if not any(c in _CHARS for c in text):
        return text
    text = _YEAR.sub(lambda m: "".join(str(_DIGIT[c]) for c in m.group(1)), text)
    text = _PERCENT.sub(_read_percent, text)
    return _RUN.sub(_read_run, text)
