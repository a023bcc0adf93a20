"""DRCD (dev, test): Delta Reading Comprehension, traditional Chinese, converted to simplified with OpenCC."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from data.errors import SpeechQAError
from evaluation.datasets.common import Benchmark, find_data_file, first, licence_line
from evaluation.datasets.squad import SquadArticle, read_squad, squad_gold, squad_speeches

FOLDER = "drcd"
FILES = {"dev": "DRCD_dev.json", "test": "DRCD_test.json"}


@functools.cache
def to_simplified() -> Callable[[str], str]:
    """OpenCC's t2s conversion (opencc-python-reimplemented ships its dictionaries, so it works offline; the
    C++ ``opencc`` wheel has the same ``OpenCC("t2s").convert`` and is a drop-in, ~30x faster)."""
    try:
        from opencc import OpenCC
    except ImportError as exc:
        raise SpeechQAError(
            "DRCD is traditional Chinese and needs OpenCC to convert it",
            fix='pip install -e ".[dev]" (opencc-python-reimplemented)',
        ) from exc
    return OpenCC("t2s").convert


def data_file(split: str = "dev", data: Path | None = None) -> Path:
    return find_data_file(f"drcd {split}", FOLDER, FILES[split], data)


def load_articles(split: str = "dev", data: Path | None = None) -> list[SquadArticle]:
    """DRCD ``split`` in simplified Chinese as articles -> paragraphs -> questions (answer starts re-found
    where the conversion changed a length)."""
    return read_squad(data_file(split, data), convert=to_simplified())


def load(data: Path | None = None, limit: int | None = None, *, split: str = "dev") -> Benchmark:
    """Every question over the whole split: one speech per article, gold = the question's paragraph."""
    path = data_file(split, data)
    articles = read_squad(path, convert=to_simplified())
    speeches, pid_of = squad_speeches(articles, f"drcd-{split}")
    items = squad_gold(articles, pid_of, type_="drcd")
    return Benchmark(
        name="drcd" if split == "dev" else f"drcd-{split}",
        speeches=tuple(speeches),
        items=tuple(first(items, limit)),
        licence=licence_line(path.parent / "SOURCE.md"),
        internal_only=False,
        data_file=path,
        description=f"DRCD {split} (traditional -> simplified with OpenCC t2s): {len(speeches)} Wikipedia "
        "articles, span questions; key point = any reference answer",
    )
