"""Extractive answer composition: pick the sentences that answer, cite each, or refuse when evidence is weak."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from qa.index import LoadedIndex
from qa.lexical import tokenize
from qa.retrieve import Retrieval
from qa.types import Citation, Hit

REFUSAL = "根据现有讲话资料，无法回答该问题。"

# Question-type cues: what kind of sentence answers it.
_QTYPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("who", re.compile(r"谁|哪位|何人|什么人|哪个领导|职务|职位|身份|主讲|讲话人|发言人")),
    ("which_speech", re.compile(r"哪篇|哪个讲话|哪次讲话|哪一篇|什么讲话|讲话题目|讲话标题|题目是")),
    ("time", re.compile(r"何时|什么时候|哪一?年|哪一?天|几月|几号|时间|日期|多久|期限|年底|年内")),
    ("number", re.compile(r"多少|几个|几家|几项|几条|几种|几大|数量|规模|比例|面积|多大|多长|第几")),
    ("list", re.compile(r"哪些|哪几|有什么|包括|包含|几个方面|几方面|都有")),
    ("reason", re.compile(r"为什么|为何|原因|缘何|何以|意义|作用")),
    ("how", re.compile(r"如何|怎样|怎么|哪些措施|什么措施|举措|办法|途径|方式|做法")),
)
_CUES: dict[str, re.Pattern[str]] = {
    "time": re.compile(
        r"\d{4}年|\d{1,2}月|\d{1,2}日|年底|年内|年初|年中|近年|今后|下一步|目前|当前|未来|时期|周年|\d+年"
    ),
    "number": re.compile(r"\d|[一二三四五六七八九十百千万]+(个|家|项|条|种|大|批|类|区|园|期|号)"),
    "list": re.compile(r"、.*、|以.+为|包括|等"),
    "reason": re.compile(r"因为|由于|为了|在于|关系到|是.*的|必须|关键|目的|意义"),
    "how": re.compile(r"推动|加快|建立|完善|加强|推进|打造|提升|探索|要|通过|坚持|实施|强化|依托|支持"),
    "who": re.compile(r"书记|主任|同志|总书记|领导|委员"),
}
_MARKER = re.compile(r"\[(\d+)\]")


@dataclass(frozen=True)
class Composition:
    answer: str
    answerable: bool
    citations: tuple[Citation, ...]
    evidence: float  # the evidence score the refusal decision was made on
    features: dict = field(default_factory=dict)


class Composer(Protocol):
    """Turns retrieved passages into a cited answer; swap in a generative one without touching the API."""

    def compose(self, question: str, retrieval: Retrieval, *, max_chars: int = 200) -> Composition: ...


def question_types(question: str) -> set[str]:
    return {name for name, pattern in _QTYPES if pattern.search(question)}


@dataclass
class _Cand:
    hit_rank: int
    hit: Hit
    start: int
    end: int
    text: str
    score: float
    sim: float
    lex: float


class ExtractiveComposer:
    """Scores every sentence of the top passages by meaning (sentence vectors), shared words (IDF-weighted)
    and question-type cues, then writes the best ones in reading order with a citation after each."""

    def __init__(
        self,
        index: LoadedIndex,
        *,
        threshold: float = 0.5,
        passages: int = 4,
        sim_floor: float = 0.78,
        sim_ceiling: float = 0.90,
    ) -> None:
        self.index = index
        self.threshold = threshold
        self.passages = passages
        self.sim_floor = sim_floor
        self.sim_ceiling = sim_ceiling
        df: Counter[str] = Counter()
        for p in index.paragraphs:
            sp = index.speeches[p.speech_id]
            df.update(set(tokenize(" ".join([p.text, sp.title, sp.speaker, sp.role, p.section]))))
        n = len(index.paragraphs)
        self._n = n
        self._df = df
        self._idf_unknown = math.log((n + 1) / 0.5)

    def idf(self, term: str) -> float:
        d = self._df.get(term, 0)
        return math.log((self._n + 1) / (d + 0.5)) if d else self._idf_unknown

    # -- scoring --------------------------------------------------------------------------------------

    def _terms(self, question: str) -> dict[str, float]:
        return {t: self.idf(t) for t in dict.fromkeys(tokenize(question))}

    @staticmethod
    def _coverage(terms: dict[str, float], text: str) -> float:
        total = sum(terms.values())
        if total <= 0:
            return 0.0
        low = text.lower()
        return sum(w for t, w in terms.items() if t in low) / total

    def _norm_sim(self, cos: float) -> float:
        return float(np.clip((cos - self.sim_floor) / (self.sim_ceiling - self.sim_floor), 0.0, 1.0))

    def candidates(
        self, question: str, retrieval: Retrieval
    ) -> tuple[list[_Cand], dict[str, float], set[str]]:
        terms = self._terms(question)
        qtypes = question_types(question)
        cands: list[_Cand] = []
        for rank, hit in enumerate(retrieval.hits[: self.passages]):
            row = self.index.row_of[hit.passage_id]
            para = self.index.paragraphs[row]
            svecs = self.index.sentence_vectors_of(row)
            sims = svecs @ retrieval.query_vector if len(svecs) else np.zeros(0)
            for j, s in enumerate(para.sentences):
                lex = self._coverage(terms, s.text)
                cue = sum(1.0 for t in qtypes if t in _CUES and _CUES[t].search(s.text)) / max(1, len(qtypes))
                sim = float(sims[j])
                score = (
                    0.45 * self._norm_sim(sim)
                    + 0.35 * lex
                    + 0.10 * cue
                    + 0.10 * (1.0 / (rank + 1))
                    - (0.05 if len(s.text) < 8 else 0.0)
                )
                cands.append(_Cand(rank, hit, s.start, s.end, s.text, score, sim, lex))
        return cands, terms, qtypes

    def evidence(
        self, question: str, retrieval: Retrieval, cands: Sequence[_Cand], terms: dict[str, float]
    ) -> dict:
        """Features of how well the retrieved passages support an answer; ``evidence`` is what is thresholded."""
        if not retrieval.hits or not cands:
            return {"evidence": 0.0}
        top = retrieval.hits[0]
        sp = self.index.speeches[top.speech_id]
        context = " ".join(
            [h.text for h in retrieval.hits[:2]] + [sp.title, sp.speaker, sp.role, top.section]
        )
        coverage = self._coverage(terms, context)
        best = max(cands, key=lambda c: c.score)
        best_sim = max(c.sim for c in cands)
        # Terms the corpus never uses are the clearest sign of a question it cannot answer.
        unknown = [t for t in terms if self._df.get(t, 0) == 0 and len(t) >= 2]
        unknown_share = sum(terms[t] for t in unknown) / max(1e-9, sum(terms.values()))
        evidence = 0.4 * self._norm_sim(best_sim) + 0.4 * coverage + 0.2 * best.lex - 0.25 * unknown_share
        return {
            "evidence": float(evidence),
            "coverage": float(coverage),
            "best_sim": float(best_sim),
            "best_lex": float(best.lex),
            "passage_cos": float(top.dense_score),
            "unknown_terms": unknown,
        }

    # -- composition ----------------------------------------------------------------------------------

    def compose(self, question: str, retrieval: Retrieval, *, max_chars: int = 200) -> Composition:
        cands, terms, qtypes = self.candidates(question, retrieval)
        feats = self.evidence(question, retrieval, cands, terms)
        if feats["evidence"] < self.threshold or not cands:
            return Composition(REFUSAL, False, (), feats["evidence"], feats)

        ranked = sorted(cands, key=lambda c: -c.score)
        best = ranked[0]
        chosen = [best]
        used = len(best.text)
        for c in ranked[1:]:
            if len(chosen) >= 4 or c.score < 0.6 * best.score:
                break
            if used + len(c.text) > max_chars:
                continue
            # Stay with the passages that carry the answer: at most two passages in one short answer.
            if len({x.hit.passage_id for x in chosen} | {c.hit.passage_id}) > 2:
                continue
            chosen.append(c)
            used += len(c.text)
        # Reading order: by passage rank, then position inside the passage.
        chosen.sort(key=lambda c: (c.hit_rank, c.start))

        lead = self._lead(question, qtypes, retrieval, chosen[0].hit)
        parts, citations = [lead] if lead else [], []
        for n, c in enumerate(chosen, 1):
            parts.append(f"{c.text}[{n}]")
            citations.append(_citation(n, c))
        answer = "".join(parts)
        return Composition(answer, True, tuple(citations), feats["evidence"], feats)

    def _lead(self, question: str, qtypes: set[str], retrieval: Retrieval, hit: Hit) -> str:
        """For who/which-speech questions, state the speaker, role and speech from the metadata."""
        if not ({"who", "which_speech"} & qtypes):
            return ""
        sp = self.index.speeches[hit.speech_id]
        if not sp.speaker:
            return f"相关内容出自《{sp.title}》。"
        role = f"（{sp.role}）" if sp.role else ""
        return f"{sp.speaker}{role}在讲话《{sp.title}》中谈到："


def _citation(n: int, c: _Cand) -> Citation:
    return Citation(
        n=n,
        passage_id=c.hit.passage_id,
        speech_id=c.hit.speech_id,
        speech_title=c.hit.speech_title,
        speaker=c.hit.speaker,
        speaker_role=c.hit.speaker_role,
        section=c.hit.section,
        quote=c.text,
        start=c.start,
        end=c.end,
        passage_text=c.hit.text,
        score=round(c.score, 4),
    )


def check_citations(answer: str, citations: Sequence[Citation], index: LoadedIndex) -> list[str]:
    """Problems with an answer's citations (empty when all hold). The service refuses to return a bad one."""
    problems = []
    markers = [int(m) for m in _MARKER.findall(answer)]
    first_use = list(dict.fromkeys(markers))
    if first_use != list(range(1, len(first_use) + 1)):
        problems.append(f"markers are not numbered 1..k in order of first use: {first_use}")
    if sorted(c.n for c in citations) != list(range(1, len(citations) + 1)):
        problems.append("citation numbers are not 1..k")
    if set(first_use) != {c.n for c in citations}:
        problems.append("a marker without a citation or a citation without a marker")
    for c in citations:
        row = index.row_of.get(c.passage_id)
        if row is None:
            problems.append(f"[{c.n}] cites unknown passage {c.passage_id}")
            continue
        text = index.paragraphs[row].text
        if c.passage_text != text or text[c.start : c.end] != c.quote or not c.quote:
            problems.append(f"[{c.n}] quote is not verbatim at {c.start}:{c.end} of {c.passage_id}")
    return problems
