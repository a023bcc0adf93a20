"""One loaded index version: its segments seen as one corpus (rows numbered across segments, tombstones hidden).

A snapshot never changes. Rows are numbered segment after segment and are only meaningful within one
snapshot; ids (paragraph, speech) are stable across versions. ``speeches`` holds every live speech with
``paragraphs == ()``: paragraphs are decoded on demand through ``speech_rows`` and ``paragraph``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from data.records import Paragraph, Speech
from qa.stores import factory
from qa.stores.base import Manifest, SegmentEntry
from qa.stores.bm25 import InvertedBM25, idf, top_k
from qa.stores.faiss_dense import FaissDenseStore
from qa.stores.passages import ColumnarPassages


class LoadedSegment:
    """A segment directory opened once and shared by every snapshot that lists it (it is immutable)."""

    def __init__(self, directory: Path, entry: SegmentEntry, backends: Mapping[str, str]) -> None:
        self.directory = directory
        self.entry = entry
        self.backends = dict(backends)
        self.passages: ColumnarPassages = factory.load_passages(self.backends, directory)

    @functools.cached_property
    def lexical(self) -> InvertedBM25:
        return factory.load_lexical(self.backends, self.directory)

    @functools.cached_property
    def dense(self) -> FaissDenseStore:
        return factory.load_dense(
            self.backends, self.directory, dict(self.entry.dense), self.passages.passage_vectors
        )

    def live_mask(self, deleted: Sequence[str]) -> np.ndarray:
        live = np.ones(self.passages.n_rows, dtype=bool)
        for sid in deleted:
            first, n, _ = self.passages.speech_ranges.get(sid, (0, 0, 0))
            live[first : first + n] = False
        return live


class SegmentedDense:
    """The segments' dense stores as one (read side of the DenseStore protocol)."""

    def __init__(self, stores: Sequence[FaissDenseStore], bases: np.ndarray) -> None:
        self._stores = stores
        self._bases = bases

    def add(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        raise TypeError("a snapshot is immutable: change the index with qa.index.add_to_index")

    delete = add  # type: ignore[assignment]

    def search(
        self, query_vector: np.ndarray, k: int, allowed_rows: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        rows, scores = [], []
        for i, store in enumerate(self._stores):
            base, end = int(self._bases[i]), int(self._bases[i + 1])
            local = None
            if allowed_rows is not None:
                local = allowed_rows[(allowed_rows >= base) & (allowed_rows < end)] - base
                if not len(local):
                    continue
            r, s = store.search(query_vector, k, local)
            rows.append(r + base)
            scores.append(s)
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        if len(rows) == 1:
            return rows[0], scores[0]
        all_rows, all_scores = np.concatenate(rows), np.concatenate(scores)
        order = np.lexsort((all_rows, -all_scores))[:k]
        return all_rows[order], all_scores[order]


class SegmentedLexical:
    """BM25 over the live documents of every segment, with corpus-wide df and average length."""

    def __init__(self, stores: Sequence[InvertedBM25], bases: np.ndarray) -> None:
        self._stores = stores
        self._bases = bases
        self.n_docs = sum(s.n_docs for s in stores)
        self.avgdl = (sum(s.length_sum() for s in stores) / self.n_docs) if self.n_docs else 1.0

    def add(self, rows: np.ndarray, token_lists: Sequence[Sequence[str]]) -> None:
        raise TypeError("a snapshot is immutable: change the index with qa.index.add_to_index")

    def delete(self, rows: np.ndarray) -> None:
        raise TypeError("a snapshot is immutable: change the index with qa.index.remove_from_index")

    def df(self, term: str) -> int:
        """Live documents containing ``term``."""
        return sum(s.df(term) for s in self._stores)

    def scores(self, query_tokens: Sequence[str], rows: np.ndarray) -> np.ndarray:
        """BM25 of the given rows (0 without a query term), by lookup in each segment's postings."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.zeros(len(rows), dtype=np.float32)
        if not len(rows):
            return out
        idfs = {t: float(idf(self.df(t), self.n_docs)) for t in set(query_tokens)}
        which = np.searchsorted(self._bases, rows, side="right") - 1
        for i in np.unique(which):
            mask = which == i
            out[mask] = self._stores[i].score_rows(
                query_tokens, idfs, self.avgdl, rows[mask] - self._bases[i]
            )
        return out

    def top(
        self, query_tokens: Sequence[str], k: int | None, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(rows, scores) of the best ``k`` live documents; with k=None every document with a query term."""
        idfs = {t: float(idf(self.df(t), self.n_docs)) for t in set(query_tokens)}
        rows, scores = [], []
        for i, store in enumerate(self._stores):
            base = int(self._bases[i])
            mask = None
            if allowed is not None:
                local = allowed[(allowed >= base) & (allowed < self._bases[i + 1])] - base
                if not len(local):
                    continue
                mask = np.zeros(store.n_rows, dtype=bool)
                mask[local] = True
            if k is None:
                r, s = store.scores_for(query_tokens, idfs, self.avgdl, mask)
            else:  # each segment's exact top k holds the corpus' top k
                r, s = store.top_scored(query_tokens, idfs, self.avgdl, k, mask)
            rows.append(r + base)
            scores.append(s)
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        return top_k(np.concatenate(rows), np.concatenate(scores), k)


class Snapshot:
    """What the retriever, composer and service read. Thread-safe: nothing in it changes after load."""

    def __init__(self, path: Path, manifest: Manifest, segments: Sequence[LoadedSegment]) -> None:
        self.path = path
        self.manifest = manifest
        self._segments = list(segments)
        sizes = [s.passages.n_rows for s in self._segments]
        self._bases = np.zeros(len(sizes) + 1, dtype=np.int64)
        self._bases[1:] = np.cumsum(sizes)
        self._live: list[np.ndarray] = []
        dense_views, lexical_views = [], []
        speeches: dict[str, Speech] = {}
        self._speech_seg: dict[str, int] = {}
        for i, (seg, entry) in enumerate(zip(self._segments, manifest.segments, strict=True)):
            live = seg.live_mask(entry.deleted)
            self._live.append(live)
            dead = np.flatnonzero(~live)
            d, lex = seg.dense.view(), seg.lexical.view()
            if len(dead):
                d.delete(dead)
                lex.delete(dead)
            dense_views.append(d)
            lexical_views.append(lex)
            gone = set(entry.deleted)
            for sp in seg.passages.speech_list:
                if sp.speech_id not in gone:
                    speeches[sp.speech_id] = sp
                    self._speech_seg[sp.speech_id] = i
        self.speeches: Mapping[str, Speech] = speeches
        self.dense = SegmentedDense(dense_views, self._bases)
        self.lexical = SegmentedLexical(lexical_views, self._bases)
        self.n_paragraphs = int(sum(int(live.sum()) for live in self._live))
        self.n_rows = int(self._bases[-1])  # row ids run 0..n_rows-1; deleted ones are never returned

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def segment_names(self) -> tuple[str, ...]:
        return tuple(s.entry.name for s in self._segments)

    def _locate(self, row: int) -> tuple[LoadedSegment, int]:
        i = int(np.searchsorted(self._bases, row, side="right")) - 1
        if not 0 <= row < self.n_rows:
            raise IndexError(row)
        return self._segments[i], row - int(self._bases[i])

    def live_rows(self) -> np.ndarray:
        return np.concatenate(
            [np.flatnonzero(live) + self._bases[i] for i, live in enumerate(self._live)]
            or [np.zeros(0, np.int64)]
        ).astype(np.int64)

    def paragraph(self, row: int) -> Paragraph:
        seg, local = self._locate(int(row))
        return seg.passages.paragraph(local)

    def speech_of(self, paragraph: Paragraph) -> Speech:
        return self.speeches[paragraph.speech_id]

    def row_of(self, passage_id: str) -> int | None:
        """The row of a live paragraph, or None (newest segment first: it is the one that can hold it)."""
        for i in range(len(self._segments) - 1, -1, -1):
            local = self._segments[i].passages.row_of(passage_id)
            if local is not None and self._live[i][local]:
                return int(self._bases[i]) + local
        return None

    def speech_rows(self, speech_id: str) -> np.ndarray:
        """Rows of a live speech's paragraphs in reading order (empty for an unknown id)."""
        i = self._speech_seg.get(speech_id)
        if i is None:
            return np.zeros(0, dtype=np.int64)
        return self._segments[i].passages.rows_of_speech(speech_id) + self._bases[i]

    rows_of_speech = speech_rows

    def sentence_vectors_of(self, row: int) -> np.ndarray:
        seg, local = self._locate(int(row))
        return seg.passages.sentence_vectors_of(local)

    def passage_vectors_of(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if len(self._segments) == 1:
            return self._segments[0].passages.passage_vectors_of(rows)
        out = np.zeros((len(rows), self.manifest.dim), dtype=np.float32)
        which = np.searchsorted(self._bases, rows, side="right") - 1
        for i in np.unique(which):
            mask = which == i
            out[mask] = self._segments[i].passages.passage_vectors_of(rows[mask] - self._bases[i])
        return out

    def contains_text(self, needle: str) -> bool:
        """Whether a paragraph, section, or speech title/speaker/role contains ``needle`` (substring).

        Scans the memory-mapped text of every segment, deleted paragraphs included.
        """
        if any(needle in f"{sp.title} {sp.speaker} {sp.role}" for sp in self.speeches.values()):
            return True
        return any(seg.passages.contains_text(needle) for seg in self._segments)
