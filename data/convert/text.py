""".txt/.md -> speeches with the markdown-like speech format (``data.parse.parse_speech_text``)."""

from __future__ import annotations

from pathlib import PurePath

from data.convert.base import Context
from data.parse import parse_speech_text
from data.records import Speech
from data.textio import decode_bytes


class TextConverter:
    """UTF-8 (with or without BOM), UTF-16 with BOM or GB18030 text; one or several speeches per file."""

    suffixes = (".txt", ".md", ".markdown", ".text")

    def convert(self, data: bytes, name: str, ctx: Context) -> list[Speech]:
        text, _encoding = decode_bytes(data, name)
        return parse_speech_text(text, source=name, default_title=PurePath(name.split("!")[-1]).stem)
