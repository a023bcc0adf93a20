"""Readable evaluation output: a self-contained report.html (inline CSS and SVG) and Markdown summaries."""

from __future__ import annotations

import html
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from data.text import MARKER
from evaluation.gates import MetricDelta
from evaluation.runner import SUMMARY_GROUPS, QuestionResult, metric_direction, write_results

Row = Mapping[str, Any]  # one line of results.jsonl (QuestionResult.to_json)

_GROUP_TITLES = {
    "retrieval": "Retrieval",
    "answer": "Answer",
    "citations": "Citations",
    "abstention": "Abstention",
    "latency_ms": "Latency (ms)",
}
# Colours of the hit-rank strip: rank 1, 2-3, 4-5, deeper, not retrieved, no retrieval gold.
_RANK_COLOURS = {
    "1": "#1a7f37",
    "2-3": "#6cc070",
    "4-5": "#d4a72c",
    ">5": "#e48f45",
    "miss": "#cf222e",
    "n/a": "#d0d7de",
}

_CSS = """
:root { --fg:#1f2328; --muted:#59636e; --line:#d0d7de; --bg:#ffffff; --soft:#f6f8fa;
        --ok:#1a7f37; --bad:#cf222e; --warn:#9a6700; --mark:#fff8c5; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1280px; padding: 24px; color: var(--fg); background: var(--bg);
       font: 15px/1.55 system-ui, -apple-system, "Segoe UI", "Noto Sans CJK SC", "Noto Sans SC",
       "PingFang SC", "Microsoft YaHei", sans-serif; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 32px 0 10px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 0 0 6px; }
.meta { color: var(--muted); font-size: 13px; }
.meta code { font-size: 12px; }
.licence { border-left: 4px solid var(--warn); background: #fff8e6; padding: 8px 12px; margin: 12px 0; font-size: 13px; }
table { border-collapse: collapse; font-size: 14px; }
th, td { border: 1px solid var(--line); padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.summary td.group { font-weight: 600; background: var(--soft); }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 16px; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 10px; }
figcaption { font-size: 13px; color: var(--muted); margin-top: 4px; }
svg { display: block; width: 100%; height: auto; }
svg.strip { width: auto; max-width: 100%; }
svg text { font: 11px system-ui, sans-serif; fill: var(--fg); }
.legend span { display: inline-block; margin-right: 10px; font-size: 12px; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; vertical-align: -1px; }
.failure { border: 1px solid var(--line); border-radius: 6px; margin: 14px 0; overflow: hidden; }
.failure > header { background: var(--soft); padding: 8px 12px; border-bottom: 1px solid var(--line); }
.failure .q { font-weight: 600; font-size: 16px; }
.pair { display: grid; grid-template-columns: 1fr 1fr; }
.pair > div { padding: 10px 12px; min-width: 0; }
.pair > div + div { border-left: 1px solid var(--line); }
.pair + .pair { border-top: 1px solid var(--line); }
.badge { display: inline-block; border-radius: 10px; padding: 0 8px; font-size: 12px; margin-right: 4px;
         background: #ffebe9; color: var(--bad); border: 1px solid #ffcecb; }
.badge.ok { background: #dafbe1; color: var(--ok); border-color: #aceebb; }
.badge.plain { background: var(--soft); color: var(--muted); border-color: var(--line); }
.answer { white-space: pre-wrap; }
.refused { color: var(--muted); font-style: italic; }
sup.m { color: #0969da; font-weight: 600; }
ul.kp { list-style: none; padding: 0; margin: 0; }
ul.kp li { margin: 2px 0; }
ul.kp .found::before { content: "\\2713  "; color: var(--ok); font-weight: 700; }
ul.kp .missing::before { content: "\\2717  "; color: var(--bad); font-weight: 700; }
ul.kp .missing { color: var(--bad); }
.passage { border: 1px solid var(--line); border-radius: 4px; padding: 6px 8px; margin: 6px 0; font-size: 14px; }
.passage .head { font-size: 12px; color: var(--muted); margin-bottom: 2px; }
.passage.gold { border-color: #aceebb; }
.passage.offgold { border-color: #ffcecb; }
mark { background: var(--mark); padding: 0 1px; }
mark.quote { background: #ddf4ff; }
.error { color: var(--bad); font-family: ui-monospace, monospace; font-size: 13px; white-space: pre-wrap; }
.empty { color: var(--muted); font-style: italic; }
@media (max-width: 800px) { .pair { grid-template-columns: 1fr; } .pair > div + div { border-left: 0; } }
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def fmt(value: object, *, digits: int = 3) -> str:
    """A metric for people: rates with 3 decimals, integers as is, missing data as an em dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        return f"{value:.{digits}f}"
    return str(value)


def _fmt_metric(group: str, value: object) -> str:
    return fmt(value, digits=1) if group == "latency_ms" else fmt(value)


# ----------------------------------------------------------------------------------------------------
# Markdown for the terminal


def summary_markdown(summary: Mapping[str, Any]) -> str:
    """A short Markdown summary: counts, then one table row per metric."""
    lines = [
        f"## speechqa eval: {summary.get('n', 0)} questions"
        + (f" ({summary['benchmark']['name']})" if isinstance(summary.get("benchmark"), dict) else ""),
        "",
        f"source `{summary.get('source', '')}`, index `{summary.get('index_version', '') or '?'}`, "
        f"k={summary.get('k', '')}, skipped lines: {summary.get('skipped', 0)}, "
        f"errors: {summary.get('errors', 0)}, questions with a failure: {summary.get('failures', 0)}",
        "",
        "| metric | value |",
        "|---|---:|",
    ]
    for group, keys in SUMMARY_GROUPS.items():
        values = summary.get(group) or {}
        for key in keys:
            lines.append(f"| {group}.{key} | {_fmt_metric(group, values.get(key))} |")
    return "\n".join(lines)


def compare_markdown(deltas: Sequence[MetricDelta]) -> str:
    """Metric, A, B, delta, and whether B is better or worse, knowing which way each metric goes."""
    lines = ["| metric | A | B | delta | |", "|---|---:|---:|---:|---|"]
    for d in deltas:
        digits = 1 if d.metric.startswith("latency_ms.") else 3
        if d.delta is None:
            delta = "—"
        elif isinstance(d.a, int) and isinstance(d.b, int):
            delta = f"{d.b - d.a:+d}"  # counts stay whole numbers
        else:
            delta = f"{d.delta:+.{digits}f}"
        verdict = {True: "better", False: "worse", None: ""}[d.better]
        if metric_direction(d.metric) == "lower" and verdict:
            verdict += " (lower is better)"
        lines.append(
            f"| {d.metric} | {fmt(d.a, digits=digits)} | {fmt(d.b, digits=digits)} | {delta} | {verdict} |"
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------
# SVG charts (drawn here so the page needs no script and no network)


def svg_metric_bars(summary: Mapping[str, Any]) -> str:
    """Horizontal bars for every 0..1 metric of the summary."""
    items = [
        (f"{group}.{key}", (summary.get(group) or {}).get(key))
        for group, keys in SUMMARY_GROUPS.items()
        if group != "latency_ms"
        for key in keys
    ]
    row, label_w, bar_w = 18, 190, 300
    height = row * len(items) + 24
    parts = [
        f'<svg role="img" aria-label="summary metrics" viewBox="0 0 {label_w + bar_w + 60} {height}" '
        f'xmlns="http://www.w3.org/2000/svg">'
    ]
    for x in (0, 0.25, 0.5, 0.75, 1.0):
        gx = label_w + x * bar_w
        parts.append(f'<line x1="{gx:.1f}" y1="0" x2="{gx:.1f}" y2="{height - 18}" stroke="#eaeef2"/>')
        parts.append(f'<text x="{gx:.1f}" y="{height - 4}" text-anchor="middle">{x:g}</text>')
    for i, (name, value) in enumerate(items):
        y = i * row
        parts.append(f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{_e(name)}</text>')
        if isinstance(value, int | float) and not isinstance(value, bool):
            lower = metric_direction(name) == "lower"
            colour = "#cf222e" if lower else "#0969da"
            width = max(0.0, min(1.0, float(value))) * bar_w
            parts.append(
                f'<rect x="{label_w}" y="{y + 3}" width="{width:.1f}" height="{row - 6}" fill="{colour}">'
                f"<title>{_e(name)} = {fmt(value)}</title></rect>"
            )
            parts.append(f'<text x="{label_w + width + 4:.1f}" y="{y + 13}">{fmt(value)}</text>')
        else:
            parts.append(f'<text x="{label_w + 4}" y="{y + 13}" fill="#59636e">no data</text>')
    parts.append("</svg>")
    return "".join(parts)


def svg_latency_histogram(latencies: Sequence[float], bins: int = 20) -> str:
    """Histogram of per-question wall time in ms."""
    if not latencies:
        return '<p class="empty">No latencies (every question failed).</p>'
    lo, hi = 0.0, max(latencies)
    hi = hi if hi > lo else lo + 1.0
    width = (hi - lo) / bins
    counts = [0] * bins
    for v in latencies:
        counts[min(bins - 1, int((v - lo) / width))] += 1
    left, plot_w, plot_h, top = 40, 460, 160, 10
    peak = max(counts)
    digits = 0 if hi >= 20 else (1 if hi >= 2 else 2)  # sub-millisecond runs (fakes) still get readable axes
    parts = [
        f'<svg role="img" aria-label="latency histogram" viewBox="0 0 {left + plot_w + 20} {top + plot_h + 40}" '
        f'xmlns="http://www.w3.org/2000/svg">'
    ]
    for tick in sorted({0, peak // 2, peak}):
        y = top + plot_h - plot_h * tick / peak
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#eaeef2"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>')
    bw = plot_w / bins
    for i, c in enumerate(counts):
        h = plot_h * c / peak
        a, b = lo + i * width, lo + (i + 1) * width
        parts.append(
            f'<rect x="{left + i * bw + 1:.1f}" y="{top + plot_h - h:.1f}" width="{bw - 2:.1f}" height="{h:.1f}" '
            f'fill="#0969da"><title>{a:.{digits}f}–{b:.{digits}f} ms: {c}</title></rect>'
        )
    for frac in (0, 0.25, 0.5, 0.75, 1):
        x = left + frac * plot_w
        parts.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 14}" text-anchor="middle">{lo + frac * (hi - lo):.{digits}f}</text>'
        )
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{top + plot_h + 32}" text-anchor="middle">ms per question</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _rank_bucket(row: Row) -> str:
    metrics = row.get("metrics") or {}
    if metrics.get("hit@1") is None:
        return "n/a"
    rank = metrics.get("first_relevant_rank")
    if rank is None:
        return "miss"
    if rank == 1:
        return "1"
    if rank <= 3:
        return "2-3"
    if rank <= 5:
        return "4-5"
    return ">5"


def svg_question_strip(rows: Sequence[Row], per_row: int = 100) -> str:
    """One column per question: key-point recall as a bar, the rank of the first relevant passage as a cell.

    Long runs wrap into lines of ``per_row`` questions so a bar stays readable for 3,000 questions too.
    """
    if not rows:
        return '<p class="empty">No questions.</p>'
    cell, gap, left = 10, 4, 70
    bar_h = 60 if len(rows) <= 300 else 30
    line_h = bar_h + gap + cell + 14
    columns = min(per_row, len(rows))
    width = left + cell * columns + 10
    height = line_h * math.ceil(len(rows) / per_row)
    parts = [
        # Drawn at its natural size (capped by the page width) so a handful of questions is not blown up.
        f'<svg class="strip" role="img" aria-label="per-question metrics" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for line in range(math.ceil(len(rows) / per_row)):
        top = line * line_h
        first = line * per_row
        parts += [
            f'<text x="{left - 6}" y="{top + bar_h / 2 + 4}" text-anchor="end">key points</text>',
            f'<text x="{left - 6}" y="{top + bar_h + gap + cell - 1}" text-anchor="end">hit rank</text>',
            f'<line x1="{left}" y1="{top + bar_h}" x2="{width - 10}" y2="{top + bar_h}" stroke="#d0d7de"/>',
        ]
        if len(rows) > per_row:
            parts.append(f'<text x="{left - 6}" y="{top + 10}" text-anchor="end">#{first + 1}</text>')
        for i, row in enumerate(rows[first : first + per_row]):
            x = left + i * cell
            metrics = row.get("metrics") or {}
            kpr = metrics.get("key_point_recall")
            label = f"{row.get('id', '')}: {row.get('question', '')}"
            if kpr is not None:
                h = max(1.0, bar_h * float(kpr))
                colour = "#1a7f37" if kpr >= 1 else ("#d4a72c" if kpr > 0 else "#cf222e")
                parts.append(
                    f'<rect x="{x + 1}" y="{top + bar_h - h:.1f}" width="{cell - 2}" height="{h:.1f}" '
                    f'fill="{colour}"><title>{_e(label)} — key-point recall {fmt(kpr)}</title></rect>'
                )
            elif row.get("error"):
                parts.append(
                    f'<rect x="{x + 1}" y="{top + bar_h - 4}" width="{cell - 2}" height="4" fill="#8250df">'
                    f"<title>{_e(label)} — error</title></rect>"
                )
            bucket = _rank_bucket(row)
            parts.append(
                f'<rect x="{x + 1}" y="{top + bar_h + gap}" width="{cell - 2}" height="{cell - 2}" '
                f'fill="{_RANK_COLOURS[bucket]}"><title>{_e(label)} — first relevant rank: {_e(bucket)}</title></rect>'
            )
    parts.append("</svg>")
    legend = "".join(f'<span><i style="background:{c}"></i>{_e(k)}</span>' for k, c in _RANK_COLOURS.items())
    return "".join(parts) + f'<div class="legend">hit rank: {legend}</div>'


# ----------------------------------------------------------------------------------------------------
# The page


def _highlight(text: str, needles: Sequence[str], css: str = "") -> str:
    """Escape ``text`` and wrap every verbatim occurrence of a needle in <mark>."""
    spans: list[tuple[int, int]] = []
    for needle in needles:
        if not needle:
            continue
        start = text.find(needle)
        while start != -1:
            spans.append((start, start + len(needle)))
            start = text.find(needle, start + len(needle))
    spans.sort()
    merged: list[list[int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    out, pos = [], 0
    cls = f' class="{css}"' if css else ""
    for a, b in merged:
        out.append(_e(text[pos:a]))
        out.append(f"<mark{cls}>{_e(text[a:b])}</mark>")
        pos = b
    out.append(_e(text[pos:]))
    return "".join(out)


def _answer_html(row: Row) -> str:
    if row.get("error"):
        return f'<div class="error">{_e(row["error"])}</div>'
    text = _e(row.get("answer", ""))
    # Only real markers (data.text.MARKER: ASCII "[n]"), never a passage's own "［27］" or "[2020]"; they are
    # digits only, so rewriting the escaped text cannot inject markup.
    text = MARKER.sub(r'<sup class="m">[\1]</sup>', text)
    if row.get("answered") is False:
        return f'<div class="answer refused">{text}</div><span class="badge plain">refused</span>'
    return f'<div class="answer">{text}</div>'


def _key_points_html(row: Row) -> str:
    points = row.get("key_points") or []
    parts = []
    if points:
        items = "".join(
            f'<li class="{"found" if kp.get("found") else "missing"}">{_e(" / ".join(kp.get("variants", [])))}</li>'
            for kp in points
        )
        parts.append(f'<ul class="kp">{items}</ul>')
    elif row.get("answerable"):
        parts.append('<p class="empty">No key points given.</p>')
    else:
        parts.append("<p>Expected: a refusal (the question is not answerable from the corpus).</p>")
    if row.get("reference_answer"):
        f1 = (row.get("metrics") or {}).get("char_f1")
        parts.append(
            f'<h3>Reference answer (char F1 {fmt(f1)})</h3><div class="answer">{_e(row["reference_answer"])}</div>'
        )
    return "".join(parts)


def _cited_html(row: Row) -> str:
    citations = row.get("citations") or []
    if not citations:
        return '<p class="empty">No citations.</p>'
    out = []
    for c in citations:
        relevant = c.get("relevant")
        badges = []
        if relevant is True:
            badges.append('<span class="badge ok">holds evidence</span>')
        elif relevant is False:
            badges.append('<span class="badge">no evidence</span>')
        if c.get("valid"):
            badges.append('<span class="badge ok">verbatim</span>')
        else:
            badges.append(f'<span class="badge">{_e(c.get("problem") or "invalid")}</span>')
        cls = "gold" if relevant else ("offgold" if relevant is False else "")
        text = str(c.get("passage_text", ""))
        quote = str(c.get("quote", ""))
        out.append(
            f'<div class="passage {cls}"><div class="head">[{_e(c.get("n", ""))}] {_e(c.get("speech_title", ""))} · '
            f"<code>{_e(c.get('passage_id', ''))}</code> {''.join(badges)}</div>"
            f"{_highlight(text, [quote], 'quote') if quote else _e(text)}</div>"
        )
    return "".join(out)


def _gold_html(row: Row, evidence: Sequence[str]) -> str:
    gold = row.get("gold_passages") or []
    parts = []
    if evidence:
        found = {e["text"]: e.get("found_at_rank") for e in row.get("evidence") or []}
        items = "".join(
            f'<li class="{"found" if found.get(e) else "missing"}">{_e(e)}'
            f"{'' if not found.get(e) else f' (rank {found[e]})'}</li>"
            for e in evidence
        )
        parts.append(f'<h3>Evidence</h3><ul class="kp">{items}</ul>')
    if not gold:
        if row.get("answerable") and evidence:
            parts.append('<p class="empty">No retrieved passage contains the evidence.</p>')
        elif not row.get("answerable"):
            parts.append('<p class="empty">None: the question is not answerable.</p>')
        return "".join(parts)
    for g in gold:
        rank = g.get("rank")
        where = f"rank {rank}" if rank else "not retrieved"
        badge = "badge ok" if rank and rank <= 5 else "badge"
        parts.append(
            f'<div class="passage gold"><div class="head">{_e(g.get("speech_title", ""))} · '
            f'<code>{_e(g.get("passage_id", ""))}</code> <span class="{badge}">{_e(where)}</span></div>'
            f"{_highlight(str(g.get('text', '')), evidence)}</div>"
        )
    return "".join(parts)


def _failure_html(row: Row) -> str:
    evidence = [e["text"] for e in row.get("evidence") or [] if e.get("text")]
    badges = "".join(f'<span class="badge">{_e(f)}</span>' for f in row.get("failures") or [])
    metrics = row.get("metrics") or {}
    facts = (
        f"id <code>{_e(row.get('id', ''))}</code>"
        + (f" · {_e(row['type'])}" if row.get("type") else "")
        + f" · gold: {'answerable' if row.get('answerable') else 'unanswerable'}"
        + f" · first relevant rank {fmt(metrics.get('first_relevant_rank'))}"
        + f" · {fmt(row.get('latency_ms'), digits=1)} ms"
    )
    return (
        f'<article class="failure" id="q-{_e(row.get("id", ""))}"><header>'
        f'<div class="q">{_e(row.get("question", ""))}</div><div class="meta">{facts}</div>{badges}</header>'
        f'<div class="pair"><div><h3>Answer</h3>{_answer_html(row)}</div>'
        f"<div><h3>Expected key points</h3>{_key_points_html(row)}</div></div>"
        f'<div class="pair"><div><h3>Cited passages</h3>{_cited_html(row)}</div>'
        f"<div><h3>Gold passages</h3>{_gold_html(row, evidence)}</div></div></article>"
    )


def _summary_table(summary: Mapping[str, Any]) -> str:
    rows = [
        f'<tr><td class="group">questions</td><td>n</td><td class="num">{fmt(summary.get("n"))}</td></tr>'
    ]
    for group, keys in SUMMARY_GROUPS.items():
        values = summary.get(group) or {}
        for i, key in enumerate(keys):
            head = (
                f'<td class="group" rowspan="{len(keys)}">{_e(_GROUP_TITLES[group])}</td>' if i == 0 else ""
            )
            direction = " (lower is better)" if metric_direction(f"{group}.{key}") == "lower" else ""
            rows.append(
                f"<tr>{head}<td>{_e(key)}{_e(direction)}</td>"
                f'<td class="num">{_e(_fmt_metric(group, values.get(key)))}</td></tr>'
            )
    return (
        '<table class="summary" id="summary"><thead><tr><th>group</th><th>metric</th><th>value</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def render_report(summary: Mapping[str, Any], rows: Sequence[Row]) -> str:
    """The whole report as one HTML page; every piece of data text goes through html.escape."""
    benchmark = summary.get("benchmark") if isinstance(summary.get("benchmark"), dict) else None
    title = "speechqa evaluation" + (f" — {benchmark['name']}" if benchmark else "")
    failures = [r for r in rows if r.get("failures")]
    reasons = Counter(f for r in failures for f in r.get("failures") or [])
    latencies = [
        float(r["latency_ms"]) for r in rows if r.get("latency_ms") is not None and not r.get("error")
    ]

    head = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">{fmt(summary.get("n"))} questions · source <code>{_e(summary.get("source", ""))}</code>'
        f" · index <code>{_e(summary.get('index_version', '') or '?')}</code> · k = {_e(summary.get('k', ''))}"
        f" · {_e(summary.get('created_at', ''))}"
        + (f" · gold file <code>{_e(summary['gold_file'])}</code>" if summary.get("gold_file") else "")
        + "</p>",
    ]
    if benchmark:
        head.append(
            f'<div class="licence"><strong>{_e(benchmark.get("name", ""))}</strong> data from '
            f"<code>{_e(benchmark.get('data', ''))}</code>. {_e(benchmark.get('licence', ''))}"
            + (
                " <strong>Internal evaluation only: do not redistribute this report's passages.</strong>"
                if benchmark.get("internal_only")
                else ""
            )
            + (f"<br>{_e(benchmark['notes'])}" if benchmark.get("notes") else "")
            + "</div>"
        )

    counts = (
        f"<p>Skipped gold lines: {fmt(summary.get('skipped', 0))} · errors: {fmt(summary.get('errors', 0))}"
        f" · questions with a failure: {len(failures)}</p>"
    )
    skipped = summary.get("skipped_lines") or []
    skipped_html = ""
    if skipped:
        items = "".join(
            f'<tr><td class="num">{_e(s.get("line"))}</td><td>{_e(s.get("error"))}</td></tr>' for s in skipped
        )
        skipped_html = (
            "<h2>Skipped gold lines</h2><table><thead><tr><th>line</th><th>what is wrong</th></tr></thead>"
            f"<tbody>{items}</tbody></table>"
        )

    charts = (
        '<h2>Charts</h2><div class="charts">'
        f"<figure>{svg_metric_bars(summary)}<figcaption>Summary metrics (0–1; red bars: lower is better)"
        "</figcaption></figure>"
        f"<figure>{svg_latency_histogram(latencies)}<figcaption>Latency: wall time per question, p50 "
        f"{fmt((summary.get('latency_ms') or {}).get('p50'), digits=1)} ms, p95 "
        f"{fmt((summary.get('latency_ms') or {}).get('p95'), digits=1)} ms</figcaption></figure>"
        "</div>"
        f"<figure>{svg_question_strip(rows)}<figcaption>Per question, in gold order: key-point recall (bar "
        "height) and the rank of the first passage holding evidence. Hover for the question.</figcaption></figure>"
    )

    if failures:
        reason_rows = "".join(
            f'<tr><td>{_e(k)}</td><td class="num">{v}</td></tr>' for k, v in reasons.most_common()
        )
        failure_html = (
            f"<h2>Failures ({len(failures)})</h2>"
            f"<table><thead><tr><th>reason</th><th>questions</th></tr></thead><tbody>{reason_rows}</tbody></table>"
            + "".join(_failure_html(r) for r in failures)
        )
    else:
        failure_html = '<h2>Failures</h2><p class="empty">None: every question passed every check.</p>'

    return (
        '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        + "".join(head)
        + "<h2>Summary</h2>"
        + _summary_table(summary)
        + counts
        + charts
        + skipped_html
        + failure_html
        + "</body></html>\n"
    )


def write_report(out_dir: Path, summary: Mapping[str, Any], rows: Sequence[Row]) -> Path:
    path = out_dir / "report.html"
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(summary, rows), encoding="utf-8")
    return path


def write_outputs(out_dir: Path, results: Sequence[QuestionResult], summary: Mapping[str, Any]) -> Path:
    """results.jsonl, summary.json and report.html in ``out_dir``; returns the report's path."""
    write_results(out_dir, results, summary)
    return write_report(out_dir, summary, [r.to_json() for r in results])


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a results.jsonl, to re-render a report from files."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# ----------------------------------------------------------------------------------------------------
# One table across data sets and composers (benchmarks/bench_answers.py --sets ... --composers ...)

ANSWER_TABLE_COLUMNS = (
    "unanswerable refused",
    "answerable refused",
    "key-point recall",
    "key point first",
    "citations valid",
    "citation precision",
)


def answer_table_row(summary: Mapping[str, Any]) -> dict[str, float | None]:
    """The refusal and answer columns of one run; unanswerable refused = 1 - abstention.false_answers."""
    abstention = summary.get("abstention") or {}
    false_answers = abstention.get("false_answers")
    return {
        "unanswerable refused": None if false_answers is None else round(1 - false_answers, 4),
        "answerable refused": abstention.get("false_refusals"),
        "key-point recall": (summary.get("answer") or {}).get("key_point_recall"),
        "key point first": (summary.get("answer") or {}).get("key_point_first"),
        "citations valid": (summary.get("citations") or {}).get("valid"),
        "citation precision": (summary.get("citations") or {}).get("precision"),
    }


def answer_table(runs: Sequence[tuple[str, str, Mapping[str, Any]]]) -> str:
    """One Markdown table: a row per (data set, composer, summary), the counts beside the set's name."""
    head = "| set | composer | " + " | ".join(ANSWER_TABLE_COLUMNS) + " |"
    lines = [head, "|---|---|" + "---:|" * len(ANSWER_TABLE_COLUMNS)]
    for name, composer, summary in runs:
        ab = summary.get("abstention") or {}
        label = f"{name} ({ab.get('n_answerable', 0)} answerable, {ab.get('n_unanswerable', 0)} unanswerable)"
        row = answer_table_row(summary)
        lines.append(
            f"| {label} | {composer} | " + " | ".join(fmt(row[c]) for c in ANSWER_TABLE_COLUMNS) + " |"
        )
    return "\n".join(lines)
