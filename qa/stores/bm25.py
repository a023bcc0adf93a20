"""BM25 over an inverted index of CSR postings (term -> documents, term frequencies) in numpy arrays.

Only documents that contain a query term are scored, and a top-k query scores fewer still: terms whose summed
best possible contribution cannot lift a document into the top k (MaxScore) are only looked up for the
documents the rarer terms found, never walked. Scores use Lucene's idf, log(1 + (N - df + 0.5) /
(df + 0.5)), and k1=1.2, b=0.75, computed at query time from the live documents' df and average length,
so adding a segment or deleting rows needs no rebuild (bm25s "lucene" gives the same numbers).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

K1 = 1.2
B = 0.75
FILES = ("lex_vocab.txt", "lex_indptr.npy", "lex_docs.npy", "lex_tf.npy", "lex_doclen.npy")


def idf(df: int | np.ndarray, n_docs: int) -> Any:
    return np.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))


class InvertedBM25:
    """One segment's postings. Build with ``add`` + ``save``; ``load`` memory-maps the arrays.

    ``delete`` hides rows of this object only: a snapshot takes a ``view()`` so segments loaded once are
    shared between index versions with different tombstones.
    """

    def __init__(self) -> None:
        self._pending: list[Sequence[str]] = []
        self.vocab: dict[str, int] = {}
        self.indptr = np.zeros(1, dtype=np.int64)
        self.docs = np.zeros(0, dtype=np.int32)
        self.tf = np.zeros(0, dtype=np.float32)
        self.doclen = np.zeros(0, dtype=np.float32)
        self.live: np.ndarray | None = None  # None: every row is live
        self._df: dict[str, int] = {}  # live df by term, filled on demand when there are tombstones

    # -- writing --------------------------------------------------------------------------------------

    def add(self, rows: np.ndarray, token_lists: Sequence[Sequence[str]]) -> None:
        if len(rows) and int(rows[0]) != len(self.doclen):
            raise ValueError("rows of a segment are added in order")
        self._pending.extend(token_lists)
        self._freeze()

    def _freeze(self, chunk: int = 50_000) -> None:
        """Turn pending token lists into CSR postings, a chunk of documents at a time (bounded memory)."""
        docs_tokens = self._pending
        if not docs_tokens:
            return
        vocab = self.vocab
        # int32 terms and rows (the stored dtype): a million paragraphs have ~55M postings.
        old_terms = np.repeat(np.arange(len(self.indptr) - 1, dtype=np.int32), np.diff(self.indptr))
        terms, docs, tfs = [old_terms], [np.asarray(self.docs, dtype=np.int32)], [np.asarray(self.tf)]
        lengths = []
        base = len(self.doclen)
        for start in range(0, len(docs_tokens), chunk):
            part = docs_tokens[start : start + chunk]
            ids: list[int] = []
            for toks in part:
                ids.extend([vocab.setdefault(t, len(vocab)) for t in toks])
            n_tok = np.asarray([len(t) for t in part], dtype=np.int64)
            lengths.append(n_tok)
            doc = np.repeat(np.arange(len(part), dtype=np.int64), n_tok)
            key = np.asarray(ids, dtype=np.int64) * len(part) + doc
            uniq, counts = np.unique(key, return_counts=True)  # sorted by (term, doc)
            terms.append((uniq // len(part)).astype(np.int32))
            docs.append((uniq % len(part) + base + start).astype(np.int32))
            del ids, key, uniq
            tfs.append(counts.astype(np.float32))
        term = np.concatenate(terms)
        del terms
        # Stable: within a term, documents stay in increasing order (chunks come in document order).
        order = np.argsort(term, kind="stable")
        self.docs = np.concatenate(docs)[order]
        del docs
        self.tf = np.concatenate(tfs)[order].astype(np.float32)
        del tfs, order
        self.indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
        self.indptr[1:] = np.cumsum(np.bincount(term, minlength=len(vocab)))
        # bm25s indexes an empty document as one "<empty>" token; its length is 1 there too.
        self.doclen = np.concatenate(
            [np.asarray(self.doclen), np.maximum(np.concatenate(lengths), 1).astype(np.float32)]
        )
        self._pending = []

    def save(self, directory: Path) -> dict[str, Any]:
        self._freeze()
        terms = sorted(self.vocab, key=self.vocab.__getitem__)
        if any("\n" in t for t in terms):
            raise ValueError("a token contains a newline")
        (directory / "lex_vocab.txt").write_text("\n".join(terms), encoding="utf-8")
        np.save(directory / "lex_indptr.npy", self.indptr)
        np.save(directory / "lex_docs.npy", self.docs)
        np.save(directory / "lex_tf.npy", self.tf)
        np.save(directory / "lex_doclen.npy", self.doclen)
        return {"terms": len(terms), "postings": int(len(self.docs))}

    @classmethod
    def merged(cls, parts: Sequence[tuple[InvertedBM25, np.ndarray]]) -> InvertedBM25:
        """The live rows of ``parts`` (store, live mask) in order, as one store; no re-tokenizing."""
        out = cls()
        terms_all, docs_all, tf_all = [], [], []
        base = 0
        for store, live in parts:
            new_row = np.cumsum(live) - 1 + base
            local_terms = sorted(store.vocab, key=store.vocab.__getitem__)
            remap = np.fromiter(
                (out.vocab.setdefault(t, len(out.vocab)) for t in local_terms), np.int64, len(local_terms)
            )
            term = np.repeat(remap.astype(np.int32), np.diff(store.indptr))
            keep = live[store.docs]
            terms_all.append(term[keep])
            docs_all.append(new_row[store.docs[keep]].astype(np.int32))
            tf_all.append(np.asarray(store.tf)[keep])
            out.doclen = np.concatenate([out.doclen, np.asarray(store.doclen)[live]])
            base += int(live.sum())
        if base:
            term = np.concatenate(terms_all)
            # Parts come in row order and each part's postings are sorted by (term, row): a stable sort by term
            # alone gives (term, row) order.
            order = np.argsort(term, kind="stable")
            out.docs = np.concatenate(docs_all)[order]
            out.tf = np.concatenate(tf_all)[order].astype(np.float32)
            out.indptr = np.zeros(len(out.vocab) + 1, dtype=np.int64)
            out.indptr[1:] = np.cumsum(np.bincount(term, minlength=len(out.vocab)))
        return out

    # -- reading --------------------------------------------------------------------------------------

    @classmethod
    def load(cls, directory: Path) -> InvertedBM25:
        store = cls()
        text = (directory / "lex_vocab.txt").read_text(encoding="utf-8")
        terms = text.split("\n") if text else []
        store.vocab = dict(zip(terms, range(len(terms)), strict=True))
        # Plain ndarray views of the maps: np.memmap's Python __getitem__ costs microseconds per slice.
        load = lambda name: np.load(directory / name, mmap_mode="r", allow_pickle=False).view(np.ndarray)  # noqa: E731
        store.indptr, store.docs = load("lex_indptr.npy"), load("lex_docs.npy")
        store.tf, store.doclen = load("lex_tf.npy"), load("lex_doclen.npy")
        if len(store.indptr) != len(terms) + 1 or store.indptr[-1] != len(store.docs) != len(store.tf):
            raise ValueError("lexical postings do not match the vocabulary")
        return store

    def view(self) -> InvertedBM25:
        """A copy sharing the arrays, with its own deletions."""
        other = InvertedBM25.__new__(InvertedBM25)
        other.__dict__.update(self.__dict__)
        other.live = None if self.live is None else self.live.copy()
        other._df = {}
        return other

    def delete(self, rows: np.ndarray) -> None:
        if self.live is None:
            self.live = np.ones(len(self.doclen), dtype=bool)
        self.live[np.asarray(rows, dtype=np.int64)] = False
        self._df = {}

    @property
    def n_rows(self) -> int:
        return len(self.doclen)

    @property
    def n_docs(self) -> int:
        return self.n_rows if self.live is None else int(self.live.sum())

    def length_sum(self) -> float:
        dl = np.asarray(self.doclen, dtype=np.float64)
        return float(dl.sum() if self.live is None else dl[self.live].sum())

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(rows, term frequencies) of live documents containing ``term``."""
        col = self.vocab.get(term)
        if col is None:
            return None
        a, b = int(self.indptr[col]), int(self.indptr[col + 1])
        docs, tf = np.asarray(self.docs[a:b]), np.asarray(self.tf[a:b])
        if self.live is not None:
            keep = self.live[docs]
            docs, tf = docs[keep], tf[keep]
        return docs, tf

    def df(self, term: str) -> int:
        """Live documents containing ``term``. With tombstones that means filtering the postings (O(df), a few
        ms for a common term at 1M rows), so it is remembered: a view's deletions never change after load."""
        col = self.vocab.get(term)
        if col is None:
            return 0
        if self.live is None:
            return int(self.indptr[col + 1] - self.indptr[col])
        cached = self._df.get(term)
        if cached is None:
            a, b = int(self.indptr[col]), int(self.indptr[col + 1])
            cached = self._df[term] = int(np.count_nonzero(self.live[self.docs[a:b]]))
        return cached

    def scores_for(
        self,
        query_tokens: Sequence[str],
        idfs: dict[str, float],
        avgdl: float,
        allowed: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(rows, scores) of the documents containing a query term, with corpus-wide ``idfs`` and ``avgdl``.

        A repeated query token counts again, as in bm25s. ``allowed`` is a boolean mask over rows.
        """
        rows, scores = [], []
        for t in query_tokens:
            post = self.postings(t)
            if post is None or not len(post[0]):
                continue
            docs, tf = post
            if allowed is not None:
                keep = allowed[docs]
                docs, tf = docs[keep], tf[keep]
            dl = np.asarray(self.doclen[docs], dtype=np.float32)
            s = idfs[t] * tf / (tf + K1 * ((1 - B) + B * dl / np.float32(avgdl)))
            rows.append(docs)
            scores.append(s.astype(np.float32))
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        uniq, inverse = np.unique(np.concatenate(rows), return_inverse=True)
        summed = np.bincount(inverse, weights=np.concatenate(scores)).astype(np.float32)
        return uniq.astype(np.int64), summed

    def _weights(self, query_tokens: Sequence[str], idfs: dict[str, float]) -> list[tuple[int, float]]:
        """(term column, idf x repetitions) of the query terms this segment has, a repeated token counting again."""
        counts = Counter(t for t in query_tokens if t in self.vocab)
        return [(self.vocab[t], idfs[t] * c) for t, c in counts.items()]

    def _term_part(self, col: int, weight: float, avgdl: float) -> tuple[np.ndarray, np.ndarray]:
        a, b = int(self.indptr[col]), int(self.indptr[col + 1])
        docs, tf = np.asarray(self.docs[a:b]), np.asarray(self.tf[a:b])
        dl = np.asarray(self.doclen[docs], dtype=np.float32)
        return docs, (weight * tf / (tf + K1 * ((1 - B) + B * dl / np.float32(avgdl)))).astype(np.float32)

    def score_rows(
        self, query_tokens: Sequence[str], idfs: dict[str, float], avgdl: float, rows: np.ndarray
    ) -> np.ndarray:
        """BM25 of the given rows (0 for a deleted row or one without a query term): binary searches in the
        postings, so the cost is O(len(rows) x log df) per term however common the term is."""
        rows = np.asarray(rows, dtype=np.int64)
        out = self._score(self._weights(query_tokens, idfs), rows, avgdl)
        if self.live is not None and len(rows):
            out[~self.live[rows]] = 0.0
        return out

    def _score(self, weights: Sequence[tuple[int, float]], rows: np.ndarray, avgdl: float) -> np.ndarray:
        total = np.zeros(len(rows), dtype=np.float64)
        if not len(rows):
            return total.astype(np.float32)
        dl = np.asarray(self.doclen[rows], dtype=np.float32)
        for col, weight in weights:
            a, b = int(self.indptr[col]), int(self.indptr[col + 1])
            if a == b:
                continue
            docs = self.docs[a:b]
            pos = np.minimum(np.searchsorted(docs, rows), b - a - 1)
            hit = np.asarray(docs[pos]) == rows
            tf = np.asarray(self.tf[a:b])[pos[hit]]
            total[hit] += weight * tf / (tf + K1 * ((1 - B) + B * dl[hit] / np.float32(avgdl)))
        return total.astype(np.float32)

    def top_scored(
        self,
        query_tokens: Sequence[str],
        idfs: dict[str, float],
        avgdl: float,
        k: int,
        allowed: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The exact top ``k`` (rows, scores) without walking the postings of terms too common to matter.

        A term adds less than its weight (idf x repetitions: tf / (tf + K1 ...) < 1). The best documents of
        the rarest term, scored in full, give a lower bound on the k-th best score; the most common terms
        whose weights sum below it are *non-essential*: a document with none of the other terms cannot reach
        the top k. Only the essential terms' postings are walked; of the documents found, those whose
        essential part plus every non-essential weight cannot reach the k-th best essential part are dropped,
        and the rest are scored with all terms by lookup. ``allowed`` is a boolean mask over rows.
        """
        weights = self._weights(query_tokens, idfs)
        if not weights or k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        keep = self.live
        if allowed is not None:
            keep = allowed if keep is None else keep & allowed
        df = {col: int(self.indptr[col + 1] - self.indptr[col]) for col, _ in weights}
        rarest, w0 = min(weights, key=lambda cw: df[cw[0]])
        docs, part = self._term_part(rarest, w0, avgdl)
        if keep is not None:
            docs, part = docs[keep[docs]], part[keep[docs]]
        if len(docs) > 4 * k:
            docs = docs[np.argpartition(-part, 4 * k - 1)[: 4 * k]]
        seed = self._score(weights, np.sort(docs), avgdl)
        theta = float(np.partition(seed, len(seed) - k)[len(seed) - k]) if len(seed) >= k else 0.0
        essential, optional, bound = [], [], 0.0
        for col, weight in sorted(weights, key=lambda cw: cw[1]):  # lowest weight (most common) first
            if bound + weight < theta:
                bound += weight
                optional.append((col, weight))
            else:
                essential.append((col, weight))
        rows: np.ndarray
        if sum(df[c] for c, _ in essential) * 64 < self.n_rows:
            parts = [np.asarray(self.docs[self.indptr[c] : self.indptr[c + 1]]) for c, _ in essential]
            rows = np.unique(np.concatenate(parts))
            if keep is not None:
                rows = rows[keep[rows]]
            partial = self._score(essential, rows, avgdl)
        else:  # many postings: one pass into a dense accumulator beats sorting them
            acc = np.zeros(self.n_rows, dtype=np.float64)
            for col, weight in essential:
                d, s = self._term_part(col, weight, avgdl)
                acc[d] += s
            if keep is not None:
                acc[~keep] = 0.0
            # A document whose essential part is below theta - bound cannot reach the top k.
            rows = np.flatnonzero(acc >= max(theta - bound - 1e-4 * max(theta, 1.0), 1e-12))
            partial = acc[rows].astype(np.float32)
        if optional and len(rows) > k:
            floor = max(theta, float(np.partition(partial, len(partial) - k)[len(partial) - k]))
            cut = partial + bound >= floor - 1e-4 * max(floor, 1.0)
            rows, partial = rows[cut], partial[cut]
        # The essential part is known: only the non-essential terms are looked up.
        return top_k(rows, partial + self._score(optional, rows, avgdl), k)

    def _corpus_stats(self, query_tokens: Sequence[str]) -> tuple[dict[str, float], float]:
        n = self.n_docs
        avgdl = self.length_sum() / n if n else 1.0
        return {t: float(idf(self.df(t), n)) for t in set(query_tokens)}, avgdl

    def scores(self, query_tokens: Sequence[str], rows: np.ndarray) -> np.ndarray:
        """BM25 of ``rows`` with this segment alone as the corpus."""
        idfs, avgdl = self._corpus_stats(query_tokens)
        return self.score_rows(query_tokens, idfs, avgdl, rows)

    def top(
        self, query_tokens: Sequence[str], k: int | None, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """This segment alone as a corpus (``allowed``: row ids)."""
        idfs, avgdl = self._corpus_stats(query_tokens)
        mask = None
        if allowed is not None:
            mask = np.zeros(self.n_rows, dtype=bool)
            mask[np.asarray(allowed, dtype=np.int64)] = True
        if k is not None:
            return self.top_scored(query_tokens, idfs, avgdl, k, mask)
        rows, scores = self.scores_for(query_tokens, idfs, avgdl, mask)
        return top_k(rows, scores, k)


def top_k(rows: np.ndarray, scores: np.ndarray, k: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` by score, ties by row; all of them sorted when k is None."""
    if k is not None and len(rows) > k:
        keep = np.argpartition(-scores, k - 1)[:k]
        rows, scores = rows[keep], scores[keep]
    order = np.lexsort((rows, -scores))
    return rows[order], scores[order]
