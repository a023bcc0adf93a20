"""CMRC 2018 (dev, trial): span questions on Chinese Wikipedia, and the leave-the-paragraph-out refusal test."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from data.records import Speech
from evaluation.datasets.common import (
    Benchmark,
    UniqueSlicer,
    find_data_file,
    first,
    hold_out_benchmark,
    licence_line,
    stable_share,
)
from evaluation.datasets.squad import (
    SquadArticle,
    SquadParagraph,
    SquadQuestion,
    read_squad,
    squad_gold,
    squad_speeches,
)
from evaluation.gold import GoldItem
from evaluation.metrics import normalize

FOLDER = "cmrc2018"
FILES = {"dev": "cmrc2018_dev.json", "trial": "cmrc2018_trial.json"}
# 15% of dev's 848 paragraphs leaves only 434 questions whose answers occur in no indexed paragraph: too few
# for 500 unanswerable. 20% (192 paragraphs) leaves 572, the smallest round share that gives half of 1,000.
HOLD_OUT_SHARE = 0.20
UNANSWERABLE_QUESTIONS = 1000  # half answerable, half unanswerable


def data_file(split: str = "dev", data: Path | None = None) -> Path:
    return find_data_file(f"cmrc2018 {split}", FOLDER, FILES[split], data)


def load_articles(split: str = "dev", data: Path | None = None) -> list[SquadArticle]:
    """CMRC 2018 ``split`` as articles -> paragraphs -> questions (for benchmarks and for training)."""
    return read_squad(data_file(split, data))


def load(data: Path | None = None, limit: int | None = None, *, split: str = "dev") -> Benchmark:
    """Every question over the whole split: one speech per article; gold = the question's paragraph; the key
    point is any of the reference answers; evidence = a 30-char slice near the answer found nowhere else."""
    path = data_file(split, data)
    speeches, items = convert(read_squad(path))
    name = "cmrc2018" if split == "dev" else f"cmrc2018-{split}"
    return Benchmark(
        name=name,
        speeches=tuple(speeches),
        items=tuple(first(items, limit)),
        licence=licence_line(path.parent / "SOURCE.md"),
        internal_only=False,
        data_file=path,
        description=f"CMRC 2018 {split}: {len(speeches)} Wikipedia articles, span questions; key point = any "
        "reference answer",
    )


def convert(articles: Sequence[SquadArticle]) -> tuple[list[Speech], list[GoldItem]]:
    """Speeches and gold items of ``load`` (the evidence slice makes retrieval gold text-checkable)."""
    speeches, pid_of = squad_speeches(articles, "cmrc2018")
    slicer = UniqueSlicer(p.context for a in articles for p in a.paragraphs)

    def evidence(para: SquadParagraph, q: SquadQuestion) -> list[str]:
        return [slicer.slice(para.context, around=max(0, q.answer_starts[0]))]

    return speeches, squad_gold(articles, pid_of, type_="cmrc2018", evidence=evidence)


# ----------------------------------------------------------------------------------------------------
# Leave the paragraph out: does the service refuse when the paragraph that answered is gone?


@dataclass(frozen=True, slots=True)
class HoldOut:
    """The split of one leave-the-paragraph-out run, with the counts the summary reports."""

    indexed: tuple[SquadParagraph, ...]
    held_out: tuple[SquadParagraph, ...]
    answerable: tuple[GoldItem, ...]  # questions of indexed paragraphs
    unanswerable: tuple[GoldItem, ...]  # held-out questions whose every answer is in no indexed paragraph
    answer_elsewhere: int  # held-out questions dropped because an indexed paragraph states an answer


def hold_out(
    articles: Sequence[SquadArticle], pid_of: dict[str, str], share: float = HOLD_OUT_SHARE
) -> HoldOut:
    """Hold out the paragraphs whose sha256(paragraph id) falls under ``share``; ``pid_of`` maps the indexed
    paragraphs to our ids (``squad_speeches`` with the same rule as ``keep``)."""
    paragraphs = [p for a in articles for p in a.paragraphs]
    held = tuple(p for p in paragraphs if stable_share(p.id) < share)
    indexed = tuple(p for p in paragraphs if stable_share(p.id) >= share)
    # normalize() drops whitespace, so "\n" never joins two paragraphs into a false match.
    haystack = "\n".join(normalize(p.context) for p in indexed)
    unanswerable: list[GoldItem] = []
    elsewhere = 0
    for para in held:
        for q in para.questions:
            answers = [a for a in q.answers if normalize(a)]
            if any(normalize(a) in haystack for a in answers):
                elsewhere += 1
                continue
            unanswerable.append(
                GoldItem(
                    id=q.id,
                    question=q.question,
                    answerable=False,
                    reference_answer=None,
                    type="cmrc2018-held-out",
                )
            )
    answerable = squad_gold(articles, pid_of, type_="cmrc2018-indexed")
    return HoldOut(indexed, held, tuple(answerable), tuple(unanswerable), elsewhere)


def load_unanswerable(data: Path | None = None, limit: int | None = None) -> Benchmark:
    """CMRC 2018 dev with ~20% of its paragraphs left out of the index (see ``hold_out``): 1,000 questions,
    half of them unanswerable; ``limit`` subsamples keeping the half/half ratio."""
    path = data_file("dev", data)
    articles = read_squad(path)
    held_ids = {p.id for a in articles for p in a.paragraphs if stable_share(p.id) < HOLD_OUT_SHARE}
    speeches, pid_of = squad_speeches(articles, "cmrc2018", keep=lambda p: p.id not in held_ids)
    split = hold_out(articles, pid_of)
    return hold_out_benchmark(
        "cmrc2018-unanswerable",
        path,
        speeches,
        split,
        share=HOLD_OUT_SHARE,
        questions=UNANSWERABLE_QUESTIONS,
        limit=limit,
        internal_only=False,
        description=(
            f"CMRC 2018 dev, leave the paragraph out: {len(split.held_out)} of "
            f"{len(split.held_out) + len(split.indexed)} paragraphs (sha256(paragraph id) < {HOLD_OUT_SHARE}) "
            "are not indexed; their questions whose every answer occurs in no indexed paragraph must be "
            "refused, the questions of indexed paragraphs answered (key point = any reference answer, a "
            "citation is precise when it cites the gold paragraph)"
        ),
    )
