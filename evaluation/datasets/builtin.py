"""speechqa's own gold sets: data/eval/gold*.jsonl over the built-in corpus, provincial.jsonl,
provincial_dev.jsonl, provincial_dev2.jsonl, provincial_dev3.jsonl, provincial_dev4.jsonl and provincial_dev5.jsonl
(dev sets) over 30 reports, national_dev.jsonl (a dev set) over the State Council government work reports of
2023-2025, cpc_dev.jsonl (a dev set) over the CPC National Congress reports of 2012, 2017 and 2022."""

from __future__ import annotations

from pathlib import Path

import data
from data.errors import InputFileError
from data.load import builtin_corpus_dir, load_paths
from data.records import Speech
from evaluation.datasets.common import Benchmark, first
from evaluation.gold import load_gold

DATA_DIR = Path(data.__file__).resolve().parent
EVAL_DIR = DATA_DIR / "eval"
GOLD_FILES = {
    "gold": "gold.jsonl",
    "gold-dev": "gold_dev.jsonl",
    "gold-dev2": "gold_dev2.jsonl",
    "gold-test": "gold_test.jsonl",
}
PROVINCIAL_CORPUS = DATA_DIR / "corpora" / "provincial-2025.jsonl"
PROVINCIAL_GOLD = EVAL_DIR / "provincial.jsonl"
PROVINCIAL_DEV_GOLD = EVAL_DIR / "provincial_dev.jsonl"
PROVINCIAL_DEV2_GOLD = EVAL_DIR / "provincial_dev2.jsonl"
PROVINCIAL_DEV3_GOLD = EVAL_DIR / "provincial_dev3.jsonl"
PROVINCIAL_DEV4_GOLD = EVAL_DIR / "provincial_dev4.jsonl"
PROVINCIAL_DEV5_GOLD = EVAL_DIR / "provincial_dev5.jsonl"
PROVINCIAL_LICENCE = (
    "License: MIT (reports via alexzhu0/Jina_Embeddings_v4_RAG, see data/corpora/README.md; "
    "questions hand-written, see data/eval/README.md)."
)
NATIONAL_CORPUS = DATA_DIR / "corpora" / "national-2023-2025.jsonl"
NATIONAL_DEV_GOLD = EVAL_DIR / "national_dev.jsonl"
CPC_CORPUS = DATA_DIR / "corpora" / "cpc-2012-2022.jsonl"
CPC_DEV_GOLD = EVAL_DIR / "cpc_dev.jsonl"
LICENCE = "License: MIT (speechqa's own hand-written questions; see data/eval/README.md)."


def gold_file(name: str) -> Path:
    return EVAL_DIR / GOLD_FILES[name]


def load_gold_set(name: str, limit: int | None = None) -> Benchmark:
    """``gold``, ``gold-dev``, ``gold-dev2`` or ``gold-test`` over the built-in corpus.

    The two dev sets may be tuned on (``gold-dev2`` is a second, separately written DEV set with more one-thing
    "X是什么" questions and paraphrased wording; never an acceptance set); test gates CI."""
    path = gold_file(name)
    return _hand_written(
        name,
        load_paths([builtin_corpus_dir()]).speeches,
        path,
        f"{path.name}: hand-written questions on the built-in corpus (three 2022 speeches)",
        limit,
        licence=LICENCE,
    )


def _hand_written(
    name: str,
    speeches: list[Speech],
    gold_path: Path,
    description: str,
    limit: int | None,
    *,
    licence: str,
    internal_only: bool = False,
) -> Benchmark:
    """One of speechqa's hand-written question files over ``speeches``, its first ``limit`` questions."""
    gold = load_gold(gold_path)
    return Benchmark(
        name=name,
        speeches=tuple(speeches),
        items=tuple(first(list(gold.items), limit)),
        licence=licence,
        internal_only=internal_only,
        data_file=gold_path,
        description=description,
        skipped=gold.skipped,
    )


def _load_corpus(path: Path, what: str, fix: str = "") -> list[Speech]:
    """Every speech of a data/corpora file; a corpus that loads nothing is an error that says what to restore."""
    report = load_paths([path])
    if not report.speeches:
        reasons = "; ".join(f"{p}: {r}" for p, r in report.skipped) or "no speeches"
        raise InputFileError(
            f"cannot load the {what} corpus {path}: {reasons}",
            fix=fix or f"restore data/corpora/{path.name} (see data/corpora/README.md)",
        )
    return report.speeches


def load_provincial(limit: int | None = None) -> Benchmark:
    """provincial.jsonl (a ``region`` on every line) over the 30 provincial 2025 government work reports."""
    return _provincial_set(
        "provincial",
        PROVINCIAL_GOLD,
        "provincial.jsonl: hand-written questions (answerable and near-miss unanswerable) on the "
        "2025 government work reports of 30 provinces (Beijing excluded)",
        limit,
    )


# The provincial DEV sets: the same 30 reports, the 13 regions provincial.jsonl leaves out. Tuning on them is allowed;
# they are never acceptance sets, which provincial.jsonl stays. data/eval/README.md says how each was written.
_PROVINCIAL_DEV_SETS: dict[str, tuple[Path, str]] = {
    "provincial-dev": (
        PROVINCIAL_DEV_GOLD,
        "provincial_dev.jsonl: hand-written DEV questions (answerable and near-miss unanswerable) on "
        "the 2025 government work reports of the 13 regions provincial.jsonl does not cover (Beijing excluded)",
    ),
    "provincial-dev2": (
        PROVINCIAL_DEV2_GOLD,
        "provincial_dev2.jsonl: a second set of hand-written DEV questions on the same 13 regions, phrased the way "
        "officials ask rather than in the reports' words (paraphrased targets, 去年/今年, names, lists, counts)",
    ),
    "provincial-dev3": (
        PROVINCIAL_DEV3_GOLD,
        "provincial_dev3.jsonl: a third set of hand-written DEV questions on the same 13 regions, written blind to "
        "what the service was tuned on and frozen before any run",
    ),
    "provincial-dev4": (
        PROVINCIAL_DEV4_GOLD,
        "provincial_dev4.jsonl: a fourth set of hand-written DEV questions on the same 13 regions, written blind "
        "the way users type (今年/去年, short names, paraphrases, cities inside the regions) and frozen before any run",
    ),
    "provincial-dev5": (
        PROVINCIAL_DEV5_GOLD,
        "provincial_dev5.jsonl: a fifth set of hand-written DEV questions on the same 13 regions, written blind "
        "the way users type (colloquial verbs, paraphrases, cities, two-region comparisons) and frozen before any run",
    ),
}


def load_provincial_dev(name: str, limit: int | None = None) -> Benchmark:
    """One of the provincial DEV sets (``_PROVINCIAL_DEV_SETS``) over the 30 provincial 2025 reports."""
    path, description = _PROVINCIAL_DEV_SETS[name]
    return _provincial_set(name, path, f"{description}; tuning allowed, never an acceptance set", limit)


def _provincial_set(name: str, gold_path: Path, description: str, limit: int | None) -> Benchmark:
    speeches = _load_corpus(PROVINCIAL_CORPUS, "provincial")
    return _hand_written(name, speeches, gold_path, description, limit, licence=PROVINCIAL_LICENCE)


def load_national_dev(limit: int | None = None) -> Benchmark:
    """national_dev.jsonl over the State Council government work reports of 2023, 2024 and 2025.

    A DEV set: tuning on it is allowed (the answerability model on the government genre); it is never an
    acceptance set. Internal only: the reports come from a repository that states no licence."""
    return _wikisource_set(
        "national-dev",
        NATIONAL_CORPUS,
        "national",
        NATIONAL_DEV_GOLD,
        "national_dev.jsonl: hand-written DEV questions (answerable and near-miss unanswerable) on "
        "the State Council government work reports of 2023-2025; tuning allowed, never an acceptance set",
        limit,
    )


def load_cpc_dev(limit: int | None = None) -> Benchmark:
    """cpc_dev.jsonl over the CPC National Congress reports of 2012 (18th), 2017 (19th) and 2022 (20th).

    A DEV set on a corpus the service was never measured or tuned on, written blind and frozen before any run: tuning
    on it is allowed, but it is never an acceptance set. Internal only: the reports come from a repository that states
    no licence."""
    return _wikisource_set(
        "cpc-dev",
        CPC_CORPUS,
        "CPC congress",
        CPC_DEV_GOLD,
        "cpc_dev.jsonl: hand-written DEV questions (answerable and near-miss unanswerable) on the CPC "
        "National Congress reports of 2012, 2017 and 2022, written blind; tuning allowed, never an acceptance set",
        limit,
    )


def _wikisource_set(
    name: str, corpus: Path, what: str, gold_path: Path, description: str, limit: int | None
) -> Benchmark:
    """A DEV set over reports from aldohemsn/chinese-political-corpora (zh.wikisource.org): internal only, as
    that repository states no licence, and not shipped in the package."""
    speeches = _load_corpus(
        corpus,
        what,
        fix=f"run it from a source checkout: the {what} corpus is internal only and not shipped in the package "
        "(see data/corpora/README.md)",
    )
    return _hand_written(
        name,
        speeches,
        gold_path,
        description,
        limit,
        licence="License: none stated (reports via aldohemsn/chinese-political-corpora from zh.wikisource.org, "
        "see data/corpora/README.md; questions hand-written, see data/eval/README.md). Internal use only.",
        internal_only=True,
    )
