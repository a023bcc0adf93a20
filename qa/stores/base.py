"""Storage protocols (dense, lexical, passages) and the typed manifest of a versioned index directory.

A store is one small class per backend (see ``qa/stores/factory.py``); the index directory
(``qa/index.py``) holds immutable *segments*, each written by one dense, one lexical and one passage
store, and a manifest naming the live segments and their tombstones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from data.records import Paragraph, Speech

FORMAT_VERSION = 2


@runtime_checkable
class DenseStore(Protocol):
    """Nearest passages by inner product (cosine on the normalized vectors every encoder returns)."""

    def add(self, rows: np.ndarray, vectors: np.ndarray) -> None: ...

    def delete(self, rows: np.ndarray) -> None: ...

    def search(
        self, query_vector: np.ndarray, k: int, allowed_rows: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(rows, scores), best first; only ``allowed_rows`` when given, never a deleted row."""
        ...

    def save(self, directory: Path) -> dict[str, Any]:
        """Write the store's files into ``directory``; returns its parameters for the manifest."""
        ...


@runtime_checkable
class LexicalStore(Protocol):
    """BM25 over pre-tokenized documents (tokens from ``qa.lexical.tokenize``)."""

    def add(self, rows: np.ndarray, token_lists: Sequence[Sequence[str]]) -> None: ...

    def delete(self, rows: np.ndarray) -> None: ...

    def top(
        self, query_tokens: Sequence[str], k: int | None, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(rows, scores) of the best ``k`` documents containing a query term (all of them for k=None)."""
        ...

    def scores(self, query_tokens: Sequence[str], rows: np.ndarray) -> np.ndarray:
        """BM25 of the given rows (0 for a row without a query term), without scoring any other document."""
        ...

    def df(self, term: str) -> int: ...

    @property
    def n_docs(self) -> int: ...


@runtime_checkable
class PassageStore(Protocol):
    """Paragraph records and their vectors by row; decoded on demand, never one Python object per row at load."""

    speeches: Mapping[str, Speech]  # Speech.paragraphs is () here: use rows_of_speech + paragraph

    def paragraph(self, row: int) -> Paragraph: ...

    def row_of(self, passage_id: str) -> int | None: ...

    def rows_of_speech(self, speech_id: str) -> np.ndarray: ...

    def sentence_vectors_of(self, row: int) -> np.ndarray:
        """float32 (stored as float16)."""
        ...

    def passage_vectors_of(self, rows: np.ndarray) -> np.ndarray: ...


# ----------------------------------------------------------------------------------------------------
# Manifest


@dataclass(frozen=True)
class FileDigest:
    bytes: int
    sha256: str


@dataclass(frozen=True)
class SegmentEntry:
    """One immutable segment directory under ``segments/``."""

    name: str
    rows: int  # paragraphs written into the segment (deleted ones included)
    sentences: int
    speeches: int
    fingerprint: str  # sha256 over the segment's paragraph ids and texts
    dense: Mapping[str, Any]  # backend parameters, e.g. {"kind": "ivf", "nlist": 2000, "nprobe": 32, ...}
    files: Mapping[str, FileDigest]
    deleted: tuple[str, ...] = ()  # tombstoned speech ids (their rows are hidden)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["deleted"] = list(self.deleted)
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> SegmentEntry:
        return cls(
            name=str(d["name"]),
            rows=int(d["rows"]),
            sentences=int(d["sentences"]),
            speeches=int(d["speeches"]),
            fingerprint=str(d["fingerprint"]),
            dense=dict(d["dense"]),
            files={k: FileDigest(int(v["bytes"]), str(v["sha256"])) for k, v in d["files"].items()},
            deleted=tuple(d.get("deleted", ())),
        )


@dataclass(frozen=True)
class Manifest:
    """What ``manifest.json`` says: the live segments of one index version, in order (later wins)."""

    seq: int  # increases by one with every committed change
    model_id: str
    dim: int
    segments: tuple[SegmentEntry, ...]
    counts: Mapping[str, int]  # live speeches, paragraphs, sentences
    corpus_fingerprint: str
    backends: Mapping[str, str] = field(
        default_factory=lambda: {"dense": "faiss", "lexical": "bm25-inverted", "passages": "columnar"}
    )
    faiss: str = "auto"  # requested dense kind: auto | flat | ivf | hnsw
    previous_seq: int | None = None
    encoded_paragraphs: int = 0  # encoded by the change that wrote this version
    encode_seconds: float = 0.0
    built_at: str = ""
    format_version: int = FORMAT_VERSION

    @property
    def version(self) -> str:
        return f"{self.seq}-{self.corpus_fingerprint[:12]}"

    def __getitem__(self, key: str) -> Any:
        """Read access by JSON key (``manifest["counts"]``), as for the dict manifests of format 1."""
        return self.to_json()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_json().get(key, default)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["segments"] = [s.to_json() for s in self.segments]
        d["index_version"] = self.version
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Manifest:
        return cls(
            seq=int(d["seq"]),
            model_id=str(d["model_id"]),
            dim=int(d["dim"]),
            segments=tuple(SegmentEntry.from_json(s) for s in d["segments"]),
            counts={k: int(v) for k, v in d["counts"].items()},
            corpus_fingerprint=str(d["corpus_fingerprint"]),
            backends=dict(d.get("backends") or {}),
            faiss=str(d.get("faiss", "auto")),
            previous_seq=d.get("previous_seq"),
            encoded_paragraphs=int(d.get("encoded_paragraphs", 0)),
            encode_seconds=float(d.get("encode_seconds", 0.0)),
            built_at=str(d.get("built_at", "")),
            format_version=int(d["format_version"]),
        )
