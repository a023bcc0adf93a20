"""The index directory: atomic builds, corruption and mismatch errors, incremental add/remove, filters."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from data.errors import IndexCorruptedError, IndexMismatchError, IndexNotFoundError, UnknownFilterError
from qa.index import add_to_index, build_index, load_index, remove_from_index
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


def test_built_index_loads_with_manifest_counts(fake_index_dir, fake_encoder, corpus_speeches):
    index = load_index(fake_index_dir, fake_encoder)
    m = index.manifest
    assert m["counts"] == {
        "speeches": 3,
        "paragraphs": sum(len(s.paragraphs) for s in corpus_speeches),
        "sentences": sum(len(p.sentences) for s in corpus_speeches for p in s.paragraphs),
    }
    assert m["model_id"] == fake_encoder.model_id and m["dim"] == fake_encoder.dim
    assert len(m["corpus_fingerprint"]) == 64 and m["built_at"]
    assert set(m["files"]) >= {
        "dense.faiss",
        "paragraphs.jsonl",
        "passage_vectors.npy",
        "sentence_vectors.npy",
    }


def test_rebuild_gives_same_ids_and_fingerprint(tmp_path, corpus_speeches, fake_encoder, fake_index_dir):
    build_index(corpus_speeches, fake_encoder, tmp_path / "again")
    a = load_index(fake_index_dir, fake_encoder)
    b = load_index(tmp_path / "again", fake_encoder)
    assert [p.paragraph_id for p in a.paragraphs] == [p.paragraph_id for p in b.paragraphs]
    assert a.manifest["corpus_fingerprint"] == b.manifest["corpus_fingerprint"]


def test_missing_index_names_the_fix(tmp_path, fake_encoder):
    with pytest.raises(IndexNotFoundError, match="speechqa ingest"):
        load_index(tmp_path / "nowhere", fake_encoder)


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("damage", ["truncate_faiss", "flip_byte", "drop_vectors", "garbage_manifest"])
def test_corrupted_index_fails_with_cause_and_fix(tmp_path, fake_index_dir, fake_encoder, damage):
    d = _copy(fake_index_dir, tmp_path / "idx")
    if damage == "truncate_faiss":
        data = (d / "dense.faiss").read_bytes()
        (d / "dense.faiss").write_bytes(data[: len(data) // 2])
        match = "truncated"
    elif damage == "flip_byte":
        data = bytearray((d / "paragraphs.jsonl").read_bytes())
        data[100] ^= 1
        (d / "paragraphs.jsonl").write_bytes(bytes(data))
        match = "checksum"
    elif damage == "drop_vectors":
        os.remove(d / "sentence_vectors.npy")
        match = "missing"
    else:
        (d / "manifest.json").write_text("{not json", encoding="utf-8")
        match = "manifest"
    with pytest.raises(IndexCorruptedError, match=match) as info:
        load_index(d, fake_encoder)
    assert "speechqa ingest" in str(info.value)


def test_index_of_another_model_is_refused(fake_index_dir):
    from embeddings.testing import HashEncoder

    with pytest.raises(IndexMismatchError, match="dim 256") as info:
        load_index(fake_index_dir, HashEncoder(dim=128))
    assert "SPEECHQA_MODEL" in str(info.value)


def test_interrupted_swap_is_recovered(tmp_path, fake_index_dir, fake_encoder):
    d = _copy(fake_index_dir, tmp_path / "idx")
    os.rename(d, tmp_path / ".idx.old")  # the instant between the two renames of a swap
    index = load_index(d, fake_encoder)
    assert index.manifest["counts"]["speeches"] == 3


def test_killed_build_leaves_previous_index_intact(tmp_path, fake_index_dir, fake_encoder):
    d = _copy(fake_index_dir, tmp_path / "idx")
    before = json.loads((d / "manifest.json").read_text())
    started = tmp_path / "started"
    script = textwrap.dedent(
        f"""
        import sys, time, pathlib
        sys.path.insert(0, {str(REPO)!r})
        from data.parse import builtin_corpus_dir, load_paths
        from embeddings.testing import HashEncoder
        from qa.index import build_index

        class Slow(HashEncoder):
            def encode_passages(self, texts):
                pathlib.Path({str(started)!r}).write_text("x")
                time.sleep(0.2)
                return super().encode_passages(texts)

        speeches = load_paths([builtin_corpus_dir()]).speeches * 1
        build_index(speeches, Slow(dim=256), pathlib.Path({str(d)!r}))
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert started.exists(), "the build never started encoding"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    index = load_index(d, fake_encoder)
    assert index.manifest == before
    # The next build cleans up what the killed one left behind.
    build_index(index.speeches.values(), fake_encoder, d)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".idx.tmp")]


def test_add_and_remove_encode_only_new_text(tmp_path, corpus_speeches, fake_encoder):
    enc = CountingEncoder(fake_encoder)
    d = tmp_path / "idx"
    build_index(corpus_speeches[:2], enc, d)
    first = enc.passages
    assert first > 0
    enc.passages = 0
    m = add_to_index(d, corpus_speeches[2:], enc)
    third = corpus_speeches[2]
    # Paragraph texts plus their sentences (the fake encoder cannot pool spans) of the new speech only.
    assert enc.passages == len(third.paragraphs) + sum(len(p.sentences) for p in third.paragraphs)
    assert m["counts"]["speeches"] == 3
    enc.passages = 0
    m = remove_from_index(d, [corpus_speeches[0].speech_id], enc)
    assert enc.passages == 0
    assert m["counts"]["speeches"] == 2
    index = load_index(d, fake_encoder)
    assert corpus_speeches[0].speech_id not in index.speeches
    # Vectors still line up with paragraphs after the change.
    fresh = fake_encoder.encode_passages([index.paragraphs[0].text])
    assert index.passage_vectors.shape[0] == len(index.paragraphs)
    assert fresh.shape[1] == index.passage_vectors.shape[1]


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_faiss_kinds_find_the_same_top_passage(tmp_path, corpus_speeches, fake_encoder, kind):
    d = tmp_path / kind
    build_index(corpus_speeches, fake_encoder, d, faiss_kind=kind)
    index = load_index(d, fake_encoder)
    assert index.manifest["faiss"] == kind
    exact = load_index(d, fake_encoder)
    q = fake_encoder.encode_queries(["地铁16号线通车"])[0]
    top = int(np.argmax(exact.passage_vectors @ q))
    hits = HybridRetriever(index, fake_encoder).retrieve("地铁16号线通车", 3, mode="dense").hits
    assert hits[0].passage_id == index.paragraphs[top].paragraph_id


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


def test_naming_the_speaker_finds_their_speech(fake_index_dir, fake_encoder):
    index = load_index(fake_index_dir, fake_encoder)
    hits = HybridRetriever(index, fake_encoder).retrieve("孙永文讲了什么", 3).hits
    assert hits[0].speaker == "孙永文"
