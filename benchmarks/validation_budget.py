"""How many near misses the answerability model can refuse at a given cost, on the validation split, as served.

Run: .venv/bin/python benchmarks/validation_budget.py [--seeds 7] [--param num_leaves=63 --rounds 800] [--limit N]

The model is fitted as `speechqa train` fits it (or with the LightGBM parameters given), and each validation
question (reading comprehension, and the generated government questions apart) is decided as `gated` decides it:
the best score among the candidate sentences that meet the question's rules (``qa.learned.stating_rules``, ``naming_rules``)
against its gate's threshold. Printed: near misses and answerable questions refused at the gates' own thresholds,
then the near misses a single threshold refuses when it may refuse 3, 5, 8 or 10% of the answerable questions, per
kind of question and over all. The reading-comprehension rows are the analogue of the CMRC2018 leave-out set
(Wikipedia prose, the paragraph left out), which training never reads: what they cannot reach at 5%, no threshold
will reach there.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import training.answerability as ta  # noqa: E402
from benchmarks.common import SHARED, setup  # noqa: E402
from qa.features import gate_of  # noqa: E402
from qa.learned import meets, naming_rules, stating_rules  # noqa: E402

BUDGETS = (0.03, 0.05, 0.08, 0.10)


def _value(text: str) -> float | int:
    return float(text) if "." in text else int(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="7", help="LightGBM seeds, comma-separated (7 is the shipped one)")
    ap.add_argument(
        "--param", action="append", default=[], help="a LightGBM parameter, key=value (repeatable)"
    )
    ap.add_argument("--rounds", type=int, default=ta.ROUNDS, help="boosting rounds")
    ap.add_argument("--limit", type=int, default=ta.RC_LIMIT, help="questions per reading-comprehension set")
    args = ap.parse_args(argv)
    overrides = {k: _value(v) for k, v in (p.split("=", 1) for p in args.param)}
    _, encoder, cache = setup()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="speechqa-budget-") as work:
        rows = ta.build_rows(SHARED / "benchmarks", encoder, Path(work), cache=cache, limit=args.limit)
    print(f"rows of {len(rows.X)} questions built in {time.perf_counter() - started:.0f} s")
    ta.ROUNDS = args.rounds
    for seed in (int(s) for s in args.seeds.split(",") if s.strip()):
        booster, report = ta.fit(rows, {**ta.PARAMS, **overrides, "seed": seed})
        gates = {
            "fact": report["threshold"],
            "thing": report["thing_threshold"],
            "open": report["open_threshold"],
        }
        valid = [
            i
            for i, s in enumerate(rows.split)
            if s == "valid" and (not rows.question_answerable[i] or rows.y[i].any())
        ]
        for source in ("reading comprehension", "generated government"):
            mine = [
                i for i in valid if (rows.source[i] == "gov_national") == (source == "generated government")
            ]
            best, answerable, kinds = [], [], []
            for i in mine:
                question = rows.text[i]
                rules = stating_rules(question) + naming_rules(question)
                keep = np.array([meets(rules, text) for text in rows.sentences[i]], dtype=bool)
                best.append(float(np.where(keep, booster.predict(rows.X[i]), 0.0).max()))
                answerable.append(rows.question_answerable[i])
                kinds.append(gate_of(question))
            b, a, k = np.array(best), np.array(answerable), np.array(kinds)
            refused = b < np.array([gates[kind] for kind in k])
            print(
                f"\nseed {seed}, {source} ({a.sum()} answerable, {(~a).sum()} near misses): at the gates' thresholds "
                f"near misses refused {refused[~a].mean():.3f}, answerable refused {refused[a].mean():.3f}"
            )
            print("| questions | " + " | ".join(f"near misses refused at {x:.0%}" for x in BUDGETS) + " |")
            print("|---|" + "---:|" * len(BUDGETS))
            for kind in ("all", "fact", "thing", "open"):
                m = np.ones(len(k), dtype=bool) if kind == "all" else k == kind
                if not (m & a).any() or not (m & ~a).any():
                    continue
                cells = [f"{(b[m & ~a] < np.quantile(b[m & a], x)).mean():.3f}" for x in BUDGETS]
                print(
                    f"| {kind} ({(m & a).sum()} + {(m & ~a).sum()}) | " + " | ".join(cells) + " |", flush=True
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
