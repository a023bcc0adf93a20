"""Split data/eval/gold.jsonl into gold_dev.jsonl and gold_test.jsonl, deterministically.

Rule: group the questions into strata by (answerable, type); inside each stratum sort by sha256(id) (hex
digest of the UTF-8 id); walk the sorted list and alternate dev, test, dev, test, ... The stratum's first
question goes to dev when the running dev/test balance over the strata seen so far (in sorted stratum order)
is not ahead, so odd-sized strata do not all tip the same way. Each output keeps the lines of gold.jsonl
verbatim and in their original order. gold.jsonl itself is not changed.

Usage: python data/eval/split_gold.py [data/eval/gold.jsonl]
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import defaultdict
from pathlib import Path


def split(lines: list[str]) -> tuple[set[str], set[str]]:
    strata: dict[tuple[bool, str], list[str]] = defaultdict(list)
    for line in lines:
        q = json.loads(line)
        strata[(bool(q["answerable"]), q.get("type", ""))].append(q["id"])
    dev: set[str] = set()
    test: set[str] = set()
    for key in sorted(strata):
        ids = sorted(strata[key], key=lambda i: hashlib.sha256(i.encode("utf-8")).hexdigest())
        first_to_dev = len(dev) <= len(test)
        for n, qid in enumerate(ids):
            (dev if (n % 2 == 0) == first_to_dev else test).add(qid)
    return dev, test


def main(argv: list[str]) -> int:
    src = Path(argv[1]) if len(argv) > 1 else Path(__file__).with_name("gold.jsonl")
    lines = [ln for ln in src.read_text(encoding="utf-8").splitlines() if ln.strip()]
    dev, test = split(lines)
    for name, ids in (("gold_dev.jsonl", dev), ("gold_test.jsonl", test)):
        out = src.with_name(name)
        kept = [ln for ln in lines if json.loads(ln)["id"] in ids]
        out.write_text("".join(ln + "\n" for ln in kept), encoding="utf-8")
        qs = [json.loads(ln) for ln in kept]
        types: dict[str, int] = defaultdict(int)
        for q in qs:
            types[q.get("type", "")] += 1
        print(
            f"{out.name}: {len(qs)} questions, {sum(not q['answerable'] for q in qs)} unanswerable, "
            + ", ".join(f"{t} {n}" for t, n in sorted(types.items()))
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
