""".zip -> the speeches of its entries, each routed to its own converter; hostile archives refused."""

from __future__ import annotations

import io
import logging
import posixpath
import zipfile

from data.convert.base import Context, check_zip_members, read_member
from data.errors import InputFileError
from data.records import Speech

log = logging.getLogger(__name__)

_UTF8_FLAG = 0x800


def entry_name(info: zipfile.ZipInfo) -> str:
    """The entry's real name: without the UTF-8 flag, zipfile decodes it as cp437, but archives made on
    Chinese Windows store GBK bytes (GB18030 is its superset)."""
    if info.flag_bits & _UTF8_FLAG:
        return info.filename
    raw = info.filename.encode("cp437", errors="replace")
    for encoding in ("utf-8", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return info.filename


def _unsafe(name: str) -> str | None:
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if ".." in name.replace("\\", "/").split("/"):
        return "'..' in the path"
    return None


class ZipConverter:
    """Every supported file inside a .zip (folders included). Entries with absolute paths or ``..`` are
    refused, as are archives over MAX_ARCHIVE_BYTES unpacked, MAX_ARCHIVE_ENTRIES entries or entries
    compressed more than MAX_COMPRESSION_RATIO:1 (limits in ``data.convert.base``). A zip inside the zip is
    not opened (reported and skipped). A bad entry is reported and skipped; the others are read."""

    suffixes = (".zip",)

    def convert(self, data: bytes, name: str, ctx: Context) -> list[Speech]:
        if ctx.depth > 0:
            raise InputFileError(f"{name}: a zip inside a zip is not opened; unpack it first")
        try:
            zf = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise InputFileError(f"{name}: not a readable .zip ({exc})") from exc
        with zf:
            check_zip_members(zf, name, entries=False)  # entries are checked one by one below
            speeches: list[Speech] = []
            entries = sorted((entry_name(i), i) for i in zf.infolist() if not i.is_dir())
            for inner, info in entries:
                where = f"{name}!{inner}"
                base = posixpath.basename(inner.replace("\\", "/"))
                if base.startswith(".") or inner.startswith("__MACOSX/"):
                    continue
                unsafe = _unsafe(inner)
                if unsafe:
                    ctx.skipped.append((where, f"refused: {unsafe} in an archive entry"))
                    continue
                if info.flag_bits & 0x1:
                    ctx.skipped.append((where, "encrypted archive entry"))
                    continue
                try:
                    payload = read_member(zf, info, where)
                    if not payload.strip():
                        raise InputFileError(f"{where}: file is empty")
                    found = ctx.route(payload, where, ctx.nested())
                except InputFileError as exc:
                    ctx.skipped.append((where, exc.message.removeprefix(f"{where}: ")))
                    continue
                if not found:
                    ctx.skipped.append((where, "no speech text found"))
                speeches.extend(found)
            return speeches
