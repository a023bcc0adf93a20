"""Columnar passage store: paragraph text, ids and sentence spans in flat UTF-8 blobs plus numpy offsets.

Everything is memory-mapped and decoded per row on demand, so opening a million paragraphs creates no
Python object per paragraph. ``row_of`` finds an id through a sorted array of 64-bit id hashes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import mmap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from data.records import Paragraph, Sentence, Speech

FILES = (
    "speeches.jsonl",
    "pid.bin",
    "pid_off.npy",
    "pid_hash.npy",
    "pid_order.npy",
    "text.bin",
    "text_off.npy",
    "section.bin",
    "section_off.npy",
    "para_speech.npy",
    "ordinal.npy",
    "sent_off.npy",
    "sent_spans.npy",
    "passage_vecs.npy",
    "sentence_vecs.npy",
)


def id_hash(ids: Sequence[str]) -> np.ndarray:
    """Stable 64-bit hashes of ids (never Python's salted ``hash()``)."""
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(i.encode(), digest_size=8).digest(), "little") for i in ids),
        dtype=np.uint64,
        count=len(ids),
    )


def speech_to_json(sp: Speech) -> dict[str, Any]:
    """Every dataclass field but the paragraphs, so fields added to Speech later survive a round trip."""
    out = {}
    for f in dataclasses.fields(sp):
        if f.name == "paragraphs":
            continue
        value = getattr(sp, f.name)
        out[f.name] = dict(value) if isinstance(value, Mapping) else value
    return out


def speech_from_json(d: Mapping[str, Any]) -> Speech:
    known = {f.name for f in dataclasses.fields(Speech)}
    kwargs: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in known}
    kwargs["paragraphs"] = ()
    return Speech(**kwargs)


def _blob(parts: Sequence[str]) -> tuple[bytes, np.ndarray]:
    encoded = [p.encode("utf-8") for p in parts]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(e) for e in encoded])
    return b"".join(encoded), offsets


def write_passages(
    directory: Path, speeches: Sequence[Speech], passage_vecs: np.ndarray, sentence_vecs: np.ndarray
) -> None:
    """Write the paragraphs of ``speeches`` (rows in speech order) and their vectors."""
    paragraphs = [p for sp in speeches for p in sp.paragraphs]
    with open(directory / "speeches.jsonl", "w", encoding="utf-8") as fh:
        first = 0
        for sp in speeches:
            row = {"speech": speech_to_json(sp), "first_row": first, "n_rows": len(sp.paragraphs)}
            row["n_sentences"] = sum(len(p.sentences) for p in sp.paragraphs)
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            first += len(sp.paragraphs)
    ids = [p.paragraph_id for p in paragraphs]
    for name, parts in (
        ("pid", ids),
        ("text", [p.text for p in paragraphs]),
        ("section", [p.section for p in paragraphs]),
    ):
        blob, off = _blob(parts)
        (directory / f"{name}.bin").write_bytes(blob)
        np.save(directory / f"{name}_off.npy", off)
    hashes = id_hash(ids)
    order = np.argsort(hashes, kind="stable")
    np.save(directory / "pid_hash.npy", hashes[order])
    np.save(directory / "pid_order.npy", order.astype(np.int64))
    speech_idx = np.repeat(np.arange(len(speeches), dtype=np.int32), [len(sp.paragraphs) for sp in speeches])
    np.save(directory / "para_speech.npy", speech_idx)
    np.save(directory / "ordinal.npy", np.asarray([p.ordinal for p in paragraphs], dtype=np.int32))
    sent_off = np.zeros(len(paragraphs) + 1, dtype=np.int64)
    sent_off[1:] = np.cumsum([len(p.sentences) for p in paragraphs])
    np.save(directory / "sent_off.npy", sent_off)
    spans = np.asarray([(s.start, s.end) for p in paragraphs for s in p.sentences], dtype=np.int32)
    np.save(directory / "sent_spans.npy", spans.reshape(-1, 2))
    np.save(directory / "passage_vecs.npy", np.ascontiguousarray(passage_vecs, dtype=np.float32))
    np.save(directory / "sentence_vecs.npy", np.ascontiguousarray(sentence_vecs, dtype=np.float16))
    _save_bigrams(directory)


def _save_bigrams(directory: Path) -> None:
    """The bigram filter of ``contains_text``, from the blobs just written."""
    load = lambda name: np.load(directory / name, mmap_mode="r")  # noqa: E731
    blobs = [(_map_bytes(directory / f"{n}.bin"), load(f"{n}_off.npy")) for n in ("text", "section")]
    np.save(directory / BIGRAMS, text_bigrams(blobs))


BIGRAMS = "bigrams.npy"  # optional (segments written before it search without it)


def _bigram_codes(text: str) -> np.ndarray:
    """Sorted distinct (code point << 21 | next code point) of ``text``."""
    a = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    return np.unique((a[:-1] << np.uint64(21)) | a[1:]) if len(a) > 1 else np.zeros(0, np.uint64)


def text_bigrams(blobs: Sequence[tuple[Any, np.ndarray]], block: int = 1 << 24) -> np.ndarray:
    """Every character bigram of the (blob, row offsets) pairs, as ``contains_text`` scans them: decoded a block
    of whole rows at a time, each block prefixed with the previous one's last character."""
    out = np.zeros(0, np.uint64)
    for blob, off in blobs:
        offsets = np.asarray(off)
        if len(blob) == 0:
            continue
        cuts = np.unique(np.searchsorted(offsets, np.arange(0, int(offsets[-1]), block)))
        bounds = [int(offsets[c]) for c in cuts] + [int(offsets[-1])]
        last = ""
        for a, b in zip(bounds, bounds[1:], strict=False):
            if b <= a:
                continue
            text = last + bytes(blob[a:b]).decode("utf-8")
            out = np.union1d(out, _bigram_codes(text))
            last = text[-1]
    return out


def _map_bytes(path: Path) -> Any:
    if path.stat().st_size == 0:
        return b""
    with open(path, "rb") as fh:
        return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)


class ColumnarPassages:
    """One segment's paragraphs, by local row. Read-only; shared by every snapshot that uses the segment."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        # Plain ndarray views of the maps: np.memmap's Python __getitem__ costs microseconds per slice.
        load = lambda name: np.load(directory / name, mmap_mode="r", allow_pickle=False).view(np.ndarray)  # noqa: E731
        self._pid, self._pid_off = _map_bytes(directory / "pid.bin"), load("pid_off.npy")
        self._text, self._text_off = _map_bytes(directory / "text.bin"), load("text_off.npy")
        self._section, self._section_off = _map_bytes(directory / "section.bin"), load("section_off.npy")
        self._pid_hash, self._pid_order = load("pid_hash.npy"), load("pid_order.npy")
        self._para_speech, self._ordinal = load("para_speech.npy"), load("ordinal.npy")
        self._sent_off, self._sent_spans = load("sent_off.npy"), load("sent_spans.npy")
        self.passage_vectors = load("passage_vecs.npy")
        self.sentence_vectors = load("sentence_vecs.npy")
        self.speech_list: list[Speech] = []
        self.speech_ranges: dict[str, tuple[int, int, int]] = {}  # id -> (first row, rows, sentences)
        with open(directory / "speeches.jsonl", encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                sp = speech_from_json(row["speech"])
                self.speech_list.append(sp)
                self.speech_ranges[sp.speech_id] = (
                    row["first_row"],
                    row["n_rows"],
                    row.get("n_sentences", 0),
                )
        self.speeches: Mapping[str, Speech] = {sp.speech_id: sp for sp in self.speech_list}
        self.n_rows = len(self._pid_off) - 1
        self._bigrams = load(BIGRAMS) if (directory / BIGRAMS).exists() else None

    def check(self, dim: int) -> str | None:
        """A description of the first inconsistency between the files, or None."""
        n = self.n_rows
        m = int(self._sent_off[-1]) if n >= 0 and len(self._sent_off) else -1
        problems = [
            (self.passage_vectors.shape != (n, dim), "passage_vecs.npy"),
            (self.sentence_vectors.shape != (m, dim), "sentence_vecs.npy"),
            (len(self._text_off) != n + 1 or self._text_off[-1] != len(self._text), "text.bin"),
            (len(self._section_off) != n + 1, "section_off.npy"),
            (len(self._sent_off) != n + 1 or len(self._sent_spans) != m, "sent_spans.npy"),
            (len(self._pid_hash) != n or len(self._pid_order) != n, "pid_hash.npy"),
            (len(self._para_speech) != n, "para_speech.npy"),
            (sum(r[1] for r in self.speech_ranges.values()) != n, "speeches.jsonl"),
        ]
        return next((name for bad, name in problems if bad), None)

    def _str(self, blob: Any, off: np.ndarray, row: int) -> str:
        return bytes(blob[int(off[row]) : int(off[row + 1])]).decode("utf-8")

    def paragraph_id(self, row: int) -> str:
        return self._str(self._pid, self._pid_off, row)

    def text(self, row: int) -> str:
        return self._str(self._text, self._text_off, row)

    def speech_id_of(self, row: int) -> str:
        return self.speech_list[int(self._para_speech[row])].speech_id

    def paragraph(self, row: int) -> Paragraph:
        pid = self.paragraph_id(row)
        text = self.text(row)
        a, b = int(self._sent_off[row]), int(self._sent_off[row + 1])
        sentences = tuple(
            Sentence(sentence_id=f"{pid}-{i}", start=s, end=e, text=text[s:e])
            for i, (s, e) in enumerate(self._sent_spans[a:b].tolist())
        )
        return Paragraph(
            paragraph_id=pid,
            speech_id=self.speech_id_of(row),
            ordinal=int(self._ordinal[row]),
            section=self._str(self._section, self._section_off, row),
            text=text,
            sentences=sentences,
        )

    def row_of(self, passage_id: str) -> int | None:
        h = id_hash([passage_id])[0]
        lo = int(np.searchsorted(self._pid_hash, h, side="left"))
        hi = int(np.searchsorted(self._pid_hash, h, side="right"))
        for i in range(lo, hi):  # more than one only on a 64-bit collision
            row = int(self._pid_order[i])
            if self.paragraph_id(row) == passage_id:
                return row
        return None

    def rows_of_speech(self, speech_id: str) -> np.ndarray:
        first, n, _ = self.speech_ranges.get(speech_id, (0, 0, 0))
        return np.arange(first, first + n, dtype=np.int64)

    def sentence_vectors_of(self, row: int) -> np.ndarray:
        return np.asarray(
            self.sentence_vectors[int(self._sent_off[row]) : int(self._sent_off[row + 1])], np.float32
        )

    def passage_vectors_of(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.passage_vectors[np.asarray(rows, dtype=np.int64)], dtype=np.float32)

    def fingerprint(self) -> str:
        """sha256 over every row's paragraph id and text, in row order."""
        h = hashlib.sha256()
        pid_off, text_off = np.asarray(self._pid_off).tolist(), np.asarray(self._text_off).tolist()
        for r in range(self.n_rows):
            h.update(self._pid[pid_off[r] : pid_off[r + 1]])
            h.update(self._text[text_off[r] : text_off[r + 1]])
        return h.hexdigest()

    def contains_text(self, needle: str) -> bool:
        """Whether any paragraph text or section of the segment contains ``needle`` (a byte scan of the blobs).

        A needle with a character bigram the segment does not have is absent without a scan: at 1M paragraphs
        the scan of ~400 MB took 120 ms for each word a question names that the corpus does not.
        """
        if self._bigrams is not None and len(needle) >= 2:
            codes = _bigram_codes(needle)
            pos = np.minimum(np.searchsorted(self._bigrams, codes), max(len(self._bigrams) - 1, 0))
            if not len(self._bigrams) or not np.all(self._bigrams[pos] == codes):
                return False
        b = needle.encode("utf-8")
        return any(len(blob) and blob.find(b) >= 0 for blob in (self._text, self._section))


def _copy_runs(out: Any, blob: Any, runs: Sequence[tuple[int, int]]) -> None:
    for a, b in runs:
        if b > a:
            out.write(blob[a:b])


def _npy_out(path: Path, shape: tuple[int, ...], dtype: Any) -> np.memmap:
    return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)


def write_merged_passages(directory: Path, parts: Sequence[tuple[ColumnarPassages, Sequence[str]]]) -> None:
    """The live rows of several segments' passage stores (each with its tombstoned speech ids) as one store.

    Copied column by column, a speech's contiguous rows at a time, straight from the memory maps into the new
    files: no Python object per paragraph and no in-memory copy of the vectors (compaction at 1M rows).
    """
    plans = []  # per part: live speeches (list index, speech, first, rows, sentences)
    for store, deleted in parts:
        gone = set(deleted)
        live = [
            (i, sp, *store.speech_ranges[sp.speech_id])
            for i, sp in enumerate(store.speech_list)
            if sp.speech_id not in gone
        ]
        plans.append((store, live))
    n = sum(r for _, live in plans for *_, r, _s in live)
    m = sum(
        int(store._sent_off[f + r] - store._sent_off[f]) for store, live in plans for _, _, f, r, _s in live
    )
    dim = plans[0][0].passage_vectors.shape[1] if plans else 0
    pvec = _npy_out(directory / "passage_vecs.npy", (n, dim), np.float32)
    svec = _npy_out(directory / "sentence_vecs.npy", (m, dim), np.float16)
    offs: dict[str, list[np.ndarray]] = {"pid": [], "text": [], "section": []}
    ends = {"pid": 0, "text": 0, "section": 0}
    hashes, para_speech, ordinal, sent_counts, spans = [], [], [], [], []
    row = sent = n_speech = 0
    with (
        open(directory / "speeches.jsonl", "w", encoding="utf-8") as fh,
        open(directory / "pid.bin", "wb") as pid_out,
        open(directory / "text.bin", "wb") as text_out,
        open(directory / "section.bin", "wb") as section_out,
    ):
        outs = {"pid": pid_out, "text": text_out, "section": section_out}
        for store, live in plans:
            by_row = np.empty(store.n_rows, dtype=np.uint64)
            by_row[np.asarray(store._pid_order)] = store._pid_hash
            for _, sp, first, rows, _ in live:
                last = first + rows
                s0, s1 = int(store._sent_off[first]), int(store._sent_off[last])
                meta = {
                    "speech": speech_to_json(sp),
                    "first_row": row,
                    "n_rows": rows,
                    "n_sentences": s1 - s0,
                }
                fh.write(json.dumps(meta, ensure_ascii=False) + "\n")
                for name, blob, off in (
                    ("pid", store._pid, store._pid_off),
                    ("text", store._text, store._text_off),
                    ("section", store._section, store._section_off),
                ):
                    o = np.asarray(off[first : last + 1], dtype=np.int64)
                    _copy_runs(outs[name], blob, [(int(o[0]), int(o[-1]))])
                    offs[name].append(o[1:] - o[0] + ends[name])
                    ends[name] += int(o[-1] - o[0])
                hashes.append(by_row[first:last])
                para_speech.append(np.full(rows, n_speech, dtype=np.int32))
                ordinal.append(np.asarray(store._ordinal[first:last]))
                sent_counts.append(np.diff(np.asarray(store._sent_off[first : last + 1])))
                spans.append(np.asarray(store._sent_spans[s0:s1]))
                pvec[row : row + rows] = store.passage_vectors[first:last]
                svec[sent : sent + s1 - s0] = store.sentence_vectors[s0:s1]
                row, sent, n_speech = row + rows, sent + s1 - s0, n_speech + 1
    pvec.flush()
    svec.flush()
    del pvec, svec
    cat = lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt)  # noqa: E731
    for name in offs:
        np.save(
            directory / f"{name}_off.npy", np.concatenate([np.zeros(1, np.int64), cat(offs[name], np.int64)])
        )
    h = cat(hashes, np.uint64)
    order = np.argsort(h, kind="stable")
    np.save(directory / "pid_hash.npy", h[order])
    np.save(directory / "pid_order.npy", order.astype(np.int64))
    np.save(directory / "para_speech.npy", cat(para_speech, np.int32))
    np.save(directory / "ordinal.npy", cat(ordinal, np.int32))
    np.save(
        directory / "sent_off.npy",
        np.concatenate([np.zeros(1, np.int64), np.cumsum(cat(sent_counts, np.int64))]),
    )
    np.save(directory / "sent_spans.npy", cat(spans, np.int32).reshape(-1, 2))
    _save_bigrams(directory)
