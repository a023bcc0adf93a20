"""Document conversion benchmark: the 31 provincial 2025 work reports as .docx (zip), .pdf and .html.

For each format: speeches found, paragraph match against the JSONL paragraphs of the same reports
(``tests.docgen.paragraph_match``: equal to a parsed paragraph, a section heading or a front-matter line,
whitespace aside), speaker+role found, seconds to parse. The PDFs and pages are generated first (not timed).
Parsing only: no embedding model.

With ``--libreoffice`` (needs ``soffice``, e.g. Debian's libreoffice-writer) the docx files are also printed
to PDF by LibreOffice (justified text, its own CJK font and line breaking): real Word-style PDFs.

Run: .venv/bin/python benchmarks/bench_documents.py [--shared DIR] [--keep DIR] [--libreoffice]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import SHARED  # noqa: E402
from data.load import load_paths  # noqa: E402
from tests.docgen import make_html, make_pdf, paragraph_match  # noqa: E402

CORPUS = "gov_work_reports_provincial_2025"


def generate(rows: list[dict], out: Path) -> dict[str, float]:
    """Write reports as .pdf and .html under ``out``; seconds per format."""
    seconds = {}
    (out / "pdf").mkdir(parents=True, exist_ok=True)
    (out / "html").mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for r in rows:
        pdf = make_pdf(r["paragraphs"], header=f"{r['region']}人民代表大会会刊")
        (out / "pdf" / Path(r["source_file"]).with_suffix(".pdf").name).write_bytes(pdf)
    seconds["pdf"] = time.perf_counter() - started
    started = time.perf_counter()
    for r in rows:
        page = make_html(r["title"], r["paragraphs"], site=f"{r['region']}人民政府", date="2025-01-20")
        (out / "html" / Path(r["source_file"]).with_suffix(".html").name).write_bytes(page)
    seconds["html"] = time.perf_counter() - started
    return seconds


def libreoffice_pdfs(archive: Path, out: Path) -> float:
    """Unpack the docx zip and print every file to PDF with LibreOffice; seconds taken."""
    started = time.perf_counter()
    docx_dir, pdf_dir = out / "docx", out / "lo-pdf"
    docx_dir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            (docx_dir / info.filename.encode("cp437").decode("gbk")).write_bytes(zf.read(info))
    subprocess.run(
        [
            "soffice",
            "--headless",
            "--convert-to",
            "pdf",
            "--outdir",
            str(pdf_dir),
            *map(str, docx_dir.iterdir()),
        ],
        check=True,
        capture_output=True,
        timeout=900,
    )
    return time.perf_counter() - started


def measure(label: str, path: Path, rows: list[dict]) -> dict:
    started = time.perf_counter()
    report = load_paths([path])
    seconds = time.perf_counter() - started
    by_region = {}
    for sp in report.speeches:
        for r in rows:
            if r["region"] in sp.title or r["region"] in sp.source:
                by_region.setdefault(r["region"], sp)
    matched = exact = total = 0
    worst = []
    for r in rows:
        sp = by_region.get(r["region"])
        if sp is None:
            total += sum(1 for p in r["paragraphs"] if p.strip())
            worst.append((0.0, r["region"]))
            continue
        m, e, t = paragraph_match(sp, r["paragraphs"])
        matched, exact, total = matched + m, exact + e, total + t
        worst.append((m / t, r["region"]))
    return {
        "format": label,
        "speeches": len(report.speeches),
        "skipped": len(report.skipped),
        "paragraphs_matched_pct": round(100 * matched / total, 2),
        "body_exact_pct": round(100 * exact / total, 2),
        "speaker_and_role": sum(1 for sp in report.speeches if sp.speaker and sp.role),
        "date": sum(1 for sp in report.speeches if sp.date),
        "seconds": round(seconds, 2),
        "worst": [f"{region} {100 * share:.1f}%" for share, region in sorted(worst)[:3]],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", type=Path, default=SHARED, help="the shared folder (default ../shared)")
    parser.add_argument("--keep", type=Path, help="write the generated PDFs/pages here and keep them")
    parser.add_argument("--libreoffice", action="store_true", help="also PDFs printed by LibreOffice")
    args = parser.parse_args()
    if args.libreoffice and not shutil.which("soffice"):
        parser.error("--libreoffice needs soffice (apt-get install libreoffice-writer)")
    folder = args.shared / "benchmarks" / CORPUS
    rows = [json.loads(line) for line in (folder / "provincial_gwr_2025.jsonl").open(encoding="utf-8")]
    with tempfile.TemporaryDirectory(prefix="speechqa-docs-") as tmp:
        out = args.keep or Path(tmp)
        made = generate(rows, out)
        print(
            f"generated {len(rows)} PDFs in {made['pdf']:.1f} s and pages in {made['html']:.1f} s (not timed below)"
        )
        results = [
            measure("docx (zip)", folder / "provincial_gwr_2025_docx.zip", rows),
            measure("pdf", out / "pdf", rows),
            measure("html", out / "html", rows),
            measure("jsonl", folder / "provincial_gwr_2025.jsonl", rows),
        ]
        if args.libreoffice:
            seconds = libreoffice_pdfs(folder / "provincial_gwr_2025_docx.zip", out)
            print(f"LibreOffice printed {len(rows)} PDFs in {seconds:.1f} s (not timed below)")
            results.append(measure("pdf (LO)", out / "lo-pdf", rows))
    total = sum(1 for r in rows for p in r["paragraphs"] if p.strip())
    print(f"{len(rows)} reports, {total} JSONL paragraphs")
    print(
        f"{'format':<11} {'speeches':>8} {'matched %':>9} {'body %':>7} {'spk+role':>8} {'date':>5} {'seconds':>8}  worst"
    )
    for r in results:
        print(
            f"{r['format']:<11} {r['speeches']:>8} {r['paragraphs_matched_pct']:>9} {r['body_exact_pct']:>7}"
            f" {r['speaker_and_role']:>8} {r['date']:>5} {r['seconds']:>8}  {', '.join(r['worst'])}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
