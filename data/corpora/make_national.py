"""Build data/corpora/national-2023-2025.jsonl from the shared State Council government work reports.

Usage: python data/corpora/make_national.py <government_work_reports.jsonl> [-o data/corpora/national-2023-2025.jsonl]

Only the 2023, 2024 and 2025 reports are read: the other years of that file are reserved as training data
elsewhere and must not appear here. Stdlib only and deterministic. Each output line is one speech in the
JSONL format our ingest reads, with the report as a ``paragraphs`` list (one entry per line of the source):

- every line is stripped of leading/trailing whitespace and empty lines are dropped;
- the Wikisource licence footer ("本作品是中华人民共和国的…Public domain…") is cut: it is not part of the report;
- a line that stops mid-sentence is joined with the next one: Wikisource splits a paragraph where it links
  a term ("…积极推动加入" / "全面与进步跨太平洋伙伴关系协定" / "（CPTPP）等高标准经贸协定…"). The title, dateline
  and section headings ("一、…") are not sentences and stay lines of their own;
- the header's role line and name line ("国务院总理　" / "李　强") are one speaker line "国务院总理 李强", as on the
  printed page; the typographic space inside a two-character name is dropped.

No other change. Speaker, role, date, region and place are given per year below (the 2025 text on Wikisource
has no header lines, so they cannot all be read from the text).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

YEARS = ("2023", "2024", "2025")
META = {
    "2023": {"speaker": "李克强", "date": "2023-03-05"},
    "2024": {"speaker": "李强", "date": "2024-03-05"},
    "2025": {"speaker": "李强", "date": "2025-03-05"},
}
ROLE = "国务院总理"
REGION = "全国"
PLACE = "北京人民大会堂"
SOURCE = "aldohemsn/chinese-political-corpora: government_work_reports.jsonl (zh.wikisource.org)"
FOOTER = "本作品是中华人民共和国的"
_TERMINAL = "。！？!?…；;：:"
_CLOSERS = "”’」』)）》】\"'"
_HEADING = re.compile(r"^(?:[一二三四五六七八九十]+、|（[一二三四五六七八九十]+）)")


def ends_sentence(text: str) -> bool:
    t = text.rstrip().rstrip(_CLOSERS)
    return bool(t) and t[-1] in _TERMINAL


def is_heading(line: str) -> bool:
    """A section heading of its own ("一、2024年工作回顾"), not a paragraph that starts with a number."""
    return len(line) <= 40 and "，" not in line and bool(_HEADING.match(line))


def paragraphs(content: str) -> list[str]:
    lines = [line.strip() for line in content.split("\n")]
    lines = [line for line in lines if line]
    if FOOTER not in lines:
        raise ValueError("the Wikisource footer was not found: has the source changed?")
    lines = lines[: lines.index(FOOTER)]
    header: list[str] = []
    if lines and lines[0] == "政府工作报告":  # title, dateline, role line, name line (2023, 2024)
        title, dateline, role, name = lines[:4]
        if not dateline.startswith("——") or role != ROLE:
            raise ValueError(f"unexpected header {lines[:4]!r}")
        header = [title, dateline, role + " " + re.sub(r"\s+", "", name)]
        lines = lines[4:]
    out: list[str] = []
    for line in lines:
        if out and not ends_sentence(out[-1]) and not is_heading(out[-1]):
            out[-1] += line
        else:
            out.append(line)
    return header + out


def build(rows: list[dict]) -> list[dict]:
    by_year = {r["year"]: r for r in rows if r.get("year") in YEARS}
    missing = [y for y in YEARS if y not in by_year]
    if missing:
        raise ValueError(f"no report for {', '.join(missing)}")
    out = []
    for year in YEARS:
        r = by_year[year]
        out.append(
            {
                "title": r["title"],
                "speaker": META[year]["speaker"],
                "role": ROLE,
                "date": META[year]["date"],
                "source": SOURCE,
                "region": REGION,
                "place": PLACE,
                "year": int(year),
                "url": r["url"],
                "paragraphs": paragraphs(r["content"]),
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path, help="government_work_reports.jsonl (shared benchmark file)")
    ap.add_argument("-o", "--out", type=Path, default=Path(__file__).with_name("national-2023-2025.jsonl"))
    args = ap.parse_args(argv)
    rows = [json.loads(line) for line in args.src.read_text(encoding="utf-8").splitlines() if line.strip()]
    speeches = build(rows)
    with args.out.open("w", encoding="utf-8", newline="\n") as f:
        for s in speeches:
            f.write(json.dumps(s, ensure_ascii=False) + "\n")
    n = sum(len(s["paragraphs"]) for s in speeches)
    print(f"{len(speeches)} reports, {n} paragraphs -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
