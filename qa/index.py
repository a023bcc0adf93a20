"""The index directory: immutable segments plus a manifest per version, changed by one writer at a time.

Layout (LSM style)::

    INDEX/manifest.json            the current version (replaced atomically: temp + fsync + os.replace)
    INDEX/manifests/00000042.json  every committed version; the current and the previous one are kept
    INDEX/segments/seg-*/          immutable segments: passages, vectors, BM25 postings, FAISS index
    INDEX/.writer.lock             flock that serialises writers (a second one waits and says so)

``build_index`` writes one segment with everything; ``add_to_index`` writes one segment with the new
speeches and tombstones the speeches they replace; ``remove_from_index`` only tombstones. When there are
more than ``MAX_SEGMENTS`` segments (or one is mostly tombstones) they are merged without re-encoding or
re-tokenizing. Segments no longer named by the current or the previous manifest are deleted, so a reader
that loaded the previous version keeps working. A writer killed at any point leaves the last committed
version loadable: nothing it references is touched before the new manifest replaces it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from data.errors import (
    IndexCorruptedError,
    IndexMismatchError,
    IndexNotFoundError,
    NotFoundError,
    SpeechQAError,
)
from data.files import fsync_path, write_json_atomically
from data.records import Paragraph, Speech
from embeddings.encoder import Encoder
from qa.encode import dense_prefix, encode_paragraphs
from qa.lexical import tokenize
from qa.snapshot import LoadedSegment, Snapshot
from qa.stores import factory
from qa.stores.base import FORMAT_VERSION, FileDigest, Manifest, SegmentEntry
from qa.stores.bm25 import InvertedBM25
from qa.stores.faiss_dense import KINDS as FAISS_KINDS
from qa.stores.passages import write_merged_passages, write_passages

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
MANIFESTS = "manifests"
SEGMENTS = "segments"
LOCK = ".writer.lock"
MAX_SEGMENTS = 8
# build_index encodes, tokenizes and writes a larger corpus this many paragraphs at a time (bounded memory).
BUILD_CHUNK_PARAGRAPHS = 100_000
# Files up to this size are checked against their sha256 at load; larger ones by size only (a million
# paragraphs must open in seconds). verify="full" checks every file.
SHA_VERIFY_MAX_BYTES = 64 << 20
_LEGACY_FILES = (
    "speeches.json",
    "paragraphs.jsonl",
    "passage_vectors.npy",
    "sentence_vectors.npy",
    "dense.faiss",
)

ProgressFn = Callable[[int, int], None]
Tokenizer = Callable[[str], list[str]]
LoadedIndex = Snapshot  # the name the retriever, composer and service were written against


def lexical_text(speech: Speech, paragraph: Paragraph) -> str:
    """What BM25 sees: text plus its speech's title, speaker, role and section, so naming them finds it."""
    return " ".join([paragraph.text, speech.title, speech.speaker, speech.role, paragraph.section])


def _rebuild_fix(index_dir: Path) -> str:
    return f"rebuild it with `speechqa ingest --index {index_dir}`"


# ----------------------------------------------------------------------------------------------------
# Files: atomic writes, digests, the writer lock


def _digest(path: Path) -> FileDigest:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
        os.fsync(fh.fileno())
    return FileDigest(bytes=path.stat().st_size, sha256=h.hexdigest())


@contextlib.contextmanager
def writer_lock(index_dir: Path) -> Iterator[None]:
    """One writer per index directory. A second one waits (and says so) rather than fail or lose a change."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / LOCK, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("waiting for another writer on %s", index_dir)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# ----------------------------------------------------------------------------------------------------
# Manifest


def read_manifest(index_dir: Path) -> Manifest:
    index_dir = Path(index_dir)
    path = index_dir / MANIFEST
    if not path.exists():
        raise IndexNotFoundError(
            f"no index at {index_dir}",
            fix="build one with `speechqa ingest` (or point SPEECHQA_INDEX_DIR / --index at an existing index)",
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError("manifest is not an object")
    except (OSError, ValueError) as exc:
        raise IndexCorruptedError(
            f"index at {index_dir} has an unreadable manifest.json ({exc})", fix=_rebuild_fix(index_dir)
        ) from exc
    if raw.get("format_version") != FORMAT_VERSION:
        raise IndexMismatchError(
            f"index at {index_dir} has format version {raw.get('format_version')!r}; "
            f"this speechqa reads version {FORMAT_VERSION}",
            fix=_rebuild_fix(index_dir),
        )
    try:
        return Manifest.from_json(raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise IndexCorruptedError(
            f"index at {index_dir} has an invalid manifest.json (missing {exc})", fix=_rebuild_fix(index_dir)
        ) from exc


def _read_manifest_or_none(index_dir: Path) -> Manifest | None:
    try:
        return read_manifest(index_dir)
    except IndexNotFoundError:
        return None
    except (IndexCorruptedError, IndexMismatchError) as exc:
        log.warning("replacing the unusable index at %s (%s)", index_dir, exc.message)
        return None


def _corpus_fingerprint(segments: Sequence[SegmentEntry]) -> str:
    h = hashlib.sha256()
    for s in segments:
        h.update(s.fingerprint.encode())
        h.update("\x00".join(sorted(s.deleted)).encode())
    return h.hexdigest()


def _commit(index_dir: Path, manifest: Manifest) -> Manifest:
    """Make ``manifest`` the current version (the one atomic step), then collect what no version needs."""
    (index_dir / MANIFESTS).mkdir(exist_ok=True)
    data = manifest.to_json()
    write_json_atomically(index_dir / MANIFESTS / f"{manifest.seq:08d}.json", data)
    write_json_atomically(index_dir / MANIFEST, data)
    _collect_garbage(index_dir, manifest)
    return manifest


def _collect_garbage(index_dir: Path, manifest: Manifest) -> None:
    """Delete segments and manifests that neither the current nor the previous version names (and temp files
    of killed writers). Runs under the writer lock."""
    keep = {s.name for s in manifest.segments}
    keep_seqs = {manifest.seq}
    if manifest.previous_seq is not None:
        keep_seqs.add(manifest.previous_seq)
        try:
            prev = Manifest.from_json(
                json.loads((index_dir / MANIFESTS / f"{manifest.previous_seq:08d}.json").read_text("utf-8"))
            )
            keep |= {s.name for s in prev.segments}
        except (OSError, ValueError, KeyError, TypeError):
            pass
    for p in (index_dir / SEGMENTS).iterdir() if (index_dir / SEGMENTS).exists() else ():
        if p.name not in keep:
            shutil.rmtree(p, ignore_errors=True)
    for p in (index_dir / MANIFESTS).iterdir():
        stem = p.name.split(".")[0]
        if p.name.startswith(".") or not stem.isdigit() or int(stem) not in keep_seqs:
            p.unlink(missing_ok=True)
    for p in index_dir.glob(f".{MANIFEST}.tmp-*"):
        p.unlink(missing_ok=True)
    for name in _LEGACY_FILES:  # a version-1 index that this build replaced
        (index_dir / name).unlink(missing_ok=True)
    if (index_dir / "bm25").is_dir():
        shutil.rmtree(index_dir / "bm25", ignore_errors=True)


# ----------------------------------------------------------------------------------------------------
# Segments


def _write_segment(
    index_dir: Path,
    write_passages_into: Callable[[Path], None],
    lexical: InvertedBM25 | Sequence[Sequence[str]],
    *,
    dim: int,
    faiss_kind: str,
    backends: Mapping[str, str],
) -> SegmentEntry:
    """Write a complete segment under a temporary name, fsync it and rename it into ``segments/``.

    ``write_passages_into(dir)`` writes the passage store; the dense index is built from its memory-mapped
    vectors, so the segment's vectors are never held twice in memory.
    """
    segments = index_dir / SEGMENTS
    segments.mkdir(parents=True, exist_ok=True)
    name = f"seg-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:10]}"
    tmp = segments / f".tmp-{name}"
    tmp.mkdir()
    try:
        write_passages_into(tmp)
        store = factory.load_passages(dict(backends), tmp)
        n = store.n_rows
        if isinstance(lexical, InvertedBM25):
            lexical.save(tmp)
        else:
            lex = factory.new_lexical(dict(backends))
            lex.add(np.arange(n), lexical)
            lex.save(tmp)
            del lex
        dense = factory.new_dense(dict(backends), dim, faiss_kind)
        dense.add(np.arange(n), store.passage_vectors)
        sentence_vecs = store.sentence_vectors
        if len(sentence_vecs):
            pick = np.random.default_rng(0).choice(
                len(sentence_vecs), min(200, len(sentence_vecs)), replace=False
            )
            dense.calibration_vectors = np.asarray(sentence_vecs[np.sort(pick)], dtype=np.float32)
        dense_params = dense.save(tmp)
        files = {f: _digest(tmp / f) for f in sorted(os.listdir(tmp))}
        entry = SegmentEntry(
            name=name,
            rows=n,
            sentences=int(len(sentence_vecs)),
            speeches=len(store.speech_list),
            fingerprint=store.fingerprint(),
            dense=dense_params,
            files=files,
        )
        del dense, store, sentence_vecs
        fsync_path(tmp)
        os.rename(tmp, segments / name)
        fsync_path(segments)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return entry


def _passages_of(speeches: Sequence[Speech], pvecs: np.ndarray, svecs: np.ndarray) -> Callable[[Path], None]:
    return lambda directory: write_passages(directory, speeches, pvecs, svecs)


def _check_segment(index_dir: Path, entry: SegmentEntry, verify: bool | str) -> None:
    """Sizes always; sha256 for files up to SHA_VERIFY_MAX_BYTES (all with verify="full"). Names the file."""
    fix = _rebuild_fix(index_dir)
    directory = index_dir / SEGMENTS / entry.name
    for name in factory.segment_files(factory.DEFAULT_BACKENDS, dict(entry.dense)):
        if name not in entry.files:
            raise IndexCorruptedError(
                f"index at {index_dir}: manifest lists no {SEGMENTS}/{entry.name}/{name}", fix=fix
            )
    for name, digest in entry.files.items():
        rel = f"{SEGMENTS}/{entry.name}/{name}"
        path = directory / name
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise IndexCorruptedError(f"index file {rel} is missing", fix=fix) from None
        if size != digest.bytes:
            raise IndexCorruptedError(
                f"index file {rel} has {size} bytes, the manifest says {digest.bytes} (truncated or overwritten)",
                fix=fix,
            )
        if (verify == "full" or (verify and size <= SHA_VERIFY_MAX_BYTES)) and _digest(
            path
        ).sha256 != digest.sha256:
            raise IndexCorruptedError(f"index file {rel} does not match its checksum", fix=fix)


def _open_segment(
    index_dir: Path, manifest: Manifest, entry: SegmentEntry, verify: bool | str, full: bool
) -> LoadedSegment:
    _check_segment(index_dir, entry, verify)
    fix = _rebuild_fix(index_dir)
    try:
        seg = LoadedSegment(index_dir / SEGMENTS / entry.name, entry, manifest.backends)
        if full:
            seg.lexical, seg.dense  # noqa: B018 - open every file now: a later GC cannot pull them away
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise IndexCorruptedError(
            f"index segment {SEGMENTS}/{entry.name} cannot be read ({exc})", fix=fix
        ) from exc
    bad = seg.passages.check(manifest.dim)
    if bad is None and (seg.passages.n_rows != entry.rows or len(seg.passages.speech_list) != entry.speeches):
        bad = "speeches.jsonl"
    if bad is not None:
        raise IndexCorruptedError(
            f"index file {SEGMENTS}/{entry.name}/{bad} does not match the rest of its segment", fix=fix
        )
    return seg


def _open_segments(
    index_dir: Path,
    manifest: Manifest,
    verify: bool | str,
    cache: dict[str, LoadedSegment] | None,
    full: bool = True,
) -> list[LoadedSegment]:
    out = []
    for entry in manifest.segments:
        seg = cache.get(entry.name) if cache is not None else None
        if seg is None:
            seg = _open_segment(index_dir, manifest, entry, verify, full)
            if cache is not None:
                cache[entry.name] = seg
        elif full:
            seg.lexical, seg.dense  # noqa: B018
        out.append(seg)
    return out


# ----------------------------------------------------------------------------------------------------
# Load


def _check_model(index_dir: Path, manifest: Manifest, encoder: Encoder) -> None:
    if manifest.model_id != encoder.model_id or manifest.dim != encoder.dim:
        raise IndexMismatchError(
            f"index at {index_dir} was built with model {manifest.model_id!r} (dim {manifest.dim}), "
            f"but the service is configured with {encoder.model_id!r} (dim {encoder.dim})",
            fix=f"{_rebuild_fix(index_dir)}, or set SPEECHQA_MODEL to the model the index was built with",
        )


def load_index(
    index_dir: Path,
    encoder: Encoder,
    *,
    verify: bool | str = True,
    segments: dict[str, LoadedSegment] | None = None,
) -> Snapshot:
    """Load the current version. ``segments`` caches opened segments across loads (IndexHandle's reuse)."""
    index_dir = Path(index_dir)
    for attempt in range(3):
        manifest = read_manifest(index_dir)
        _check_model(index_dir, manifest, encoder)
        try:
            return Snapshot(index_dir, manifest, _open_segments(index_dir, manifest, verify, segments))
        except IndexCorruptedError:
            # Two commits while we read can collect the segments we were opening: read the new version.
            if attempt == 2 or read_manifest(index_dir).seq == manifest.seq:
                raise
    raise AssertionError("unreachable")


def _stamp(index_dir: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(index_dir / MANIFEST)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class IndexHandle:
    """Holds the snapshot requests use; ``refresh`` swaps to a newer committed version.

    Each request takes ``current()`` once and uses that snapshot throughout; a swap never changes a
    snapshot someone holds. Segments already open are reused. A version that fails to load is logged and
    skipped (the old one keeps serving) until the manifest changes again.
    """

    def __init__(self, index_dir: Path, encoder: Encoder, *, verify: bool | str = True) -> None:
        self.index_dir = Path(index_dir)
        self.encoder = encoder
        self.verify = verify
        self._lock = threading.Lock()
        self._segments: dict[str, LoadedSegment] = {}
        self._stamp = _stamp(self.index_dir)
        self._snapshot = load_index(self.index_dir, encoder, verify=verify, segments=self._segments)

    def current(self) -> Snapshot:
        return self._snapshot

    def refresh(self) -> bool:
        """Load a newer version if the manifest changed (a stat call when it did not). True if swapped."""
        stamp = _stamp(self.index_dir)
        if stamp == self._stamp:
            return False
        with self._lock:
            if stamp == self._stamp:
                return False
            cache = dict(self._segments)
            try:
                snapshot = load_index(self.index_dir, self.encoder, verify=self.verify, segments=cache)
            except (SpeechQAError, OSError) as exc:
                log.error(
                    "keeping index version %s: the new one failed to load: %s", self._snapshot.version, exc
                )
                self._stamp = stamp
                return False
            self._segments = {name: cache[name] for name in snapshot.segment_names}
            self._snapshot = snapshot
            self._stamp = stamp
            log.info("index version %s loaded", snapshot.version)
            return True


# ----------------------------------------------------------------------------------------------------
# Write


def _dedupe(speeches: Sequence[Speech]) -> list[Speech]:
    by_id: dict[str, Speech] = {}
    for sp in speeches:
        if sp.speech_id in by_id:
            log.warning("speech id %s appears twice; the later one is indexed", sp.speech_id)
        by_id[sp.speech_id] = sp
    return list(by_id.values())


def _tokens(speeches: Sequence[Speech], tokenizer: Tokenizer) -> list[list[str]]:
    return [tokenizer(lexical_text(sp, p)) for sp in speeches for p in sp.paragraphs]


def _counts(segments: Sequence[LoadedSegment], entries: Sequence[SegmentEntry]) -> dict[str, int]:
    speeches = paragraphs = sentences = 0
    for seg, entry in zip(segments, entries, strict=True):
        gone = set(entry.deleted)
        for sid, (_, n, m) in seg.passages.speech_ranges.items():
            if sid not in gone:
                speeches, paragraphs, sentences = speeches + 1, paragraphs + n, sentences + m
    return {"speeches": speeches, "paragraphs": paragraphs, "sentences": sentences}


def _manifest(
    previous: Manifest | None,
    encoder: Encoder | _Model,
    entries: Sequence[SegmentEntry],
    counts: dict[str, int],
    *,
    faiss_kind: str,
    encoded: int,
    seconds: float,
) -> Manifest:
    return Manifest(
        seq=(previous.seq + 1) if previous else 1,
        model_id=encoder.model_id,
        dim=int(encoder.dim),
        segments=tuple(entries),
        counts=counts,
        corpus_fingerprint=_corpus_fingerprint(entries),
        backends=dict(factory.DEFAULT_BACKENDS),
        faiss=faiss_kind,
        previous_seq=previous.seq if previous else None,
        encoded_paragraphs=encoded,
        encode_seconds=round(seconds, 3),
        built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )


@dataclasses.dataclass(frozen=True)
class _Model:
    model_id: str
    dim: int


def _encode(speeches, encoder, cache, reuse, progress):
    items = [(dense_prefix(sp, p), p) for sp in speeches for p in sp.paragraphs]
    return encode_paragraphs(encoder, items, cache=cache, reuse=reuse, progress=progress)


def build_index(
    speeches: Sequence[Speech],
    encoder: Encoder,
    index_dir: Path,
    *,
    cache=None,
    faiss_kind: str = "auto",
    progress: ProgressFn | None = None,
    reuse: Snapshot | None = None,
    tokenizer: Tokenizer = tokenize,
) -> Manifest:
    """Index ``speeches`` as one new segment and make that the whole index (a new version).

    Vectors come from ``reuse`` (a loaded index of the same model) or the embedding cache when the paragraph
    is unchanged, so a rebuild only encodes new text.
    """
    if faiss_kind not in FAISS_KINDS:
        raise SpeechQAError(
            f"unknown FAISS index kind {faiss_kind!r}", fix=f"use one of {', '.join(FAISS_KINDS)}"
        )
    index_dir = Path(index_dir)
    speeches = _dedupe(speeches)
    if not any(sp.paragraphs for sp in speeches):
        raise SpeechQAError("nothing to index: no paragraphs were found", fix="check the input files")
    if reuse is not None and reuse.manifest.model_id != encoder.model_id:
        reuse = None
    batches = _batches(speeches, BUILD_CHUNK_PARAGRAPHS)
    if len(batches) > 1:
        return _build_in_chunks(batches, encoder, index_dir, cache, faiss_kind, progress, reuse, tokenizer)
    started = time.perf_counter()
    sources = [(reuse, reuse.live_rows())] if reuse is not None else None
    pvecs, svecs, n_encoded = _encode(speeches, encoder, cache, sources, progress)
    seconds = time.perf_counter() - started
    return build_index_from_vectors(
        speeches,
        pvecs,
        svecs,
        _tokens(speeches, tokenizer),
        index_dir,
        model_id=encoder.model_id,
        dim=encoder.dim,
        faiss_kind=faiss_kind,
        encoded=n_encoded,
        encode_seconds=seconds,
    )


def _batches(speeches: Sequence[Speech], max_paragraphs: int) -> list[list[Speech]]:
    """Whole speeches in order, about ``max_paragraphs`` paragraphs a batch."""
    out: list[list[Speech]] = [[]]
    size = 0
    for sp in speeches:
        if size and size + len(sp.paragraphs) > max_paragraphs:
            out.append([])
            size = 0
        out[-1].append(sp)
        size += len(sp.paragraphs)
    return out


def _build_in_chunks(batches, encoder, index_dir, cache, faiss_kind, progress, reuse, tokenizer) -> Manifest:
    """A large corpus is encoded, tokenized and written a batch at a time (``build_index_from_chunks``), so
    its vectors and token lists are never all in memory. Vectors are reused from paragraphs of the same speech
    id in ``reuse``."""
    total = sum(len(sp.paragraphs) for batch in batches for sp in batch)
    stats = {"encoded": 0, "encode_seconds": 0.0}

    def chunks() -> Iterator[Chunk]:
        done = 0
        for batch in batches:
            sources = None
            if reuse is not None:
                rows = [reuse.speech_rows(sp.speech_id) for sp in batch if sp.speech_id in reuse.speeches]
                sources = [(reuse, np.concatenate(rows))] if rows else None
            offset = done
            step = (lambda d, _n, o=offset: progress(o + d, total)) if progress else None
            started = time.perf_counter()
            pvecs, svecs, n_encoded = _encode(batch, encoder, cache, sources, step)
            stats["encode_seconds"] += time.perf_counter() - started
            stats["encoded"] += n_encoded
            done += sum(len(sp.paragraphs) for sp in batch)
            yield batch, pvecs, svecs, _tokens(batch, tokenizer)

    return build_index_from_chunks(
        chunks(), index_dir, model_id=encoder.model_id, dim=encoder.dim, faiss_kind=faiss_kind, stats=stats
    )


def build_index_from_vectors(
    speeches: Sequence[Speech],
    passage_vecs: np.ndarray,
    sentence_vecs: np.ndarray,
    token_lists: Sequence[Sequence[str]],
    index_dir: Path,
    *,
    model_id: str,
    dim: int,
    faiss_kind: str = "auto",
    encoded: int = 0,
    encode_seconds: float = 0.0,
) -> Manifest:
    """Write already encoded and tokenized speeches as the whole index (one segment, a new version).

    Rows are the speeches' paragraphs in order; ``sentence_vecs`` follow the paragraphs' sentences.
    """
    index_dir = Path(index_dir)
    with writer_lock(index_dir):
        previous = _read_manifest_or_none(index_dir)
        entry = _write_segment(
            index_dir,
            _passages_of(speeches, passage_vecs, sentence_vecs),
            token_lists,
            dim=dim,
            faiss_kind=faiss_kind,
            backends=factory.DEFAULT_BACKENDS,
        )
        counts = {"speeches": len(speeches), "paragraphs": entry.rows, "sentences": entry.sentences}
        manifest = _manifest(
            previous,
            _Model(model_id, dim),
            [entry],
            counts,
            faiss_kind=faiss_kind,
            encoded=encoded,
            seconds=encode_seconds,
        )
        _commit(index_dir, manifest)
    log.info("index written to %s: %s", index_dir, manifest.counts)
    return manifest


Chunk = tuple[Sequence[Speech], np.ndarray, np.ndarray, Sequence[Sequence[str]]]


def build_index_from_chunks(
    chunks: Iterable[Chunk],
    index_dir: Path,
    *,
    model_id: str,
    dim: int,
    faiss_kind: str = "auto",
    stats: Mapping[str, float] | None = None,
) -> Manifest:
    """``build_index_from_vectors`` for a corpus given a chunk at a time: (speeches, passage vectors, sentence
    vectors, token lists) per chunk, so only one chunk's records, vectors and tokens are ever in memory.

    Each chunk is written as a segment when it arrives (searched exactly: no dense index is built for it); then
    all are merged into one segment with the requested dense index by copying columns between memory maps and
    merging postings. Nothing is visible before the manifest is replaced; a crash leaves the previous version
    and the chunk segments are collected by the next writer. ``stats`` (``encoded``, ``encode_seconds``) may be
    filled while the chunks are produced; they are read for the manifest after the last chunk.
    """
    index_dir = Path(index_dir)
    model = _Model(model_id, dim)
    with writer_lock(index_dir):
        previous = _read_manifest_or_none(index_dir)
        entries: list[SegmentEntry] = []
        where: dict[str, int] = {}  # speech id -> chunk holding it; a later chunk's copy wins
        for speeches, pvecs, svecs, tokens in chunks:
            if len({sp.speech_id for sp in speeches}) != len(speeches):
                raise SpeechQAError("a chunk holds the same speech id twice", fix="deduplicate each chunk")
            entries = _tombstone(entries, where, [sp.speech_id for sp in speeches])
            where.update((sp.speech_id, len(entries)) for sp in speeches)
            entries.append(
                _write_segment(
                    index_dir,
                    _passages_of(speeches, pvecs, svecs),
                    tokens,
                    dim=dim,
                    faiss_kind="flat",
                    backends=factory.DEFAULT_BACKENDS,
                )
            )
            del speeches, pvecs, svecs, tokens
            log.info("chunk %d written (%d paragraphs)", len(entries), entries[-1].rows)
        if not any(e.rows for e in entries):
            raise SpeechQAError("nothing to index: no paragraphs were found", fix="check the input files")
        draft = _manifest(previous, model, entries, {}, faiss_kind=faiss_kind, encoded=0, seconds=0.0)
        segments = [_open_segment(index_dir, draft, e, False, full=False) for e in entries]
        merged = _merge_segments(index_dir, draft, segments, entries)
        assert merged is not None
        del segments
        counts = {"speeches": merged.speeches, "paragraphs": merged.rows, "sentences": merged.sentences}
        stats = stats or {}
        manifest = _manifest(
            previous,
            model,
            [merged],
            counts,
            faiss_kind=faiss_kind,
            encoded=int(stats.get("encoded", 0)),
            seconds=float(stats.get("encode_seconds", 0.0)),
        )
        _commit(index_dir, manifest)
    log.info("index written to %s: %s", index_dir, manifest.counts)
    return manifest


def _live_location(segments: Sequence[LoadedSegment], entries: Sequence[SegmentEntry]) -> dict[str, int]:
    """speech id -> index of the segment holding its live copy."""
    where: dict[str, int] = {}
    for i, (seg, entry) in enumerate(zip(segments, entries, strict=True)):
        gone = set(entry.deleted)
        for sid in seg.passages.speech_ranges:
            if sid not in gone:
                where[sid] = i
    return where


def list_speeches(index_dir: Path) -> list[tuple[Speech, int]]:
    """The live speeches of an index with their paragraph counts, read without a model (``speechqa speeches``):
    only the manifest and each segment's passage table are opened, not the dense or lexical files."""
    index_dir = Path(index_dir)
    manifest = read_manifest(index_dir)
    segments = _open_segments(index_dir, manifest, False, None, full=False)
    where = _live_location(segments, manifest.segments)
    out = []
    for sid, i in where.items():
        seg = segments[i]
        sp = next(x for x in seg.passages.speech_list if x.speech_id == sid)
        out.append((sp, int(seg.passages.speech_ranges[sid][1])))
    return out


def _tombstone(
    entries: list[SegmentEntry], where: Mapping[str, int], speech_ids: Sequence[str]
) -> list[SegmentEntry]:
    extra: dict[int, list[str]] = {}
    for sid in speech_ids:
        if sid in where:
            extra.setdefault(where[sid], []).append(sid)
    return [
        SegmentEntry(**{**e.__dict__, "deleted": e.deleted + tuple(extra[i])}) if i in extra else e
        for i, e in enumerate(entries)
    ]


def _reuse_sources(index_dir: Path, speeches: Sequence[Speech]) -> tuple[Manifest | None, list | None]:
    """The committed version and, for speeches it already holds, where their vectors can be reused from.

    Read without the lock: manifests are replaced atomically and opened segments stay readable when a writer
    collects them. A version collected before its segments could be opened just means no reuse.
    """
    if not (index_dir / MANIFEST).exists():
        return None, None
    seen = read_manifest(index_dir)
    try:
        segments = _open_segments(index_dir, seen, False, None, full=False)
    except IndexCorruptedError:
        return seen, None
    where = _live_location(segments, seen.segments)
    sources = [
        (
            segments[where[sp.speech_id]].passages,
            segments[where[sp.speech_id]].passages.rows_of_speech(sp.speech_id),
        )
        for sp in speeches
        if sp.speech_id in where
    ]
    return seen, sources


def add_to_index(
    index_dir: Path,
    new_speeches: Sequence[Speech],
    encoder: Encoder,
    *,
    cache=None,
    progress: ProgressFn | None = None,
    tokenizer: Tokenizer = tokenize,
    max_segments: int = MAX_SEGMENTS,
) -> Manifest:
    """Add (or replace, by speech id) speeches: one new segment, tombstones for the replaced copies.

    Costs O(new paragraphs): nothing else is re-encoded, re-tokenized or rewritten (until compaction).
    Encoding and tokenizing happen before the writer lock is taken, so a slow encode does not stall other
    writers; under the lock the latest manifest is read again and the tombstones are computed against it,
    so concurrent additions all land and a speech added by another writer meanwhile is still replaced.
    """
    index_dir = Path(index_dir)
    new_speeches = _dedupe(new_speeches)
    if not any(sp.paragraphs for sp in new_speeches):
        raise SpeechQAError("nothing to add: no paragraphs were found", fix="check the input files")
    seen, sources = _reuse_sources(index_dir, new_speeches)
    if seen is not None:
        _check_model(index_dir, seen, encoder)
    started = time.perf_counter()
    pvecs, svecs, n_encoded = _encode(new_speeches, encoder, cache, sources, progress)
    seconds = time.perf_counter() - started
    tokens = _tokens(new_speeches, tokenizer)
    with writer_lock(index_dir):
        previous = read_manifest(index_dir) if (index_dir / MANIFEST).exists() else None
        if previous is None:
            return _first_segment(index_dir, new_speeches, encoder, pvecs, svecs, tokens, n_encoded, seconds)
        _check_model(index_dir, previous, encoder)  # the index may have been rebuilt with another model
        if seen is None or previous.seq != seen.seq:
            log.info("index %s changed while encoding; adding to version %s", index_dir, previous.version)
        segments = _open_segments(index_dir, previous, False, None, full=False)
        where = _live_location(segments, previous.segments)
        entries = _tombstone(list(previous.segments), where, [sp.speech_id for sp in new_speeches])
        new = _write_segment(
            index_dir,
            _passages_of(new_speeches, pvecs, svecs),
            tokens,
            dim=encoder.dim,
            faiss_kind=previous.faiss,
            backends=previous.backends,
        )
        segments.append(_open_segment(index_dir, previous, new, True, full=False))
        entries.append(new)
        segments, entries = _compact(index_dir, previous, segments, entries, max_segments)
        return _commit_version(
            index_dir, previous, encoder, segments, entries, encoded=n_encoded, seconds=seconds
        )


def _first_segment(index_dir, speeches, encoder, pvecs, svecs, tokens, n_encoded, seconds) -> Manifest:
    entry = _write_segment(
        index_dir,
        _passages_of(speeches, pvecs, svecs),
        tokens,
        dim=encoder.dim,
        faiss_kind="auto",
        backends=factory.DEFAULT_BACKENDS,
    )
    counts = {"speeches": len(speeches), "paragraphs": entry.rows, "sentences": entry.sentences}
    return _commit(
        index_dir,
        _manifest(None, encoder, [entry], counts, faiss_kind="auto", encoded=n_encoded, seconds=seconds),
    )


def remove_from_index(index_dir: Path, speech_ids: Sequence[str], encoder: Encoder) -> Manifest:
    """Remove speeches by id: a new version whose manifest tombstones them (no data file is rewritten)."""
    index_dir = Path(index_dir)
    with writer_lock(index_dir):
        previous = read_manifest(index_dir)
        _check_model(index_dir, previous, encoder)
        segments = _open_segments(index_dir, previous, False, None, full=False)
        where = _live_location(segments, previous.segments)
        unknown = [sid for sid in speech_ids if sid not in where]
        if unknown:
            raise NotFoundError(
                f"no speech with id {', '.join(unknown)} in {index_dir}",
                fix="list speeches with `speechqa speeches`",
            )
        entries = _tombstone(list(previous.segments), where, list(dict.fromkeys(speech_ids)))
        segments, entries = _compact(index_dir, previous, segments, entries, MAX_SEGMENTS)
        return _commit_version(index_dir, previous, encoder, segments, entries)


def _commit_version(
    index_dir: Path,
    previous: Manifest,
    encoder: Encoder,
    segments: Sequence[LoadedSegment],
    entries: Sequence[SegmentEntry],
    *,
    encoded: int = 0,
    seconds: float = 0.0,
) -> Manifest:
    """Commit a new version of an existing index from its segments: a removal or a compaction (nothing
    encoded), or an addition (``encoded`` paragraphs in ``seconds``)."""
    manifest = _manifest(
        previous,
        encoder,
        entries,
        _counts(segments, entries),
        faiss_kind=previous.faiss,
        encoded=encoded,
        seconds=seconds,
    )
    return _commit(index_dir, manifest)


def compact_index(index_dir: Path, encoder: Encoder) -> Manifest:
    """Merge every segment into one (tombstoned rows dropped), as a new version."""
    index_dir = Path(index_dir)
    with writer_lock(index_dir):
        previous = read_manifest(index_dir)
        _check_model(index_dir, previous, encoder)
        segments = _open_segments(index_dir, previous, False, None, full=False)
        segments, entries = _compact(index_dir, previous, segments, list(previous.segments), 1, force=True)
        return _commit_version(index_dir, previous, encoder, segments, entries)


# ----------------------------------------------------------------------------------------------------
# Compaction


def _plan(
    segments: Sequence[LoadedSegment], entries: Sequence[SegmentEntry], max_segments: int, force: bool
) -> list[int]:
    """Which segments to merge: all the small ones when there are too many, or the mostly-deleted ones."""
    live = [int(seg.live_mask(e.deleted).sum()) for seg, e in zip(segments, entries, strict=True)]
    mostly_dead = [i for i, e in enumerate(entries) if e.rows and live[i] * 2 < e.rows]
    if force:
        return (
            list(range(len(entries)))
            if len(entries) > 1 or mostly_dead or any(e.deleted for e in entries)
            else []
        )
    if len(entries) <= max_segments:
        return mostly_dead if mostly_dead else []
    order = sorted(range(len(entries)), key=lambda i: live[i])
    largest = order[-1]
    rest = sum(live[i] for i in order[:-1])
    # Rewriting a large segment for a few small ones costs more than it saves: leave it until it is not.
    chosen = order[:-1] if live[largest] > 2 * rest else order
    return sorted(set(chosen) | set(mostly_dead))


def _compact(
    index_dir: Path,
    manifest: Manifest,
    segments: list[LoadedSegment],
    entries: list[SegmentEntry],
    max_segments: int,
    *,
    force: bool = False,
) -> tuple[list[LoadedSegment], list[SegmentEntry]]:
    chosen = _plan(segments, entries, max_segments, force)
    if not chosen:
        return segments, entries
    started = time.perf_counter()
    merged = _merge_segments(index_dir, manifest, [segments[i] for i in chosen], [entries[i] for i in chosen])
    keep_segments = [s for i, s in enumerate(segments) if i not in chosen]
    keep_entries = [e for i, e in enumerate(entries) if i not in chosen]
    if merged is not None:
        keep_segments.append(_open_segment(index_dir, manifest, merged, True, full=False))
        keep_entries.append(merged)
    log.info("compacted %d segments into one in %.1f s", len(chosen), time.perf_counter() - started)
    return keep_segments, keep_entries


def _merge_segments(
    index_dir: Path, manifest: Manifest, segments: Sequence[LoadedSegment], entries: Sequence[SegmentEntry]
) -> SegmentEntry | None:
    """The live rows of ``segments`` as one new segment (None if none is live), with ``manifest.faiss``'s dense
    index: passage columns copied between memory maps, postings merged; nothing re-encoded or re-tokenized."""
    parts = [(seg.passages, entry.deleted) for seg, entry in zip(segments, entries, strict=True)]
    lexical_parts = [
        (seg.lexical, seg.live_mask(entry.deleted)) for seg, entry in zip(segments, entries, strict=True)
    ]
    if not any(int(live.sum()) for _, live in lexical_parts):
        return None
    return _write_segment(
        index_dir,
        lambda directory: write_merged_passages(directory, parts),
        InvertedBM25.merged(lexical_parts),
        dim=manifest.dim,
        faiss_kind=manifest.faiss,
        backends=manifest.backends,
    )
