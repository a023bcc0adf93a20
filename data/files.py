"""Files written whole or not at all, and their digests: what the index, the catalog and the models write."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path


def write_atomically(path: Path, data: bytes) -> None:
    """``data`` in ``path`` whole or not at all: written beside it under a name of its own, fsynced, renamed over
    it, and the rename made durable; a failure leaves the old file and no temporary one."""
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_path(path.parent)


def write_json_atomically(path: Path, obj: object) -> None:
    """``obj`` as readable UTF-8 JSON (indented, one final newline) in ``path``, by ``write_atomically``."""
    write_atomically(path, (json.dumps(obj, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))


def fsync_path(path: Path) -> None:
    """Flush a file's or a folder's entry (a rename into a folder is durable once the folder is)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
