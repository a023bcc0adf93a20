"""Build data/corpora/cpc-2012-2022.jsonl from the shared CPC National Congress reports.

Usage: python data/corpora/make_cpc.py <cpc_congress_reports.jsonl> [-o data/corpora/cpc-2012-2022.jsonl]

Only the political reports of the 18th, 19th and 20th National Congresses (2012, 2017, 2022) are read: a corpus
the service was never measured or tuned on, for the dev question set ``data/eval/cpc_dev.jsonl``. Stdlib only and
deterministic. Each output line is one report in the JSONL format our ingest reads, the report as ``text``: its
paragraphs in order, each stripped of leading/trailing whitespace, empty lines dropped, joined by "\\n\\n".

Changes to the text, all undoing Wikisource's page layout (nothing else is edited):

- the Wikisource licence footer (from "本作品来自1949年10月1日（含）之后的中国共产党文件…" on) is cut: it is not
  part of the report;
- a line that stops mid-sentence is joined with the next one: Wikisource splits a paragraph where it links a term
  ("…制定" / "“十三五”规划" / "、全面从严治党等…"). Section headings ("一、…") and the header lines of the 2017 and
  2022 texts (two title lines, "——在中国共产党第…次全国代表大会上的报告", "（2017年10月18日）", the name) are not
  sentences and stay lines of their own;
- the typographic spaces inside the name line ("习　近　平") are dropped: "习近平", as in running text.

``speaker`` is set only where the text states it (the 2017 and 2022 header lines); the 2012 text on Wikisource
has no header at all and never names who delivered it, so its speaker is "". No text names an office, so
``role`` is "" (each report says only "我代表第…届中央委员会向大会作报告"). ``date``: the datelines of 2017 and
2022 ("（2017年10月18日）"), and for 2012 the opening day of the 18th Congress, when the report was delivered
(2012-11-08; public record, not in the text). ``title`` is the record's own title without the "(十八大)" suffix.
``place`` is the congress as the report's opening lines name it ("中国共产党第十九次全国代表大会": the 2017 and 2022
header lines, the 2012 opening sentence), so that a question naming the congress ("十九大报告…") names the report.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

CONGRESSES = (18, 19, 20)
META = {
    18: {"year": 2012, "speaker": "", "date": "2012-11-08"},  # no header in the text: date from public record
    19: {"year": 2017, "speaker": "习近平", "date": "2017-10-18"},  # "（2017年10月18日）" / "习　近　平"
    20: {"year": 2022, "speaker": "习近平", "date": "2022-10-16"},  # "（2022年10月16日）" / "习　近　平"
}
ROLE = ""
REGION = "全国"
FOOTER = "本作品来自1949年10月1日（含）之后的中国共产党文件"
_TERMINAL = "。！？!?…；;：:"
_CLOSERS = "”’」』)）》】\"'"
_HEADING = re.compile(r"^[一二三四五六七八九十]+、")
_SUFFIX = re.compile(r"\s*[(（][^()（）]*大[)）]$")
_CONGRESS = re.compile(r"中国共产党第[一二三四五六七八九十]+次全国代表大会")


def congress_named(paras: list[str]) -> str:
    """The congress the report's opening lines name (the first three paragraphs)."""
    m = _CONGRESS.search("\n".join(paras[:3]))
    if not m:
        raise ValueError("the opening lines name no congress")
    return m.group(0)


def ends_sentence(text: str) -> bool:
    t = text.rstrip().rstrip(_CLOSERS)
    return bool(t) and t[-1] in _TERMINAL


def is_heading(line: str) -> bool:
    """A section heading of its own ("四、决胜全面建成小康社会，开启…新征程"), not a sentence."""
    return len(line) <= 40 and not ends_sentence(line) and bool(_HEADING.match(line))


def split_header(lines: list[str], congress: int) -> tuple[list[str], list[str]]:
    """(header lines, body lines): the 2017 and 2022 texts open with title, title, dateline, date and name."""
    if lines[0] == "同志们：":  # 2012: no header
        return [], lines
    i = lines.index("同志们：")
    header = lines[:i]
    year = META[congress]["year"]
    name = re.sub(r"\s+", "", header[-1]) if header else ""
    if (
        len(header) != 5
        or not header[2].startswith("——在中国共产党")
        or not header[3].startswith(f"（{year}年")
        or name != META[congress]["speaker"]
    ):
        raise ValueError(f"unexpected header {header!r}")
    return header[:-1] + [name], lines[i:]


def paragraphs(content: str, congress: int) -> list[str]:
    lines = [line.strip() for line in content.split("\n")]
    lines = [line for line in lines if line]
    cut = [i for i, line in enumerate(lines) if line.startswith(FOOTER)]
    if not cut:
        raise ValueError("the Wikisource footer was not found: has the source changed?")
    header, body = split_header(lines[: cut[0]], congress)
    out: list[str] = []
    for line in body:
        if out and not ends_sentence(out[-1]) and not is_heading(out[-1]):
            out[-1] += line
        else:
            out.append(line)
    return header + out


def build(rows: list[dict]) -> list[dict]:
    by_congress = {r["congress"]: r for r in rows if r.get("congress") in CONGRESSES}
    missing = [str(c) for c in CONGRESSES if c not in by_congress]
    if missing:
        raise ValueError(f"no report for congress {', '.join(missing)}")
    out = []
    for congress in CONGRESSES:
        r = by_congress[congress]
        meta = META[congress]
        paras = paragraphs(r["content"], congress)
        out.append(
            {
                "title": _SUFFIX.sub("", r["title"]),
                "speaker": meta["speaker"],
                "role": ROLE,
                "date": meta["date"],
                "source": r["url"],
                "region": REGION,
                "year": meta["year"],
                "place": congress_named(paras),
                "text": "\n\n".join(paras),
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path, help="cpc_congress_reports.jsonl (shared benchmark file)")
    ap.add_argument("-o", "--out", type=Path, default=Path(__file__).with_name("cpc-2012-2022.jsonl"))
    args = ap.parse_args(argv)
    rows = [json.loads(line) for line in args.src.read_text(encoding="utf-8").splitlines() if line.strip()]
    reports = build(rows)
    with args.out.open("w", encoding="utf-8", newline="\n") as f:
        for r in reports:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    n = sum(len(r["text"].split("\n\n")) for r in reports)
    print(f"{len(reports)} reports, {n} paragraphs -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
