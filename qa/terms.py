"""The reports' own names for statistics a question calls by their common ones (GDP → 生产总值)."""

from __future__ import annotations

import functools
import re

from qa.numerals import arabic_numerals

# Common name (as people ask) -> the name government work reports and statistical bulletins print. Each right side
# is the National Bureau of Statistics' indicator name, or the part of it that all its official forms share, so
# that it matches whichever form a report uses:
# - 地区生产总值 (a province's, a city's GDP) and 国内生产总值 (the country's) both contain 生产总值; "经济总量" is
#   the press's word for it. "经济增速" is its growth (reports: "地区生产总值增长5.4%").
# - 居民收入 is 居民人均可支配收入, which 城镇居民 / 农村居民 / 城乡居民人均可支配收入 contain; 农民收入 is 农村居民's.
# - 财政收入, the common name of 一般公共预算收入 since the 2015 budget law's four budgets.
# - CPI is 居民消费价格 (指数); reports give its rise as "居民消费价格涨幅".
# - R&D spending: 研究与试验发展 (R&D) 经费 is the bureau's name, 研发经费 the reports' usual one, "研发投入" people's;
#   all read as 研发经费 (投入强度: its share of GDP). 能耗强度 is 单位 GDP 能耗 ("单位地区生产总值能耗").
# - 粮食总产量 (the bureau's) and 粮食总产 are 粮食产量; 社零 is 社会消费品零售总额; 规上 is 规模以上; 固投 固定资产投资.
# - 细颗粒物 is PM2.5: the ecology ministry's indicator is "细颗粒物（PM2.5）浓度"; reports print either name or both
#   (provincial 2025: PM2.5 in 17 of 31, 细颗粒物 in 3; provincial-dev4's "空气中细颗粒物一年平均是多少" was refused
#   against "PM2.5年均浓度降至36微克/立方米").
# Why a table and not a model: the embedding model does not know these abbreviations (cosine of "GDP" with
# 地区生产总值 0.849, with 粮食产量 0.853), so the answerability model saw the report's sentence as missing the
# asked term and refused. Found on the dev sets (provincial-dev2: 8 of its 10 answerable questions refused were
# such names, provincial-dev's were R&D intensity; docs/answerability.md, "Official names"), never on an
# acceptance set. Both sides are read, so each row only needs to map every form of one statistic to one string.
_COMMON_NAMES: tuple[tuple[str, str], ...] = (  # (pattern, official name); a longer pattern before its prefix
    (r"经济增速|经济增长速度|(?i:gdp)增速", "生产总值增长"),
    (r"(?i:gdp)|ＧＤＰ|经济总量", "生产总值"),
    (r"农民收入|农民人均收入", "农村居民人均可支配收入"),
    (r"(?<!可支配)居民收入", "居民人均可支配收入"),
    (r"财政收入", "一般公共预算收入"),
    (r"(?i:cpi)|ＣＰＩ", "居民消费价格"),
    (r"研究与试验发展[（(](?i:r&d)[)）]经费|研究与试验发展经费|(?i:r&d)经费|Ｒ＆Ｄ经费", "研发经费"),
    (r"研发投入", "研发经费投入"),
    (r"能耗强度", "单位生产总值能耗"),
    (r"粮食总产量|粮食总产", "粮食产量"),
    (r"社会消费品零售额|社零总额|社零额|社零", "社会消费品零售总额"),
    (r"规上", "规模以上"),
    (r"细颗粒物(?:[（(](?i:pm)\s*2\.5[)）])?|(?i:pm)\s*2\.5", "PM2.5"),
    (r"固投", "固定资产投资"),
)
# One pass over a text for all of them (the composers read every candidate sentence with it): alternative i is
# group gi, whose official name the match's lastgroup picks.
_ANY_NAME = re.compile("|".join(f"(?P<g{i}>{pattern})" for i, (pattern, _) in enumerate(_COMMON_NAMES)))
# Every pattern above contains one of these (lower-cased): a text with none of them is left as it is.
_MARKS = tuple(
    "经济 收入 gdp ｇｄｐ cpi ｃｐｉ 研究与试验发展 r&d ｒ＆ｄ 研发投入 能耗强度 粮食总产 社会消费品零售额 社零 规上 固投 细颗粒物 pm".split()
)
_OFFICIAL = {f"g{i}": name for i, (_, name) in enumerate(_COMMON_NAMES)}


def _with_official_names(text: str) -> str:
    low = text.lower()
    if not any(mark in low for mark in _MARKS):
        return text  # most sentences: a substring test is ~20x cheaper than the regex's scan
    return _ANY_NAME.sub(lambda m: _OFFICIAL[m.lastgroup or ""], text)


# How one question is typed differs from how another user types it; none of it changes what is asked. Full-width
# Latin letters and digits are the same characters ("２０２４年" is "2024年": the years, figures and names read off a
# question are written in ASCII). Chinese puts no space between words, so a space between two characters that are
# not both ASCII letters or digits only separates what the user saw as words ("2025年 天津 GDP"), while one between
# Latin words stays ("iPhone SE"). A greeting or "请问" before the question asks nothing. And a question is asked
# with a question mark, as the training questions are: one typed without ("甘肃去年原煤产量是多少") read with one; a
# particle after its question word ("…是多少呢？") asks nothing more.
# Measured (benchmarks/bench_typing.py, six dev sets, 2026-12-07): typed those ways, 87 of 2,688 variants of their
# questions were answered otherwise than the question typed plainly, 6 after (docs/answerability.md, "As typed").
_FULL_WIDTH = {
    c: c - 0xFEE0
    for r in ((0xFF10, 0xFF19), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A))
    for c in range(r[0], r[1] + 1)
}
_FULL_WIDTH[0x3000] = 0x20
_INNER_SPACE = re.compile(r"(?<![A-Za-z0-9])\s+|\s+(?![A-Za-z0-9])")
_COURTESY = re.compile(
    r"^(?:(?:你好|您好)[，,！!。\s]*)?(?:请问一下|请问|我想问一下|我想问|想问一下|我想了解一下|我想知道|请告诉我)[，,：:\s]*"
)
_ENDS_ASKING = re.compile(r"[？?！!。.…]$")
# "…是多少呢？" asks what "…是多少？" asks: the particle softens a question that already has its question word. Without
# one ("那江苏省呢？") it is what makes a follow-up, and stays.
_SOFTENED = re.compile(
    r"(多少|什么|哪|谁|几|怎|如何|为什么|为何|何时|是否|多大|多长|多久|多高)(.*)呢([？?]?)$"
)


@functools.lru_cache(maxsize=8192)
def as_asked(question: str) -> str:
    """``question`` in one form whatever way it was typed (see above); the words themselves unchanged."""
    text = _INNER_SPACE.sub("", question.translate(_FULL_WIDTH).strip())
    rest = _COURTESY.sub("", text)
    text = rest if len(rest) >= 2 else text
    text = _SOFTENED.sub(r"\1\2\3", text)
    if text.endswith("?"):
        text = text[:-1] + "？"
    return text if _ENDS_ASKING.search(text) else text + "？"


# Memoized: the service reads a question for the encoder's batch and again for the answer. Corpus texts go through
# matched_text, whose own cache holds them: they do not pass through this one, which would keep a second copy of
# each and push the questions out.
@functools.lru_cache(maxsize=8192)
def official_terms(text: str) -> str:
    """``text`` with the common names of statistics replaced by the reports' ("湖南去年GDP是多少？" →
    "湖南去年生产总值是多少？"); unchanged when it names none. Questions are read with it, and so are the
    sentences they are matched against (``matched_text``), so that a report that prints a common name
    ("居民收入增长与经济增长基本同步") still states the term the question asks for."""
    return _with_official_names(text)


# Memoized: `gated` reads each candidate sentence twice (its extractive writer and the model's candidates). Pure
# function of a corpus text; the bound holds the top passages of a few hundred recent questions, as qa.features'
# caches.
@functools.lru_cache(maxsize=8192)
def matched_text(text: str) -> str:
    """A corpus text (a candidate sentence, a passage) as a question is matched against it: its numerals in digits
    (qa.numerals: "二0一一年…四十七点三万亿元" → "2011年…47.3万亿元") and its statistics by their official names. Quotes
    stay verbatim; only the matching reads this."""
    return _with_official_names(arabic_numerals(text))
