"""Why each question of a data set was answered or refused: one line per question, for reading a dev set's errors.

Run: .venv/bin/python benchmarks/explain_answers.py --sets gold-dev2,provincial-dev2 [--composer gated] [--errors]
     [--out FILE.tsv]

Each line: set, id, gold (A answerable / U unanswerable), what the composer did (answered / refused), whether that
was right, the question's kind (fact / thing / open: which of `gated`'s gates it meets, qa.features), the evidence
score that gate compared with its threshold, the threshold, the refusal's reason, whether the answer holds every
key point, the question and the start of the answer. The composer is asked exactly as the service asks it
(``validate_question``, ``reading``, ``retrieval_for``, then ``compose``), so a line says what `/v1/ask` would have done. Dev sets only: reading an acceptance
set's errors this way is tuning on it.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.assemble import service_options  # noqa: E402
from benchmarks.common import SHARED, setup  # noqa: E402
from data.errors import SpeechQAError  # noqa: E402
from evaluation.backends import indexed_speeches, with_composer  # noqa: E402
from evaluation.datasets import BENCHMARKS, load_benchmark  # noqa: E402
from evaluation.metrics import key_points_found  # noqa: E402
from qa.features import gate_of  # noqa: E402
from qa.service import AnswerService  # noqa: E402

COLUMNS = (
    "set",
    "id",
    "gold",
    "did",
    "right",
    "kind",
    "evidence",
    "threshold",
    "reason",
    "key_points",
    "question",
    "answer",
)


def explain(service: AnswerService, name: str, items) -> list[dict]:
    rows = []
    for item in items:
        try:
            question = service.reading(service.validate_question(item.question))
        except SpeechQAError as exc:  # the service would answer 422: a line that says so, not a stopped run
            rows.append(
                {
                    "set": name,
                    "id": item.id,
                    "gold": "A" if item.answerable else "U",
                    "did": "rejected",
                    "right": "NO",
                    "kind": "",
                    "evidence": "",
                    "threshold": "",
                    "reason": str(exc),
                    "key_points": "",
                    "question": item.question,
                    "answer": "",
                }
            )
            continue
        retrieval = service.retrieval_for(question, service.top_k)
        comp = service.composer.compose(question, retrieval, max_chars=service.max_chars)
        f = comp.features
        evidence = f.get("fact_evidence", f.get("open_evidence"))
        threshold = f.get("fact_threshold", f.get("open_threshold"))
        found = None
        if item.answerable and comp.answerable:
            hits = key_points_found(comp.answer, item.key_points)
            found = f"{sum(hits)}/{len(hits)}"
        rows.append(
            {
                "set": name,
                "id": item.id,
                "gold": "A" if item.answerable else "U",
                "did": "answered" if comp.answerable else "refused",
                "right": "yes" if comp.answerable == item.answerable else "NO",
                "kind": gate_of(item.question),
                "evidence": "" if evidence is None else f"{evidence:.4f}",
                "threshold": "" if threshold is None else f"{threshold:.4f}",
                "reason": f.get("refused", ""),
                "key_points": found or "",
                "question": item.question,
                "answer": comp.answer[:80].replace("\n", " "),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", required=True, help=f"comma-separated ({', '.join(BENCHMARKS)})")
    ap.add_argument("--composer", default="gated")
    ap.add_argument("--errors", action="store_true", help="only the questions the composer got wrong")
    ap.add_argument("--out", type=Path, help="write the lines as TSV here too")
    args = ap.parse_args(argv)
    sets = [s for s in args.sets.split(",") if s]
    unknown = [s for s in sets if s not in BENCHMARKS]
    if unknown:
        ap.error(f"unknown set(s) {', '.join(unknown)}")
    settings, encoder, cache = setup()
    rows: list[dict] = []
    for name in sets:
        bench = load_benchmark(name, SHARED / "benchmarks")
        with indexed_speeches(bench.speeches, encoder, cache=cache) as index_dir:
            options = service_options(with_composer(settings, args.composer))
            rows += explain(AnswerService.open(index_dir, encoder, **options), name, bench.items)
    shown = [r for r in rows if r["right"] == "NO"] if args.errors else rows
    writer = csv.DictWriter(sys.stdout, COLUMNS, delimiter="\t")
    writer.writeheader()
    writer.writerows(shown)
    if args.out:
        with args.out.open("w", encoding="utf-8", newline="") as fh:
            out = csv.DictWriter(fh, COLUMNS, delimiter="\t")
            out.writeheader()
            out.writerows(rows)
    wrong = sum(r["right"] == "NO" for r in rows)
    print(f"{len(rows)} questions, {wrong} wrong ({args.composer})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
