"""Government-genre training questions, generated from the national government work reports.

Reading-comprehension data (CMRC2018, DRCD) is Wikipedia prose with factoid questions; our users ask about
figures in work reports ("2024年城镇新增就业多少？") and their near misses are the same figure for a year, or a
quantity, that the reports do not state. No public Chinese data set has such pairs, so they are made here, by
rule, from public report text: every clause stating a figure ("国内生产总值增长9.2%") becomes a question about
what it measures in the year it speaks of ("2009年国内生产总值增长多少？"), whose answer is that clause.

The near misses come from the same questions:
- ``left_out`` / ``cut`` (in training/answerability.py): the stating paragraph, or the stating sentences,
  removed from retrieval;
- ``swaps`` (here): the same question about another year for which no report in the corpus states that
  quantity (no generated fact, and no paragraph naming both the quantity and the year).

Corpus: ``gov_work_reports_national/government_work_reports.jsonl`` (official State Council reports, via
Wikisource; see its SOURCE.md: no licence stated, official documents read as outside copyright), the reports of
1998-2022 only. 2023-2025 are the development set's corpus (data/eval/national_dev.jsonl) and are never read
here; the provincial and built-in corpora of the acceptance sets are not read either.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from data.load import load_paths
from data.records import Speech
from qa.lexical import normalize
from training.squad import RCQuestion

REPORTS = "gov_work_reports_national/government_work_reports.jsonl"
YEARS = range(1998, 2023)  # 2023-2025: the dev set's corpus, never trained on
MAX_QUESTIONS = 2500  # enough for the trees; the corpus yields ~4k facts (keeps `speechqa train` < 30 min)

# A clause stating a figure: what is measured, an optional verb, a number and its unit (grammar of report
# figures; the units are the ones work reports count in).
_UNIT = (
    r"万亿元|亿元|万元|亿美元|万吨|亿吨|万千瓦|亿千瓦|万公里|公里|万亩|亿亩|万人次|万人|亿人|万户|万套|万个|"
    r"万辆|万平方米|平方公里|个百分点|%|％|倍|所|家|个"
)
_VERB = r"增长|下降|上涨|减少|增加|提高到|提高|降低到|降低|降到|达到|控制在|超过|突破|为"
_FACT = re.compile(
    rf"(?P<metric>[\u4e00-\u9fff]{{2,14}}?)(?P<verb>{_VERB})?(?:约|近|超过|左右)?"
    rf"(?P<num>\d+(?:\.\d+)?)(?P<unit>{_UNIT})"
)
# Words in front of a quantity that say how, not what: dropped from the metric ("全年粮食产量" -> "粮食产量").
_LEAD = re.compile(
    r"^(?:全年|其中|我国|全国|今年|去年|同时|分别|累计|共|新|主要|预计|初步|力争|确保|实现|完成|使|年底|年末|"
    r"年内|也要|也|还要|还|再|又|将|要|拟|继续|进一步)+"
)
_TAIL = re.compile(r"(?:比上年末|比上年|同比|年均|分别|累计|共计|总计|年底|年末|年内|至少|要|将|的)+$")
# A "metric" with a verb or a conjunction inside is a clause fragment, not the name of a quantity.
_NOT_A_NAME = re.compile(
    r"提高|增长|下降|达到|减少|增加|降低|超过|突破|控制|比|占|为|是|和|与|及|等|了|在|到"
)
_YEAR = re.compile(r"(?:19|20)\d\d年")
_RELATIVE = (
    (re.compile(r"今年|本年"), 0),
    (re.compile(r"去年|(?<![比较于])上年(?!末|底)|过去一年|一年来"), -1),
)


@dataclass(frozen=True)
class Fact:
    year: int  # the year the figure is about
    metric: str  # what is measured ("国内生产总值")
    verb: str
    unit: str
    span: str  # the stating words, verbatim ("国内生产总值增长9.2%")
    paragraph_id: str
    report_year: int
    plan: bool  # stated in the report's plans (a target) rather than its review


def national_speeches(benchmarks_dir: Path, work_dir: Path) -> list[Speech]:
    """The 1998-2022 reports as speeches, read by the product's own JSONL path (headings become sections)."""
    lines = []
    for raw in (benchmarks_dir / REPORTS).read_text(encoding="utf-8").splitlines():
        rec = json.loads(raw)
        if not rec.get("year") or int(rec["year"]) not in YEARS:
            continue
        paragraphs = [p.strip() for p in rec["content"].split("\n") if p.strip()]
        lines.append(
            json.dumps(
                {"title": rec["title"], "date": rec["year"], "region": "全国", "paragraphs": paragraphs},
                ensure_ascii=False,
            )
        )
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", dir=work_dir, delete=False, encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return list(load_paths([Path(f.name)]).speeches)


def _period(sentence: str, section: str, report_year: int) -> int | None:
    """The one year a sentence speaks about (see qa.features.stated_period), or None when not exactly one."""
    for text in (sentence, section):
        years = {int(y[:4]) for y in _YEAR.findall(text)}
        years |= {report_year + off for pattern, off in _RELATIVE if pattern.search(text)}
        if years:
            return years.pop() if len(years) == 1 else None
    return None


def extract_facts(speeches: list[Speech]) -> list[Fact]:
    facts = []
    for sp in speeches:
        report_year = int(sp.date[:4])
        for para in sp.paragraphs:
            plan = "任务" in para.section or "目标" in para.text[:40] or "今年" in para.section
            for s in para.sentences:
                year = _period(s.text, para.section, report_year)
                if year is None:
                    continue
                for m in _FACT.finditer(s.text):
                    metric = _TAIL.sub("", _LEAD.sub("", m.group("metric")))
                    if (
                        len(metric) < 3
                        or _YEAR.search(metric)
                        or "年" in metric[-1:]
                        or _NOT_A_NAME.search(metric)
                    ):
                        continue
                    start = m.start("metric") + m.group("metric").find(metric)
                    span = s.text[start : m.end()]
                    facts.append(
                        Fact(
                            year,
                            metric,
                            m.group("verb") or "",
                            m.group("unit"),
                            span,
                            para.paragraph_id,
                            report_year,
                            plan and year == report_year,
                        )
                    )
    return facts


def _h(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


# Places a national report's figure is not about: the near miss "2024年广东省地区生产总值增长了多少？" asked of a
# national report. Provincial-level names (public administrative divisions), used only to make training questions.
PLACES = (
    "河北省 山西省 辽宁省 吉林省 黑龙江省 江苏省 浙江省 安徽省 福建省 江西省 山东省 河南省 湖北省 湖南省 广东省 "
    "海南省 四川省 贵州省 云南省 陕西省 甘肃省 青海省 内蒙古 广西 西藏 宁夏 新疆 上海市 天津市 重庆市 深圳市 "
    "苏州市 杭州市 武汉市 成都市 西安市"
).split()
_PERCENT = ("%", "％", "个百分点")


def _ask(f: Fact, year: int, *, place: str = "", unit_asked: str = "") -> str:
    """A question about the fact's quantity in ``year``; the phrasing varies with the fact (deterministic).
    Real questions rarely repeat the report's words exactly: a third name the quantity by its head only
    ("可支配收入" for "城镇居民人均可支配收入"), a third put "全国" in front."""
    metric = f.metric
    variant = _h(f.span + "v") % 3
    if variant == 1 and len(metric) >= 6:
        metric = metric[2:]
    elif variant == 2 and not place:
        metric = "全国" + metric
    if place:
        metric = place + metric
    if unit_asked:
        return f"{year}年{metric}是多少{unit_asked}？"
    f = Fact(f.year, metric, f.verb, f.unit, f.span, f.paragraph_id, f.report_year, f.plan)
    unit = "" if f.unit in ("%", "％", "倍", "个百分点") else f.unit.lstrip("万亿")
    pick = _h(f.span) % 4
    if f.plan and pick == 0:
        return f"{year}年{f.metric}的预期目标是多少？"
    if f.verb in ("增长", "下降", "上涨", "减少", "增加", "提高", "降低") and pick in (0, 1):
        return f"{year}年{f.metric}{f.verb}了多少？"
    if unit and pick == 2:
        return f"{year}年{f.metric}有多少{f.unit}？"
    if pick == 3:
        return f"政府工作报告里，{year}年的{f.metric}是多少？"
    return f"{year}年{f.metric}是多少？"


def gov_questions(speeches: list[Speech]) -> list[RCQuestion]:
    """One question per (metric, year) stated once; with a swapped-year near miss where one exists."""
    facts = extract_facts(speeches)
    by_key: dict[tuple[str, int], list[Fact]] = {}
    for f in facts:
        by_key.setdefault((f.metric, f.year), []).append(f)
    stated_years: dict[str, set[int]] = {}
    for metric, year in by_key:
        stated_years.setdefault(metric, set()).add(year)
    paragraphs = [normalize(p.text) for sp in speeches for p in sp.paragraphs]
    units_of: dict[tuple[str, int], set[str]] = {}
    for f in facts:
        units_of.setdefault((f.metric, f.year), set()).add(f.unit)
    out = []
    for (metric, year), group in sorted(by_key.items()):
        if len({f.span for f in group}) != 1:
            continue  # the same quantity stated with different figures: ambiguous, leave it out
        f = group[0]
        swaps: tuple[str, ...] = ()
        for offset in (-3, 3, -5, 5, -8, 8):
            other = year + offset
            if other in stated_years[metric]:
                continue
            if any(metric in t and f"{other}年" in t for t in paragraphs):
                continue
            swaps = (_ask(f, other),)
            break
        # The same year, in a place the report does not give this figure for.
        about = [t for t in paragraphs if metric in t]
        places = [p for p in PLACES if not any(p[:2] in t for t in about)]
        if places:
            swaps += (_ask(f, year, place=places[_h(f.span + "p") % len(places)]),)
        # The same year and quantity, in a unit no report states it in (a share asked as an amount).
        units = units_of[(metric, year)]
        if f.unit in _PERCENT and not units - set(_PERCENT):
            swaps += (_ask(f, year, unit_asked="亿元"),)
        elif f.unit.endswith("元") and not units & set(_PERCENT):
            swaps += (_ask(f, year, unit_asked="个百分点"),)
        out.append(
            RCQuestion(
                qid=f"gov-{_h(f.span + str(year)):08x}",
                question=_ask(f, year),
                answers=(f.span,),
                paragraph_id=f.paragraph_id,
                article=f"national-{f.report_year}",
                swaps=swaps,
            )
        )
    out.sort(key=lambda q: _h(q.qid))
    return out[:MAX_QUESTIONS]
