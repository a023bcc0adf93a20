"""What the index itself does not keep about each speech: when it was ingested, its region, the uploaded file.

A small JSON sidecar next to the index directory (``.NAME.catalog.json`` beside ``NAME/``), not inside it:
every index write renames a freshly built directory over the old one, which would drop a file kept inside.
Entries are keyed by speech id; an entry whose speech is no longer in the index is ignored by readers, so
a crash between an index write and the catalog write leaves at worst a speech without ``ingested_at``.
Writers take a lock file and replace the JSON atomically, so the server and the CLI may both record.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from data.files import write_json_atomically
from data.records import Speech

log = logging.getLogger(__name__)


def catalog_path(index_dir: Path) -> Path:
    return index_dir.parent / f".{index_dir.name}.catalog.json"


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def read_catalog(index_dir: Path) -> dict[str, dict]:
    """speech_id -> {"ingested_at", "region", "file"}; empty when there is no (readable) catalog."""
    path = catalog_path(Path(index_dir))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable catalog %s: %s", path, exc)
        return {}
    speeches = data.get("speeches") if isinstance(data, dict) else None
    return {k: v for k, v in (speeches or {}).items() if isinstance(v, dict)}


def record_ingest(
    index_dir: Path,
    speeches: Iterable[Speech],
    *,
    region: str = "",
    file_of: dict[str, str] | None = None,
    when: str | None = None,
) -> None:
    """Note that ``speeches`` were (re)ingested now; ``region`` applies to all of them when given."""
    when = when or now_iso()
    with _locked(Path(index_dir)) as entries:
        for sp in speeches:
            entries[sp.speech_id] = {
                "ingested_at": when,
                "region": region or getattr(sp, "region", "") or "",
                "file": (file_of or {}).get(sp.speech_id, sp.source),
            }


def forget(index_dir: Path, speech_ids: Iterable[str]) -> None:
    with _locked(Path(index_dir)) as entries:
        for sid in speech_ids:
            entries.pop(sid, None)


@contextlib.contextmanager
def _locked(index_dir: Path) -> Iterator[dict[str, dict]]:
    path = catalog_path(index_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        entries = read_catalog(index_dir)
        yield entries
        write_json_atomically(path, {"format_version": 1, "speeches": entries})
