"""The index directory: segments + manifests, corruption and mismatch errors, O(changed) add/remove,
concurrent writers, killed writers, live refresh, a real ANN index, BM25 parity and filters."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from data.errors import (
    IndexCorruptedError,
    IndexMismatchError,
    IndexNotFoundError,
    NotFoundError,
    UnknownFilterError,
)
from data.records import Speech
from qa.index import (
    MAX_SEGMENTS,
    IndexHandle,
    add_to_index,
    build_index,
    compact_index,
    lexical_text,
    load_index,
    read_manifest,
    remove_from_index,
)
from qa.lexical import tokenize
from qa.retrieve import HybridRetriever
from qa.types import Filters

from .conftest import REPO


class CountingEncoder:
    """Wraps an encoder and counts the passages it was asked to encode."""

    def __init__(self, inner):
        self.inner = inner
        self.model_id = inner.model_id
        self.dim = inner.dim
        self.passages = 0

    def encode_queries(self, texts):
        return self.inner.encode_queries(texts)

    def encode_passages(self, texts):
        self.passages += len(texts)
        return self.inner.encode_passages(texts)


def renamed(sp: Speech, suffix: str, **changes) -> Speech:
    """A copy of a speech under new speech and paragraph ids."""
    sid = f"{sp.speech_id}{suffix}"
    paragraphs = tuple(
        dataclasses.replace(p, paragraph_id=f"{p.paragraph_id}{suffix}", speech_id=sid) for p in sp.paragraphs
    )
    return dataclasses.replace(sp, speech_id=sid, paragraphs=paragraphs, **changes)


def segment_dirs(d) -> set[str]:
    return {p.name for p in (d / "segments").iterdir()}


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


# -- build and load -----------------------------------------------------------------------------------


def test_built_index_loads_with_manifest_counts(fake_index_dir, fake_encoder, corpus_speeches):
    index = load_index(fake_index_dir, fake_encoder)
    m = index.manifest
    assert dict(m.counts) == {
        "speeches": 3,
        "paragraphs": sum(len(s.paragraphs) for s in corpus_speeches),
        "sentences": sum(len(p.sentences) for s in corpus_speeches for p in s.paragraphs),
    }
    assert m.model_id == fake_encoder.model_id and m.dim == fake_encoder.dim
    assert len(m.corpus_fingerprint) == 64 and m.built_at
    assert index.version == m.version and index.n_paragraphs == m.counts["paragraphs"]
    (segment,) = m.segments
    assert segment.dense["kind"] == "flat"  # a small corpus is searched exactly
    assert {"passage_vecs.npy", "sentence_vecs.npy", "text.bin", "lex_indptr.npy"} <= set(segment.files)
    # Sentence vectors are stored as float16 and handed out as float32.
    assert index.sentence_vectors_of(0).dtype == np.float32


def test_snapshot_reads_paragraphs_and_speeches_lazily(fake_index_dir, fake_encoder, corpus_speeches):
    index = load_index(fake_index_dir, fake_encoder)
    for sp in corpus_speeches:
        rows = index.speech_rows(sp.speech_id)
        assert [index.paragraph(int(r)) for r in rows] == list(sp.paragraphs)
        assert index.speeches[sp.speech_id] == dataclasses.replace(sp, paragraphs=())
        for p in sp.paragraphs:
            assert index.row_of(p.paragraph_id) is not None
    assert index.row_of("no-such-id") is None


def test_every_speech_field_survives_the_index(tmp_path, corpus_speeches, fake_encoder):
    sp = dataclasses.replace(corpus_speeches[0], date="2024-03-05", source="somewhere/else.txt")
    build_index([sp], fake_encoder, tmp_path / "idx")
    loaded = load_index(tmp_path / "idx", fake_encoder).speeches[sp.speech_id]
    for f in dataclasses.fields(Speech):
        if f.name != "paragraphs":
            assert getattr(loaded, f.name) == getattr(sp, f.name), f.name


def test_rebuild_gives_same_ids_and_fingerprint(tmp_path, corpus_speeches, fake_encoder, fake_index_dir):
    build_index(corpus_speeches, fake_encoder, tmp_path / "again")
    a = load_index(fake_index_dir, fake_encoder)
    b = load_index(tmp_path / "again", fake_encoder)
    assert [a.paragraph(r).paragraph_id for r in a.live_rows()] == [
        b.paragraph(r).paragraph_id for r in b.live_rows()
    ]
    assert a.manifest.corpus_fingerprint == b.manifest.corpus_fingerprint


def test_missing_index_names_the_fix(tmp_path, fake_encoder):
    with pytest.raises(IndexNotFoundError, match="speechqa ingest"):
        load_index(tmp_path / "nowhere", fake_encoder)


@pytest.mark.parametrize(
    "damage, file, match",
    [
        ("truncate", "passage_vecs.npy", "truncated"),
        ("flip_byte", "text.bin", "checksum"),
        ("remove", "sentence_vecs.npy", "missing"),
        ("remove", "lex_docs.npy", "missing"),
        ("garbage_manifest", "manifest.json", "manifest"),
    ],
)
def test_corrupted_index_fails_naming_the_file(tmp_path, fake_index_dir, fake_encoder, damage, file, match):
    d = _copy(fake_index_dir, tmp_path / "idx")
    (seg,) = read_manifest(d).segments
    path = d / "segments" / seg.name / file
    if damage == "truncate":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flip_byte":
        data = bytearray(path.read_bytes())
        data[100] ^= 1
        path.write_bytes(bytes(data))
    elif damage == "remove":
        os.remove(path)
    else:
        (d / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(IndexCorruptedError, match=match) as info:
        load_index(d, fake_encoder)
    assert file in str(info.value)
    assert "speechqa ingest" in str(info.value)


def test_index_of_another_model_is_refused(fake_index_dir):
    from embeddings.testing import HashEncoder

    with pytest.raises(IndexMismatchError, match="dim 256") as info:
        load_index(fake_index_dir, HashEncoder(dim=128))
    assert "SPEECHQA_MODEL" in str(info.value)


# -- add / remove / compaction ------------------------------------------------------------------------


def test_add_and_remove_touch_only_their_rows(tmp_path, corpus_speeches, fake_encoder):
    enc = CountingEncoder(fake_encoder)
    d = tmp_path / "idx"
    build_index(corpus_speeches[:2], enc, d)
    first_segments = segment_dirs(d)
    (first,) = first_segments
    stat_before = {p.name: p.stat().st_ino for p in (d / "segments" / first).iterdir()}
    enc.passages = 0
    m = add_to_index(d, corpus_speeches[2:], enc)
    third = corpus_speeches[2]
    # Paragraph texts plus their sentences (the fake encoder cannot pool spans) of the new speech only.
    assert enc.passages == len(third.paragraphs) + sum(len(p.sentences) for p in third.paragraphs)
    assert m.counts["speeches"] == 3 and len(m.segments) == 2
    assert m.segments[-1].rows == len(third.paragraphs)  # the new segment holds just the new rows
    assert {p.name: p.stat().st_ino for p in (d / "segments" / first).iterdir()} == stat_before
    enc.passages = 0
    # (the first segment stays more than half live, so this removal does not compact it)
    m = remove_from_index(d, [corpus_speeches[1].speech_id], enc)
    assert enc.passages == 0
    assert m.counts["speeches"] == 2 and m.segments[0].deleted == (corpus_speeches[1].speech_id,)
    # A removal writes a manifest, no data file: the segments stay those of the previous version.
    assert segment_dirs(d) == first_segments | {m.segments[-1].name}
    index = load_index(d, fake_encoder)
    assert corpus_speeches[1].speech_id not in index.speeches
    assert index.row_of(corpus_speeches[1].paragraphs[0].paragraph_id) is None
    assert index.n_paragraphs == sum(len(s.paragraphs) for s in corpus_speeches) - len(
        corpus_speeches[1].paragraphs
    )
    hits = HybridRetriever(index, fake_encoder).retrieve(corpus_speeches[1].paragraphs[1].text, 10).hits
    assert hits and all(h.speech_id != corpus_speeches[1].speech_id for h in hits)
    with pytest.raises(NotFoundError):
        remove_from_index(d, ["nope"], enc)


def test_adding_a_speech_again_replaces_it_and_reuses_its_vectors(tmp_path, corpus_speeches, fake_encoder):
    enc = CountingEncoder(fake_encoder)
    d = tmp_path / "idx"
    build_index(corpus_speeches, enc, d)
    enc.passages = 0
    changed = dataclasses.replace(corpus_speeches[1], title="新标题")
    m = add_to_index(d, [corpus_speeches[0], changed], enc)
    assert m.counts["speeches"] == 3
    # The unchanged speech is not encoded again; the retitled one is (its title is part of the encoder input).
    assert enc.passages == len(changed.paragraphs) + sum(len(p.sentences) for p in changed.paragraphs)
    index = load_index(d, fake_encoder)
    assert index.speeches[changed.speech_id].title == "新标题"
    assert len(index.speech_rows(changed.speech_id)) == len(changed.paragraphs)


def test_many_additions_are_compacted_and_search_the_same(tmp_path, corpus_speeches, fake_encoder):
    d = tmp_path / "idx"
    build_index(corpus_speeches, fake_encoder, d)
    extra = [renamed(corpus_speeches[i % 3], f"-x{i}") for i in range(MAX_SEGMENTS + 3)]
    for sp in extra:
        add_to_index(d, [sp], fake_encoder)
    m = read_manifest(d)
    assert len(m.segments) <= MAX_SEGMENTS
    assert m.counts["speeches"] == 3 + len(extra)
    # Only the current and the previous version's segments are on disk.
    assert len(segment_dirs(d)) <= 2 * MAX_SEGMENTS
    build_index(list(corpus_speeches) + extra, fake_encoder, tmp_path / "full")
    a = HybridRetriever(load_index(d, fake_encoder), fake_encoder)
    b = HybridRetriever(load_index(tmp_path / "full", fake_encoder), fake_encoder)
    for q in ("地铁16号线通车", "网络意识形态安全", "金融新区"):
        assert [(h.passage_id, round(h.score, 4)) for h in a.retrieve(q, 8).hits] == [
            (h.passage_id, round(h.score, 4)) for h in b.retrieve(q, 8).hits
        ]
    compact_index(d, fake_encoder)
    assert len(read_manifest(d).segments) == 1
    assert load_index(d, fake_encoder).n_paragraphs == sum(
        len(s.paragraphs) for s in list(corpus_speeches) + extra
    )


def test_compaction_copies_columns_into_the_same_segment_a_fresh_build_writes(
    tmp_path, corpus_speeches, fake_encoder
):
    """Merging segments (tombstones dropped) gives the rows, records, vectors and fingerprint a build of the live
    speeches gives, though nothing is decoded into Paragraph objects on the way."""
    d = tmp_path / "idx"
    build_index(corpus_speeches[:1], fake_encoder, d)
    for sp in corpus_speeches[1:]:
        add_to_index(d, [sp], fake_encoder)
    remove_from_index(d, [corpus_speeches[1].speech_id], fake_encoder)
    compact_index(d, fake_encoder)
    live = [sp for sp in corpus_speeches if sp.speech_id != corpus_speeches[1].speech_id]
    build_index(live, fake_encoder, tmp_path / "fresh")
    a, b = load_index(d, fake_encoder), load_index(tmp_path / "fresh", fake_encoder)
    assert len(a.manifest.segments) == 1
    assert a.manifest.segments[0].fingerprint == b.manifest.segments[0].fingerprint
    assert a.n_rows == b.n_rows == sum(len(sp.paragraphs) for sp in live)
    assert dict(a.speeches) == dict(b.speeches)
    for row in range(a.n_rows):
        assert a.paragraph(row) == b.paragraph(row)
        assert a.row_of(b.paragraph(row).paragraph_id) == row
        np.testing.assert_array_equal(a.sentence_vectors_of(row), b.sentence_vectors_of(row))
    np.testing.assert_array_equal(
        a.passage_vectors_of(np.arange(a.n_rows)), b.passage_vectors_of(np.arange(b.n_rows))
    )
    for q in ("地铁16号线通车", "金融新区"):
        assert a.lexical.top(tokenize(q), 5)[0].tolist() == b.lexical.top(tokenize(q), 5)[0].tolist()


def test_building_from_chunks_writes_the_index_one_chunk_gives(tmp_path, corpus_speeches, fake_encoder):
    """A corpus streamed a chunk at a time (a later chunk's copy of a speech wins) is the same one segment."""
    from qa.encode import dense_prefix, encode_paragraphs
    from qa.index import build_index_from_chunks, build_index_from_vectors

    def chunk(speeches):
        items = [(dense_prefix(sp, p), p) for sp in speeches for p in sp.paragraphs]
        pvecs, svecs, _ = encode_paragraphs(fake_encoder, items)
        return (
            speeches,
            pvecs,
            svecs,
            [tokenize(lexical_text(sp, p)) for sp in speeches for p in sp.paragraphs],
        )

    a, b, c = corpus_speeches[:3]
    stale_b = dataclasses.replace(b, title="旧标题")
    kw = {"model_id": fake_encoder.model_id, "dim": fake_encoder.dim, "faiss_kind": "pq"}
    build_index_from_chunks((chunk(x) for x in ([a, stale_b], [c], [b])), tmp_path / "chunks", **kw)
    build_index_from_vectors(*chunk([a, c, b]), tmp_path / "one", **kw)
    x, y = load_index(tmp_path / "chunks", fake_encoder), load_index(tmp_path / "one", fake_encoder)
    assert len(x.manifest.segments) == 1 and not x.manifest.segments[0].deleted
    assert x.manifest.segments[0].fingerprint == y.manifest.segments[0].fingerprint
    assert x.manifest.counts == y.manifest.counts
    assert dict(x.speeches) == dict(y.speeches) and x.speeches[b.speech_id].title == b.title
    assert [x.paragraph(r) for r in range(x.n_rows)] == [y.paragraph(r) for r in range(y.n_rows)]
    assert len(list((tmp_path / "chunks" / "segments").iterdir())) == 1  # the chunk segments are collected


def test_a_large_corpus_is_built_in_chunks_into_the_same_index(
    tmp_path, corpus_speeches, fake_encoder, monkeypatch
):
    """build_index above BUILD_CHUNK_PARAGRAPHS encodes and writes a batch at a time: same index, same counts,
    progress over the whole corpus, and a rebuild with ``reuse`` encodes nothing."""
    import qa.index as qi

    build_index(corpus_speeches, fake_encoder, tmp_path / "whole")
    monkeypatch.setattr(qi, "BUILD_CHUNK_PARAGRAPHS", 5)
    seen = []
    m = build_index(
        corpus_speeches, fake_encoder, tmp_path / "chunked", progress=lambda d, n: seen.append((d, n))
    )
    whole, chunked = (
        load_index(tmp_path / "whole", fake_encoder),
        load_index(tmp_path / "chunked", fake_encoder),
    )
    assert m.segments[0].fingerprint == whole.manifest.segments[0].fingerprint
    assert m.counts == whole.manifest.counts and m.encoded_paragraphs == whole.manifest.encoded_paragraphs
    assert seen[-1] == (whole.n_paragraphs, whole.n_paragraphs)
    rows = np.arange(whole.n_rows)
    np.testing.assert_array_equal(chunked.passage_vectors_of(rows), whole.passage_vectors_of(rows))
    again = build_index(corpus_speeches, fake_encoder, tmp_path / "chunked", reuse=chunked)
    assert again.encoded_paragraphs == 0


def test_contains_text_bigram_filter_agrees_with_scanning(tmp_path, corpus_speeches, fake_encoder):
    """The per-segment bigram table answers "absent" without a scan, and never for text that is there
    (substrings of paragraphs and sections, across paragraph boundaries, in merged segments too)."""
    import random

    d = tmp_path / "idx"
    build_index(corpus_speeches[:2], fake_encoder, d)
    add_to_index(d, corpus_speeches[2:], fake_encoder)
    for index in (load_index(d, fake_encoder), load_index(d, fake_encoder, verify="full")):
        segs = [seg.passages for seg in index._segments]
        assert all(p._bigrams is not None and len(p._bigrams) for p in segs)
        blob = "".join(bytes(p._text).decode() + "\x00" + bytes(p._section).decode() for p in segs)
        rng = random.Random(0)
        needles = ["量子纠缠", "不存在的词汇", "zz", "网络", "的"]
        for _ in range(300):
            i = rng.randrange(len(blob) - 8)
            needles.append(blob[i : i + rng.randint(2, 8)].replace("\x00", ""))
        for needle in needles:
            want = any(needle in bytes(b).decode() for p in segs for b in (p._text, p._section))
            assert any(p.contains_text(needle) for p in segs) == want, needle
    compact_index(d, fake_encoder)
    merged = load_index(d, fake_encoder)._segments[0].passages
    fresh = tmp_path / "fresh"
    build_index(corpus_speeches, fake_encoder, fresh)
    np.testing.assert_array_equal(
        merged._bigrams, load_index(fresh, fake_encoder)._segments[0].passages._bigrams
    )


_WRITER = textwrap.dedent(
    """
    import dataclasses, os, signal, sys, time, pathlib
    sys.path.insert(0, {repo!r})
    import qa.index as qi
    from data.load import builtin_corpus_dir, load_paths
    from embeddings.testing import HashEncoder

    def renamed(sp, suffix):
        sid = sp.speech_id + suffix
        ps = tuple(dataclasses.replace(p, paragraph_id=p.paragraph_id + suffix, speech_id=sid) for p in sp.paragraphs)
        return dataclasses.replace(sp, speech_id=sid, paragraphs=ps)

    speeches = load_paths([builtin_corpus_dir()]).speeches
    """
)


def _run(script: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)


def test_concurrent_additions_all_land(tmp_path, fake_index_dir):
    trials = 10
    dirs = [_copy(fake_index_dir, tmp_path / f"idx{i}") for i in range(trials)]
    sync = tmp_path / "sync"
    sync.mkdir()
    script = _WRITER.format(repo=str(REPO)) + textwrap.dedent(
        f"""
        me, other = sys.argv[1], sys.argv[2]
        import logging; logging.basicConfig(level=logging.WARNING)
        for i in range({trials}):
            pathlib.Path({str(sync)!r}, f"{{me}}{{i}}").touch()
            while not pathlib.Path({str(sync)!r}, f"{{other}}{{i}}").exists():
                time.sleep(0.001)
            qi.add_to_index(pathlib.Path({str(tmp_path)!r}, f"idx{{i}}"), [renamed(speeches[i % 3], "-" + me)], HashEncoder(dim=256))
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, a, b], stderr=subprocess.PIPE, text=True)
        for a, b in (("A", "B"), ("B", "A"))
    ]
    errs = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    from embeddings.testing import HashEncoder

    for i, d in enumerate(dirs):
        index = load_index(d, HashEncoder(dim=256))
        base = [sp.speech_id for sp in load_index(fake_index_dir, HashEncoder(dim=256)).speeches.values()][
            i % 3
        ]
        assert {f"{base}-A", f"{base}-B"} <= set(index.speeches), f"trial {i} lost an addition"
        assert index.manifest.counts["speeches"] == 5
    print("waits logged:", sum(e.count("waiting for another writer") for e in errs))


def test_add_encodes_without_the_writer_lock_and_sees_a_change_committed_meanwhile(
    tmp_path, corpus_speeches, fake_encoder
):
    """While one writer encodes, the lock is free and another writer commits: both changes land, and the
    speech the other writer added meanwhile is replaced (tombstoned in its segment), not duplicated."""
    import fcntl

    from qa.index import LOCK

    d = tmp_path / "idx"
    base, a, b = corpus_speeches[:3]
    build_index([base], fake_encoder, d)
    b_v2 = dataclasses.replace(b, title=b.title + "（修订）")
    interleaved = []

    class SecondWriterDuringEncode:
        model_id, dim = fake_encoder.model_id, fake_encoder.dim

        def encode_passages(self, texts):
            if not interleaved:
                with open(d / LOCK, "a+") as fh:  # BlockingIOError here if the first writer held the lock
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    fcntl.flock(fh, fcntl.LOCK_UN)
                interleaved.append(True)
                add_to_index(d, [a, b], fake_encoder)
            return fake_encoder.encode_passages(texts)

        def encode_queries(self, texts):
            return fake_encoder.encode_queries(texts)

    add_to_index(d, [b_v2], SecondWriterDuringEncode())
    assert interleaved
    index = load_index(d, fake_encoder)
    assert set(index.speeches) == {base.speech_id, a.speech_id, b.speech_id}
    assert index.speeches[b.speech_id].title == b_v2.title
    assert index.n_paragraphs == sum(len(sp.paragraphs) for sp in (base, a, b_v2))
    assert index.manifest.seq == 3
    rows = index.speech_rows(b.speech_id)
    assert [index.paragraph(int(r)).paragraph_id for r in rows] == [p.paragraph_id for p in b.paragraphs]


@pytest.mark.parametrize("point", ["encoding", "segment_renamed", "before_manifest", "during_gc"])
def test_killed_writer_leaves_a_loadable_index(
    tmp_path, fake_index_dir, fake_encoder, corpus_speeches, point
):
    d = _copy(fake_index_dir, tmp_path / "idx")
    before = read_manifest(d)
    hooks = {
        "encoding": "qi.encode_paragraphs = lambda *a, **k: die()",
        "segment_renamed": "orig = qi.fsync_path\n"
        "def hook(p):\n    orig(p)\n    if p.name == 'segments': die()\nqi.fsync_path = hook",
        "before_manifest": "orig = qi.write_json_atomically\n"
        "def hook(p, obj):\n    if p.name == 'manifest.json': die()\n    orig(p, obj)\nqi.write_json_atomically = hook",
        "during_gc": "orig = pathlib.Path.unlink\n"
        "def hook(self, *a, **k):\n    if self.parent.name == 'manifests' and self.name[0].isdigit(): die()\n"
        "    orig(self, *a, **k)\npathlib.Path.unlink = hook",
    }
    script = (
        _WRITER.format(repo=str(REPO))
        + textwrap.dedent(
            """
        def die():
            os.kill(os.getpid(), signal.SIGKILL)
        """
        )
        + hooks[point]
        + textwrap.dedent(
            f"""
        d = pathlib.Path({str(d)!r})
        qi.add_to_index(d, [renamed(speeches[0], "-new")], HashEncoder(dim=256))
        qi.add_to_index(d, [renamed(speeches[1], "-new")], HashEncoder(dim=256))  # GC runs from the second commit
        """
        )
    )
    proc = _run(script)
    assert proc.returncode == -9, proc.stderr
    index = load_index(d, fake_encoder)
    if point == "during_gc":
        assert index.manifest.seq == before.seq + 2  # killed after the commit: the new version stands
    else:
        assert index.manifest.seq == before.seq and index.manifest.segments == before.segments
    assert HybridRetriever(index, fake_encoder).retrieve("网络意识形态安全", 3).hits
    # The next writer goes on from there and clears what the killed one left behind.
    m = add_to_index(d, [renamed(corpus_speeches[2], "-after")], fake_encoder)
    previous = read_manifest(d)
    assert previous.seq == m.seq
    assert not [p for p in (d / "segments").iterdir() if p.name.startswith(".tmp")]
    assert len(segment_dirs(d)) <= len(m.segments) + 2


# -- live refresh -------------------------------------------------------------------------------------


def test_handle_refresh_swaps_versions_while_an_old_snapshot_keeps_working(
    tmp_path, fake_index_dir, fake_encoder, corpus_speeches
):
    d = _copy(fake_index_dir, tmp_path / "idx")
    handle = IndexHandle(d, fake_encoder)
    old = handle.current()
    assert handle.refresh() is False  # nothing changed
    new_speech = renamed(corpus_speeches[0], "-v2")
    add_to_index(d, [new_speech], fake_encoder)
    remove_from_index(d, [corpus_speeches[1].speech_id], fake_encoder)
    add_to_index(d, [renamed(corpus_speeches[2], "-v3")], fake_encoder)  # old's segments may now be collected
    assert handle.refresh() is True
    new = handle.current()
    assert new.version != old.version and new_speech.speech_id in new.speeches
    assert corpus_speeches[1].speech_id not in new.speeches
    # The snapshot a request took before the swap still answers from its own version.
    assert corpus_speeches[1].speech_id in old.speeches
    hits = HybridRetriever(old, fake_encoder).retrieve("中关村丰台园", 3).hits
    assert hits and old.paragraph(0).text
    # A broken new version is not swapped in: the handle keeps serving the last good one.
    m = json.loads((d / "manifest.json").read_text())
    m["seq"] += 1
    m["segments"].append({**m["segments"][0], "name": "seg-never-written"})
    (d / "manifest.json").write_text(json.dumps(m))
    assert handle.refresh() is False
    assert handle.current() is new


# -- dense: a real approximate index ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ivf", "pq"])
def test_ann_recall_at_10_against_exact_search(tmp_path, kind):
    import faiss

    from qa.stores.faiss_dense import FaissDenseStore, recall_at_k

    rng = np.random.default_rng(7)
    n, dim = 20_000, 64
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store = FaissDenseStore(dim, kind)
    store.add(np.arange(n), vectors)
    params = store.save(tmp_path)
    assert params["kind"] == kind and (tmp_path / "dense.faiss").exists()
    loaded = FaissDenseStore.load(tmp_path, params, vectors)
    exact = faiss.IndexFlatIP(dim)
    exact.add(vectors)
    queries = rng.standard_normal((200, dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    exact_s, _ = exact.search(queries, 10)
    found = np.stack([loaded.search(q, 10)[1] for q in queries])
    recall = recall_at_k(found, exact_s)
    print(f"{kind} {params} recall@10={recall:.3f}")
    assert recall >= 0.95
    # Deleted rows never come back; an allowed set is respected.
    top = loaded.search(queries[0], 10)[0]
    view = loaded.view()
    view.delete(top[:5])
    assert not set(view.search(queries[0], 10)[0]) & set(top[:5].tolist())
    allowed = np.arange(0, n, 7)
    assert set(loaded.search(queries[0], 10, allowed)[0]) <= set(allowed.tolist())
    if kind == "pq":  # the PQ scan only proposes candidates: scores are exact
        rows, scores = loaded.search(queries[0], 10)
        np.testing.assert_allclose(scores, vectors[rows] @ queries[0], rtol=1e-5)


# -- lexical ------------------------------------------------------------------------------------------


def test_bm25_top_k_skips_common_terms_but_equals_scoring_every_document():
    """The pruned top k (MaxScore) and row lookups give what scoring every document with a term gives, with
    tombstones and filters, for queries mixing very common and rare terms."""
    from qa.stores.bm25 import InvertedBM25, idf, top_k

    rng = np.random.default_rng(3)
    vocab = [f"w{i}" for i in range(400)]
    p = 1.0 / np.arange(1, len(vocab) + 1)  # Zipf: w0 is in nearly every document
    docs = [list(rng.choice(vocab, rng.integers(1, 40), p=p / p.sum())) for _ in range(3000)]
    store = InvertedBM25()
    store.add(np.arange(len(docs)), docs)
    view = store.view()
    view.delete(rng.choice(len(docs), 150, replace=False))
    assert view.df("w0") == len(view.postings("w0")[0])  # remembered ...
    view.delete(rng.choice(len(docs), 150, replace=False))  # ... until the deletions change
    assert all(view.df(t) == len(view.postings(t)[0]) for t in vocab)
    assert store.df("w0") == len(store.postings("w0")[0]) > view.df("w0")
    allowed = rng.random(len(docs)) < 0.5
    queries = [["w0", "w1", "w250"], ["w0", "w0", "w3", "w77", "w399"], ["w0"], ["w5", "nope"], ["w0", "w1"]]
    queries += [list(rng.choice(vocab, rng.integers(2, 7), p=p / p.sum())) for _ in range(20)]
    queries += [list(rng.choice(vocab, rng.integers(2, 7))) for _ in range(20)]
    for query in queries:
        n = view.n_docs
        idfs = {t: float(idf(view.df(t), n)) for t in set(query)}
        avgdl = view.length_sum() / n
        for mask in (None, allowed):
            rows, scores = view.scores_for(query, idfs, avgdl, mask)
            full = np.zeros(len(docs), dtype=np.float32)
            full[rows] = scores
            for k in (1, 10, 50):
                want = top_k(rows, scores, k)
                got = view.top_scored(query, idfs, avgdl, k, mask)
                # Same k best scores; each returned row really has its score (rounding may reorder exact ties).
                np.testing.assert_allclose(got[1], want[1], rtol=1e-5)
                np.testing.assert_allclose(full[got[0]], got[1], rtol=1e-5)
                assert len(set(got[0].tolist())) == len(got[0])
            probe = np.arange(len(docs)) if mask is None else np.flatnonzero(mask)
            np.testing.assert_allclose(
                view.score_rows(query, idfs, avgdl, probe), full[probe], rtol=1e-5, atol=1e-6
            )


def test_hybrid_retrieval_reads_bm25_scores_of_dense_candidates(fake_index_dir, fake_encoder):
    """Fusion gets BM25 for every candidate by lookup: the same numbers as scoring every document."""
    index = load_index(fake_index_dir, fake_encoder)
    retriever = HybridRetriever(index, fake_encoder)
    for q in ("地铁16号线通车", "金融新区的发展"):
        rows, scores = index.lexical.top(tokenize(q), None)
        full = dict(zip(rows.tolist(), scores.tolist(), strict=True))
        for hit in retriever.retrieve(q, 8).hits:
            assert hit.bm25_score == pytest.approx(full.get(index.row_of(hit.passage_id), 0.0), rel=1e-5)


def test_bm25_matches_bm25s_lucene_scores(fake_index_dir, fake_encoder, corpus_speeches):
    import bm25s

    docs = [tokenize(lexical_text(sp, p)) or ["<empty>"] for sp in corpus_speeches for p in sp.paragraphs]
    ref = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    ref.index(docs, show_progress=False)
    index = load_index(fake_index_dir, fake_encoder)
    for q in ("地铁16号线通车", "网络意识形态安全 网络", "金融新区的发展", "不存在的词汇"):
        tokens = [t for t in tokenize(q) if t in ref.vocab_dict]
        expected = (
            np.asarray(ref.get_scores(tokens), dtype=np.float32)
            if tokens
            else np.zeros(len(docs), np.float32)
        )
        rows, scores = index.lexical.top(tokenize(q), None)
        got = np.zeros(len(docs), dtype=np.float32)
        got[rows] = scores
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
        assert (scores > 0).all()
    assert index.lexical.n_docs == len(docs)
    assert index.lexical.df("网络") == sum("网络" in d for d in docs)


# -- retrieval filters --------------------------------------------------------------------------------


def test_filters_restrict_and_unknown_filters_are_errors(fake_index_dir, fake_encoder):
    index = load_index(fake_index_dir, fake_encoder)
    r = HybridRetriever(index, fake_encoder)
    hits = r.retrieve("网络", 10, Filters(speaker="孙睿")).hits
    assert hits and {h.speaker for h in hits} == {"孙睿"}
    sid = next(iter(index.speeches))
    assert {h.speech_id for h in r.retrieve("发展", 10, Filters(speech_id=sid)).hits} == {sid}
    with pytest.raises(UnknownFilterError):
        r.retrieve("发展", 5, Filters(speaker="不存在的人"))
    with pytest.raises(UnknownFilterError):
        r.retrieve("发展", 5, Filters(speech_id="nope"))
    with pytest.raises(UnknownFilterError):
        r.retrieve("发展", 5, Filters(region="火星"))


def test_date_and_year_filters(tmp_path, corpus_speeches, fake_encoder):
    dated = [
        dataclasses.replace(corpus_speeches[0], date="2021-06-01"),
        dataclasses.replace(corpus_speeches[1], date="2022-03"),
        dataclasses.replace(corpus_speeches[2], date="2023"),
    ]
    build_index(dated, fake_encoder, tmp_path / "idx")
    r = HybridRetriever(load_index(tmp_path / "idx", fake_encoder), fake_encoder)

    def speeches_of(f):
        return {h.speech_id for h in r.retrieve("发展 网络 金融", 30, f).hits}

    ids = [sp.speech_id for sp in dated]
    assert speeches_of(Filters(year_from=2022)) == set(ids[1:])
    assert speeches_of(Filters(year_to=2021)) == {ids[0]}
    assert speeches_of(Filters(date_from="2022-03-15", date_to="2022-12-31")) == {ids[1]}
    assert speeches_of(Filters(date_from="2023-07-01")) == {ids[2]}
    assert speeches_of(Filters(speech_ids=(ids[0], ids[2]))) == {ids[0], ids[2]}


def test_excluded_passages_are_retrieved_as_if_absent(
    tmp_path, fake_index_dir, corpus_speeches, fake_encoder
):
    index = load_index(fake_index_dir, fake_encoder)
    r = HybridRetriever(index, fake_encoder)
    target = corpus_speeches[2].paragraphs[3]
    assert r.retrieve(target.text, 1).hits[0].passage_id == target.paragraph_id
    left_out = r.retrieve(target.text, 5, Filters(exclude_passages=frozenset({target.paragraph_id}))).hits
    assert target.paragraph_id not in {h.passage_id for h in left_out}
    # Same ranking as an index built without that paragraph (BM25 statistics aside).
    without = dataclasses.replace(
        corpus_speeches[2], paragraphs=tuple(p for p in corpus_speeches[2].paragraphs if p != target)
    )
    build_index([*corpus_speeches[:2], without], fake_encoder, tmp_path / "without")
    r2 = HybridRetriever(load_index(tmp_path / "without", fake_encoder), fake_encoder)
    assert left_out[0].passage_id == r2.retrieve(target.text, 5, mode="hybrid").hits[0].passage_id


def test_naming_the_speaker_finds_their_speech(fake_index_dir, fake_encoder):
    index = load_index(fake_index_dir, fake_encoder)
    hits = HybridRetriever(index, fake_encoder).retrieve("孙永文讲了什么", 3).hits
    assert hits[0].speaker == "孙永文"


@pytest.mark.parametrize("kind", ["hnsw", "ivf", "pq"])
def test_requested_faiss_kinds_find_the_same_top_passage(tmp_path, corpus_speeches, fake_encoder, kind):
    build_index(corpus_speeches, fake_encoder, tmp_path / kind, faiss_kind=kind)
    index = load_index(tmp_path / kind, fake_encoder)
    assert index.manifest.faiss == kind
    # IVF and PQ need more rows than the built-in corpus has: they fall back to exact search.
    assert index.manifest.segments[0].dense["kind"] == ("hnsw" if kind == "hnsw" else "flat")
    q = fake_encoder.encode_queries(["地铁16号线通车"])[0]
    rows = index.live_rows()
    top = int(rows[np.argmax(index.passage_vectors_of(rows) @ q)])
    hits = HybridRetriever(index, fake_encoder).retrieve("地铁16号线通车", 3, mode="dense").hits
    assert hits[0].passage_id == index.paragraph(top).paragraph_id
    # Tombstones hold for an approximate index too.
    remove_from_index(tmp_path / kind, [index.paragraph(top).speech_id], fake_encoder)
    after = HybridRetriever(load_index(tmp_path / kind, fake_encoder), fake_encoder)
    assert index.paragraph(top).speech_id not in {
        h.speech_id for h in after.retrieve("地铁16号线通车", 10, mode="dense").hits
    }


def test_backends_and_snapshot_satisfy_the_store_protocols(fake_index_dir, fake_encoder):
    from qa.stores import DenseStore, LexicalStore, PassageStore
    from qa.stores.bm25 import InvertedBM25
    from qa.stores.faiss_dense import FaissDenseStore

    index = load_index(fake_index_dir, fake_encoder)
    assert isinstance(FaissDenseStore(8), DenseStore)
    assert isinstance(InvertedBM25(), LexicalStore)
    assert isinstance(index.lexical, LexicalStore)
    assert isinstance(index, PassageStore)


def test_listing_speeches_loads_no_model_runtime(fake_index_dir):
    """`speechqa speeches` answers from the index's speech table: neither torch nor onnxruntime is imported."""
    import subprocess
    import sys

    code = (
        "import sys; from cli.main import main; rc = main(['speeches', '--json', '--index', sys.argv[1]]); "
        "heavy = [m for m in ('torch', 'onnxruntime', 'sentence_transformers') if m in sys.modules]; "
        "print('HEAVY', heavy); sys.exit(rc)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(fake_index_dir)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout
    assert out.stdout.count('"speech_id"') == 3


def _one_speech_retriever(
    tmp_path, encoder, title: str, date: str, paragraphs
) -> tuple[Speech, HybridRetriever]:
    """A speech of ``paragraphs`` ((section, text) pairs) by 张明, indexed alone, and a retriever over it."""
    from data.parse import make_speech

    sp = make_speech(title=title, speaker="张明", date=date, paragraphs=paragraphs)
    build_index([sp], encoder, tmp_path / "idx")
    return sp, HybridRetriever(load_index(tmp_path / "idx", encoder), encoder)


def test_a_question_about_a_year_reads_that_years_passages_first(tmp_path, fake_encoder):
    sp, retriever = _one_speech_retriever(
        tmp_path,
        fake_encoder,
        "新城政府工作报告",
        "2025-01-20",
        [
            ("一、2024年工作回顾", "新城地区生产总值增长5.8%，城镇新增就业3万人，新城地区生产总值再创新高。"),
            ("二、2025年主要任务", "新城地区生产总值预期增长5%左右，城镇新增就业3万人以上。"),
        ],
    )
    review, plan = (p.paragraph_id for p in sp.paragraphs)
    assert retriever.retrieve("2025年新城地区生产总值增长多少？", 2).hits[0].passage_id == plan
    assert retriever.retrieve("2024年新城地区生产总值增长多少？", 2).hits[0].passage_id == review
    # 今年 is the speech's year; with no year asked, the fused order stands.
    assert retriever.retrieve("今年新城地区生产总值增长多少？", 2).hits[0].passage_id == plan
    # A question about what is intended asks about the speech's own year, as 今年 does.
    assert retriever.retrieve("新城打算让地区生产总值增长多少？", 2).hits[0].passage_id == plan
    assert retriever.retrieve("新城下一步地区生产总值增长多少？", 2).hits[0].passage_id == plan
    plain = retriever.retrieve("新城地区生产总值增长多少？", 2).hits
    assert plain[0].passage_id == review  # the review says it twice: without a period asked, it leads
    assert [h.score for h in plain] == sorted((h.score for h in plain), reverse=True)


def test_a_name_jieba_glues_to_a_function_word_is_still_searched_by_name(tmp_path, fake_encoder):
    sp, retriever = _one_speech_retriever(
        tmp_path,
        fake_encoder,
        "区委工作会议上的讲话",
        "2022-03-01",
        [
            ("", "丽泽金融商务区地处北京西南，是首都新的金融功能区。"),
            ("", "城市副中心地处北京东部，是首都新的行政功能区。"),
        ],
    )
    question = "丽泽在首都的什么位置？"
    assert "丽泽" not in tokenize(question)  # jieba's HMM makes 丽泽在 of it, a word no passage has
    hits = retriever.retrieve(question, 2, mode="bm25").hits
    assert hits[0].passage_id == sp.paragraphs[0].paragraph_id
    assert hits[0].bm25_score > hits[1].bm25_score
