"""How much a retrain moves by itself: the answerability model fitted on the same rows with several LightGBM seeds.

Run: .venv/bin/python benchmarks/seed_spread.py [--seeds 7,1,2,3,4] [--out DIR] [--limit N]

Prints, per seed, the share of the validation split's near misses each gate refuses at its own budget and how
often the top sentence states the answer: a change to the training is worth a look only when it moves these by
more than the seeds do. With ``--out``, each seed's artifact is written to DIR/seed-N as `speechqa train --out`
would write it, so the dev sets can be answered with it:
    SPEECHQA_ANSWERABILITY_DIR=DIR/seed-1 .venv/bin/python benchmarks/bench_answers.py --sets gold-dev,... --composers gated
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import SHARED, setup  # noqa: E402
from training.answerability import PARAMS, RC_LIMIT, build_rows, fit, save  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--seeds", default="7,1,2,3,4", help="LightGBM seeds, comma-separated (7 is the shipped one)"
    )
    ap.add_argument("--out", type=Path, help="write each seed's artifact to OUT/seed-N")
    ap.add_argument("--limit", type=int, default=RC_LIMIT, help="questions per reading-comprehension set")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    _, encoder, cache = setup()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="speechqa-seeds-") as work:
        rows = build_rows(SHARED / "benchmarks", encoder, Path(work), cache=cache, limit=args.limit)
    print(f"rows of {len(rows.X)} questions built in {time.perf_counter() - started:.0f} s\n")
    print(
        "| seed | fact gate: near misses refused | thing gate | open gate | top sentence states the answer |"
    )
    print("|---|---:|---:|---:|---:|")
    for seed in seeds:
        params = {**PARAMS, "seed": seed}
        booster, report = fit(rows, params)
        valid = report["valid_at_threshold"]
        print(
            f"| {seed} | {valid['unanswerable_refused']:.3f} (threshold {report['threshold']:.4f}) "
            f"| {valid['thing_questions']['unanswerable_refused']:.3f} ({report['thing_threshold']:.4f}) "
            f"| {valid['open_questions']['unanswerable_refused']:.3f} ({report['open_threshold']:.4f}) "
            f"| {report['valid_top_sentence_states_answer']:.3f} |",
            flush=True,
        )
        if args.out is not None:
            save(
                booster, report, encoder.model_id, args.out / f"seed-{seed}", limit=args.limit, params=params
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
