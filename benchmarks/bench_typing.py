"""The same questions typed the ways users type them: how many answers change.

Each question of a data set is asked as written, then in variants that change how it is typed and not what it asks:
without its question mark, with an ASCII one, after 请问, with full-width digits, with 呢 before the mark, and with a
space between its halves (which may split a word: a harder case than users' spaces between words). A line counts a
question whose variant is refused where the plain one was answered or the reverse, or answered with fewer key
points.

Run: .venv/bin/python benchmarks/bench_typing.py --sets provincial-dev,national-dev [--show 6]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.assemble import service_options  # noqa: E402
from benchmarks.common import setup  # noqa: E402
from evaluation.backends import indexed_speeches  # noqa: E402
from evaluation.datasets import BENCHMARKS, load_benchmark  # noqa: E402
from evaluation.metrics import key_points_found  # noqa: E402
from qa.service import AnswerService  # noqa: E402

_FULL_WIDTH_DIGITS = str.maketrans("0123456789", "０１２３４５６７８９")


def variants(question: str) -> dict[str, str]:
    base = question.rstrip("？?")
    half = len(base) // 2
    return {
        "no mark": base,
        "ascii ?": base + "?",
        "请问": "请问" + question,
        "full-width digits": question.translate(_FULL_WIDTH_DIGITS),
        "呢": base + "呢？",
        "a space": f"{base[:half]} {base[half:]}？",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", required=True, help=f"comma-separated ({', '.join(BENCHMARKS)})")
    ap.add_argument("--show", type=int, default=3, help="changed questions shown per variant")
    args = ap.parse_args()
    settings, encoder, cache = setup()
    for name in args.sets.split(","):
        bench = load_benchmark(name)
        with indexed_speeches(bench.speeches, encoder, cache=cache) as index_dir:
            service = AnswerService.open(index_dir, encoder, **service_options(settings))
            changed: dict[str, list[str]] = {v: [] for v in variants("？")}
            for item in bench.items:
                plain = service.ask(item.question)
                kp = key_points_found(plain.answer, item.key_points)[0] if item.key_points else 0
                for kind, typed in variants(item.question).items():
                    answer = service.ask(typed)
                    found = key_points_found(answer.answer, item.key_points)[0] if item.key_points else 0
                    if answer.answerable != plain.answerable or (answer.answerable and found < kp):
                        changed[kind].append(typed)
            print(f"\n## {name}: {len(bench.items)} questions, answers changed by how they were typed")
            for kind, questions in changed.items():
                print(f"{kind}: {len(questions)}" + "".join(f"\n    {q}" for q in questions[: args.show]))


if __name__ == "__main__":
    main()
