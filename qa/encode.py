"""Paragraph and sentence vectors for an index build, reusing every vector that is already known."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import numpy as np

from data.records import Paragraph, Speech
from embeddings.encoder import Encoder

log = logging.getLogger(__name__)

# Cache entries hold a paragraph vector followed by its sentence vectors; the kind names that layout.
SPAN_KIND = "passage+sentences:v1"
BATCH = 32  # paragraphs per encoder call: 4 batches of 8, so 2 cores each have one queued (ingest)


class VectorSource(Protocol):
    """Where known vectors can be read: a loaded index or one of its segments (the PassageStore read side)."""

    speeches: Mapping[str, Speech]

    def paragraph(self, row: int) -> Paragraph: ...

    def passage_vectors_of(self, rows: np.ndarray) -> np.ndarray: ...

    def sentence_vectors_of(self, row: int) -> np.ndarray: ...


def dense_prefix(speech: Speech, paragraph: Paragraph) -> str:
    """What the dense encoder sees before a paragraph: its speech title and section heading.

    The heading gives a paragraph its topic (many paragraphs never repeat it); the paragraph text starts at
    a known offset so its sentence spans can be located inside the encoded text.
    """
    leaf = paragraph.section.split(" / ")[-1] if paragraph.section else ""
    return f"{speech.title}｜{leaf}\n" if leaf else f"{speech.title}\n"


def _spans(prefix: str, paragraph: Paragraph) -> list[tuple[int, int]]:
    return [(len(prefix) + s.start, len(prefix) + s.end) for s in paragraph.sentences]


def paragraph_key(prefix: str, paragraph: Paragraph) -> str:
    """Identifies the encoder input of a paragraph: its text, prefix and sentence spans."""
    return prefix + paragraph.text + "\x00" + ",".join(f"{a}:{b}" for a, b in _spans(prefix, paragraph))


def encode_paragraphs(
    encoder: Encoder,
    items: Sequence[tuple[str, Paragraph]],
    *,
    cache=None,
    reuse: Sequence[tuple[VectorSource, np.ndarray]] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Return (paragraph vectors, sentence vectors in paragraph order, number of paragraphs encoded now).

    Paragraph vectors are float32; sentence vectors float16, as the passage store keeps them: both are filled
    into arrays allocated once, so a large build holds each vector once (4.5M sentence vectors of 384
    dimensions are 3.5 GB in float16, twice that in float32, four times with per-paragraph copies).

    ``items`` are (prefix, paragraph): the encoder sees ``prefix + paragraph.text``. Sentence vectors come
    from the same forward pass when the encoder can pool token spans (no second pass over the text);
    otherwise each sentence is encoded on its own. ``reuse`` lists (store, rows) whose vectors may be taken
    for identical encoder inputs (same model: the caller checks); only those rows are read.
    """
    dim = encoder.dim
    n = len(items)
    fulls = [prefix + p.text for prefix, p in items]
    spans = [_spans(prefix, p) for prefix, p in items]
    keys = [paragraph_key(prefix, p) for prefix, p in items]
    sent_off = np.zeros(n + 1, dtype=np.int64)
    sent_off[1:] = np.cumsum([len(sp) for sp in spans])
    passage = np.zeros((n, dim), dtype=np.float32)
    sentence = np.zeros((int(sent_off[-1]), dim), dtype=np.float16)
    have = np.zeros(n, dtype=bool)

    def put(i: int, vec: np.ndarray) -> None:
        passage[i] = vec[0]
        sentence[sent_off[i] : sent_off[i + 1]] = vec[1:]
        have[i] = True

    if reuse:
        previous: dict[str, tuple[VectorSource, int]] = {}
        for store, rows in reuse:
            for row in np.asarray(rows, dtype=np.int64).tolist():
                p = store.paragraph(row)
                previous[paragraph_key(dense_prefix(store.speeches[p.speech_id], p), p)] = (store, row)
        for i, k in enumerate(keys):
            found = previous.get(k)
            if found is not None:
                store, row = found
                put(
                    i,
                    np.vstack([store.passage_vectors_of(np.asarray([row])), store.sentence_vectors_of(row)]),
                )
        del previous

    missing = [i for i in range(n) if not have[i]]
    if cache is not None and missing:
        cached = cache.get_many(encoder.model_id, SPAN_KIND, [keys[i] for i in missing])
        for i, vec in zip(missing, cached, strict=True):
            if vec is not None and vec.shape == (1 + len(spans[i]), dim):
                put(i, vec)
        missing = [i for i in range(n) if not have[i]]

    # Batches of similar length waste less work on padding: sort what is left to encode by length.
    missing.sort(key=lambda i: len(fulls[i]))
    done = n - len(missing)
    if progress:
        progress(done, n)
    for start in range(0, len(missing), BATCH):
        batch = missing[start : start + BATCH]
        texts = [fulls[i] for i in batch]
        batch_spans = [spans[i] for i in batch]
        with_spans = getattr(encoder, "encode_passages_with_spans", None)
        if with_spans is not None:
            pvecs, svecs = with_spans(texts, batch_spans)
        else:
            pvecs = encoder.encode_passages(texts)
            flat = [texts[j][a:b] for j in range(len(batch)) for a, b in batch_spans[j]]
            allv = encoder.encode_passages(flat) if flat else np.zeros((0, dim), np.float32)
            svecs, pos = [], 0
            for sp in batch_spans:
                svecs.append(allv[pos : pos + len(sp)])
                pos += len(sp)
        entries = []
        for j, i in enumerate(batch):
            vec = np.vstack([pvecs[j : j + 1], svecs[j]]).astype(np.float32)
            put(i, vec)
            entries.append(vec)
        if cache is not None:
            cache.put_many(encoder.model_id, SPAN_KIND, [keys[i] for i in batch], entries)
        done += len(batch)
        if progress:
            progress(done, n)
    return passage, sentence, len(missing)
