"""Test tooling: make .docx, .pdf, .html and .zip files (friendly and hostile) from paragraphs of text.

The PDFs look like a printed report: a CJK font, a running header, page numbers, lines wrapped in the middle
of sentences, the first line of each paragraph indented by two characters. The HTML looks like a
government site: navigation, header and footer boilerplate around the article, title/author/date in
<meta>. Needs fpdf2, python-docx and pypdf (dev dependencies) and a CJK TrueType font (Debian
fonts-wqy-microhei); ``cjk_font()`` is None without one, and the PDF tests skip.
"""

from __future__ import annotations

import html
import io
import unicodedata
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

_SPACES = " \t\u3000\xa0"
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)


def cjk_font() -> Path | None:
    """A TrueType font with CJK glyphs, or None."""
    for candidate in FONT_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    return None


# ----------------------------------------------------------------------------------------------------
# PDF


def make_pdf(
    paragraphs: Sequence[str],
    *,
    header: str = "政府工作报告",
    font_size: float = 11,
    headings: Iterable[str] = (),
) -> bytes:
    """A PDF with a text layer: one block per paragraph, wrapped at the page width wherever the line is
    full (mid-sentence), first line indented two characters, running header and "— n —" page numbers.
    A paragraph in ``headings`` (or the first one, the title) is centred and not indented."""
    from fpdf import FPDF

    font = cjk_font()
    if font is None:
        raise RuntimeError("no CJK TrueType font (apt-get install fonts-wqy-microhei)")
    heading_set = set(headings)

    class Report(FPDF):
        def header(self) -> None:
            self.set_font("cjk", size=9)
            self.cell(0, 8, header, align="C")
            self.ln(12)

        def footer(self) -> None:
            self.set_y(-15)
            self.set_font("cjk", size=9)
            self.cell(0, 8, f"— {self.page_no()} —", align="C")

    pdf = Report(format="A4")
    pdf.add_font("cjk", fname=str(font))
    fallback = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")  # glyphs WenQuanYi lacks (‱)
    if fallback.is_file():
        pdf.add_font("fallback", fname=str(fallback))
        pdf.set_fallback_fonts(["fallback"])
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.set_margins(25, 20, 25)
    pdf.add_page()
    pdf.set_font("cjk", size=font_size)
    width = pdf.w - pdf.l_margin - pdf.r_margin
    line_h = font_size * 0.55
    indent = pdf.get_string_width("国国")
    for i, raw in enumerate(paragraphs):
        text = raw.strip(" \t\u3000\xa0")
        if not text:
            continue
        if i == 0 or text in heading_set:
            pdf.set_x(pdf.l_margin)
            pdf.cell(width, line_h * 1.4, text, align="C")
            pdf.ln(line_h * 1.6)
            continue
        for j, line in enumerate(_wrap(pdf, text, width, indent)):
            pdf.set_x(pdf.l_margin + (indent if j == 0 else 0))
            pdf.cell(width, line_h, line)
            pdf.ln(line_h * 1.35)
    return bytes(pdf.output())


def _wrap(pdf, text: str, width: float, indent: float) -> list[str]:  # type: ignore[no-untyped-def]
    lines, current, used = [], "", 0.0
    for ch in text:
        w = _char_width(pdf, ch)
        room = width - (indent if not lines else 0)
        if current and used + w > room:
            lines.append(current)
            current, used = "", 0.0
        current += ch
        used += w
    if current:
        lines.append(current)
    return lines


_WIDTHS: dict[tuple[str, float], float] = {}


def _char_width(pdf, ch: str) -> float:  # type: ignore[no-untyped-def]
    key = (ch, pdf.font_size_pt)
    if key not in _WIDTHS:
        _WIDTHS[key] = pdf.get_string_width(ch)
    return _WIDTHS[key]


def make_scanned_pdf() -> bytes:
    """A page with only an image on it (what a scanner makes): no text operators at all."""
    from fpdf import FPDF
    from PIL import Image, ImageDraw

    img = Image.new("L", (400, 200), 255)
    ImageDraw.Draw(img).rectangle((40, 40, 360, 160), outline=0, width=4)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    pdf = FPDF()
    pdf.add_page()
    pdf.image(io.BytesIO(buf.getvalue()), x=10, y=10, w=180)
    return bytes(pdf.output())


def encrypt_pdf(data: bytes, password: str = "secret") -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=password, owner_password=password, algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# ----------------------------------------------------------------------------------------------------
# HTML

_PAGE = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>{title}_{site}</title>
<meta name="ArticleTitle" content="{title}">
<meta name="author" content="{author}">
<meta name="PubDate" content="{date}">
<meta name="ContentSource" content="{site}">
<meta name="keywords" content="政府工作报告,{site}">
</head><body>
<div class="top-bar"><a href="/">无障碍</a> | <a href="/">长者模式</a> | <a href="/en/">English</a> | <a href="/login">登录</a></div>
<header class="site-header"><div class="logo">{site}</div>
<nav class="main-nav"><ul><li><a href="/">首页</a></li><li><a href="/zwgk/">政务公开</a></li>
<li><a href="/zwfw/">政务服务</a></li><li><a href="/hdjl/">互动交流</a></li><li><a href="/zjxx/">走进本地</a></li></ul></nav>
<div class="search"><input type="text" placeholder="请输入关键词"><button>搜索</button></div></header>
<div class="crumbs">当前位置：<a href="/">首页</a> &gt; <a href="/zwgk/">政务公开</a> &gt; <a href="/zwgk/gzbg/">政府工作报告</a></div>
<div class="container"><aside class="sidebar"><h3>相关链接</h3><ul>
<li><a href="/a/1.html">关于进一步优化营商环境的通知</a></li><li><a href="/a/2.html">本市召开全市经济工作会议</a></li>
<li><a href="/a/3.html">政府信息公开年度报告</a></li></ul></aside>
<article class="article-content">
<h1 class="article-title">{title}</h1>
<div class="article-info">发布时间：{date}　来源：{site}　<span>字号：大 中 小</span>　<a href="javascript:window.print()">打印</a></div>
<div class="TRS_Editor" id="zoom">
{body}
</div>
<div class="share">分享到：微信 微博</div>
</article></div>
<footer class="site-footer"><p>主办单位：{site}办公厅　承办：大数据中心</p>
<p>网站标识码：1100000088　京ICP备05060933号　京公网安备 11010502030338号</p>
<p><a href="/sitemap">网站地图</a> | <a href="/contact">联系我们</a> | 版权所有 {site}</p></footer>
</body></html>
"""


def make_html(
    title: str,
    paragraphs: Sequence[str],
    *,
    site: str = "某省人民政府",
    author: str = "",
    date: str = "",
    headings: Iterable[str] = (),
) -> bytes:
    """A government-site page around the article: nav, crumbs, sidebar, footer; the title as <h1> (a first
    paragraph equal to the title is not repeated), <h2> for ``headings``."""
    heading_set = set(headings)
    if paragraphs and paragraphs[0].strip() == title.strip():
        paragraphs = paragraphs[1:]
    body = "\n".join(
        f"<h2>{html.escape(p.strip())}</h2>"
        if p in heading_set
        else f'<p style="text-indent:2em">{html.escape(p.strip(_SPACES))}</p>'
        for p in paragraphs
        if p.strip()
    )
    return _PAGE.format(
        title=html.escape(title), site=html.escape(site), author=html.escape(author), date=date, body=body
    ).encode("utf-8")


# ----------------------------------------------------------------------------------------------------
# DOCX and ZIP


def make_docx(
    paragraphs: Sequence[str],
    *,
    title_style: str | None = None,
    headings: dict[str, int] | None = None,
    table: Sequence[Sequence[str]] = (),
    core_title: str = "",
    core_author: str = "",
) -> bytes:
    """A .docx: ``paragraphs`` in order (those in ``headings`` get style "Heading N"), the first one with
    ``title_style`` if given, then ``table`` rows, with the given core properties."""
    import docx

    document = docx.Document()
    for i, text in enumerate(paragraphs):
        if i == 0 and title_style:
            document.add_paragraph(text, style=title_style)
        elif headings and text in headings:
            document.add_heading(text, level=headings[text])
        else:
            document.add_paragraph(text)
    if table:
        t = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                t.cell(r, c).text = value
    document.core_properties.title = core_title
    document.core_properties.author = core_author
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


class _GbkName(zipfile.ZipInfo):
    """An entry whose name is stored in GBK without the UTF-8 flag, as Chinese Windows zips them."""

    def _encodeFilenameFlags(self):  # type: ignore[no-untyped-def]  # noqa: N802 - zipfile's hook
        return self.filename.encode("gbk"), self.flag_bits & ~0x800


def make_zip(entries: dict[str, bytes], *, gbk_names: bool = True) -> bytes:
    """A zip of ``entries`` (name -> bytes); names in GBK without the UTF-8 flag unless ``gbk_names`` is
    False. Names are written as given, so hostile names ("../x", "/etc/x") can be made too."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            info = _GbkName(name) if gbk_names else zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return out.getvalue()


def make_zip_bomb(size: int = 200 * 1024 * 1024) -> bytes:
    """``size`` bytes of zeros in one deflated entry (~1000:1), written in chunks so memory stays small."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf, zf.open("zeros.txt", "w") as fh:
        chunk = b"\0" * (1024 * 1024)
        for _ in range(size // len(chunk)):
            fh.write(chunk)
    return out.getvalue()


# ----------------------------------------------------------------------------------------------------
# Comparing a parsed speech with the paragraphs it was made from


def _norm(text: str) -> str:
    """Whitespace and invisible format characters (zero-width joiners, BOM) removed."""
    return "".join(ch for ch in text if not ch.isspace() and unicodedata.category(ch) != "Cf")


def paragraph_match(speech, expected: Sequence[str]) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    """(matched, body_exact, total) for the non-empty ``expected`` paragraphs (whitespace removed).

    An expected paragraph is matched when it equals, whitespace and zero-width characters aside, a parsed paragraph (``body_exact``
    counts these), a section heading (headings become section paths, not paragraphs), or a front-matter line
    that was read as metadata (kept verbatim in ``extra["front_matter"]``). A paragraph that was split or
    joined with another one does not match."""
    body = {_norm(p.text) for p in speech.paragraphs}
    headings = {_norm(part) for p in speech.paragraphs for part in p.section.split(" / ") if part}
    front = {_norm(line) for line in speech.extra.get("front_matter", "").split("\n") if line}
    matched = exact = total = 0
    for raw in expected:
        text = _norm(raw)
        if not text:
            continue
        total += 1
        if text in body:
            exact += 1
            matched += 1
        elif text in headings or text in front:
            matched += 1
    return matched, exact, total
