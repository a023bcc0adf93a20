"""The converter seam: the Converter protocol, the Document converters build, and the limits they share."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Protocol

from data.errors import InputFileError
from data.records import Speech

# Limits, in one place (tests monkeypatch them on this module).
MAX_FILE_BYTES = 200 * 1024 * 1024  # one input file, or one archive entry once unpacked
MAX_ARCHIVE_BYTES = 512 * 1024 * 1024  # all entries of one .zip (or one .docx package) unpacked together
# Text, XML and docx packages compress 3-20x; 100x and more is a zip bomb (a GB of zeros packs ~1000x).
MAX_COMPRESSION_RATIO = 100
MAX_ARCHIVE_ENTRIES = 10_000


@dataclass(frozen=True)
class Metadata:
    """What a document says about itself; empty strings mean "not stated"."""

    title: str = ""
    speaker: str = ""
    role: str = ""
    date: str = ""  # ISO: YYYY-MM-DD, YYYY-MM or YYYY
    region: str = ""
    place: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def over(self, base: Metadata) -> Metadata:
        """``self``'s stated fields over ``base``'s (extra is merged, ``self`` winning)."""
        values = {
            f.name: getattr(self, f.name) or getattr(base, f.name) for f in fields(self) if f.name != "extra"
        }
        return Metadata(**values, extra={**base.extra, **self.extra})

    def is_empty(self) -> bool:
        return self == Metadata()


@dataclass(frozen=True)
class Block:
    """One paragraph of a document in reading order; ``heading`` is the level the file's own structure gives
    it (docx "Heading 2", HTML <h2>), None for body text (numbered headings are recognised later)."""

    text: str
    heading: int | None = None


@dataclass
class Document:
    """A converted file before it becomes a Speech: blocks in reading order and the file's own metadata
    (docx core properties, HTML <meta>); the front matter in the text is read by ``structure``."""

    name: str
    blocks: list[Block]
    metadata: Metadata = field(default_factory=Metadata)


@dataclass
class Context:
    """What a converter gets besides the bytes: options, a place to report problems, and the router (for
    archives)."""

    route: Callable[[bytes, str, Context], list[Speech]]
    skip_bad: bool = False
    # (where, reason): a file or archive entry that was skipped; ingest goes on.
    skipped: list[tuple[str, str]] = field(default_factory=list)
    # (where, reason): a record with wrong types; the command fails unless skip_bad.
    errors: list[tuple[str, str]] = field(default_factory=list)
    depth: int = 0  # archive nesting level

    def bad_record(self, where: str, reason: str) -> None:
        (self.skipped if self.skip_bad else self.errors).append((where, reason))

    def nested(self) -> Context:
        return replace(self, depth=self.depth + 1)


class Converter(Protocol):
    """One file type: the suffixes it claims and how its bytes become speeches."""

    @property
    def suffixes(self) -> tuple[str, ...]:
        """Lower-case file name endings this converter reads (".docx")."""
        ...

    def convert(self, data: bytes, name: str, ctx: Context) -> list[Speech]:
        """Speeches in ``data`` (the file called ``name``); raises InputFileError when the file is unusable."""
        ...


def read_input(path: Path) -> bytes:
    """The file's bytes, refusing files over MAX_FILE_BYTES before reading them."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InputFileError(f"{path}: {size} bytes is over the size limit ({MAX_FILE_BYTES} bytes)")
        data = path.read_bytes()
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if not data.strip():
        raise InputFileError(f"{path}: file is empty")
    return data


def check_zip_members(zf: zipfile.ZipFile, name: str, *, entries: bool = True) -> None:
    """Refuse a zip (or docx package) whose declared sizes betray a bomb, before anything is unpacked:
    too many entries, too many bytes in all, or (with ``entries``) any entry compressed too much.

    Declared sizes can lie; ``read_member`` enforces the limits on the bytes actually produced."""
    infos = zf.infolist()
    if len(infos) > MAX_ARCHIVE_ENTRIES:
        raise InputFileError(f"{name}: {len(infos)} entries, over the limit of {MAX_ARCHIVE_ENTRIES}")
    total = sum(i.file_size for i in infos)
    if total > MAX_ARCHIVE_BYTES:
        raise InputFileError(
            f"{name}: unpacks to {total} bytes, over the limit of {MAX_ARCHIVE_BYTES} bytes (zip bomb?)"
        )
    if entries:
        for info in infos:
            check_member(info, f"{name}!{info.filename}")


def check_member(info: zipfile.ZipInfo, where: str) -> None:
    if info.file_size > MAX_FILE_BYTES:
        raise InputFileError(
            f"{where}: {info.file_size} bytes unpacked, over the size limit ({MAX_FILE_BYTES} bytes)"
        )
    ratio = info.file_size / max(1, info.compress_size)
    if info.file_size > 1024 * 1024 and ratio > MAX_COMPRESSION_RATIO:
        raise InputFileError(
            f"{where}: compressed {ratio:.0f}:1, over the limit of {MAX_COMPRESSION_RATIO}:1 (zip bomb?)"
        )


def read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> bytes:
    """One entry's bytes after ``check_member``, read in chunks and cut off at the limits whatever the
    header claims."""
    check_member(info, where)
    limit = min(MAX_FILE_BYTES, max(1024 * 1024, MAX_COMPRESSION_RATIO * max(1, info.compress_size)))
    chunks, size = [], 0
    try:
        with zf.open(info) as fh:
            while chunk := fh.read(1024 * 1024):
                size += len(chunk)
                if size > limit:
                    raise InputFileError(f"{where}: unpacks past {limit} bytes, over the limits (zip bomb?)")
                chunks.append(chunk)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise InputFileError(f"{where}: corrupt archive entry ({exc})") from exc
    return b"".join(chunks)
