"""Data sets as benchmarks: one loader per data set, each giving speeches to index and gold questions.

``BENCHMARKS`` names every benchmark ``speechqa eval --benchmark`` and ``benchmarks/*.py`` can run; adding
a data set is adding a module here and a line to the table.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from data.errors import InputFileError
from evaluation.datasets import builtin, cmrc2018, drcd, ncp, rgb
from evaluation.datasets.common import Benchmark

log = logging.getLogger(__name__)

Loader = Callable[[Path | None, int | None], Benchmark]


@dataclass(frozen=True, slots=True)
class BenchmarkSpec:
    name: str
    load: Loader  # (data path or None, limit) -> Benchmark
    needs_shared_data: bool  # reads ../shared/benchmarks (else it ships with speechqa)
    description: str


BENCHMARKS: dict[str, BenchmarkSpec] = {
    spec.name: spec
    for spec in (
        BenchmarkSpec("cmrc2018", cmrc2018.load, True, "CMRC 2018 dev, every question (848 paragraphs)"),
        BenchmarkSpec(
            "cmrc2018-trial",
            lambda data, limit: cmrc2018.load(data, limit, split="trial"),
            True,
            "CMRC 2018 trial",
        ),
        BenchmarkSpec(
            "cmrc2018-unanswerable",
            cmrc2018.load_unanswerable,
            True,
            "CMRC 2018 dev, leave the paragraph out: 1,000 questions, half unanswerable",
        ),
        BenchmarkSpec("drcd", drcd.load, True, "DRCD dev, simplified with OpenCC"),
        BenchmarkSpec(
            "drcd-test", lambda data, limit: drcd.load(data, limit, split="test"), True, "DRCD test"
        ),
        BenchmarkSpec("rgb", rgb.load, True, "RGB zh_refine"),
        BenchmarkSpec(
            "rgb-unanswerable",
            rgb.load_unanswerable,
            True,
            "RGB zh_refine, leave the answers out: up to 300 news questions, half unanswerable (DEV set)",
        ),
        BenchmarkSpec("ncp", ncp.load, True, "NCP policy QA dev (internal only)"),
        BenchmarkSpec(
            "ncp-unanswerable",
            ncp.load_unanswerable,
            True,
            "NCP policy QA train.json, leave the paragraph out: 300 questions, half unanswerable (DEV set, internal only)",
        ),
        BenchmarkSpec(
            "gold", lambda data, limit: builtin.load_gold_set("gold", limit), False, "data/eval/gold.jsonl"
        ),
        BenchmarkSpec(
            "gold-dev",
            lambda data, limit: builtin.load_gold_set("gold-dev", limit),
            False,
            "data/eval/gold_dev.jsonl",
        ),
        BenchmarkSpec(
            "gold-dev2",
            lambda data, limit: builtin.load_gold_set("gold-dev2", limit),
            False,
            "data/eval/gold_dev2.jsonl (second dev set: tuning allowed, never an acceptance set)",
        ),
        BenchmarkSpec(
            "gold-test",
            lambda data, limit: builtin.load_gold_set("gold-test", limit),
            False,
            "data/eval/gold_test.jsonl",
        ),
        BenchmarkSpec(
            "provincial",
            lambda data, limit: builtin.load_provincial(limit),
            False,
            "data/eval/provincial.jsonl over data/corpora/provincial-2025.jsonl",
        ),
        BenchmarkSpec(
            "provincial-dev",
            lambda data, limit: builtin.load_provincial_dev("provincial-dev", limit),
            False,
            "data/eval/provincial_dev.jsonl over data/corpora/provincial-2025.jsonl (dev set)",
        ),
        BenchmarkSpec(
            "provincial-dev2",
            lambda data, limit: builtin.load_provincial_dev("provincial-dev2", limit),
            False,
            "data/eval/provincial_dev2.jsonl over data/corpora/provincial-2025.jsonl (second dev set, varied phrasing)",
        ),
        BenchmarkSpec(
            "provincial-dev3",
            lambda data, limit: builtin.load_provincial_dev("provincial-dev3", limit),
            False,
            "data/eval/provincial_dev3.jsonl over data/corpora/provincial-2025.jsonl (third dev set, written blind)",
        ),
        BenchmarkSpec(
            "provincial-dev4",
            lambda data, limit: builtin.load_provincial_dev("provincial-dev4", limit),
            False,
            "data/eval/provincial_dev4.jsonl over data/corpora/provincial-2025.jsonl (fourth dev set, written blind)",
        ),
        BenchmarkSpec(
            "provincial-dev5",
            lambda data, limit: builtin.load_provincial_dev("provincial-dev5", limit),
            False,
            "data/eval/provincial_dev5.jsonl over data/corpora/provincial-2025.jsonl (fifth dev set, written blind)",
        ),
        BenchmarkSpec(
            "national-dev",
            lambda data, limit: builtin.load_national_dev(limit),
            False,
            "data/eval/national_dev.jsonl over data/corpora/national-2023-2025.jsonl (dev set, internal only)",
        ),
        BenchmarkSpec(
            "cpc-dev",
            lambda data, limit: builtin.load_cpc_dev(limit),
            False,
            "data/eval/cpc_dev.jsonl over data/corpora/cpc-2012-2022.jsonl (DEV set, internal only: tuning allowed, "
            "never an acceptance set)",
        ),
    )
}


def load_benchmark(name: str, data: Path | None = None, *, limit: int | None = None) -> Benchmark:
    """Read a benchmark's data and licence, convert it, and keep ``limit`` questions (the corpus stays whole,
    so a limit changes how many questions are asked, not how hard retrieval is)."""
    spec = BENCHMARKS.get(name)
    if spec is None:
        raise InputFileError(f"unknown benchmark {name!r}", fix=f"choose one of {', '.join(BENCHMARKS)}")
    try:
        bench = spec.load(data, limit)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InputFileError(
            f"cannot convert {name} data: {type(exc).__name__}: {exc}", fix="pass the unchanged dataset file"
        ) from exc
    log.info(
        "%s: %d documents, %d questions from %s", name, len(bench.speeches), len(bench.items), bench.data_file
    )
    return bench


__all__ = ["BENCHMARKS", "Benchmark", "BenchmarkSpec", "load_benchmark"]
