"""Decode a text file's bytes whatever the encoding (UTF-8, UTF-8 with BOM, UTF-16 with BOM, GB18030/GBK)."""

from __future__ import annotations

import codecs
import unicodedata

from data.errors import InputFileError


def decode_bytes(raw: bytes, name: str = "<bytes>") -> tuple[str, str]:
    """Return (text, encoding). Raises InputFileError naming the reason when the bytes are not usable text."""
    if not raw.strip():
        raise InputFileError(f"{name}: file is empty")
    if raw.startswith(codecs.BOM_UTF8):
        text, enc = _strict(raw[len(codecs.BOM_UTF8) :], "utf-8", name), "utf-8-sig"
    elif raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text, enc = _strict(raw, "utf-16", name), "utf-16"
    else:
        if b"\x00" in raw[:8192]:
            raise InputFileError(f"{name}: looks binary (NUL bytes), not a text file")
        try:
            text, enc = raw.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            # GB18030 is a superset of GBK and GB2312, the usual encodings of Chinese government files.
            try:
                text, enc = raw.decode("gb18030"), "gb18030"
            except UnicodeDecodeError as exc:
                raise InputFileError(
                    f"{name}: not valid UTF-8 or GB18030 (byte {exc.start}); re-save it as UTF-8"
                ) from exc
    if not text.strip():
        raise InputFileError(f"{name}: file holds only whitespace")
    if _control_ratio(text) > 0.01:
        raise InputFileError(f"{name}: looks binary (control characters in the text), not a text file")
    return text, enc


def _strict(raw: bytes, encoding: str, name: str) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise InputFileError(
            f"{name}: declares {encoding} by its BOM but byte {exc.start} is invalid"
        ) from exc


def _control_ratio(text: str) -> float:
    sample = text[:20000]
    bad = sum(1 for ch in sample if unicodedata.category(ch) == "Cc" and ch not in "\n\r\t\f\v")
    return bad / max(1, len(sample))
