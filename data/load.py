"""Loading speech files: walk folders and archives, hand each file to its converter, report what was skipped.

Kept apart from data/parse.py (the text format and stable ids), which the converters build on: the loader
sits above the converters, the parser below them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from data.errors import InputFileError
from data.parse import make_speech
from data.records import Speech

if TYPE_CHECKING:
    from data.convert.base import Metadata

log = logging.getLogger(__name__)


@dataclass
class LoadReport:
    """What an ingest read: the speeches, and every file it read or skipped (with the reason)."""

    speeches: list[Speech] = field(default_factory=list)
    files_read: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    # (path:line, reason): records with wrong types; the ingest fails on them unless --skip-bad.
    errors: list[tuple[str, str]] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------------
# Folders and files: each file goes to its converter (data/convert/)


def iter_input_files(paths: Iterable[Path], *, follow_symlinks: bool = False) -> Iterator[tuple[Path, str]]:
    """(file, refusal) for every file under ``paths``; refusal is "" for a file to read.

    Without ``follow_symlinks`` a symlink (file or folder) is refused, and so is anything whose real path
    lies outside the roots given: reading a folder must not read what a link inside it points at."""
    for root in paths:
        if not root.exists() and not root.is_symlink():
            yield root, "no such file or directory"
            continue
        if root.is_symlink() and not follow_symlinks:
            yield root, "refused: a symlink (pass --follow-symlinks to read it)"
            continue
        if not root.is_dir():
            yield root, ""
            continue
        real_root = root.resolve()
        seen: set[Path] = set()
        for folder, dirs, files in os.walk(root, followlinks=follow_symlinks):
            dirs.sort()
            here = Path(folder)
            if follow_symlinks:  # a link back up the tree must not loop forever
                real = here.resolve()
                if real in seen:
                    dirs.clear()
                    continue
                seen.add(real)
            for d in [d for d in dirs if not follow_symlinks and (here / d).is_symlink()]:
                dirs.remove(d)
                yield here / d, "refused: a symlinked folder (pass --follow-symlinks to read it)"
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in sorted(files):
                if name.startswith("."):
                    continue
                path = here / name
                if follow_symlinks:
                    yield path, ""
                elif path.is_symlink():
                    yield path, "refused: a symlink (pass --follow-symlinks to read it)"
                elif not path.resolve().is_relative_to(real_root):
                    yield path, f"refused: resolves outside {root}"
                else:
                    yield path, ""


def load_paths(
    paths: Sequence[Path],
    *,
    follow_symlinks: bool = False,
    skip_bad: bool = False,
    overrides: Metadata | None = None,
) -> LoadReport:
    """Load every speech under ``paths`` (files, folders recursively, archives).

    A bad file is reported in ``skipped`` and the others are read. A bad record inside a file (a JSONL line
    with wrong types) goes to ``errors``, which should fail the command, or to ``skipped`` with
    ``skip_bad``. ``overrides`` (title, speaker, role, date, region, place) replace what the files say."""
    from data.convert import Context, convert, converter_for, suffixes
    from data.convert.base import read_input

    report = LoadReport()
    ctx = Context(route=convert, skip_bad=skip_bad, skipped=report.skipped, errors=report.errors)
    for path, refusal in iter_input_files(paths, follow_symlinks=follow_symlinks):
        where = str(path)
        if refusal:
            report.skipped.append((where, refusal))
            continue
        if converter_for(path.name) is None:
            report.skipped.append(
                (
                    where,
                    f"unsupported file type {path.suffix.lower() or '(none)'}; use {', '.join(suffixes())}",
                )
            )
            continue
        try:
            speeches = convert(read_input(path), where, ctx)
        except InputFileError as exc:
            report.skipped.append((where, exc.message.removeprefix(f"{where}: ")))
            continue
        if not speeches:
            report.skipped.append((where, "no speech text found"))
            continue
        log.debug("%s: %d speeches", path, len(speeches))
        report.files_read.append(where)
        report.speeches.extend(speeches)
    if overrides is not None and not overrides.is_empty():
        report.speeches = [_override(sp, overrides) for sp in report.speeches]
    report.speeches = _dedupe_ids(report.speeches)
    return report


def _override(sp: Speech, meta: Metadata) -> Speech:
    return make_speech(
        title=meta.title or sp.title,
        speaker=meta.speaker or sp.speaker,
        role=meta.role or sp.role,
        date=meta.date or sp.date,
        region=meta.region or sp.region,
        place=meta.place or sp.place,
        extra={**sp.extra, **meta.extra},
        source=sp.source,
        paragraphs=[(p.section, p.text) for p in sp.paragraphs],
    )


def _dedupe_ids(speeches: list[Speech]) -> list[Speech]:
    """Two different speeches with the same title and speaker get ids keyed by their source as well."""
    by_id: dict[str, int] = {}
    out = []
    for sp in speeches:
        by_id[sp.speech_id] = by_id.get(sp.speech_id, 0) + 1
        if by_id[sp.speech_id] > 1:
            sp = make_speech(
                title=sp.title,
                speaker=sp.speaker,
                role=sp.role,
                date=sp.date,
                source=sp.source,
                region=sp.region,
                place=sp.place,
                extra=sp.extra,
                paragraphs=[(p.section, p.text) for p in sp.paragraphs],
                speech_key=f"{sp.title}\x1e{sp.speaker}\x1e{sp.source}\x1e{by_id[sp.speech_id]}",
            )
        out.append(sp)
    return out


def builtin_corpus_dir() -> Path:
    """The sample corpus shipped inside the package: the service's default input."""
    return Path(__file__).resolve().parent / "corpus"
