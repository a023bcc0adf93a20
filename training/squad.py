"""SQuAD-style reading-comprehension sets (CMRC2018 trial, DRCD dev/test) as speeches and questions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from data.parse import make_speech
from data.records import Speech


@dataclass(frozen=True)
class RCQuestion:
    qid: str
    question: str
    answers: tuple[str, ...]
    paragraph_id: str  # our id of the paragraph that answers it
    article: str  # article key, for splits that keep an article's questions together


def load_squad(path: Path, *, simplify: bool = False) -> tuple[list[Speech], list[RCQuestion]]:
    """One speech per article (title = article title), one paragraph per context; questions keep ids."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))["data"]
    convert = _t2s() if simplify else (lambda s: s)
    speeches: list[Speech] = []
    questions: list[RCQuestion] = []
    for a_i, article in enumerate(data):
        title = convert(article.get("title") or f"article {a_i}")
        contexts = [convert(p["context"]) for p in article["paragraphs"]]
        speech = make_speech(
            title=title,
            paragraphs=[("", c) for c in contexts],
            source=f"{Path(path).name}#{a_i}",
            speech_key=f"{Path(path).name}\x1e{a_i}\x1e{title}",
        )
        speeches.append(speech)
        by_text = {p.text: p.paragraph_id for p in speech.paragraphs}
        for p, context in zip(article["paragraphs"], contexts, strict=True):
            pid = by_text.get(context.strip())
            if pid is None:
                continue
            for qa in p.get("qas", []):
                answers = tuple(dict.fromkeys(convert(a["text"]).strip() for a in qa.get("answers", [])))
                answers = tuple(a for a in answers if a)
                if not answers:
                    continue
                questions.append(
                    RCQuestion(
                        qid=str(qa["id"]),
                        question=convert(qa["question"]).strip(),
                        answers=answers,
                        paragraph_id=pid,
                        article=f"{Path(path).name}#{a_i}",
                    )
                )
    return speeches, questions


def _t2s():
    import opencc

    return opencc.OpenCC("t2s").convert
