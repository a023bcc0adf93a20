"""An on-disk embedding cache (SQLite, WAL) so re-ingesting unchanged text never re-encodes it."""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

logger = logging.getLogger(__name__)

QUERY = "query"
PASSAGE = "passage"
# 2: OpenVINO vectors are computed in f32 on every CPU (embeddings.onnx_export.OPENVINO_PRECISION). A version-1
# file may hold bf16 ones under the same model id, which would mix with f32 ones in an index or in `speechqa
# train`'s rows, so it is upgraded by dropping its OpenVINO vectors (the other runtimes' stay).
SCHEMA_VERSION = 2
_OPENVINO_BEFORE_F32 = 1
_CHUNK = 500  # keys per SELECT; stays under SQLite's host-parameter limit on every build
_CORRUPT_CODES = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
_T = TypeVar("_T")


def text_key(text: str) -> bytes:
    """SHA-256 of the UTF-8 text: the cache never stores the text itself."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class _Unusable(Exception):
    """The file is corrupt or belongs to something else: move it aside and start again."""


class EmbeddingCache:
    """Maps (model_id, kind, sha256(text)) to a float32 vector or matrix.

    Many processes may read at once (WAL); writers wait for each other up to ``timeout`` seconds. The cache
    is only an optimization: a corrupt file is moved aside with a warning and replaced by an empty one, and
    any other database failure is logged and treated as a miss, so an ingest never fails because of it.
    """

    def __init__(self, path: Path, *, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self._timeout = timeout
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        with self._lock:
            self._connect_or_recover()

    # ------------------------------------------------------------------------------------- public

    def get_many(self, model_id: str, kind: str, texts: Sequence[str]) -> list[np.ndarray | None]:
        """Cached arrays in input order; None where a text has no entry."""
        keys = [text_key(t) for t in texts]
        empty: dict[bytes, np.ndarray] = {}
        found = self._run("read", lambda conn: self._select(conn, model_id, kind, keys), default=empty)
        return [found.get(k) for k in keys]

    def put_many(
        self, model_id: str, kind: str, texts: Sequence[str], vectors: Sequence[np.ndarray] | np.ndarray
    ) -> None:
        """Store one array per text (rows of a 2-D ``vectors`` array, or any arrays in a sequence)."""
        if len(texts) != len(vectors):
            raise ValueError(f"{len(texts)} texts but {len(vectors)} vectors")
        rows = []
        for text, vec in zip(texts, vectors, strict=True):
            arr = np.ascontiguousarray(vec, dtype="<f4")
            rows.append((model_id, kind, text_key(text), ",".join(map(str, arr.shape)), arr.tobytes()))
        if rows:
            self._run("write", lambda conn: self._insert(conn, rows), default=None)

    def count(self) -> int:
        return self._run("count", lambda conn: conn.execute("SELECT count(*) FROM vectors").fetchone()[0], 0)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------------------------- internals

    @staticmethod
    def _select(
        conn: sqlite3.Connection, model_id: str, kind: str, keys: list[bytes]
    ) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _CHUNK):
            chunk = unique[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            cursor = conn.execute(
                f"SELECT key, shape, data FROM vectors WHERE model_id = ? AND kind = ? AND key IN ({marks})",
                [model_id, kind, *chunk],
            )
            for key, shape_text, data in cursor:
                try:
                    shape = tuple(int(n) for n in shape_text.split(",")) if shape_text else ()
                    arr = np.frombuffer(data, dtype="<f4").astype(np.float32).reshape(shape)
                except ValueError:
                    continue  # a damaged row is a miss; the next put replaces it
                found[bytes(key)] = arr
        return found

    @staticmethod
    def _insert(conn: sqlite3.Connection, rows: list[tuple]) -> None:
        with conn:
            conn.executemany(
                "INSERT OR REPLACE INTO vectors (model_id, kind, key, shape, data) VALUES (?, ?, ?, ?, ?)",
                rows,
            )

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=self._timeout, check_same_thread=False)
        try:
            # WAL lets readers in other processes go on while one process writes.
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, _OPENVINO_BEFORE_F32, SCHEMA_VERSION):
                raise _Unusable(f"schema version {version}, expected {SCHEMA_VERSION}")
            with conn:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS vectors ("
                    " model_id TEXT NOT NULL, kind TEXT NOT NULL, key BLOB NOT NULL,"
                    " shape TEXT NOT NULL, data BLOB NOT NULL,"
                    " PRIMARY KEY (model_id, kind, key)) WITHOUT ROWID"
                )
                if version == _OPENVINO_BEFORE_F32:
                    dropped = conn.execute("DELETE FROM vectors WHERE model_id LIKE '%+openvino-%'").rowcount
                    logger.info(
                        "embedding cache %s: dropped %d OpenVINO bf16-era entries", self.path, dropped
                    )
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            columns = {row[1] for row in conn.execute("PRAGMA table_info(vectors)")}
            if columns != {"model_id", "kind", "key", "shape", "data"}:
                raise _Unusable(f"unexpected columns {sorted(columns)}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _connect_or_recover(self) -> None:
        try:
            self._conn = self._connect()
        except OSError as exc:
            logger.warning("embedding cache %s unavailable (%s); encoding without it", self.path, exc)
            self._conn = None
        except (_Unusable, sqlite3.DatabaseError) as exc:
            if not _is_corruption(exc):
                logger.warning("embedding cache %s unavailable (%s); encoding without it", self.path, exc)
                self._conn = None
                return
            self._move_aside(exc)
            try:
                self._conn = self._connect()
            except (_Unusable, sqlite3.DatabaseError) as again:
                logger.warning("embedding cache %s unavailable (%s); encoding without it", self.path, again)
                self._conn = None

    def _move_aside(self, reason: BaseException) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        logger.warning(
            "embedding cache %s is unusable (%s); moved it to %s and started afresh", self.path, reason, aside
        )
        for suffix in ("", "-wal", "-shm"):
            src = Path(f"{self.path}{suffix}")
            if src.exists():
                try:
                    src.rename(f"{aside}{suffix}")
                except OSError:
                    src.unlink(missing_ok=True)

    def _run(self, what: str, op: Callable[[sqlite3.Connection], _T], default: _T) -> _T:
        with self._lock:
            for attempt in (1, 2):
                if self._conn is None:
                    return default
                try:
                    return op(self._conn)
                except sqlite3.DatabaseError as exc:
                    if attempt == 1 and _is_corruption(exc):
                        self._move_aside(exc)
                        self._connect_or_recover()
                        continue
                    logger.warning(
                        "embedding cache %s failed to %s (%s); treating as a miss", self.path, what, exc
                    )
                    return default
            return default


def _is_corruption(exc: BaseException) -> bool:
    if isinstance(exc, _Unusable):
        return True
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in _CORRUPT_CODES
    text = str(exc).lower()
    return "not a database" in text or "malformed" in text
