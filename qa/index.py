"""The index directory: FAISS + BM25 + paragraph store + sentence vectors + manifest, written atomically."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from data.errors import IndexCorruptedError, IndexMismatchError, IndexNotFoundError, SpeechQAError
from data.records import Paragraph, Sentence, Speech
from embeddings.encoder import Encoder
from qa.encode import dense_prefix, encode_paragraphs
from qa.lexical import LexicalIndex

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_DATA_FILES = (
    "speeches.json",
    "paragraphs.jsonl",
    "passage_vectors.npy",
    "sentence_vectors.npy",
    "dense.faiss",
)
FAISS_KINDS = ("flat", "hnsw", "ivf")

ProgressFn = Callable[[int, int], None]


def lexical_text(speech: Speech, paragraph: Paragraph) -> str:
    """What BM25 sees: text plus its speech's title, speaker, role and section, so naming them finds it."""
    return " ".join([paragraph.text, speech.title, speech.speaker, speech.role, paragraph.section])


@dataclass
class LoadedIndex:
    """An index in memory. Rows of ``passage_vectors`` and ``paragraphs`` line up."""

    path: Path
    manifest: dict
    speeches: dict[str, Speech]
    paragraphs: list[Paragraph]
    row_of: dict[str, int]
    passage_vectors: np.ndarray
    sentence_vectors: np.ndarray
    sentence_offsets: np.ndarray  # (n_paragraphs + 1,) rows of sentence_vectors per paragraph
    dense: faiss.Index
    lexical: LexicalIndex

    @property
    def version(self) -> str:
        return str(self.manifest["index_version"])

    def speech_of(self, paragraph: Paragraph) -> Speech:
        return self.speeches[paragraph.speech_id]

    def sentence_vectors_of(self, row: int) -> np.ndarray:
        return self.sentence_vectors[self.sentence_offsets[row] : self.sentence_offsets[row + 1]]


# ----------------------------------------------------------------------------------------------------
# Build


def build_index(
    speeches: Sequence[Speech],
    encoder: Encoder,
    index_dir: Path,
    *,
    cache=None,
    faiss_kind: str = "flat",
    progress: ProgressFn | None = None,
    reuse: LoadedIndex | None = None,
) -> dict:
    """Encode ``speeches`` and write a complete index to ``index_dir``, replacing any previous one atomically.

    Vectors are taken from ``reuse`` (a loaded index of the same model) or the embedding cache when the
    paragraph is unchanged, so rebuilding or adding documents only encodes new text.
    """
    if faiss_kind not in FAISS_KINDS:
        raise SpeechQAError(
            f"unknown FAISS index kind {faiss_kind!r}", fix=f"use one of {', '.join(FAISS_KINDS)}"
        )
    started = time.perf_counter()
    speeches = list(speeches)
    pairs = [(sp, p) for sp in speeches for p in sp.paragraphs]
    if not pairs:
        raise SpeechQAError("nothing to index: no paragraphs were found", fix="check the input files")
    passage_vecs, sentence_vecs, n_encoded = encode_paragraphs(
        encoder,
        [(dense_prefix(sp, p), p) for sp, p in pairs],
        cache=cache,
        reuse=reuse,
        progress=progress,
    )
    encode_seconds = time.perf_counter() - started
    lexical = LexicalIndex.build([lexical_text(sp, p) for sp, p in pairs])
    dense = _make_faiss(passage_vecs, faiss_kind)
    offsets = np.zeros(len(pairs) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(p.sentences) for _, p in pairs])

    fingerprint = hashlib.sha256()
    for _, p in pairs:
        fingerprint.update(p.paragraph_id.encode())
        fingerprint.update(p.text.encode())
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "model_id": encoder.model_id,
        "dim": int(encoder.dim),
        "faiss": faiss_kind,
        "corpus_fingerprint": fingerprint.hexdigest(),
        "counts": {
            "speeches": len(speeches),
            "paragraphs": len(pairs),
            "sentences": int(offsets[-1]),
        },
        "encoded_paragraphs": n_encoded,
        "encode_seconds": round(encode_seconds, 3),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    manifest["index_version"] = f"{manifest['corpus_fingerprint'][:12]}-{manifest['built_at']}"

    index_dir.parent.mkdir(parents=True, exist_ok=True)
    with _build_lock(index_dir):
        _write_index(index_dir, speeches, pairs, passage_vecs, sentence_vecs, dense, lexical, manifest)
    log.info("index written to %s: %s", index_dir, manifest["counts"])
    return manifest


@contextlib.contextmanager
def _build_lock(index_dir: Path) -> Iterator[None]:
    """One writer per index directory; whoever holds the lock may clear what killed builds left behind."""
    lock_path = index_dir.parent / f".{index_dir.name}.lock"
    with open(lock_path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        for stale in index_dir.parent.glob(f".{index_dir.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _write_index(index_dir, speeches, pairs, passage_vecs, sentence_vecs, dense, lexical, manifest) -> None:
    tmp = index_dir.parent / f".{index_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        _write_json(tmp / "speeches.json", [_speech_row(sp) for sp in speeches])
        with open(tmp / "paragraphs.jsonl", "w", encoding="utf-8") as fh:
            for sp, p in pairs:
                fh.write(json.dumps(_paragraph_row(sp, p), ensure_ascii=False) + "\n")
        np.save(tmp / "passage_vectors.npy", passage_vecs)
        np.save(tmp / "sentence_vectors.npy", sentence_vecs)
        faiss.write_index(dense, str(tmp / "dense.faiss"))
        lexical.save(tmp / "bm25")
        manifest["files"] = {name: _file_digest(tmp / name) for name in _all_files(tmp)}
        _write_json(tmp / MANIFEST, manifest)
        _fsync_dir(tmp)
        _swap_into_place(tmp, index_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _make_faiss(vectors: np.ndarray, kind: str) -> faiss.Index:
    dim = vectors.shape[1]
    n = vectors.shape[0]
    index: faiss.Index
    # Inner product equals cosine on the L2-normalized vectors every encoder returns.
    if kind == "hnsw":
        hnsw = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = 80
        hnsw.hnsw.efSearch = 128
        index = hnsw
    elif kind == "ivf" and n >= 64:
        nlist = max(1, min(int(4 * np.sqrt(n)), n // 39))
        quantizer = faiss.IndexFlatIP(dim)
        ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.train(vectors)
        ivf.nprobe = max(1, nlist // 4)
        index = ivf
    else:
        if kind == "ivf":
            log.info("IVF needs at least 64 paragraphs; using an exact index for %d", n)
        index = faiss.IndexFlatIP(dim)
    index.add(vectors)
    return index


def _speech_row(sp: Speech) -> dict:
    return {
        "speech_id": sp.speech_id,
        "title": sp.title,
        "speaker": sp.speaker,
        "role": sp.role,
        "date": sp.date,
        "source": sp.source,
    }


def _paragraph_row(sp: Speech, p: Paragraph) -> dict:
    return {
        "paragraph_id": p.paragraph_id,
        "speech_id": sp.speech_id,
        "ordinal": p.ordinal,
        "section": p.section,
        "text": p.text,
        "sentences": [[s.start, s.end] for s in p.sentences],
    }


def _write_json(path: Path, obj: object) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, ensure_ascii=False, indent=1)
        fh.flush()
        os.fsync(fh.fileno())


def _all_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name != MANIFEST)


def _file_digest(path: Path) -> dict:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return {"bytes": path.stat().st_size, "sha256": h.hexdigest()}


def _fsync_dir(path: Path) -> None:
    for p in path.rglob("*"):
        if p.is_file():
            with open(p, "rb") as fh:
                os.fsync(fh.fileno())


def _swap_into_place(tmp: Path, target: Path) -> None:
    """Rename the finished build over the old index; at every instant a complete index exists on disk."""
    old = target.parent / f".{target.name}.old"
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        os.rename(target, old)
    os.rename(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def _recover(index_dir: Path) -> None:
    """A crash between the two renames of a swap leaves the previous index under .NAME.old: put it back."""
    old = index_dir.parent / f".{index_dir.name}.old"
    if not index_dir.exists() and (old / MANIFEST).exists():
        log.warning("restoring the previous index from %s after an interrupted swap", old)
        os.rename(old, index_dir)


# ----------------------------------------------------------------------------------------------------
# Load


def read_manifest(index_dir: Path) -> dict:
    _recover(index_dir)
    path = index_dir / MANIFEST
    if not index_dir.exists() or not path.exists():
        raise IndexNotFoundError(
            f"no index at {index_dir}",
            fix="build one with `speechqa ingest` (or point SPEECHQA_INDEX_DIR / --index at an existing index)",
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(manifest, dict):
            raise ValueError("manifest is not an object")
    except (OSError, ValueError) as exc:
        raise IndexCorruptedError(
            f"index at {index_dir} has an unreadable manifest.json ({exc})",
            fix="rebuild it with `speechqa ingest --index " + str(index_dir) + "`",
        ) from exc
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexMismatchError(
            f"index at {index_dir} has format version {manifest.get('format_version')!r}; "
            f"this speechqa reads version {FORMAT_VERSION}",
            fix="rebuild it with `speechqa ingest --index " + str(index_dir) + "`",
        )
    return manifest


def load_index(index_dir: Path, encoder: Encoder, *, verify: bool = True) -> LoadedIndex:
    """Load and check an index. Every failure names its cause and the fix."""
    index_dir = Path(index_dir)
    manifest = read_manifest(index_dir)
    rebuild = f"rebuild it with `speechqa ingest --index {index_dir}`"
    if manifest.get("model_id") != encoder.model_id or manifest.get("dim") != encoder.dim:
        raise IndexMismatchError(
            f"index at {index_dir} was built with model {manifest.get('model_id')!r} (dim {manifest.get('dim')}), "
            f"but the service is configured with {encoder.model_id!r} (dim {encoder.dim})",
            fix=f"{rebuild}, or set SPEECHQA_MODEL to the model the index was built with",
        )
    files = manifest.get("files") or {}
    missing = [name for name in _DATA_FILES if name not in files or not (index_dir / name).exists()]
    if missing:
        raise IndexCorruptedError(f"index at {index_dir} is missing {', '.join(missing)}", fix=rebuild)
    for name, meta in files.items():
        path = index_dir / name
        if not path.exists():
            raise IndexCorruptedError(f"index at {index_dir} is missing {name}", fix=rebuild)
        if path.stat().st_size != meta.get("bytes"):
            raise IndexCorruptedError(
                f"index file {name} has {path.stat().st_size} bytes, the manifest says {meta.get('bytes')} "
                "(truncated or overwritten)",
                fix=rebuild,
            )
        if verify and _file_digest(path)["sha256"] != meta.get("sha256"):
            raise IndexCorruptedError(f"index file {name} does not match its checksum", fix=rebuild)
    try:
        speeches_rows = json.loads((index_dir / "speeches.json").read_text(encoding="utf-8"))
        para_rows = [
            json.loads(line)
            for line in (index_dir / "paragraphs.jsonl").read_text(encoding="utf-8").splitlines()
            if line
        ]
        passage_vectors = np.load(index_dir / "passage_vectors.npy", allow_pickle=False)
        sentence_vectors = np.load(index_dir / "sentence_vectors.npy", allow_pickle=False)
        dense = faiss.read_index(str(index_dir / "dense.faiss"))
        lexical = LexicalIndex.load(index_dir / "bm25", len(para_rows))
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise IndexCorruptedError(f"index at {index_dir} cannot be read ({exc})", fix=rebuild) from exc

    by_speech: dict[str, list[Paragraph]] = {}
    paragraphs: list[Paragraph] = []
    offsets = [0]
    for row in para_rows:
        text = row["text"]
        sentences = tuple(
            Sentence(sentence_id=f"{row['paragraph_id']}-{i}", start=a, end=b, text=text[a:b])
            for i, (a, b) in enumerate(row["sentences"])
        )
        p = Paragraph(
            paragraph_id=row["paragraph_id"],
            speech_id=row["speech_id"],
            ordinal=row["ordinal"],
            section=row["section"],
            text=text,
            sentences=sentences,
        )
        paragraphs.append(p)
        by_speech.setdefault(p.speech_id, []).append(p)
        offsets.append(offsets[-1] + len(sentences))
    speeches = {
        row["speech_id"]: Speech(
            speech_id=row["speech_id"],
            title=row["title"],
            speaker=row["speaker"],
            role=row["role"],
            date=row["date"],
            source=row["source"],
            paragraphs=tuple(by_speech.get(row["speech_id"], [])),
        )
        for row in speeches_rows
    }
    n = len(paragraphs)
    consistent = (
        passage_vectors.shape == (n, encoder.dim)
        and sentence_vectors.shape == (offsets[-1], encoder.dim)
        and dense.ntotal == n
        and dense.d == encoder.dim
        and all(p.speech_id in speeches for p in paragraphs)
    )
    if not consistent:
        raise IndexCorruptedError(
            f"index at {index_dir} has inconsistent parts (row counts differ)", fix=rebuild
        )
    return LoadedIndex(
        path=index_dir,
        manifest=manifest,
        speeches=speeches,
        paragraphs=paragraphs,
        row_of={p.paragraph_id: i for i, p in enumerate(paragraphs)},
        passage_vectors=passage_vectors,
        sentence_vectors=sentence_vectors,
        sentence_offsets=np.asarray(offsets, dtype=np.int64),
        dense=dense,
        lexical=lexical,
    )


# ----------------------------------------------------------------------------------------------------
# Incremental changes


def add_to_index(
    index_dir: Path,
    new_speeches: Sequence[Speech],
    encoder: Encoder,
    *,
    cache=None,
    progress: ProgressFn | None = None,
) -> dict:
    """Add (or replace, by speech id) speeches in an existing index without re-encoding the others."""
    current = load_index(index_dir, encoder)
    replaced = {sp.speech_id for sp in new_speeches}
    kept = [sp for sid, sp in current.speeches.items() if sid not in replaced]
    return build_index(
        kept + list(new_speeches),
        encoder,
        index_dir,
        cache=cache,
        faiss_kind=current.manifest.get("faiss", "flat"),
        progress=progress,
        reuse=current,
    )


def remove_from_index(index_dir: Path, speech_ids: Sequence[str], encoder: Encoder) -> dict:
    """Remove speeches by id; the remaining vectors are reused as they are."""
    current = load_index(index_dir, encoder)
    unknown = [sid for sid in speech_ids if sid not in current.speeches]
    if unknown:
        from data.errors import NotFoundError

        raise NotFoundError(
            f"no speech with id {', '.join(unknown)} in {index_dir}",
            fix="list speeches with `speechqa speeches`",
        )
    kept = [sp for sid, sp in current.speeches.items() if sid not in set(speech_ids)]
    return build_index(
        kept, encoder, index_dir, faiss_kind=current.manifest.get("faiss", "flat"), reuse=current
    )
