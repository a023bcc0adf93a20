"""The places a question names, from the official list of China's administrative divisions, and whether a text speaks of them.

A question about 苏州, 大连 or 深圳 is about that place: a provincial report's target for the whole of 江苏 does
not answer it, nor does another province's. The retriever finds the nearest passages anyway, on the question's
other words, and the answer would quote them unnamed. So an answer is drawn only from passages that speak of
the place: the passage names it, or its speech is that place's (its region or title). The names are the
divisions' own (``resources/divisions.tsv``, with where it comes from), not words chosen on any question set.

A place is read where it is a word of the question (jieba's segmentation: 长治久安 and 孙中山 name no place),
by its full name at every level (苏州市, 密云区) and, for provinces and prefectures, without its administrative
suffix (苏州, 内蒙古), as people write them; a county's short form is too often a common word (和平, 安康).
Of the places a question names, the most local ones are asked about ("江苏苏州…" asks about 苏州).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from qa.mentions import region_core

_TABLE = Path(__file__).with_name("resources") / "divisions.tsv"


@dataclass(frozen=True)
class Place:
    """A place named in a question: how a text may spell it (full name first), and its level (0 province,
    1 prefecture, 2 county)."""

    spellings: tuple[str, ...]
    level: int

    def named_in(self, text: str) -> bool:
        return any(s in text for s in self.spellings)


@functools.cache
def _divisions() -> tuple[re.Pattern[str], dict[str, Place]]:
    """A pattern matching any division's name (longest first) and the place each name stands for."""
    places: dict[str, Place] = {}
    for line in _TABLE.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        code, name = line.split("\t")
        level = 0 if code[2:].strip("0") == "" else 1 if code[4:].strip("0") == "" else 2
        short = region_core(name) if level < 2 else name
        spellings = tuple(dict.fromkeys((name, short)))
        for spelled in spellings:
            known = places.get(spelled)
            # A name shared by two divisions (吉林 the province and the city) stands for the wider one.
            if known is None or level < known.level:
                places[spelled] = Place(spellings, level)
    names = sorted(places, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, names))), places


@functools.lru_cache(maxsize=1024)
def places_asked(question: str) -> tuple[Place, ...]:
    """``named_places`` of ``question`` at its own word edges (the extractive writer and the fact gate both ask)."""
    return named_places(question, word_edges(question))


def speaks_of(places: Sequence[Place], text: str) -> bool:
    """Whether ``text`` (a passage with its speech's title and region) names one of ``places``."""
    return any(p.named_in(text) for p in places)


def named_places(question: str, word_edges: Sequence[int]) -> tuple[Place, ...]:
    """The most local places ``question`` names; ``word_edges`` are the offsets where its words start and end
    (a name must start and end at such edges). Empty when it names none."""
    pattern, places = _divisions()
    edges = set(word_edges)
    found: dict[tuple[str, ...], Place] = {}
    for m in pattern.finditer(question):
        if m.start() in edges and m.end() in edges:
            place = places[m.group()]
            found.setdefault(place.spellings, place)
    if not found:
        return ()
    deepest = max(p.level for p in found.values())
    return tuple(p for p in found.values() if p.level == deepest)


def word_edges(question: str) -> tuple[int, ...]:
    """Where the words of ``question`` start and end, by jieba's dictionary (no HMM: a run it does not know is
    cut into characters, so a known name inside it still has edges)."""
    from qa.lexical import _jieba

    edges = {0}
    for _word, start, end in _jieba().tokenize(question, HMM=False):
        edges.add(start)
        edges.add(end)
    return tuple(sorted(edges))
