"""SQuAD-style reading-comprehension sets (CMRC 2018, DRCD): articles -> paragraphs -> questions, as data.

One parser for both, used by the benchmarks and by training: ``read_squad`` gives the records as the file has
them; ``squad_speeches`` turns them into ``Speech`` records (one speech per article, title = article title, one
paragraph per context, ids stable across runs) and ``squad_gold`` into GoldItems with ``gold_passage_ids``;
``squad_corpus`` does both. ``cmrc2018.load_articles`` and ``drcd.load_articles`` (simplified) read the files.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data.errors import InputFileError
from data.parse import make_speech
from data.records import Speech
from evaluation.gold import GoldItem
from evaluation.metrics import normalize


@dataclass(frozen=True, slots=True)
class SquadQuestion:
    id: str
    question: str
    answers: tuple[str, ...]  # reference answer texts, deduplicated, in file order
    answer_starts: tuple[int, ...]  # character offset of each answer in its paragraph's context


@dataclass(frozen=True, slots=True)
class SquadParagraph:
    id: str  # the data set's paragraph id ("DEV_0", "1147-5")
    context: str
    questions: tuple[SquadQuestion, ...]


@dataclass(frozen=True, slots=True)
class SquadArticle:
    id: str
    title: str
    paragraphs: tuple[SquadParagraph, ...]


def _locate(context: str, answer: str, start: int) -> int:
    """``start`` if the answer sits there, else its occurrence nearest to ``start`` (after a conversion that
    changed lengths), else -1."""
    if context[start : start + len(answer)] == answer:
        return start
    found = [i for i in range(len(context)) if context.startswith(answer, i)]
    return min(found, key=lambda i: abs(i - start)) if found else -1


def parse_squad(
    data: Mapping[str, Any], *, convert: Callable[[str], str] | None = None
) -> list[SquadArticle]:
    """The ``{"data": [...]}`` object of a SQuAD-style file as records; ``convert`` maps every text (e.g. t2s).

    Questions without a non-empty answer and paragraphs without text are dropped.
    """
    conv = convert or (lambda s: s)
    articles: list[SquadArticle] = []
    for a_i, article in enumerate(data.get("data", [])):
        article_id = str(article.get("id") or a_i)
        paragraphs: list[SquadParagraph] = []
        for p_i, para in enumerate(article.get("paragraphs", [])):
            context = conv(str(para.get("context", "")))
            if not context.strip():
                continue
            questions: list[SquadQuestion] = []
            for qa in para.get("qas", []):
                pairs: dict[str, int] = {}
                for ans in qa.get("answers", []):
                    text = conv(str(ans.get("text", ""))).strip()
                    if text and text not in pairs:
                        pairs[text] = _locate(context, text, int(ans.get("answer_start", 0)))
                if not pairs:
                    continue
                questions.append(
                    SquadQuestion(
                        id=str(qa["id"]),
                        question=conv(str(qa["question"])).strip(),
                        answers=tuple(pairs),
                        answer_starts=tuple(pairs.values()),
                    )
                )
            paragraphs.append(
                SquadParagraph(str(para.get("id") or f"{article_id}-{p_i}"), context, tuple(questions))
            )
        if paragraphs:
            title = conv(str(article.get("title") or article_id))
            articles.append(SquadArticle(article_id, title, tuple(paragraphs)))
    return articles


def read_squad(path: Path, *, convert: Callable[[str], str] | None = None) -> list[SquadArticle]:
    """Read a SQuAD-style JSON file; a file that is not one is an InputFileError."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return parse_squad(data, convert=convert)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InputFileError(
            f"cannot read SQuAD-style data {path}: {exc}", fix="pass the unchanged dataset file"
        ) from exc


def squad_speeches(
    articles: Iterable[SquadArticle], key: str, *, keep: Callable[[SquadParagraph], bool] | None = None
) -> tuple[list[Speech], dict[str, str]]:
    """One speech per article (its paragraphs kept by ``keep``), and data-set paragraph id -> our paragraph id.

    Ids hash ``key:article id`` and the text, so the same data gives the same ids on every run.
    """
    speeches: list[Speech] = []
    pid_of: dict[str, str] = {}
    for article in articles:
        paras = [p for p in article.paragraphs if keep is None or keep(p)]
        if not paras:
            continue
        speech = make_speech(
            title=article.title,
            paragraphs=[("", p.context) for p in paras],
            source=f"{key}:{article.id}",
            speech_key=f"{key}:{article.id}",
        )
        speeches.append(speech)
        # make_speech keeps every non-empty context, in order, so the two lists line up.
        for built, para in zip(speech.paragraphs, paras, strict=True):
            pid_of[para.id] = built.paragraph_id
    return speeches, pid_of


def squad_gold(
    articles: Iterable[SquadArticle],
    pid_of: Mapping[str, str],
    *,
    type_: str,
    evidence: Callable[[SquadParagraph, SquadQuestion], Sequence[str]] | None = None,
) -> list[GoldItem]:
    """One answerable GoldItem per question of an indexed paragraph: the reference answers are the variants
    of one key point, the gold passage is the question's paragraph, ``evidence`` optional."""
    items: list[GoldItem] = []
    for article in articles:
        for para in article.paragraphs:
            pid = pid_of.get(para.id)
            if pid is None:
                continue
            for q in para.questions:
                items.append(
                    GoldItem(
                        id=q.id,
                        question=q.question,
                        answerable=True,
                        key_points=(tuple(a for a in q.answers if normalize(a)),),
                        evidence=tuple(evidence(para, q)) if evidence else (),
                        type=type_,
                        gold_passage_ids=(pid,),
                    )
                )
    return [i for i in items if i.key_points[0]]


def squad_corpus(articles: Sequence[SquadArticle], key: str) -> tuple[list[Speech], list[GoldItem]]:
    """Speeches (one per article) and answerable GoldItems with ``gold_passage_ids``, in one call (training)."""
    speeches, pid_of = squad_speeches(articles, key)
    return speeches, squad_gold(articles, pid_of, type_=key)
