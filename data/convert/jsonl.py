""".jsonl -> speeches: one JSON object per line; known fields typed, every other field kept in ``extra``."""

from __future__ import annotations

import json
from pathlib import PurePath
from typing import Any

from data.convert.base import Block, Context, Document, Metadata
from data.convert.structure import document_to_speeches
from data.parse import make_speech, parse_speech_text
from data.records import Speech
from data.textio import decode_bytes

# Fields with a meaning; each is a string or null (null = absent).
STRING_FIELDS = ("title", "speaker", "role", "date", "source", "region", "place")


class JsonlConverter:
    """One speech per line: ``{"title", "speaker", "role", "date", "source", "region", "place", "text"}`` or
    ``"paragraphs": [...]`` instead of ``text``. Other fields (year, doc_type, url, …) go to ``extra`` as
    strings (numbers and booleans as written in JSON, lists and objects as compact JSON).

    A line that is not a JSON object, lacks text, or has a known field of the wrong type is a bad record:
    reported with file and line, and it fails the ingest unless ``--skip-bad``."""

    suffixes = (".jsonl", ".ndjson")

    def convert(self, data: bytes, name: str, ctx: Context) -> list[Speech]:
        text, _encoding = decode_bytes(data, name)
        speeches: list[Speech] = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            where = f"{name}:{lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                ctx.bad_record(where, f"invalid JSON ({exc.msg} at column {exc.colno})")
                continue
            problem = _problem(obj)
            if problem:
                ctx.bad_record(where, problem)
                continue
            speeches.extend(_speeches(obj, where, name, lineno))
        return speeches


def _problem(obj: Any) -> str | None:
    if not isinstance(obj, dict):
        return f"a line must be a JSON object, not {type(obj).__name__}"
    wrong = [k for k in STRING_FIELDS if obj.get(k) is not None and not isinstance(obj[k], str)]
    if wrong:
        return "fields must be strings or null: " + ", ".join(f"{k} ({type(obj[k]).__name__})" for k in wrong)
    text, paragraphs = obj.get("text"), obj.get("paragraphs")
    if text is not None and not isinstance(text, str):
        return f'"text" must be a string, not {type(text).__name__}'
    if paragraphs is not None and not (
        isinstance(paragraphs, list) and all(isinstance(p, str) for p in paragraphs)
    ):
        return '"paragraphs" must be a list of strings'
    if not (text or "").strip() and not any(p.strip() for p in paragraphs or ()):
        return 'a speech needs a non-empty "text" (or "paragraphs")'
    return None


def _extra(obj: dict[str, Any]) -> dict[str, str]:
    out = {}
    for key, value in obj.items():
        if key in STRING_FIELDS or key in ("text", "paragraphs") or value is None:
            continue
        out[key] = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return out


def _speeches(obj: dict[str, Any], where: str, name: str, lineno: int) -> list[Speech]:
    given = Metadata(**{k: obj.get(k) or "" for k in STRING_FIELDS if k != "source"}, extra=_extra(obj))
    source = obj.get("source") or where
    if not (obj.get("text") or "").strip():
        # Paragraph lists (e.g. a docx exported paragraph by paragraph): the same reading as a document.
        doc = Document(name=source, blocks=[Block(p) for p in obj["paragraphs"]])
        parsed = document_to_speeches(doc)
        return [_with(sp, given, source) for sp in parsed]
    title = given.title or f"{PurePath(name.split('!')[-1]).stem} #{lineno}"
    parsed = parse_speech_text(obj["text"], source=source, default_title=title)
    return [_with(sp, given, source) for sp in parsed]


def _with(sp: Speech, given: Metadata, source: str) -> Speech:
    """The parsed speech with the line's own fields over what the text said."""
    return make_speech(
        title=given.title or sp.title,
        speaker=given.speaker or sp.speaker,
        role=given.role or sp.role,
        date=given.date or sp.date,
        region=given.region or sp.region,
        place=given.place or sp.place,
        extra={**sp.extra, **given.extra},
        source=source,
        paragraphs=[(p.section, p.text) for p in sp.paragraphs],
    )
