""".html -> Document: the page's main content (trafilatura), headings kept, title/author/date from <meta>."""

from __future__ import annotations

import re

from data.convert.base import Block, Context, Document, Metadata
from data.convert.structure import document_to_speeches, iso_date
from data.errors import InputFileError
from data.records import Speech


class HtmlConverter:
    """A saved web page (a government site's article page). trafilatura keeps the article body and drops
    navigation, breadcrumbs, sidebars, share bars and footers. ``<h1>`` is the title, ``<h2>``.. are
    section headings, table rows become " | "-joined paragraphs. The page's title, date (the publication
    date, used when the text states none) and author (``extra["author"]``: on government sites usually the
    office that posted it) come from its ``<meta>`` tags; ``extra["url"]`` from its canonical link."""

    suffixes = (".html", ".htm", ".xhtml")

    def convert(self, data: bytes, name: str, ctx: Context) -> list[Speech]:
        return document_to_speeches(read_html(data, name))


def read_html(data: bytes, name: str) -> Document:
    import trafilatura
    from lxml import etree
    from trafilatura.settings import use_config

    config = use_config()
    # trafilatura falls back to the whole page's text when the article is under 250 characters; a short
    # speech is still an article, and the fallback would bring the navigation and footer in with it.
    config.set("DEFAULT", "MIN_EXTRACTED_SIZE", "10")
    config.set("DEFAULT", "MIN_OUTPUT_SIZE", "1")
    try:
        xml = trafilatura.extract(
            data,
            output_format="xml",
            include_comments=False,
            include_tables=True,
            include_formatting=False,
            with_metadata=True,
            favor_precision=True,  # measured: recall mode kept the "发布时间…打印" info bar; 0 paragraphs lost
            config=config,
        )
    except Exception as exc:  # trafilatura raises assorted parser errors on broken input
        raise InputFileError(f"{name}: not a readable HTML page ({type(exc).__name__}: {exc})") from exc
    if not xml:
        raise InputFileError(f"{name}: no article text found in the page")
    root = etree.fromstring(xml.encode("utf-8"))
    main = root.find("main")
    blocks = list(_blocks(main)) if main is not None else []
    if not blocks:
        raise InputFileError(f"{name}: no article text found in the page")
    meta = _meta_tags(data)
    extra = {}
    for key, attr, tags in (
        ("author", "author", ("author", "contentsource")),
        ("url", "url", ("og:url", "url")),
        ("site", "sitename", ("sitename", "og:site_name")),
    ):
        value = next((meta[t] for t in tags if meta.get(t)), "") or (root.get(attr) or "").strip()
        if value:
            extra[key] = value
    title = meta.get("articletitle") or meta.get("og:title") or (root.get("title") or "").strip()
    date = meta.get("pubdate") or meta.get("publishdate") or (root.get("date") or "").strip()
    if date and not re.fullmatch(r"\d{4}(-\d{2}){0,2}", date):
        date = iso_date(date) or (date[:10] if re.match(r"\d{4}-\d{2}-\d{2}", date) else "")
    return Document(name=name, blocks=blocks, metadata=Metadata(title=title, date=date, extra=extra))


def _meta_tags(data: bytes) -> dict[str, str]:
    """``<meta name|property=… content=…>`` of the page, names lower-cased (government sites use
    ArticleTitle, PubDate, ContentSource, author)."""
    import lxml.html

    try:
        tree = lxml.html.fromstring(data)
    except Exception:  # an unparsable head just means no meta tags
        return {}
    out: dict[str, str] = {}
    for meta in tree.iter("meta"):
        key = (meta.get("name") or meta.get("property") or "").strip().lower()
        value = (meta.get("content") or "").strip()
        if key and value:
            out.setdefault(key, value)
    return out


def _text(element) -> str:  # type: ignore[no-untyped-def]
    return "".join(element.itertext()).strip()


def _blocks(main):  # type: ignore[no-untyped-def]
    for element in main:
        tag = element.tag
        if tag == "head":
            m = re.fullmatch(r"h(\d)", element.get("rend") or "")
            level = int(m.group(1)) - 1 if m else 1
            yield Block(_text(element), heading=level)
        elif tag in ("p", "quote", "code"):
            yield Block(_text(element))
        elif tag == "list":
            for item in element.iter("item"):
                yield Block(_text(item))
        elif tag == "table":
            for row in element.iter("row"):
                cells = [_text(cell) for cell in row.iter("cell")]
                cells = [c for c in cells if c]
                if cells:
                    yield Block(" | ".join(cells))
        else:
            text = _text(element)
            if text:
                yield Block(text)
