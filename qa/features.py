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

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from qa.lexical import normalize, tokenize

# -- question analysis ------------------------------------------------------------------------------------

# Interrogatives (grammar): asking for a quantity, a time, a person.
_ASK_NUMBER = re.compile(r"(?<!哪)(多少|几)|多大|多高|多长|多远|多重|多快|比例|比重|增速|增长率|占比")
_ASK_TIME = re.compile(r"何时|什么时候|哪一?年|何年|哪一?天|哪一日|几月|几号|什么时间|哪个月|多久")
_ASK_PERSON = re.compile(r"谁|哪位|何人|什么人")
# The unit a quantity question asks for: the measure word right after 多少/几 ("多少平方公里", "几个").
_ASKED_UNIT = re.compile(r"(?<!哪)(?:多少|几)\s*([^\s\d，。？?！!、的是了吗呢和与及]{1,4})")
# Measure words / units that may follow a number (grammar of Chinese quantities, longest first).
_UNITS = (
    "平方公里 平方千米 平方米 亩 公顷 公里 千米 米 亿元 万元 元 亿美元 万美元 美元 亿 万 千 百 个百分点 百分点 "
    "% ％ 倍 个 家 所 座 条 项 次 年 岁 名 位 人 户 栋 批 类 种 园 天 吨 万吨 千瓦 万千瓦 度 辆 台 套 张 件 部 "
    "届 期 号 月 日 小时 分钟 层 间 床 张 元/吨"
).split()
_NUMBER = r"(?:\d+(?:[.,]\d+)*|[零一二两三四五六七八九十百千万亿]+(?:点[零一二三四五六七八九]+)?)"
_ANY_NUMBER = re.compile(r"\d|[一二两三四五六七八九十百千万亿]{1,6}(?:个|家|所|条|项|次|名|位|倍|成|亿|万)")
_TIME = re.compile(
    r"\d{4}\s*年|\d{1,2}\s*月|\d{1,2}\s*日|年底|年内|年初|年中|年末|上半年|下半年|季度|今年|明年|去年|"
    r"[一二三四五六七八九十]+月|[一二三四五六七八九十]+日|世纪|年代|期间|之前|以后|届时"
)
# Asking for a day, not just a time: only a stated day answers it ("年底前" does not).
_ASK_DAY = re.compile(r"哪一?天|哪一日|几号|几月几日|具体日期|什么日子")
_DAY = re.compile(r"(?<!\d)\d{1,2}\s*日|月\s*\d{1,2}\s*号|[一二三四五六七八九十]+日")
_YEAR = re.compile(r"(1[89]\d\d|20\d\d)\s*年")
# Tokens with no content of their own in a question (grammar words; the lexical index drops its own list).
_QUESTION_WORDS = frozenset(
    "多少 几 哪 哪些 哪个 哪里 哪儿 什么 怎么 怎样 如何 为什么 为何 谁 何时 是否 吗 呢 请问 是 有 的 了 在 "
    "哪年 哪一年 哪天 什么时候 时候 时间 一 个 主要 具体 分别 目前 现在".split()
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


def _cjk_bigrams(text: str) -> set[str]:
    t = re.sub(r"[\W_]+", "", normalize(text))
    return {t[i : i + 2] for i in range(len(t) - 1)}


def _asked_unit(question: str) -> str:
    m = _ASKED_UNIT.search(question)
    if not m:
        return ""
    tail = m.group(1)
    for unit in sorted(_UNITS, key=len, reverse=True):
        if tail.startswith(unit):
            return unit
    return ""


def analyze_question(question: str, df: Callable[[str], int], n_docs: int) -> QuestionInfo:
    """Terms with idf from the index's document frequencies, entities, years and what kind of answer it asks."""
    import jieba.posseg as pseg

    n = max(1, n_docs)
    terms: dict[str, float] = {}
    unknown = 0.0
    for tok in dict.fromkeys(tokenize(question)):
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
    stop_bigrams = {b for w in _QUESTION_WORDS for b in _cjk_bigrams(w)}
    return QuestionInfo(
        text=question,
        terms=terms,
        bigrams=frozenset(_cjk_bigrams(question) - stop_bigrams),
        entities=entities,
        years=tuple(dict.fromkeys(_YEAR.findall(question))),
        asks_number=bool(_ASK_NUMBER.search(question)),
        asks_time=bool(_ASK_TIME.search(question)),
        asks_day=bool(_ASK_DAY.search(question)),
        asks_person=bool(_ASK_PERSON.search(question)),
        unit=_asked_unit(question),
        unknown_share=unknown / total if total > 0 else 0.0,
    )


# -- candidates ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
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
)


def _coverage(terms: dict[str, float], text: str) -> float:
    total = sum(terms.values())
    if total <= 0:
        return 0.0
    low = normalize(text)
    return sum(w for t, w in terms.items() if t in low) / total


def _unit_stated(unit: str, text: str) -> bool:
    return bool(unit) and re.search(rf"{_NUMBER}\s*{re.escape(unit)}", text) is not None


def candidate_features(q: QuestionInfo, cands: Sequence[Candidate], n_docs: int) -> np.ndarray:
    """(len(cands), len(FEATURE_NAMES)) float32 matrix, one row per candidate sentence."""
    if not cands:
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
    rows = []
    by_passage: dict[int, list[Candidate]] = {}
    for c in cands:
        by_passage.setdefault(c.rank, []).append(c)
    passage_cache: dict[int, tuple[float, float, float, int, float, float, float]] = {}
    for c in cands:
        if c.rank not in passage_cache:
            context = c.passage_text + " " + c.meta_text
            low = normalize(context)
            uncovered = [w for t, w in q.terms.items() if t not in low]
            ent = sum(1 for e in q.entities if normalize(e) in low) / len(q.entities) if q.entities else -1.0
            year = (1.0 if all(y in context for y in q.years) else 0.0) if q.years else -1.0
            passage_cache[c.rank] = (
                _coverage(q.terms, context),
                max(uncovered, default=0.0) / log_n,
                float(sum(1 for w in uncovered if w >= median_idf)),
                0,
                _overlap(q.bigrams, c.passage_text),
                ent,
                year,
            )
        cov_p, unc_max, unc_n, _, bi_p, ent, year = passage_cache[c.rank]
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
                _coverage(q.terms, c.text),
                cov_p,
                _coverage(q.terms, window),
                unc_max,
                unc_n,
                _overlap(q.bigrams, c.text),
                bi_p,
                ent,
                year,
                float(q.asks_number),
                float(bool(_ANY_NUMBER.search(c.text))),
                float(_unit_stated(q.unit, c.text)) if q.unit else -1.0,
                float(_unit_stated(q.unit, c.passage_text)) if q.unit else -1.0,
                float(q.asks_time),
                float(bool(_TIME.search(c.text))),
                float(q.asks_day),
                float(bool(_DAY.search(c.text))),
                float(bool(_ANY_NUMBER.search(c.passage_text))),
                float(q.asks_person),
                min(len(c.text), 300) / 100.0,
                c.index_in_passage / max(1, c.n_in_passage),
                min(len(q.text), 100) / 50.0,
                float(len(q.terms)),
                q.unknown_share,
            )
        )
    return np.asarray(rows, dtype=np.float32)


def _overlap(bigrams: frozenset[str], text: str) -> float:
    if not bigrams:
        return 0.0
    return len(bigrams & _cjk_bigrams(text)) / len(bigrams)
