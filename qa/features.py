"""Features of (question, candidate sentence) pairs for the learned answerability and sentence model.

Every feature is a general property of Chinese questions and passages, not of one corpus: how much of the
question's content (its terms weighted by rarity, its characters, its named entities and years) the sentence
and its passage state; whether a question asking for a quantity, a unit or a time finds one stated; how the
dense and lexical scores of this candidate compare with the others. The weights that combine them are
learned (training/answerability.py) on public reading-comprehension data, never on our acceptance sets.

The few word lists here are Chinese grammar, not corpus vocabulary: interrogatives that ask for a number,
a time or a person, and the measure words a number is counted in. Each says what it is for.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from qa.lexical import names_unasked, pos_tags, tokenize_question, word_edges
from qa.lexical import normalize as _normalize
from qa.mentions import REPORT_YEAR

# Scoring one question's candidates normalizes, splits into bigrams and (for 谁 questions) tags the same
# sentences, clauses and passages many times over: 46,941 NFKC normalizations for 168 questions (gold-dev,
# cProfile), a fifth of the features' time. Pure functions of the text, so they are memoized; the features
# stay identical (checked on every gold-dev question's matrix). The bounds hold the top passages' texts of
# a few hundred recent questions; the sentence texts are a corpus's own strings, so nothing grows unbounded.
normalize = functools.lru_cache(maxsize=8192)(_normalize)

# -- question analysis ------------------------------------------------------------------------------------

# Interrogatives (grammar): asking for a quantity, a time, a person.
_ASK_NUMBER = re.compile(r"(?<!哪)(多少|几)|多大|多高|多长|多远|多重|多快|比例|比重|增速|增长率|占比")
_ASK_TIME = re.compile(r"何时|什么时候|哪一?年|何年|哪一?天|哪一日|几月|几号|什么时间|哪个月|多久")
_ASK_PERSON = re.compile(r"谁|哪位|何人|什么人")
# Asking for a list or a way ("哪些措施", "哪三方面", "如何", "有何政策", "什么样的队伍" = "怎样的队伍"), not for one
# named thing ("X是什么", "在哪里", "叫什么名字"). The answerability model learned from span answers (reading
# comprehension) and scores good list or way answers low: of the 12 gold-dev / national-dev / ncp-unanswerable
# answerable questions asking no fact that it scores under 0.05, 10 ask this way. So they keep the lenient open
# gate, and the questions asking for one thing get a gate set like the fact gate's
# (training.answerability.THING_FALSE_REFUSAL). Synonyms go together (怎样 / 什么样, 有何 / 有什么).
_ASK_LIST_OR_WAY = re.compile(r"如何|怎样|怎么|什么样|哪些|哪[几两二三四五六七八九十]|有何|有什么|措施|举措")
# The unit a quantity question asks for: the measure word right after 多少/几 ("多少平方公里", "几个").
_ASKED_UNIT = re.compile(r"(?<!哪)(?:多少|几)\s*([^\s\d，。？?！!、的是了吗呢和与及]{1,4})")
# Measure words / units that may follow a number (grammar of Chinese quantities, longest first).
_UNITS = (
    "平方公里 平方千米 平方米 亩 公顷 公里 千米 米 亿元 万元 元 亿美元 万美元 美元 亿 万 千 百 个百分点 百分点 "
    "% ％ 倍 个 家 所 座 条 项 次 年 岁 名 位 人 户 栋 批 类 种 园 天 吨 万吨 千瓦 万千瓦 度 辆 台 套 张 件 部 "
    "届 期 号 月 日 小时 分钟 层 间 床 张 元/吨 枚 只 头 架 艘 斤 万斤 亿斤 公斤 千克 立方米 万立方米 标箱 "
    "万标箱 人次 万人次 亿人次 千米/小时 万亩 亿亩 万户 万人 亿人 万套 万辆 万家 万个"
).split()
_UNIT_SET = frozenset(_UNITS)
_NUMBER = r"(?:\d+(?:[.,]\d+)*|[零一二两三四五六七八九十百千万亿]+(?:点[零一二三四五六七八九]+)?)"
_ANY_NUMBER = re.compile(r"\d|[一二两三四五六七八九十百千万亿]{1,6}(?:个|家|所|条|项|次|名|位|倍|成|亿|万)")
# Whether a sentence states a quantity at all, for the fact gate (``states_number``; the model's own features keep
# ``_ANY_NUMBER``, which it was trained with). Grammar of Chinese numerals: digits; ordinals and ranks (第三,
# 前五); fractions (四分之三); a numeral with a magnitude (二十, 两千, 四十九, 十八); a numeral other than 一 with
# a measure word (两种, 五盘); 一 only with the commonest counters (一个 is everywhere as "a"); halves (一半, 半数,
# 过半). Of the number questions of CMRC2018 trial and DRCD dev, 8 / 102 and 29 / 250 answer sentences state no
# number by ``_ANY_NUMBER``, 1 / 102 and 9 / 250 by this (and those mostly ask none: "几何光学", "这几年").
_MEASURE = (
    "个 家 所 条 项 次 名 位 倍 成 亿 万 千 百 种 类 岁 年 天 周 月 日 人 户 批 届 期 层 间 床 张 件 部 辆 台 套 枚 只 "
    "头 架 艘 斤 吨 米 度 座 栋 盘 场 轮 首 篇 章 节 级 块 片 份 组 支 对 双 处 段 秒 点 元 里 国 省 市 区 县 旗 公里 公顷 平方"
).split()
_STATES_NUMBER = re.compile(
    r"\d|[第前][一二两三四五六七八九十百千]|[一二两三四五六七八九十百千]+分之"
    r"|[一二两三四五六七八九][十百千万亿]|十[一二三四五六七八九]"
    rf"|[二两三四五六七八九十](?:{'|'.join(_MEASURE)})|一(?:个|家|所|条|项|次|名|位|倍|成|亿|万)|[一两]半|半数|过半"
)
# A day written as Western and numeric pages write it: "Mar 15, 2023", "15 March 2023", "2023-03-15", "2023/3/15".
# Date grammar, not a word list: the English month names and their abbreviations.
_MONTH_NAME = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?"
WRITTEN_DAY = (
    rf"(?<![A-Za-z]){_MONTH_NAME}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+(?:19|20)\d\d(?!\d)"
    rf"|(?<![\dA-Za-z])\d{{1,2}}\s+{_MONTH_NAME}\s+(?:19|20)\d\d(?!\d)"
    r"|(?<!\d)(?:19|20)\d\d[-/.](?:0?[1-9]|1[0-2])[-/.](?:0?[1-9]|[12]\d|3[01])(?!\d)"
)
_TIME = re.compile(
    rf"{WRITTEN_DAY}|"
    r"\d{4}\s*年|\d{1,2}\s*月|\d{1,2}\s*日|年底|年内|年初|年中|年末|上半年|下半年|季度|今年|明年|去年|"
    r"[一二三四五六七八九十]+月|[一二三四五六七八九十]+日|世纪|年代|期间|之前|以后|届时"
)
# Asking for a day, not just a time: only a stated day answers it ("年底前" does not).
# 几号 asks a date, but 几号线 / 几号楼 ask which line or building.
_ASK_DAY = re.compile(r"哪一?天|哪一日|几号(?![线楼院])|几月几日|具体日期|什么日子")
# A stated day: the model's day feature and the writer's requirement for "哪一天" (qa.compose) both read it. "16号线" is
# a metro line, not a date: 号 counts only right after a month.
STATED_DAY = re.compile(rf"(?<!\d)\d{{1,2}}\s*日|月\s*\d{{1,2}}\s*号|[一二三四五六七八九十]+日|{WRITTEN_DAY}")
_YEAR = re.compile(r"(1[89]\d\d|20\d\d)\s*年")
# Years said relative to when the speech was given (grammar of Chinese time words), as offsets from its year.
_RELATIVE_YEAR = (
    (re.compile(r"今年|本年度|本年|当年"), 0),
    # "比上年增加" compares with last year; it does not say the figure is last year's.
    (re.compile(r"去年|(?<![比较于])上年(?!末|底)|过去一年|一年来|前一年|上一年"), -1),
    (re.compile(r"前年"), -2),
    (re.compile(r"明年|下一年"), 1),
)
# 今年 / 去年 as a word of a question: like a calendar year, the period it names is not part of the focus (the period
# features read it). A report writes "2024年" or nothing where a question says 去年, and the training questions name
# their years ("2009年…"), so as a focus term it only counted against the sentences that answer it.
_RELATIVE_YEAR_WORD = re.compile("|".join(pattern.pattern for pattern, _ in _RELATIVE_YEAR))
# A year as a question or sentence names it, calendar or relative (the two above), as one pattern: where
# "2024年呢？" finds the year of the question it follows (qa.service).
PERIOD = "|".join([_YEAR.pattern, _RELATIVE_YEAR_WORD.pattern])
# A figure over several years (年均, 累计, 五年来) answers a question about one year only if the question asks
# for that span too (grammar of Chinese time scope).
_SCOPE = re.compile(
    r"年均|累计|[二三四五六七八九十两]年来|过去[二三四五六七八九十两]年|[一二三四五六七八九十]{1,2}五(?:期间|时期)"
)
# Clause boundaries inside a sentence: a fact and the thing it is about are stated in one clause.
_CLAUSE = re.compile(r"[，,；;：:、]")
# Tokens with no content of their own in a question (grammar words; the lexical index drops its own list).
_QUESTION_WORDS = frozenset(
    "多少 几 哪 哪些 哪个 哪里 哪儿 什么 怎么 怎样 如何 为什么 为何 谁 何时 是否 吗 呢 请问 是 有 的 了 在 "
    "哪年 哪一年 哪天 什么时候 时候 时间 一 个 主要 具体 分别 目前 现在 "
    # How big / long / high… ask a quantity as 多少 does; no sentence states them ("规模做到多大了？": 多大 was the
    # question's heaviest term, out of every dictionary, and counted against the sentence stating 6000亿元).
    "多大 多高 多长 多久 多远 多重 多宽 多深 多快".split()
)
_ENTITY_FLAGS = ("nr", "ns", "nt", "nz")


@dataclass(frozen=True)
class QuestionInfo:
    """What a question asks for, computed once per question."""

    text: str
    terms: dict[str, float]  # content terms -> idf weight
    bigrams: frozenset[str]
    entities: tuple[str, ...]  # person / place / organisation names (jieba POS)
    years: tuple[str, ...]
    asks_number: bool
    asks_time: bool
    asks_day: bool
    asks_person: bool
    unit: str  # the unit asked for ("平方公里"), "" when none
    unknown_share: float  # idf mass of terms no indexed paragraph uses
    relative_years: tuple[int, ...] = ()  # 今年 -> 0, 去年 -> -1: resolved against each candidate's speech
    period_years: tuple[int, ...] = ()  # the years it asks about (years naming a report left out)


@functools.lru_cache(maxsize=4096)
def _cjk_bigrams(text: str) -> frozenset[str]:
    t = re.sub(r"[\W_]+", "", normalize(text))
    return frozenset(t[i : i + 2] for i in range(len(t) - 1))


@functools.cache
def _stop_bigrams() -> frozenset[str]:
    """Bigrams of the question words (什么, 多少…), which say nothing about the topic."""
    return frozenset(b for w in _QUESTION_WORDS for b in _cjk_bigrams(w))


def _asked_unit(question: str) -> str:
    m = _ASKED_UNIT.search(question)
    if not m:
        return ""
    tail = m.group(1)
    for unit in sorted(_UNITS, key=len, reverse=True):
        if tail.startswith(unit):
            return unit if unit_is_a_word(question, m.start(1), unit) else ""
    return ""


def unit_is_a_word(question: str, start: int, unit: str) -> bool:
    """Whether ``unit``, read at ``start`` right after 多少 / 几, is a measure word of ``question`` and not the first
    character of the noun asked about: "多少天然气" asks an amount of gas, not a number of days (天), "多少项目" a
    number of projects, which a report counts in 个 ("项目1000个"), "多少家庭" households. By jieba's dictionary
    (qa.lexical.word_edges): the unit ends where a word ends, or the word it starts is itself a unit ("人次")."""
    edges = word_edges(question)
    end = start + len(unit)
    if end in edges:
        return True
    word_end = next((e for e in edges if e > start), len(question))
    return question[start:word_end] in _UNIT_SET


def analyze_question(question: str, df: Callable[[str], int], n_docs: int) -> QuestionInfo:
    """Terms with idf from the index's document frequencies, entities, years and what kind of answer it asks."""
    import jieba.posseg as pseg

    n = max(1, n_docs)
    terms: dict[str, float] = {}
    unknown = 0.0
    for tok in dict.fromkeys(tokenize_question(question)):
        if tok in _QUESTION_WORDS:
            continue
        d = df(tok)
        w = math.log((n + 1) / (d + 0.5))
        terms[tok] = w
        if d == 0 and len(tok) >= 2:
            unknown += w
    entities = tuple(
        dict.fromkeys(
            w.word for w in pseg.lcut(question) if w.flag.startswith(_ENTITY_FLAGS) and len(w.word) >= 2
        )
    )
    total = sum(terms.values())
    return QuestionInfo(
        text=question,
        terms=terms,
        bigrams=_cjk_bigrams(question) - _stop_bigrams(),
        entities=entities,
        years=tuple(dict.fromkeys(_YEAR.findall(question))),
        asks_number=asks_number(question),
        asks_time=bool(_ASK_TIME.search(question)),
        asks_day=asks_day(question),
        asks_person=bool(_ASK_PERSON.search(question)),
        unit=_asked_unit(question),
        unknown_share=unknown / total if total > 0 else 0.0,
        relative_years=relative_years(question),
        period_years=tuple(sorted(question_period_years(question))),
    )


def asks_number(question: str) -> bool:
    return bool(_ASK_NUMBER.search(question))


def states_number(text: str) -> bool:
    return bool(_STATES_NUMBER.search(text))


# A number a question states itself: digits, a run of Chinese numerals, or one numeral with the counter after it
# ("第七届", "十三届", "19号线", "2022年"). Grammar of Chinese numerals, as ``_STATES_NUMBER``.
_CJK_NUMERAL = "[零〇一二两三四五六七八九十百千万亿]"
_QUESTION_NUMBER = re.compile(
    rf"\d+(?:\.\d+)?|{_CJK_NUMERAL}{{2,}}|[一二两三四五六七八九十](?=[届次号个名位年月日期])"
)


@functools.lru_cache(maxsize=4096)
def question_numbers(question: str) -> tuple[str, ...]:
    """The numbers ``question`` states itself, longest first (see ``without_numbers``)."""
    return tuple(sorted(dict.fromkeys(_QUESTION_NUMBER.findall(question)), key=len, reverse=True))


@functools.lru_cache(maxsize=8192)
def without_numbers(text: str, numbers: tuple[str, ...]) -> str:
    """``text`` with every number of ``numbers`` taken out where it stands whole (19 in "19号线", not in "2019"):
    what is left is what the sentence says beyond the question's own figures, the year it asks about included.
    A sentence that repeats "2022年考研报名人数" states no figure for "2022年考研报名人数是多少"."""
    for n in numbers:
        if n[0].isdigit():
            text = re.sub(rf"(?<![\d.]){re.escape(n)}(?![\d.])", " ", text)
        else:
            text = re.sub(rf"(?<!{_CJK_NUMERAL}){re.escape(n)}(?!{_CJK_NUMERAL})", " ", text)
    return text


# Numerals inside a name, which count nothing: a five-year plan (“十四五”, “十五五”规划), a party congress (党的二十大,
# 二十大以来) and a session or edition (十四届, 第七届, 三中全会). A sentence whose only numbers are these states no
# quantity: "全面完成“十四五”期间能耗强度下降…目标。" says nothing of how much 2025's energy intensity falls. Grammar of
# Chinese official names (the plans are numbered 一五 … 十五; congresses and sessions are ordinals), not a corpus word
# list. Of the 2025 provincial reports' 4,484 sentences stating a number, 110 state only such names.
_NUMBERED_NAME = re.compile(
    r"“十?[一二三四五六七八九]?五”|十[一二三四五六七八九]五(?=规划|期间|时期|以来|末|收官|开局|目标)"
    r"|(?<=党的)[一二三四五六七八九十]+大|[一二三四五六七八九十]+大(?=精神|以来|报告|胜利召开)"
    r"|第?[一二三四五六七八九十]+届|[一二三四五六七八九]中全会"
    # A numbered line, building or document ("地铁16号线", "3号楼", "中央一号文件"): its number names it.
    r"|(?:\d+|[一二三四五六七八九十]+)号(?:线|楼|院|文件|令|公告)"
)
# A slogan in quotation marks that counts its parts (“四个中心”, “两个确立”, “3533”目标): a name, not a figure, unless
# the question asks about what it counts ("北京要建设几个中心？" is answered by “四个中心”). Stripping the others keeps
# the number of every reading-comprehension answer sentence the rule kept (559 of 582).
_QUOTED_COUNT = re.compile(r"[“「『]([^”」』]{0,3}?[一二三四五六七八九十两百千万\d][^”」』]{0,12})[”」』]")
_NUMERAL = re.compile(r"[一二三四五六七八九十两百千万\d个项条大]")
# A question asking which one ("第几届", "几中全会", "几号线") or about sessions at all ("举办了几届", "第十四届…多少")
# may be answered by such a name.
_ASKS_ORDINAL = re.compile(r"第几|几中全会|届|几号")


def states_new_number(numbers: tuple[str, ...], text: str, *, names: bool = True, question: str = "") -> bool:
    """Whether ``text`` states a number besides ``numbers`` (a question's own: ``question_numbers``); with
    ``names=False``, a numeral inside a name (``_NUMBERED_NAME``: “十四五”, 二十大, 第七届; a quoted slogan,
    ``_QUOTED_COUNT``, unless ``question`` uses its words) is not one."""
    if not names:
        text = _NUMBERED_NAME.sub(" ", text)
        text = _QUOTED_COUNT.sub(lambda m: m.group(0) if _slogan_asked(m.group(1), question) else " ", text)
    return states_number(without_numbers(text, numbers) if numbers else text)


def _slogan_asked(slogan: str, question: str) -> bool:
    """Whether ``question`` uses two characters in a row of what ``slogan`` counts (中心 of “四个中心”)."""
    return any(w[i : i + 2] in question for w in _NUMERAL.sub(" ", slogan).split() for i in range(len(w) - 1))


def asks_ordinal(question: str) -> bool:
    """Whether ``question`` asks which one of a numbered series (第几届) or how many sessions: a name answers it."""
    return bool(_ASKS_ORDINAL.search(question))


# Units of measure (money, mass, length, area, volume, power, vehicles, visits), as opposed to the counting words
# (个, 项, 家: how a count is said, which a sentence may say another way). A figure asked in one of these can only be
# stated in it: a growth rate ("增长27％") does not say how many 万辆. Grammar, not corpus vocabulary; two spellings
# of one unit are one (公里 / 千米).
_MEASURED = {
    **dict.fromkeys("元 美元 吨 斤 公斤 千克 辆 人次 千瓦时 千瓦 标箱 立方米 平方米 亩 公顷".split()),
    "公里": "(?:公里|千米)",
    "千米": "(?:公里|千米)",
    "平方公里": "(?:平方公里|平方千米)",
    "平方千米": "(?:平方公里|平方千米)",
    "米": "(?<![平立])米",
}


_ASKED_MAGNITUDE = re.compile(
    rf"(?<!哪)(?:多少|几)\s*([万亿千百]+(?:{'|'.join(sorted(_MEASURED, key=len, reverse=True))}))"
)


@functools.lru_cache(maxsize=256)
def _measured_pattern(unit: str) -> re.Pattern[str] | None:
    core = unit.lstrip("万亿")  # 万辆 is counted in 辆, 亿元 in 元: "168.4万辆", "1.3万亿元", "5503亿元"
    if core not in _MEASURED:
        return None
    spelled = _MEASURED[core] or re.escape(core)
    return re.compile(rf"{_NUMBER}\s*(?:多|余)?\s*[万亿千百]*\s*{spelled}")


def asks_measured(question: str) -> str:
    """The unit of measure a quantity question asks in ("多少万辆" → "万辆", "多少亿千瓦时" → "亿千瓦时"), "" when it
    asks in none (a count, a share, or no unit)."""
    unit = _asked_unit(question)
    if unit and _measured_pattern(unit) is not None:
        return unit
    # A magnitude before the unit (亿千瓦时, 亿立方米, 万平方米), which the model's unit (``_asked_unit``, the words it
    # was trained with) reads as the magnitude alone.
    m = _ASKED_MAGNITUDE.search(question)
    if m and unit_is_a_word(question, m.start(1), m.group(1)):
        return m.group(1)
    return ""


# An area asked for without a unit ("建筑面积是多少？"): an area is stated in an area unit ("12平方公里", "3.2万平方米",
# "500亩"). Not a share of an area ("占总面积多少比例", "面积为几倍") nor a rank ("面积第几大"). On the
# reading-comprehension questions so asked (CMRC2018 trial, DRCD dev and test), 10 of 10 answer sentences state one.
_ASKS_AREA = re.compile(r"面积")
_ASKS_SHARE = re.compile(r"比例|百分比|比重|占|倍|几成|第几")
_STATED_AREA = re.compile(
    r"\d[\d.,]*\s*(?:多|余)?\s*(?:万|亿|千|百)?\s*(?:平方(?:公里|千米|米|英里|公尺|英尺)|公顷|亩|km2|km²|㎡|m2|m²|英亩)"
    r"|[零〇一二两三四五六七八九十百千万亿]+\s*(?:多|余)?\s*(?:平方(?:公里|千米|米|英里|公尺)|公顷|亩|英亩)"
)


def asks_area(question: str) -> bool:
    """Whether a quantity question asks for an area in no unit it names (``_ASKS_AREA``)."""
    return bool(
        _ASKS_AREA.search(question) and not _ASKS_SHARE.search(question) and not asks_measured(question)
    )


def states_area(text: str) -> bool:
    """Whether ``text`` states an area: a number in an area unit (``_STATED_AREA``)."""
    return bool(_STATED_AREA.search(text))


def states_measured(unit: str, text: str) -> bool:
    """Whether ``text`` states a quantity in ``unit`` (or another magnitude of it: 万吨 for 吨)."""
    pattern = _measured_pattern(unit)
    return pattern is None or pattern.search(text) is not None


# Asking which year ("哪一年", "何年", "什么年份"), not how many years ("几年") or a time of year ("年底前").
_ASK_YEAR = re.compile(r"哪一?年(?!级)|何年|哪个年份|什么年份|哪几年")
# A year a sentence may state: any number of years (a calendar year, "公元前221年", a reign's "至元二十六年", a
# sexagenary "庚申年"; a span too, "再延长三十年", which the rule cannot tell from a year) or a year said relative to
# another ("今年", "次年", "同年"). Broad on purpose: on the reading-comprehension questions asking which year, it
# finds a year in 99.7-100% of the sentences stating the answer (CMRC2018 trial 11/11, DRCD dev 311/312, test
# 348/348; a calendar year alone, 1800-2099, 73-81%), so the rule refuses only sentences with no year at all.
_STATES_YEAR = re.compile(
    r"(?:\d+|[零〇○一二两三四五六七八九十百千]+)\s*年|[甲乙丙丁戊己庚辛壬癸][子丑寅卯辰巳午未申酉戌亥]年"
    r"|今年|本年|当年|去年|上年|前年|明年|下一年|次年|翌年|同年|该年|是年|元年"
)


# A day as the lunar calendar writes it ("七月初十", "十月廿一"), which ``STATED_DAY`` (the model's feature) does not
# read. Grammar of Chinese dates.
_LUNAR_DAY = re.compile(
    r"月\s*(?:初[一二三四五六七八九十]|廿[一二三四五六七八九]?|卅|[二三]?十[一二三四五六七八九]?)(?!月)"
)


def asks_day(question: str) -> bool:
    """Whether a question asks on which day ("哪一天", "几月几日")."""
    return bool(_ASK_DAY.search(question))


def states_day(text: str) -> bool:
    """Whether ``text`` states a day of a month, Gregorian or lunar: on the reading-comprehension questions asking
    which day, every sentence stating the answer does (DRCD dev 6/6, test 12/12; CMRC2018 trial asks none)."""
    return bool(STATED_DAY.search(text) or _LUNAR_DAY.search(text))


def asks_person(question: str) -> bool:
    """Whether a question asks who (谁, 哪位, 何人, 什么人)."""
    return bool(_ASK_PERSON.search(question))


# Who answers "谁": a name jieba tags as proper (人名 nr, 地名 ns, 机构 nt, 其他专名 nz, foreign eng: "谁发明的" may be
# answered by a company or a country) or a word ending as the names of persons, offices and bodies do (…者, …员, …长,
# …家, …公司, …院). Grammar of Chinese names and agent nouns.
_SOMEONE_FLAGS = ("nr", "ns", "nt", "nz", "eng")
_SOMEONE_ENDINGS = frozenset("人者员家师长手王帝军官士生父母子女兄弟姐妹公司局部会院校团队社")


def names_someone(question: str, text: str) -> bool:
    """Whether ``text`` names someone the question does not: a person, an office or a body (``_SOMEONE_FLAGS``,
    ``_SOMEONE_ENDINGS``), a word of two characters or more. "央视中秋晚会《吉庆团圆》介绍中秋民俗" names no one for
    "…是谁唱的？". Of the reading-comprehension questions asking who (CMRC2018 trial, DRCD dev and test: 795 with a
    sentence holding the answer), 778 (97.9%) have an answer sentence that does; the others are names jieba cuts or
    tags otherwise (乙一, 揆一) and common nouns (统帅, 党委)."""
    return names_unasked(question, text, _SOMEONE_FLAGS, _SOMEONE_ENDINGS)


def asks_year(question: str) -> bool:
    """Whether a question asks which year something happened or will happen."""
    return bool(_ASK_YEAR.search(question))


# A number of years that is a duration, not a year: "经过30年的发展", "十多年来", "近20年", "长达三十年之久". "一年来"
# is the report's past year, as 去年 is, and stays a year. On the reading-comprehension questions asking which year,
# leaving these out keeps every answer sentence's year (671 of 671).
_YEARS_SPAN = re.compile(
    r"(?:经过|历经|近|用了|花了|长达|足足|整整)\s*(?P<a>\d+|[零〇○一二两三四五六七八九十百千]+)\s*(?:多|余)?\s*年"
    r"|(?P<b>\d+|[零〇○一二两三四五六七八九十百千]+)\s*(?:多|余)?\s*年(?:来|间|之久|多|的(?:发展|历史|时间|努力|奋斗|建设))"
)


def _without_spans(text: str) -> str:
    return _YEARS_SPAN.sub(
        lambda m: m.group(0) if (m.group("a") or m.group("b")) in ("一", "1") else " ", text
    )


def states_year(text: str) -> bool:
    """Whether ``text`` may state a year (see ``_STATES_YEAR``): "筹办好北京冬奥会" states none, nor does "经过30年的
    发展" (``_YEARS_SPAN``) for "丰台园成立于哪一年？"."""
    return bool(_STATES_YEAR.search(_without_spans(text)))


def asks_list_or_way(question: str) -> bool:
    """Whether a question asks for a list or a way (see ``_ASK_LIST_OR_WAY``)."""
    return bool(_ASK_LIST_OR_WAY.search(question))


def asks_for_fact(question: str) -> bool:
    """Whether a question asks for one stated fact: a quantity, a time or day, a person. The answerability
    model learned from such questions only (reading-comprehension factoids, report figures), so its score
    means "a sentence states the asked fact" for them; for "how / what measures" questions it does not."""
    return asks_number(question) or bool(_ASK_TIME.search(question) or _ASK_PERSON.search(question))


def gate_of(question: str) -> str:
    """Which of the gated composer's gates a question meets (qa.learned.GatedComposer), and which validation
    questions calibrate it (training.answerability): "fact" (``asks_for_fact``), "open" (a list or a way,
    ``asks_list_or_way``), else "thing" (one named thing)."""
    if asks_for_fact(question):
        return "fact"
    return "open" if asks_list_or_way(question) else "thing"


def question_period_years(question: str) -> set[int]:
    """Years a question asks about: the ones it names, except a year naming a report ("2023年报告说…")."""
    naming = {int(y) for y in REPORT_YEAR.findall(question)}  # "2023年报告说…": the report, not the period
    return {int(y) for y in _YEAR.findall(question)} - naming


def relative_years(text: str) -> tuple[int, ...]:
    return tuple(off for pattern, off in _RELATIVE_YEAR if pattern.search(text))


def _years_in(text: str) -> set[int]:
    return {int(y) for y in _YEAR.findall(text)}


def stated_period(c: Candidate) -> set[int]:
    """The years a candidate sentence speaks about (see ``period_of``)."""
    return period_of((c.text, c.section, c.passage_text), c.year)


def period_of(texts: Sequence[str], year: int) -> set[int]:
    """The years a text speaks about, read the way a reader would: years the sentence names; else 今年/去年
    in it, resolved against its speech's ``year``; else the years of its section heading ("一、2024年工作回顾");
    else those of its passage (``texts`` in that order). Empty when nothing says."""
    for text in texts:
        years = _years_in(text)
        if year:
            years |= {year + off for off in relative_years(text)}
        if years:
            return years
    return set()


def asked_years(q: QuestionInfo, c: Candidate) -> set[int]:
    """The years a question asks about for this candidate: the ones it names, and 今年/去年 read as the
    candidate's speech would read them."""
    years = set(q.period_years)
    if c.year:
        years |= {c.year + off for off in q.relative_years}
    return years


# -- candidates ---------------------------------------------------------------------------------------------


@dataclass(slots=True)  # built ~40 times an answer: plain slots, not frozen (half the cost)
class Candidate:
    """One sentence of a retrieved passage, with what features need about it."""

    rank: int  # the passage's retrieval rank, 0-based
    index_in_passage: int
    n_in_passage: int
    text: str
    passage_text: str
    meta_text: str  # title, speaker, role, section, region, date of the passage's speech
    sim: float  # cosine(question, sentence vector)
    passage_sim: float  # cosine(question, passage vector)
    fused: float  # the passage's fused retrieval score
    bm25: float  # the passage's BM25 score
    year: int = 0  # the year the passage's speech was given (0 = unknown)
    section: str = ""  # the passage's section heading


FEATURE_NAMES: tuple[str, ...] = (
    "sim",
    "sim_minus_best",
    "passage_sim",
    "top_passage_sim",
    "passage_sim_gap",
    "rank",
    "fused_rel",
    "bm25_rel",
    "cov_sentence",
    "cov_passage",
    "cov_window",
    "uncovered_max_idf",
    "uncovered_terms",
    "bigram_sentence",
    "bigram_passage",
    "entity_cov",
    "year_match",
    "asks_number",
    "number_in_sentence",
    "unit_in_sentence",
    "unit_in_passage",
    "asks_time",
    "time_in_sentence",
    "asks_day",
    "day_in_sentence",
    "number_in_passage",
    "asks_person",
    "sentence_len",
    "position",
    "question_len",
    "n_terms",
    "unknown_share",
    "period_match",
    "period_known",
    "focus_sentence",
    "focus_clause",
    "focus_number_clause",
    "focus_uncovered_max",
    "scope_mismatch",
    "person_in_sentence",
    "bm25_share",
    "top_bm25_share",
)


class _Terms:
    """A question's weighted terms, with their total, for coverage of many texts: the share of the weight
    whose terms occur in a text (normalized), the total summed once per question, not once per text."""

    __slots__ = ("items", "total")

    def __init__(self, terms: dict[str, float]) -> None:
        self.items = tuple(terms.items())
        self.total = sum(terms.values())

    def cover(self, low: str) -> float:
        if self.total <= 0:
            return 0.0
        return sum(w for t, w in self.items if t in low) / self.total

    def covers(self, texts: Sequence[str], joined: str) -> list[float]:
        """``cover`` of each of ``texts``, whose concatenation ``joined`` is: only the terms it contains can
        cover one, so the sums are the same, in the same order, over fewer terms (the clauses' coverage was a
        third of the features' time, ~190 covers a question; `speechqa train` rebuilt the same model.txt)."""
        present = tuple((t, w) for t, w in self.items if t in joined)
        if not present or self.total <= 0:
            return [0.0] * len(texts)
        return [sum(w for t, w in present if t in x) / self.total for x in texts]


@dataclass(frozen=True)
class _Sentence:
    """What the features read off a sentence whatever the question (memoized per text)."""

    low: str  # normalized
    number: bool
    time: bool
    day: bool
    scope: bool
    spans: tuple[str, ...]  # normalized clauses, then neighbouring pairs of clauses (see _focus_features)
    numbered: tuple[bool, ...]  # whether each span states a number
    joined: str  # the spans joined by NUL, for _Terms.covers: a term no span contains is not in it


@functools.lru_cache(maxsize=8192)
def _sentence(text: str) -> _Sentence:
    clauses = [x for x in _CLAUSE.split(text) if x.strip()] or [text]
    # A clause with its neighbour: "全年粮食产量，达到……" keeps subject and number together.
    spans = clauses + [a + b for a, b in zip(clauses, clauses[1:], strict=False)]
    normalized = tuple(normalize(x) for x in spans)
    return _Sentence(
        low=normalize(text),
        number=bool(_ANY_NUMBER.search(text)),
        time=bool(_TIME.search(text)),
        day=bool(STATED_DAY.search(text)),
        scope=bool(_SCOPE.search(text)),
        spans=normalized,
        numbered=tuple(bool(_ANY_NUMBER.search(x)) for x in spans),
        joined="\x00".join(normalized),
    )


@functools.lru_cache(maxsize=2048)
def _any_number(text: str) -> bool:
    return bool(_ANY_NUMBER.search(text))


def _unit_stated(unit: str, text: str) -> bool:
    return bool(unit) and re.search(rf"{_NUMBER}\s*{re.escape(unit)}", text) is not None


def candidate_features(
    q: QuestionInfo, cands: Sequence[Candidate], n_docs: int, only: Sequence[int] | None = None
) -> np.ndarray:
    """(len(cands), len(FEATURE_NAMES)) float32 matrix, one row per candidate sentence; with ``only``, the rows
    of those candidates alone, in that order (each row is the same as in the whole matrix: what a row compares
    with, the best candidate and the passages, is read from all of ``cands``, whose sentences of one passage
    carry that passage's text, as ``qa.learned.candidates_for`` makes them)."""
    if not cands or (only is not None and not len(only)):
        return np.zeros((0, len(FEATURE_NAMES)), dtype=np.float32)
    best_sim = max(c.sim for c in cands)
    passage_sims = sorted({(c.rank, c.passage_sim) for c in cands})
    top_passage_sim = passage_sims[0][1]
    gap = top_passage_sim - passage_sims[1][1] if len(passage_sims) > 1 else 0.0
    top_fused = max(c.fused for c in cands) or 1.0
    top_bm25 = max(c.bm25 for c in cands) or 1.0
    log_n = math.log(max(2, n_docs) + 1)
    idf_sorted = sorted(q.terms.values())
    median_idf = idf_sorted[len(idf_sorted) // 2] if idf_sorted else 0.0
    terms = _Terms(q.terms)
    # A passage's BM25 against the question's own IDF mass: how strongly, not only how relatively, the best
    # passage matches. A near miss's best passage is the best of a corpus without the answer, and
    # ``bm25_rel`` (relative to that best) cannot see it (validation split: +3.6 points refused at 3%).
    idf_total = max(1e-6, sum(q.terms.values()))
    q_scope = bool(_SCOPE.search(q.text))
    # The same for every candidate: what the question asks, as features.
    asked = (float(q.asks_number), float(q.asks_time), float(q.asks_day), float(q.asks_person))
    q_len, n_terms = min(len(q.text), 100) / 50.0, float(len(q.terms))
    rows = []
    by_passage: dict[int, list[Candidate]] = {}
    for c in cands:
        by_passage.setdefault(c.rank, []).append(c)
    passage_cache: dict[int, tuple[float, float, float, float, float, float, float, float]] = {}
    focus_of: dict[int, _Terms] = {}
    for c in cands if only is None else (cands[i] for i in only):
        if c.rank not in passage_cache:
            context = c.passage_text + " " + c.meta_text
            low = normalize(context)
            uncovered = [w for t, w in q.terms.items() if t not in low]
            ent = sum(1 for e in q.entities if normalize(e) in low) / len(q.entities) if q.entities else -1.0
            year = (1.0 if all(y in context for y in q.years) else 0.0) if q.years else -1.0
            passage_cache[c.rank] = (
                terms.cover(low),
                max(uncovered, default=0.0) / log_n,
                float(sum(1 for w in uncovered if w >= median_idf)),
                _overlap(q.bigrams, c.passage_text),
                ent,
                year,
                float(_unit_stated(q.unit, c.passage_text)) if q.unit else -1.0,
                float(_any_number(c.passage_text)),
            )
            focus_of[c.rank] = _Terms(_focus_terms(q, c))
        cov_p, unc_max, unc_n, bi_p, ent, year, unit_p, number_p = passage_cache[c.rank]
        sent = _sentence(c.text)
        siblings = by_passage[c.rank]
        window = " ".join(s.text for s in siblings if abs(s.index_in_passage - c.index_in_passage) <= 1)
        rows.append(
            (
                c.sim,
                c.sim - best_sim,
                c.passage_sim,
                top_passage_sim,
                gap,
                float(c.rank),
                c.fused / top_fused,
                c.bm25 / top_bm25,
                terms.cover(sent.low),
                cov_p,
                terms.cover(normalize(window)),
                unc_max,
                unc_n,
                _overlap(q.bigrams, c.text),
                bi_p,
                ent,
                year,
                asked[0],
                float(sent.number),
                float(_unit_stated(q.unit, c.text)) if q.unit else -1.0,
                unit_p,
                asked[1],
                float(sent.time),
                asked[2],
                float(sent.day),
                number_p,
                asked[3],
                min(len(c.text), 300) / 100.0,
                c.index_in_passage / max(1, c.n_in_passage),
                q_len,
                n_terms,
                q.unknown_share,
                *_period_features(q, c),
                *_focus_features(q, focus_of[c.rank], sent, log_n),
                float(sent.scope and not q_scope),
                _person_in(c.text) if q.asks_person else -1.0,
                c.bm25 / idf_total,
                top_bm25 / idf_total,
            )
        )
    return np.asarray(rows, dtype=np.float32)


def _person_in(text: str) -> float:
    """Whether the sentence names a person (jieba's nr tag): a 谁 question is answered by a name. Tagging
    is slow, so it runs only for questions asking for a person; its tags are cached (``pos_tags``) and read again by
    the fact gate's rule for 谁 (``names_someone``)."""
    return float(any(flag == "nr" and len(word) >= 2 for word, flag in pos_tags(text)))


def _period_features(q: QuestionInfo, c: Candidate) -> tuple[float, float]:
    """period_match: 1 when the sentence speaks about a year the question asks about, 0 when it speaks
    about other years only, 0.5 when it does not say, -1 when the question names no year.
    period_known: whether the sentence's period could be read at all."""
    stated = stated_period(c)
    asked = asked_years(q, c)
    if not asked:
        return -1.0, float(bool(stated))
    if not stated:
        return 0.5, 0.0
    return (1.0 if asked & stated else 0.0), 1.0


def _focus_terms(q: QuestionInfo, c: Candidate) -> dict[str, float]:
    """The question's focus: its content terms minus what the speech's metadata already covers (the region,
    speaker or year it names locate the speech; they are not the fact asked for). The same for every
    sentence of a passage."""
    meta = normalize(c.meta_text + " " + c.section)
    return {
        t: w
        for t, w in q.terms.items()
        if t not in meta and not _YEAR.fullmatch(t + "年") and not _RELATIVE_YEAR_WORD.fullmatch(t)
    }


def _focus_features(
    q: QuestionInfo, focus: _Terms, sent: _Sentence, log_n: float
) -> tuple[float, float, float, float]:
    """How much of the focus the sentence states, in its best clause, and in the best clause stating a
    number (a quantity question is answered by a number in the clause that names what is counted)."""
    if not focus.items:
        return 1.0, 1.0, (1.0 if q.asks_number else -1.0), 0.0
    covers = focus.covers(sent.spans, sent.joined)  # each span's once
    best_clause = max(covers)
    if q.asks_number:
        number_clause = max((c for c, n in zip(covers, sent.numbered, strict=True) if n), default=0.0)
    else:
        number_clause = -1.0
    uncovered = max((w for t, w in focus.items if t not in sent.low), default=0.0)
    return focus.cover(sent.low), best_clause, number_clause, uncovered / log_n


def _overlap(bigrams: frozenset[str], text: str) -> float:
    if not bigrams:
        return 0.0
    return len(bigrams & _cjk_bigrams(text)) / len(bigrams)
