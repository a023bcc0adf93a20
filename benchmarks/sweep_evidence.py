"""The first release's evidence threshold (``composers.LEGACY_THRESHOLD``) swept over the development sets only.

With ``--shape`` it sweeps instead how much the extractive writer quotes (``keep_ratio``: further sentences must
score this share of the best; ``max_passages``: passages one answer may quote), ranked as ``--weights`` below,
against the shipped 0.7 / 2.

The extractive composer refuses when its evidence score (``ExtractiveComposer.evidence``) is under a
threshold; ``gated`` keeps that rule for questions that do not ask for a fact. The value 0.22 was fitted in
the first release on the whole gold set, before it was split into dev and test. This script shows what
the development sets say about it, and never reads an acceptance set (gold-test, provincial, CMRC2018
leave-out): per set and threshold, unanswerable refused, answerable refused, key-point recall and citation
precision, then over the pooled dev questions the refusal trade-off (unanswerable refused minus answerable
refused, as shares of the pooled counts).

With ``--weights`` it sweeps the extractive writer's sentence weights (similarity, term coverage, question-type
cue, passage score) and its similarity range (``sim_floor`` / ``sim_ceiling``), the constants the first release
set by hand on the whole gold set, and ranks them by answer quality: the mean over the sets of key-point recall
and citation precision, averaged, among the settings that answer no more unanswerable and refuse no more
answerable questions than the first release's on any set (the similarity range moves the evidence score too).
With ``--list-budget`` it sweeps how much longer an answer to a list or a way question may run
(``list_budget``, times the answer's characters and sentences; ``composers.LIST_BUDGET``), against 1 (the first
release's). With ``--evidence-weights`` it sweeps the evidence score's weights and ranks them by refusals (unanswerable
refused minus answerable refused, averaged over the sets).

Run: .venv/bin/python benchmarks/sweep_evidence.py [--sets gold-dev,national-dev,ncp-unanswerable]
     .venv/bin/python benchmarks/sweep_evidence.py --shape
     .venv/bin/python benchmarks/sweep_evidence.py --weights
     .venv/bin/python benchmarks/sweep_evidence.py --evidence-weights
     .venv/bin/python benchmarks/sweep_evidence.py --list-budget --sets gold-dev,gold-dev2,national-dev,\
         ncp-unanswerable,provincial-dev,provincial-dev2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.assemble import service_options  # noqa: E402
from benchmarks.common import SHARED, setup  # noqa: E402
from evaluation.backends import ServiceBackend, indexed_speeches, with_composer  # noqa: E402
from evaluation.datasets import load_benchmark  # noqa: E402
from evaluation.runner import evaluate, summarize  # noqa: E402
from qa import composers  # noqa: E402
from qa.service import AnswerService  # noqa: E402

ACCEPTANCE = {"gold", "gold-test", "provincial", "cmrc2018-unanswerable"}
THRESHOLDS = (0.10, 0.14, 0.18, 0.20, 0.22, 0.24, 0.26, 0.30, 0.34)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default="gold-dev,national-dev,ncp-unanswerable")
    ap.add_argument("--composers", default="extractive-v1,gated")
    ap.add_argument("--shape", action="store_true", help="sweep keep_ratio x max_passages (gated) instead")
    ap.add_argument(
        "--weights", action="store_true", help="sweep sentence weights x similarity range instead"
    )
    ap.add_argument("--evidence-weights", action="store_true", help="sweep the evidence score's weights")
    ap.add_argument("--list-budget", action="store_true", help="sweep the list or way answers' length")
    args = ap.parse_args()
    sets = args.sets.split(",")
    if ACCEPTANCE & set(sets):
        ap.error(f"{', '.join(sorted(ACCEPTANCE & set(sets)))}: acceptance sets are never swept")
    settings, encoder, cache = setup()
    if args.shape:
        sweep(settings, encoder, cache, sets, shape_grid(), SHIPPED_SHAPE)
        return
    if args.weights:
        sweep(settings, encoder, cache, sets, weight_grid(), FIRST_RELEASE)
        return
    if args.list_budget:
        sweep(settings, encoder, cache, sets, LIST_BUDGETS, FIRST_RELEASE_LIST)
        return
    if args.evidence_weights:
        sweep(settings, encoder, cache, sets, evidence_grid(), FIRST_RELEASE_EVIDENCE, refusals=True)
        return
    # (composer, threshold) -> [unanswerable, unanswerable refused, answerable, answerable refused]
    pooled: dict[tuple[str, float], list[int]] = {}
    print("| set | composer | threshold | unanswerable refused | answerable refused | key-point recall |")
    print("|---|---|---:|---:|---:|---:|")
    for name in sets:
        bench = load_benchmark(name, SHARED / "benchmarks")
        with indexed_speeches(bench.speeches, encoder, cache=cache) as index_dir:
            for composer in args.composers.split(","):
                options = service_options(with_composer(settings, composer))
                service = AnswerService.open(index_dir, encoder, **options)
                # gated writes and refuses non-fact questions with the extractive composer inside it
                extractive = getattr(service.composer, "base", service.composer)
                for t in THRESHOLDS:
                    extractive.threshold = t
                    results = evaluate(bench.items, ServiceBackend(service, source=name), k=5)
                    unans = [r for r in results if not r.item.answerable]
                    ans = [r for r in results if r.item.answerable]
                    counts = [len(unans), sum(r.answered is False for r in unans)]
                    counts += [len(ans), sum(r.answered is False for r in ans)]
                    row = pooled.setdefault((composer, t), [0, 0, 0, 0])
                    for i, c in enumerate(counts):
                        row[i] += c
                    kpr = [m for r in ans if (m := r.metrics.get("key_point_recall")) is not None]
                    print(
                        f"| {name} | {composer} | {t:.2f} | {counts[1] / max(1, counts[0]):.3f} "
                        f"| {counts[3] / max(1, counts[2]):.3f} | {sum(kpr) / max(1, len(kpr)):.3f} |",
                        flush=True,
                    )
    print("\npooled over the sets: unanswerable refused - answerable refused")
    print("| composer | threshold | unanswerable refused | answerable refused | difference |")
    print("|---|---:|---:|---:|---:|")
    for (composer, t), (nu, ru, na, ra) in pooled.items():
        u, a = ru / max(1, nu), ra / max(1, na)
        print(f"| {composer} | {t:.2f} | {ru}/{nu} | {ra}/{na} | {u - a:.3f} |")


Setting = tuple[tuple[str, object], ...]  # (attribute of the extractive composer, value) pairs


def weight_grid() -> list[Setting]:
    """Similarity and coverage weights 0.15-0.55 by 0.1, the cue 0-0.1, the passage score the rest (>= 0.05);
    three similarity ranges around the first release's."""
    grid: list[Setting] = []
    for floor, ceiling in ((0.78, 0.90), (0.75, 0.90), (0.78, 0.93)):
        for ws in (0.15, 0.25, 0.35, 0.45, 0.55):
            for wc in (0.15, 0.25, 0.35, 0.45, 0.55):
                for wq in (0.0, 0.05, 0.1):
                    wp = round(1.0 - ws - wc - wq, 2)
                    if wp >= 0.05:
                        grid.append(
                            (("weights", (ws, wc, wq, wp)), ("sim_floor", floor), ("sim_ceiling", ceiling))
                        )
    return grid


# The first release's sentence weights and similarity range, set by hand on the whole gold set.
FIRST_RELEASE: Setting = (
    ("weights", composers.FIRST_RELEASE_WEIGHTS),
    ("sim_floor", 0.78),
    ("sim_ceiling", 0.90),
)


def shape_grid() -> list[Setting]:
    """How much an answer quotes: ``keep_ratio`` (further sentences must score this share of the best one) and
    ``max_passages`` (passages one answer may quote)."""
    return [
        (("keep_ratio", keep), ("max_passages", passages))
        for passages in (1, 2, 3)
        for keep in (0.5, 0.6, 0.7, 0.8, 0.9)
    ]


SHIPPED_SHAPE: Setting = (("keep_ratio", 0.7), ("max_passages", 2))


LIST_BUDGETS: list[Setting] = [(("list_budget", b),) for b in (1.0, 1.5, 2.0, 2.5, 3.0)]
FIRST_RELEASE_LIST: Setting = (("list_budget", 1.0),)  # list answers as long as any other


def evidence_grid() -> list[Setting]:
    """The evidence score's weights: best sentence similarity, coverage of the top passages and metadata, the
    best sentence's coverage, and the penalty for terms the corpus never uses."""
    return [
        (("evidence_weights", (ws, wc, wl, wu)),)
        for ws in (0.2, 0.4, 0.6)
        for wc in (0.2, 0.4, 0.6)
        for wl in (0.0, 0.2, 0.4)
        for wu in (0.0, 0.25, 0.5)
    ]


FIRST_RELEASE_EVIDENCE: Setting = (("evidence_weights", (0.4, 0.4, 0.2, 0.25)),)


def memoized(fn):  # type: ignore[no-untyped-def]
    seen: dict[str, object] = {}

    def once(*args, **kwargs):  # type: ignore[no-untyped-def]
        key = repr((args, sorted(kwargs.items())))
        if key not in seen:
            seen[key] = fn(*args, **kwargs)
        return seen[key]

    return once


def sweep(  # type: ignore[no-untyped-def]
    settings, encoder, cache, sets: list[str], grid: list[Setting], baseline: Setting, refusals: bool = False
) -> None:
    """Every setting of ``grid`` on ``gated``'s extractive writer over ``sets``, ranked by the mean of key-point
    recall and citation precision among the settings that answer no more unanswerable and refuse no more
    answerable questions than ``baseline`` on any set ("eligible"): the similarity range moves the evidence
    score, and with it the refusals. With ``refusals``, every setting is eligible and the rank is the mean over
    the sets of unanswerable refused minus answerable refused."""
    assert baseline in grid
    # setting -> per set (key-point recall, precision, unanswerable answered, answerable refused)
    table: dict[Setting, list[tuple[float, float, float, float]]] = {g: [] for g in grid}
    for name in sets:
        bench = load_benchmark(name, SHARED / "benchmarks")
        with indexed_speeches(bench.speeches, encoder, cache=cache) as index_dir:
            service = AnswerService.open(
                index_dir, encoder, **service_options(with_composer(settings, "gated"))
            )
            # The settings only change composition: each question is retrieved once for the whole grid.
            service.retriever.retrieve = memoized(service.retriever.retrieve)  # type: ignore[method-assign]
            extractive = service.composer.base
            for g in grid:
                for attr, value in g:
                    setattr(extractive, attr, value)
                s = summarize(evaluate(bench.items, ServiceBackend(service, source=name), k=5), k=5)
                table[g].append(
                    (
                        s["answer"]["key_point_recall"],
                        s["citations"]["precision"],
                        s["abstention"]["false_answers"] or 0.0,
                        s["abstention"]["false_refusals"] or 0.0,
                    )
                )
            print(f"done: {name}", file=sys.stderr, flush=True)

    def quality(rows: list[tuple[float, float, float, float]]) -> float:
        if refusals:
            return sum(1.0 - u - a for _, _, u, a in rows) / len(rows)
        return sum(k + p for k, p, _, _ in rows) / (2 * len(rows))

    def eligible(g: Setting) -> bool:
        return refusals or all(
            u <= u0 and a <= a0
            for (_, _, u, a), (_, _, u0, a0) in zip(table[g], table[baseline], strict=True)
        )

    ranked = sorted(grid, key=lambda g: (not eligible(g), -quality(table[g])))
    print("| setting | eligible | quality | " + " | ".join(sets) + " |")
    print("|---|---|---:|" + "---|" * len(sets))
    for g in [*ranked[:10], baseline, *sorted(grid, key=lambda g: -quality(table[g]))[:4]]:
        cells = " | ".join(f"{k:.3f} / {p:.3f} / {u:.3f} / {a:.3f}" for k, p, u, a in table[g])
        label = ", ".join(f"{attr} {value}" for attr, value in g) + (" (baseline)" if g == baseline else "")
        print(f"| {label} | {'yes' if eligible(g) else 'no'} | {quality(table[g]):.4f} | {cells} |")
    print("cells: key-point recall / citation precision / unanswerable answered / answerable refused")


if __name__ == "__main__":
    main()
