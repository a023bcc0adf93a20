"""Check a gold question file against its corpus (stdlib only).

    python data/eval/check_gold.py data/eval/provincial.jsonl --corpus data/corpora/provincial-2025.jsonl
    python data/eval/check_gold.py data/eval/gold.jsonl --corpus data/corpus/000_637ffde25741a596.txt

Corpus formats:
- ``.jsonl``: one report/speech per line, either ``{"region", "paragraphs": [...]}`` (the shared benchmark
  file) or ``{"region", "text"}`` with paragraphs separated by a blank line (data/corpora/*.jsonl). A
  paragraph is stripped of leading/trailing whitespace, incl. the full-width space "　".
- ``.txt``/``.md`` (the built-in corpus): non-empty lines; ``## `` lines are titles/headings and end a
  paragraph; a line that does not end a sentence (。！？…；：, optionally followed by closing quotes) is joined
  to the next line with no space, as our parser repairs page breaks. The speaker line under a title
  therefore ends up in the speech's first paragraph, which is where ``speaker`` questions find their key
  point.

Rules checked for every question:
- keys are exactly those of gold.jsonl (+ ``region`` when the corpus has regions, + an optional ``note`` on an
  unanswerable line); ids are unique and
  numbered in increasing order (prefix + 3 digits; a split file keeps
  the ids of the file it came from); question 8-40 chars; type is one of the known types;
  ``answerable`` is false exactly when type is ``unanswerable``.
- answerable: 1-4 key points of 2-15 chars; at least one evidence string of 8-40 chars whose whitespace our parser would
  keep as it is (no runs, no full-width or leading/trailing spaces);
  each evidence string occurs in exactly one paragraph of the whole corpus (and once in the corpus text
  with paragraph breaks removed, so it cannot also match across a boundary); with regions, that paragraph
  belongs to the question's region; every key point occurs in one of the evidence paragraphs (a ``speaker``
  question over a JSONL corpus may instead find it in the ``speaker``/``role`` fields of the report that holds
  an evidence paragraph: our loader reads those as metadata, and a report may state them nowhere in its text).
- unanswerable: key_points == [] and evidence == [].
- regions (when the corpus has them): no question about Beijing (region 北京市 or "北京" in the question),
  and the corpus used for the questions excludes Beijing when ``--no-beijing-corpus`` is given; at least
  --min-questions questions, --min-unanswerable unanswerable ones and --min-regions corpus regions with
  answerable questions.

Exit status 0 when every rule holds; the counts are printed either way.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

WS = " \t\r\n\u3000\u00a0"
TYPES = {"factual", "paraphrase", "speaker", "section", "list", "number", "date", "unanswerable"}
BASE_KEYS = ["id", "question", "key_points", "evidence", "answerable", "type", "reference_answer"]
BEIJING = "北京市"
_TERMINAL = "。！？!?…；;：:"
_CLOSERS = "”’」』)）》】\"'"


def ends_sentence(text: str) -> bool:
    t = text.rstrip().rstrip(_CLOSERS)
    return bool(t) and t[-1] in _TERMINAL


def load_corpus(path: Path) -> list[tuple[str, str]]:
    """(region, paragraph) pairs in corpus order; region is "" for a corpus without regions."""
    paras: list[tuple[str, str]] = []
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".jsonl", ".ndjson"):
        for line in text.splitlines():
            if not line.strip():
                continue
            obj = json.loads(line)
            region = obj.get("region", "")
            raw = obj["paragraphs"] if "paragraphs" in obj else obj["text"].split("\n\n")
            paras += [(region, p.strip(WS)) for p in raw if p.strip(WS)]
        return paras
    current = ""
    for line in text.splitlines():
        line = re.sub(r"[ \t\u3000]+", " ", line).strip()
        if not line:
            continue
        if line.startswith("#"):
            if current:
                paras.append(("", current))
            current = ""
            continue
        current += line
        if ends_sentence(current):
            paras.append(("", current))
            current = ""
    if current:
        paras.append(("", current))
    return paras


def load_speakers(path: Path) -> dict[str, str]:
    """paragraph -> "speaker role" of the JSONL report holding it ({} for other corpora)."""
    if path.suffix not in (".jsonl", ".ndjson"):
        return {}
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        obj = json.loads(line)
        who = f"{obj.get('speaker') or ''} {obj.get('role') or ''}".strip()
        raw = obj["paragraphs"] if "paragraphs" in obj else obj["text"].split("\n\n")
        for p in raw:
            if p.strip(WS):
                out[p.strip(WS)] = who
    return out


def check(
    questions: list[dict],
    paras: list[tuple[str, str]],
    args: argparse.Namespace,
    speakers: dict[str, str] | None = None,
) -> list[str]:
    errors: list[str] = []
    regions_in_corpus = {r for r, _ in paras}
    has_regions = any(regions_in_corpus)
    keys = BASE_KEYS + (["region"] if has_regions else [])
    joined = "".join(p for _, p in paras)
    ids = [q.get("id", "") for q in questions]
    prefix = ids[0][:-3] if ids and len(ids[0]) > 3 else ""
    last = 0
    for n, q in enumerate(questions, 1):
        qid = q.get("id", f"line {n}")

        def err(msg: str, qid: str = qid) -> None:
            errors.append(f"{qid}: {msg}")

        # An unanswerable line may say in ``note`` what the text states instead (gold_dev2.jsonl).
        if sorted(k for k in q if k != "note" or q.get("answerable") is not False) != sorted(keys):
            err(f"keys {sorted(q)} != {sorted(keys)} (+ note on an unanswerable line)")
            continue
        m = re.fullmatch(re.escape(prefix) + r"(\d{3})", str(qid))
        if not m or int(m.group(1)) <= last:
            err(f"id must be {prefix}NNN, increasing")
        else:
            last = int(m.group(1))
        if not 8 <= len(q["question"]) <= 40:
            err(f"question has {len(q['question'])} chars (8-40)")
        if q["type"] not in TYPES:
            err(f"unknown type {q['type']!r}")
        if (q["type"] == "unanswerable") == bool(q["answerable"]):
            err("answerable must be false exactly when type is 'unanswerable'")
        if not isinstance(q["reference_answer"], str) or not q["reference_answer"].strip():
            err("empty reference_answer")
        if has_regions and (q["region"] == BEIJING or "北京" in q["question"]):
            err("Beijing must not be used")
        if not q["answerable"]:
            if q["key_points"] or q["evidence"]:
                err("unanswerable question needs key_points [] and evidence []")
            continue
        if not 1 <= len(q["key_points"]) <= 4:
            err(f"{len(q['key_points'])} key points (1-4)")
        if not q["evidence"]:
            err("no evidence")
        gold: list[str] = []
        for ev in q["evidence"]:
            if not 8 <= len(ev) <= 40:
                err(f"evidence {ev!r} has {len(ev)} chars (8-40)")
            if ev != re.sub(r"[ \t\u3000\u00a0]+", " ", ev).strip() or "\n" in ev:
                err(f"evidence {ev!r} has whitespace that the parser would change")
            hits = [(r, p) for r, p in paras if ev in p]
            if len(hits) != 1:
                err(f"evidence {ev!r} is in {len(hits)} paragraphs (must be exactly 1)")
                continue
            if joined.count(ev) != 1:
                err(f"evidence {ev!r} also matches across a paragraph boundary")
            region, para = hits[0]
            if has_regions and region != q["region"]:
                err(f"evidence {ev!r} is in the {region} report, not {q['region']}")
            gold.append(para)
        for kp in q["key_points"]:
            if not 2 <= len(kp) <= 15:
                err(f"key point {kp!r} has {len(kp)} chars (2-15)")
            in_meta = q["type"] == "speaker" and any(kp in (speakers or {}).get(p, "") for p in gold)
            if gold and not any(kp in p for p in gold) and not in_meta:
                err(f"key point {kp!r} is not in an evidence paragraph")
    if len(set(ids)) != len(ids):
        errors.append("duplicate ids")
    if has_regions:
        if args.no_beijing_corpus and BEIJING in regions_in_corpus:
            errors.append("the corpus contains the Beijing report")
        n_un = sum(not q.get("answerable", True) for q in questions)
        ans_regions = {q.get("region") for q in questions if q.get("answerable")} & regions_in_corpus
        if len(questions) < args.min_questions:
            errors.append(f"{len(questions)} questions < {args.min_questions}")
        if n_un < args.min_unanswerable:
            errors.append(f"{n_un} unanswerable < {args.min_unanswerable}")
        if len(ans_regions - {BEIJING}) < args.min_regions:
            errors.append(f"{len(ans_regions)} regions with answerable questions < {args.min_regions}")
    return errors


def report(questions: list[dict], paras: list[tuple[str, str]]) -> None:
    n_un = sum(not q.get("answerable", True) for q in questions)
    print(f"questions: {len(questions)}  answerable: {len(questions) - n_un}  unanswerable: {n_un}")
    types = Counter(q.get("type", "") for q in questions)
    print("types: " + ", ".join(f"{t} {c}" for t, c in sorted(types.items(), key=lambda x: (-x[1], x[0]))))
    regions_in_corpus = {r for r, _ in paras if r}
    if regions_in_corpus:
        print(f"corpus: {len(regions_in_corpus)} regions, {len(paras)} paragraphs")
        per: dict[str, list[int]] = {}
        for q in questions:
            per.setdefault(q.get("region", ""), [0, 0])[0 if q.get("answerable") else 1] += 1
        in_c = {r: v for r, v in per.items() if r in regions_in_corpus}
        out_c = {r: v for r, v in per.items() if r not in regions_in_corpus}
        print(f"regions with answerable questions: {sum(1 for v in in_c.values() if v[0])}")
        print(
            "per region (answerable/unanswerable): "
            + ", ".join(
                f"{r} {a}/{u}" for r, (a, u) in sorted(in_c.items(), key=lambda x: (-sum(x[1]), x[0]))
            )
        )
        if out_c:
            print(
                "regions without a report (unanswerable only): "
                + ", ".join(f"{r} {u}" for r, (_, u) in sorted(out_c.items()))
            )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("gold", type=Path)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--min-questions", type=int, default=90)
    ap.add_argument("--min-unanswerable", type=int, default=30)
    ap.add_argument("--min-regions", type=int, default=12)
    ap.add_argument("--no-beijing-corpus", action="store_true", help="fail if the corpus holds Beijing")
    args = ap.parse_args(argv)
    questions = [json.loads(ln) for ln in args.gold.read_text(encoding="utf-8").splitlines() if ln.strip()]
    paras = load_corpus(args.corpus)
    report(questions, paras)
    errors = check(questions, paras, args, load_speakers(args.corpus))
    for e in errors:
        print("ERROR", e)
    print("OK" if not errors else f"{len(errors)} error(s)")
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
