""".docx -> Document: paragraphs and tables in body order, Heading/Title styles, core properties."""

from __future__ import annotations

import io
import zipfile
from typing import Any

from data.convert.base import Block, Context, Document, Metadata, check_zip_members
from data.convert.structure import document_to_speeches, join_soft_breaks
from data.errors import InputFileError
from data.records import Speech

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


class DocxConverter:
    """Word 2007+ files. Each ``<w:p>`` is one block; a table row is one block with its cells joined by
    " | " (statistics tables stay searchable and citable; merged cells are not repeated). Core properties
    give the title and ``extra["author"]`` (who saved the file, usually not the speaker)."""

    suffixes = (".docx",)

    def convert(self, data: bytes, name: str, ctx: Context) -> list[Speech]:
        return document_to_speeches(read_docx(data, name))


def read_docx(data: bytes, name: str) -> Document:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            check_zip_members(zf, name)
            if "word/document.xml" not in zf.namelist():
                raise InputFileError(f"{name}: not a Word .docx (no word/document.xml)")
        document = docx.Document(io.BytesIO(data))
    except InputFileError:
        raise
    except (zipfile.BadZipFile, PackageNotFoundError, KeyError, ValueError, EOFError) as exc:
        raise InputFileError(f"{name}: not a readable .docx (corrupt or another format: {exc})") from exc
    except Exception as exc:  # lxml's XMLSyntaxError and friends: a damaged package
        raise InputFileError(f"{name}: damaged .docx ({type(exc).__name__}: {exc})") from exc
    blocks = list(_blocks(document))
    if not any(b.text.strip() for b in blocks):
        raise InputFileError(f"{name}: the .docx holds no text")
    props = document.core_properties
    extra = {"author": props.author} if props.author else {}
    created = props.created.date().isoformat() if props.created else ""
    if created:
        extra["file_created"] = created
    return Document(
        name=name, blocks=blocks, metadata=Metadata(title=(props.title or "").strip(), extra=extra)
    )


def _blocks(document: Any):
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    for child in document.element.body.iterchildren():
        if child.tag == f"{_W}p":
            p = Paragraph(child, document)
            yield Block(join_soft_breaks(p.text), _style_level(p.style.name if p.style is not None else ""))
        elif child.tag == f"{_W}tbl":
            for row in Table(child, document).rows:
                cells: list[str] = []
                for cell in row.cells:
                    text = join_soft_breaks(cell.text).strip()
                    if text and (not cells or cells[-1] != text):
                        cells.append(text)
                if cells:
                    yield Block(" | ".join(cells))


def _style_level(style: str) -> int | None:
    """Style "Title" -> 0, "Heading 2" / "标题 2" -> 2, anything else -> None."""
    s = style.strip().lower()
    if s in ("title", "标题"):
        return 0
    for prefix in ("heading", "标题"):
        if s.startswith(prefix) and s[len(prefix) :].strip().isdigit():
            return int(s[len(prefix) :].strip())
    return None
