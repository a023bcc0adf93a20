"""The learned extractive composer: sentences scored by the answerability model, refusal by its threshold."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from data.text import display_text
from qa.answerability import AnswerabilityModel
from qa.compose import (
    REFUSAL,
    Composition,
    ExtractiveComposer,
    _Cand,
    _write,
    answer_requirement,
    compose_meta,
    not_stated,
    speech_prefixes,
    unknown_report,
)
from qa.features import (
    Candidate,
    QuestionInfo,
    analyze_question,
    asks_area,
    asks_day,
    asks_measured,
    asks_number,
    asks_ordinal,
    asks_person,
    asks_year,
    candidate_features,
    gate_of,
    names_someone,
    question_numbers,
    states_area,
    states_day,
    states_measured,
    states_new_number,
    states_year,
)
from qa.index import LoadedIndex
from qa.mentions import about_one_side, speech_labels
from qa.meta import asked_office
from qa.places import asks_place_inside, asks_where, names_a_place, names_place_inside, places_asked
from qa.prepare import Prepared
from qa.retrieve import Retrieval
from qa.terms import matched_text
from qa.types import Citation, Hit


@dataclass(slots=True)  # as Candidate: cheap to build
class Located:
    """A candidate sentence with where it sits: the passage id, its hit and its span."""

    pid: str
    hit: Hit
    start: int
    end: int
    cand: Candidate  # its texts as a question is matched against them (qa.terms.matched_text)
    quote: str  # the sentence as its paragraph has it


def question_info(index: LoadedIndex, question: str) -> QuestionInfo:
    return analyze_question(question, index.lexical.df, index.lexical.n_docs)


def _meta_text(index: LoadedIndex, hit: Hit) -> str:
    sp = index.speeches[hit.speech_id]
    parts = [sp.title, sp.speaker, sp.role, hit.section, sp.date]
    parts += [str(getattr(sp, name, "") or "") for name in ("region", "place")]
    return " ".join(p for p in parts if p)


def _year_of(date: str) -> int:
    """The year of an ISO (possibly partial) date, 0 when there is none."""
    head = (date or "")[:4]
    return int(head) if head.isdigit() else 0


def candidates_for(
    index: LoadedIndex, retrieval: Retrieval, passages: int, *, reading: bool = True
) -> list[Located]:
    """Every sentence of the top ``passages`` retrieved paragraphs, with its similarity to the question; with
    ``reading``, its texts as a question is matched against them (``qa.terms.matched_text``: the reports' names
    of statistics, as ``AnswerService.reading`` reads the question, and numerals in digits).

    Training reads them as they are (``reading=False``): its questions were written from the text that answers
    them (reading comprehension) or generated from it (report figures), so they already use its names. Reading
    both sides there too moved 635 of 500,095 rows, and a model retrained so was the shipped one within the
    retrain's own spread on the dev sets (102 near misses and 19 answerable questions refused, against 102 and
    17; docs/answerability.md, "Official names"), at the cost of a new artifact."""
    read = matched_text if reading else str
    out: list[Located] = []
    qv = retrieval.query_vector
    for rank, hit in enumerate(retrieval.hits[:passages]):
        row = index.row_of(hit.passage_id)
        if row is None:
            continue
        para = index.paragraph(row)
        svecs = index.sentence_vectors_of(row)
        sims = svecs @ qv if len(svecs) else np.zeros(0)
        passage_text = read(para.text)
        meta = _meta_text(index, hit)
        year = _year_of(index.speeches[hit.speech_id].date)
        n = len(para.sentences)
        for j, s in enumerate(para.sentences):
            out.append(
                Located(
                    pid=hit.passage_id,
                    hit=hit,
                    start=s.start,
                    end=s.end,
                    quote=s.text,
                    cand=Candidate(
                        rank=rank,
                        index_in_passage=j,
                        n_in_passage=n,
                        text=read(s.text),
                        passage_text=passage_text,
                        meta_text=meta,
                        sim=float(sims[j]),
                        passage_sim=float(hit.dense_score),
                        fused=float(hit.score),
                        bm25=float(hit.bm25_score),
                        year=year,
                        section=hit.section,
                    ),
                )
            )
    return out


# Candidates the open gate scores first when the answer quotes none of them: the ones most similar to the
# question (``LearnedComposer.clears``). Only a matter of time, never of the answer. The quoted sentences
# alone cleared the gate (the open or the thing gate, as the question asks) for all 308 open questions that pass
# it on the dev sets (gold-dev 35, national-dev 25, ncp-unanswerable 248; 2026-12-06, night).
FIRST = 4


class LearnedComposer:
    """Scores every sentence of the top passages with the answerability model; refuses when the best one
    is below the model's threshold; otherwise writes the best sentences in reading order, each cited.

    ``keep_ratio`` and ``max_sentences`` shape how much is quoted; their defaults were chosen on the gold dev
    split (data/eval/gold_dev.jsonl), never on a test or acceptance set.
    """

    name = "learned"
    compares = (
        True  # answers each side of a question naming several speeches (the service retrieves per side)
    )

    def __init__(
        self,
        index: LoadedIndex,
        model: AnswerabilityModel,
        *,
        passages: int = 4,
        keep_ratio: float = 0.5,
        max_sentences: int = 3,
        max_passages: int = 2,
        threshold: float | None = None,
    ) -> None:
        self.index = index
        self.model = model
        self.passages = passages
        self.keep_ratio = keep_ratio
        self.max_sentences = max_sentences
        self.max_passages = max_passages
        self.threshold = model.threshold if threshold is None else threshold
        self.overshoot = 1.15  # "about" max_chars: a further sentence may run past it by this factor
        self._info = Prepared(lambda q: question_info(index, q))

    def prepare(self, question: str) -> None:
        """The model's analysis of the question alone, done ahead: see qa/prepare.py."""
        self._info.prepare(question)

    def score(self, question: str, retrieval: Retrieval) -> tuple[list[Located], np.ndarray]:
        located = candidates_for(self.index, retrieval, self.passages)
        if not located:
            return [], np.zeros(0, dtype=np.float32)
        info = self._info.take(question)
        X = candidate_features(info, [c.cand for c in located], self.index.lexical.n_docs)
        return located, self.model.predict(X)

    def clears(
        self,
        question: str,
        retrieval: Retrieval,
        threshold: float,
        first: Sequence[tuple[str, int]] = (),
        stating: Sequence[Callable[[str], bool]] = (),
        naming: Sequence[Callable[[str], bool]] = (),
    ) -> tuple[float, dict[tuple[str, int], float]]:
        """Whether some candidate sentence scores at least ``threshold``: (a score that does, else the best;
        the scores of the sentences scored, by (passage id, start)).

        Exact, and cheaper than ``score`` when one does: the sentences ``first`` names (passage id, start:
        the ones an answer quotes), else the ``FIRST`` most similar to the question, are scored first, the
        rest only when none of those clears it. A row's features do not depend on which other rows are
        computed (``candidate_features(only=...)``). A sentence failing one of ``stating`` (``stating_rules``)
        scores 0; one failing one of ``naming`` (``naming_rules``) keeps its score but cannot clear."""
        located = candidates_for(self.index, retrieval, self.passages)
        if not located:
            return 0.0, {}
        info = self._info.take(question)
        cands = [c.cand for c in located]
        quoted = set(first)
        head = [i for i, c in enumerate(located) if (c.pid, c.start) in quoted]
        if not head:
            head = sorted(range(len(cands)), key=lambda i: -cands[i].sim)[:FIRST]
        chosen = set(head)
        best = 0.0
        scored: dict[tuple[str, int], float] = {}
        for part in (head, [i for i in range(len(cands)) if i not in chosen]):
            X = candidate_features(info, cands, self.index.lexical.n_docs, only=part)
            if len(X):
                probs = self.model.predict(X)
                if stating:
                    keep = [meets(stating, cands[i].text) for i in part]
                    probs = np.where(keep, probs, np.float32(0.0))
                named = [meets(naming, cands[i].text) for i in part] if naming else [True] * len(part)
                best = max(best, float(np.where(named, probs, np.float32(0.0)).max()))
                scored.update(
                    ((located[i].pid, located[i].start), float(p)) for i, p in zip(part, probs, strict=True)
                )
            if best >= threshold:
                break
        return best, scored

    def compose(self, question: str, retrieval: Retrieval, *, max_chars: int = 200) -> Composition:
        missing = unknown_report(self.index, question)
        if missing is not None:
            return missing
        meta = self.compose_meta(question, retrieval)
        if meta is not None:
            return meta
        located, probs = self.score(question, retrieval)
        if not located:
            return Composition(REFUSAL, False, (), 0.0, {"refused": "no passages"})
        if retrieval.compared:
            return self._compose_sides(retrieval, located, probs)
        order = np.argsort(-probs, kind="stable")
        best = float(probs[order[0]])
        feats = {"evidence": best, "threshold": self.threshold}
        if best < self.threshold:
            return Composition(REFUSAL, False, (), best, {**feats, "refused": "below threshold"})
        chosen = [int(order[0])]
        used = len(located[chosen[0]].quote)
        for i in order[1:]:
            i = int(i)
            if len(chosen) >= self.max_sentences or probs[i] < self.keep_ratio * best:
                break
            if used + len(located[i].quote) > max_chars * self.overshoot:
                continue
            if len({located[j].pid for j in chosen} | {located[i].pid}) > self.max_passages:
                continue
            chosen.append(i)
            used += len(located[i].quote)
        chosen.sort(key=lambda i: (located[i].cand.rank, located[i].start))
        picked = [located[i] for i in chosen]
        return _write(
            "",
            [_as_cand(c, float(probs[i])) for c, i in zip(picked, chosen, strict=True)],
            feats,
            speech_prefixes(self.index, [c.hit.speech_id for c in picked]),
        )

    def _compose_sides(self, retrieval: Retrieval, located: list[Located], probs: np.ndarray) -> Composition:
        """One best sentence per named speech, labelled; a side without evidence is said to be missing."""
        chosen: list[tuple[str, Located, float]] = []
        missing: list[str] = []
        labels = speech_labels([self.index.speeches[sid] for sid in retrieval.mentioned])  # as the writer's
        for sid, label in zip(retrieval.mentioned, labels, strict=True):
            own = [i for i, c in enumerate(located) if c.hit.speech_id == sid]
            best = max(own, key=lambda i: probs[i], default=None)
            if best is None or probs[best] < self.threshold:
                missing.append(label)
            else:
                chosen.append((label, located[best], float(probs[best])))
        evidence = max((p for _, _, p in chosen), default=float(probs.max()) if len(probs) else 0.0)
        feats = {"evidence": evidence, "threshold": self.threshold, "sides": len(retrieval.mentioned)}
        if not chosen:
            return Composition(REFUSAL, False, (), evidence, {**feats, "refused": "no side has evidence"})
        tail = not_stated(missing)
        comp = _write(
            "", [_as_cand(c, p) for _, c, p in chosen], feats, [f"{label}：" for label, _, _ in chosen]
        )
        return Composition(comp.answer + tail, True, comp.citations, evidence, feats)

    def compose_meta(self, question: str, retrieval: Retrieval) -> Composition | None:
        return compose_meta(self.index, question, retrieval)


def stating_rules(question: str) -> list[Callable[[str], bool]]:
    """What a sentence must state to answer a fact question, whatever the model's score (``GatedComposer``'s fact
    gate zeroes the others). Grammar, each measured on the dev sets:

    - a number, for "多少 / 几", besides the question's own (``states_new_number``): the model, trained with a
      narrower reading of numbers (features._ANY_NUMBER), scores some such sentences high ("推动…经济圈建设。" for "…的经济总量是多少？"); it
      refused 4 more national-dev near misses at no answerable cost, and one more ncp answerable question
      (docs/answerability.md, "Numbers");
    - a quantity in the unit of measure asked ("多少万辆" against "新能源汽车产量增长27％": ``asks_measured``): 10 more
      near misses refused and no answerable question ("Units");
    - a day, for "哪一天" (``states_day``): every answer sentence of the reading-comprehension questions asking
      one states a day ("第七届中阿博览会哪天开幕？" had been answered by the opening of another fair);
    - a year, for "哪一年" ("冬奥会在哪一年举行？" against "筹办好北京冬奥会"): the number rule's reasoning for a year
      ("Years");
    - a city, county or district inside the region asked about, for "在安徽哪个城市…" (``qa.places.asks_place_inside``):
      "办好全省旅游发展大会" names the event, not where. Questions asking one thing (the thing gate) are held to it
      too, as ``GatedComposer`` passes these rules to ``LearnedComposer.clears``.

    A sentence failing one of them scores 0 wherever the model's scores are read: the refusal, the sentence that
    leads the answer and the quotes kept (``without_weak_quotes``). What a sentence must name (``naming_rules``)
    decides the refusal alone."""
    rules: list[Callable[[str], bool]] = []
    if asks_number(question):
        # A number besides the question's own: "2022年考研报名人数较上年有所增加" states none for "2022年考研报名人数是多少".
        # A numeral in a name (“十四五”, 二十大, 第七届) counts nothing, unless the question asks for one (第几届).
        names = asks_ordinal(question)
        rules.append(
            functools.partial(states_new_number, question_numbers(question), names=names, question=question)
        )
        unit = asks_measured(question)
        if unit:
            rules.append(functools.partial(states_measured, unit))
        elif asks_area(question):
            # An area in no unit named ("建筑面积是多少？"): a number in an area unit (``qa.features.asks_area``).
            rules.append(states_area)
    if asks_day(question):
        rules.append(states_day)
    region = asks_place_inside(question)
    if region is not None:
        rules.append(functools.partial(names_place_inside, region))
    if asks_year(question):
        rules.append(states_year)
    return rules


def _names_office(office: str, text: str) -> bool:
    return office in text


def naming_rules(question: str) -> list[Callable[[str], bool]]:
    """What some sentence must name for ``GatedComposer`` to answer, beside ``stating_rules``:

    - someone, for 谁 (``names_someone``): a person, an office or a body the question does not name ("原标题：央视中秋
      晚会《吉庆团圆》介绍中秋民俗" for "…是谁唱的？");
    - a place or an institution the question does not name, for where something is held, built or located
      (``qa.places.asks_where``, ``names_a_place``): "办好第十五届全国运动会" for "…在哪里举办？".
    - the office, for who holds one ("北京市委书记是谁？", ``qa.meta.asked_office``) when the metadata names no holder.

    They decide the refusal only. Read from words and tags, they miss some answers a stating rule would not (2.1% of
    the reading-comprehension answer sentences to 谁: 乙一, 君主), so the answer a question does get is written from
    the model's scores as before: the sentence that leads it and the quotes kept (docs/answerability.md, twelfth
    session: zeroing them there cost two CMRC2018 trial answers their answer span). A question asking how much too
    ("先发行多少，用在哪里？") is held to its number alone, as its parts may be answered by two sentences."""
    if asks_number(question):
        return []
    rules: list[Callable[[str], bool]] = []
    if asks_person(question):
        rules.append(functools.partial(names_someone, question))
    office = asked_office(question)
    if office:
        # Who holds an office the metadata does not name ("北京市委书记是谁？"): a sentence naming the office.
        # "市委研究室副主任王汝满…" names someone, in another office. Of the reading-comprehension questions so asked
        # (CMRC2018 trial, DRCD dev and test), 8 of 8 answer sentences name the office.
        rules.append(functools.partial(_names_office, office))
    if asks_where(question):
        rules.append(functools.partial(names_a_place, question))
    return rules


def meets(rules: Sequence[Callable[[str], bool]], text: str) -> bool:
    """Whether ``text`` holds to every one of ``rules`` (``stating_rules``): the fact gate and the thing gate ask it
    of each candidate sentence alike."""
    return all(rule(text) for rule in rules)


class GatedComposer:
    """The first release's extractive answers, with the learned model as the refusal gate for questions
    asking for a fact (a quantity, a time, a person): when no sentence of the top passages clears the model's
    threshold, i.e. none states the asked fact, it refuses instead of quoting a sentence on the topic.

    The threshold is the model's own (meta.json: chosen on the public validation split). Questions asking
    "what / which / how" keep the extractive answer and its rules, behind gates of their own. One asking for
    a list or a way ("哪些措施", "如何") passes a low one (``open_threshold``, chosen on the same split to refuse
    at most 0.5% of its answerable open questions): the model learned from span answers and scores good policy
    answers low (docs/answerability.md, national-dev and gold-dev), so for them it only refuses when no sentence
    of the top passages gets even a small score. One asking for one thing ("X是什么", "在哪里") passes
    ``thing_threshold``, chosen like the fact gate's.
    """

    name = "gated"
    compares = True

    def __init__(
        self,
        index: LoadedIndex,
        model: AnswerabilityModel,
        *,
        base_threshold: float,
        threshold: float | None = None,
        list_budget: float = 1.0,
    ) -> None:
        self.index = index
        # The fact asked opens the answer: gated also hands its writer the sentence the model reads as stating
        # it (``compose``, the fact gate).
        self.base = ExtractiveComposer(
            index, threshold=base_threshold, list_budget=list_budget, fact_first=True
        )
        self.learned = LearnedComposer(index, model, threshold=threshold)
        self.threshold = self.learned.threshold
        self.open_threshold = model.open_threshold
        self.thing_threshold = model.thing_threshold

    def prepare(self, question: str) -> None:
        """Both composers' work on the question alone, done ahead: see qa/prepare.py."""
        self.base.prepare(question)
        self.learned.prepare(question)

    def compose(self, question: str, retrieval: Retrieval, *, max_chars: int = 200) -> Composition:
        comp = self.base.compose(question, retrieval, max_chars=max_chars)
        if not comp.answerable or comp.features.get("meta"):
            return comp
        kind = gate_of(question)
        if kind == "fact":
            if retrieval.compared:
                # Each side's sentences are read against the question asked of that side alone: the model's focus
                # terms would count the other sides' names, which a side's sentences never state, as uncovered
                # ("吉林和辽宁今年…分别是多少？" scored 0.04 against 0.06; each side alone clears it).
                # Each side is scored among its own passages too, as the retriever found them for it
                # (AnswerService._per_speech): ranks and relative scores among the other sides' passages are
                # not what the model was trained on.
                sides = []
                for sid in retrieval.mentioned:
                    own = about_one_side(question, sid, retrieval.mentioned, self.index.speeches)
                    hits = [h for h in retrieval.hits if h.speech_id == sid]
                    if hits:
                        alone = Retrieval(hits, retrieval.query_vector, (sid,))
                        sides.append(float(self._fact_scores(own, alone)[2].max(initial=0.0)))
                best = max(sides, default=0.0)
            else:
                located, probs, clearing = self._fact_scores(question, retrieval)
                best = float(clearing.max(initial=0.0))
            feats = {**comp.features, "fact_evidence": best, "fact_threshold": self.threshold}
            if best < self.threshold:
                return Composition(
                    REFUSAL, False, (), best, {**feats, "refused": "no sentence states the asked fact"}
                )
            if retrieval.compared:
                return replace(comp, features=feats)  # each side is the writer's; no lead, no quote dropped
            scored = {(c.pid, c.start): float(p) for c, p in zip(located, probs, strict=True)}
            # The sentence the model reads as stating the quantity or time asked opens the answer when the extractive
            # writer, which ranks by topic, left it out ("2022年全国国内生产总值增长了多少？" quoted the five-year
            # review's shares, not "全年国内生产总值增长3%"): the answer's first sentence carries the asked-for fact.
            # Else only for what the writer's own requirement checks (qa.compose.answer_requirement): for 谁 it kept a
            # sentence naming the person where the model's best repeated the question. Dev sets: four answers
            # gained their key point, none lost one (docs/answerability.md, "The fact first").
            # The sentence the gate cleared on: it states the fact and names what is asked to be named.
            top = located[int(clearing.argmax())]
            cited = {(c.passage_id, c.start) for c in comp.citations}
            # When none of the writer's own quotes clears the gate (its best sentence for 谁 repeated the question, or
            # a slogan's 个 passed for a count), the sentence that did opens the answer whatever the writer requires
            # of one: it held the answer in 7 of the 8 reading-comprehension answers (CMRC2018 trial, DRCD dev) whose
            # quotes held none, and the dev sets' five such answers were near misses, answered either way
            # (docs/answerability.md, twelfth session).
            unstated = max((scored.get(k, 0.0) for k in cited), default=0.0) < self.threshold
            if (top.pid, top.start) not in cited and (unstated or answer_requirement(question) is not None):
                comp = self.base.compose(
                    question, retrieval, max_chars=max_chars, lead=(top.pid, top.start), lead_anyway=unstated
                )
        else:
            # A list or a way keeps the lenient open gate; one named thing gets its own (qa.features, _ASK_LIST_OR_WAY).
            gate = self.open_threshold if kind == "open" else self.thing_threshold
            quoted = [(c.passage_id, c.start) for c in comp.citations]
            naming = naming_rules(question)
            best, scored = self.learned.clears(
                question, retrieval, gate, first=quoted, stating=stating_rules(question), naming=naming
            )
            feats = {**comp.features, "open_evidence": best, "open_threshold": gate}
            if best < gate:
                return Composition(
                    REFUSAL, False, (), best, {**feats, "refused": "no sentence of the passages answers it"}
                )
            if max((scored.get(k, 0.0) for k in quoted), default=0.0) < gate:
                # As for a fact: none of the writer's quotes clears the gate, another sentence did, and it opens the
                # answer (CMRC2018 trial: it held the answer in 11 of the 17 such answers, which held it in 1).
                lead = self._clearing(retrieval, scored, gate, set(quoted), naming)
                if lead is not None:
                    comp = self.base.compose(
                        question, retrieval, max_chars=max_chars, lead=lead, lead_anyway=True
                    )
        comp = replace(comp, features=feats)
        # Each side of a comparison and each speech of a survey is the writer's, on its own evidence: none is dropped
        # for scoring under another's.
        return comp if retrieval.compared or retrieval.surveyed else without_weak_quotes(comp, scored)

    def _clearing(
        self,
        retrieval: Retrieval,
        scored: dict[tuple[str, int], float],
        gate: float,
        quoted: set[tuple[str, int]],
        naming: Sequence[Callable[[str], bool]],
    ) -> tuple[str, int] | None:
        """The best-scored sentence, not quoted, that clears ``gate`` and meets ``naming`` (``naming_rules``)."""
        texts = {
            (c.pid, c.start): c.cand.text
            for c in candidates_for(self.index, retrieval, self.learned.passages)
        }
        clearing = [
            k for k, p in scored.items() if p >= gate and k not in quoted and meets(naming, texts.get(k, ""))
        ]
        return max(clearing, key=scored.__getitem__) if clearing else None

    def _fact_scores(
        self, question: str, retrieval: Retrieval
    ) -> tuple[list[Located], np.ndarray, np.ndarray]:
        """The model's score of each candidate sentence for ``question``, 0 for one that cannot state the fact: it
        fails a stating rule (the unit, the year asked) or its passage does not speak of the place asked about
        (qa.places); and the same scores, 0 too for one that does not name what the question asks to be named
        (``naming_rules``): the scores the refusal reads, and the lead when quotes state nothing."""
        located, probs = self.learned.score(question, retrieval)
        rules = stating_rules(question)
        places = places_asked(question)
        if rules or places:
            stated = np.fromiter(
                (
                    meets(rules, c.cand.text) and (not places or self.base.speaks_of(c.hit, places))
                    for c in located
                ),
                dtype=bool,
                count=len(located),
            )
            probs = np.where(stated, probs, np.float32(0.0))
        naming = naming_rules(question)
        if not naming:
            return located, probs, probs
        named = np.fromiter((meets(naming, c.cand.text) for c in located), dtype=bool, count=len(located))
        return located, probs, np.where(named, probs, np.float32(0.0))

    def compose_meta(self, question: str, retrieval: Retrieval) -> Composition | None:
        return compose_meta(self.index, question, retrieval)


# A quoted sentence the model scores under this share of the answer's best-scored quote is dropped, with its
# citation: it shares the question's words but not its answer. Chosen on the dev sets (docs/answerability.md,
# "Weak quotes"): over gated's answered answerable questions, citation precision rises at 0.02 on gold-dev
# 0.752 -> 0.809, national-dev 0.716 -> 0.827 and ncp-unanswerable 0.596 -> 0.655 with no key point lost from
# the quotes; from 0.05 on, ncp's quotes start losing key points.
WEAK_QUOTE = 0.02


def without_weak_quotes(comp: Composition, scored: dict[tuple[str, int], float]) -> Composition:
    """``comp`` without its quoted sentences that score under ``WEAK_QUOTE`` x its best-scored quote (each
    with its label and citation, the rest renumbered); a quote the model did not score stays, and the
    best-scored one always does. When the quotes left all come from one speech, their speech labels
    ("浙江省：") go too, as the writer labels only answers that draw on several speeches."""
    known = [scored[k] for k in ((c.passage_id, c.start) for c in comp.citations) if k in scored]
    if not known:
        return comp
    floor = WEAK_QUOTE * max(known)
    weak = {c.n for c in comp.citations if scored.get((c.passage_id, c.start), floor) < floor}
    if not weak:
        return comp
    # A side said to be missing ("深圳：现有资料未提及。", an uncited piece) keeps the answered side's label.
    sided = any(cite is None and text for text, cite in comp.pieces())
    one_speech = not sided and len({c.speech_id for c in comp.citations if c.n not in weak}) == 1
    segments: list[tuple[str, Citation | None]] = []
    n = 0
    carried = ""  # the label of a dropped quote, which the next quote of its speech now needs
    for text, cite in comp.pieces():
        if cite is None:
            segments.append((text, None))
            carried = ""
            continue
        # A cited piece is "{label}{quote as displayed}[n]" (qa.compose._write); a label is said once per run of
        # one speech's quotes, so a dropped quote hands its label on.
        body = text.removesuffix(f"[{cite.n}]")
        shown = display_text(cite.quote)
        label = body[: -len(shown)] if shown and body.endswith(shown) else ""
        if cite.n in weak:
            carried = label or carried
            continue
        n += 1
        if one_speech and body.endswith(shown):
            body = shown
        elif carried and not label:
            body = carried + body
        carried = ""
        segments.append((f"{body}[{n}]", replace(cite, n=n)))
    return comp.written_as(segments, features={**comp.features, "weak_quotes_dropped": len(weak)})


def _as_cand(c: Located, p: float) -> _Cand:
    return _Cand(c.cand.rank, c.hit, c.start, c.end, c.quote, p, c.cand.sim, 0.0)


__all__ = ["LearnedComposer", "candidates_for", "question_info", "Located", "Sequence"]
