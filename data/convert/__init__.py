"""File type router: one converter per file type (``data/convert/<type>.py``), picked by suffix.

Adding a format is adding a module with a class that has ``suffixes`` and ``convert(data, name, ctx)``
(the ``Converter`` protocol in ``base``) and naming it in ``CONVERTERS``. Converters import their
third-party library inside ``convert``, so importing the router is cheap.
"""

from __future__ import annotations

from data.convert.archive import ZipConverter
from data.convert.base import Context, Converter, Document, Metadata
from data.convert.docx import DocxConverter
from data.convert.html import HtmlConverter
from data.convert.jsonl import JsonlConverter
from data.convert.pdf import PdfConverter
from data.convert.text import TextConverter
from data.errors import InputFileError
from data.records import Speech

CONVERTERS: tuple[Converter, ...] = (
    TextConverter(),
    JsonlConverter(),
    DocxConverter(),
    PdfConverter(),
    HtmlConverter(),
    ZipConverter(),
)

__all__ = [
    "CONVERTERS",
    "Context",
    "Converter",
    "Document",
    "Metadata",
    "converter_for",
    "convert",
    "suffixes",
]


def suffixes() -> list[str]:
    return [s for c in CONVERTERS for s in c.suffixes]


def converter_for(name: str) -> Converter | None:
    lower = name.lower()
    for converter in CONVERTERS:
        if any(lower.endswith(s) for s in converter.suffixes):
            return converter
    return None


def convert(data: bytes, name: str, ctx: Context) -> list[Speech]:
    """Route ``data`` (the file ``name``) to its converter; InputFileError when no converter takes it."""
    converter = converter_for(name)
    if converter is None:
        suffix = "." + name.rsplit(".", 1)[-1] if "." in name.rsplit("/", 1)[-1] else "(none)"
        raise InputFileError(f"{name}: unsupported file type {suffix}; use {', '.join(suffixes())}")
    return converter.convert(data, name, ctx)
