"""Build data/corpora/provincial-2025.jsonl from the shared 2025 provincial government work reports.

Usage: python data/corpora/make_provincial.py <provincial_gwr_2025.jsonl> [-o data/corpora/provincial-2025.jsonl]

Stdlib only and deterministic: reports are written in the order of the input file, Beijing (北京市) is left
out on purpose (it is kept aside as an unseen corpus). Each output line is one speech in the JSONL format that
our ingest reads: {"title", "speaker", "role", "date", "source", "region", "year", "text"}; ``text`` is the
report's paragraphs, each stripped of leading/trailing whitespace (incl. the full-width space "　"), joined
by a blank line. speaker/role/date are taken only from what the report's opening lines state, else "".
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

EXCLUDED_REGIONS = {"北京市"}
OPENING_LINES = 6  # speaker/date are looked for in the first lines only
_WS = " \t\r\n\u3000\u00a0"
_DATE = re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日在")
_DATE_ANY = re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日")
_NAME = r"[\u4e00-\u9fff·]{2,8}?"
_ROLE = r"(?:[\u4e00-\u9fff]{0,12}?(?:代理主席|代省长|省长|市长|主席))"
# Forms seen in the opening lines of these reports:
#   "浙江省代省长刘捷作政府工作报告"   "省长 王予波"   "龚正市长在上海市…"   "省长 李乐成在辽宁省…的讲话"
_PATTERNS = (
    re.compile(rf"会议上(?P<role>{_ROLE})[\s\u00a0\u3000]*(?P<name>{_NAME})(?:同志)?作政府工作报告"),
    re.compile(
        rf"^(?:——\d{{4}}年\d{{1,2}}月\d{{1,2}}日)?(?P<role>{_ROLE})[\s\u00a0\u3000]*(?P<name>{_NAME})在"
    ),
    re.compile(rf"日(?P<name>{_NAME})(?P<role>市长|省长)在"),
    re.compile(rf"^(?P<role>{_ROLE})[\s\u00a0\u3000]+(?P<name>[\u4e00-\u9fff·]{{2,8}})$"),
)


def clean(p: str) -> str:
    return p.strip(_WS)


def opening_meta(paragraphs: list[str]) -> tuple[str, str, str]:
    """(speaker, role, date) stated in the report's opening lines, "" for what is not stated."""
    speaker = role = date = ""
    for line in (clean(p) for p in paragraphs[:OPENING_LINES]):
        if line.startswith("来源"):
            line = re.sub(r"^来源[:：\s]*\S*?(?=\d{4}年)", "", line)  # "来源：江西省人民政府2025年1月17日在…"
        if not date:
            m = _DATE.search(line) or (_DATE_ANY.search(line) if "会议" in line else None)
            if m:
                y, mo, d = (int(g) for g in m.groups())
                date = f"{y:04d}-{mo:02d}-{d:02d}"
        if not speaker:
            for pat in _PATTERNS:
                m = pat.search(line)
                if m:
                    speaker, role = m.group("name"), m.group("role")
                    break
    return speaker, role, date


def build(rows: list[dict]) -> list[dict]:
    out = []
    for r in rows:
        if r["region"] in EXCLUDED_REGIONS:
            continue
        paras = [clean(p) for p in r["paragraphs"]]
        paras = [p for p in paras if p]
        speaker, role, date = opening_meta(r["paragraphs"])
        title = paras[0] if paras and "政府工作报告" in paras[0] else f"2025年{r['region']}政府工作报告"
        out.append(
            {
                "title": title,
                "speaker": speaker,
                "role": role,
                "date": date,
                "source": f"alexzhu0/Jina_Embeddings_v4_RAG: {r['source_file']}",
                "region": r["region"],
                "year": r["year"],
                "text": "\n\n".join(paras),
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path, help="provincial_gwr_2025.jsonl (shared benchmark file)")
    ap.add_argument("-o", "--out", type=Path, default=Path(__file__).with_name("provincial-2025.jsonl"))
    args = ap.parse_args(argv)
    rows = [json.loads(line) for line in args.src.read_text(encoding="utf-8").splitlines() if line.strip()]
    speeches = build(rows)
    with args.out.open("w", encoding="utf-8", newline="\n") as f:
        for s in speeches:
            f.write(json.dumps(s, ensure_ascii=False) + "\n")
    print(f"{len(speeches)} reports -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
