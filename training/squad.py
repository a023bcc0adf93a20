"""SQuAD-style reading-comprehension sets (CMRC2018 trial, DRCD dev/test) as speeches and training questions.

The files are read by the evaluation package's one loader per data set (evaluation/datasets/); this module only
shapes them for training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from data.records import Speech
from evaluation.datasets.drcd import to_simplified
from evaluation.datasets.squad import read_squad, squad_speeches


@dataclass(frozen=True)
class RCQuestion:
    qid: str
    question: str
    answers: tuple[str, ...]
    paragraph_id: str  # our id of the paragraph that answers it
    article: str  # article key, for splits that keep an article's questions together
    swaps: tuple[str, ...] = ()  # the same question made unanswerable (another year no text states)


def load_squad(path: Path, *, simplify: bool = False) -> tuple[list[Speech], list[RCQuestion]]:
    """One speech per article (title = article title), one paragraph per context; questions keep their ids."""
    articles = read_squad(Path(path), convert=to_simplified() if simplify else None)
    speeches, pid_of = squad_speeches(articles, Path(path).name)
    questions = [
        RCQuestion(
            qid=q.id,
            question=q.question,
            answers=q.answers,
            paragraph_id=pid_of[p.id],
            article=f"{Path(path).name}#{a.id}",
        )
        for a in articles
        for p in a.paragraphs
        if p.id in pid_of
        for q in p.questions
        if q.answers
    ]
    return speeches, questions
